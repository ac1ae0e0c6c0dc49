"""In-app training: trainer-process throughput vs core.training.fit, and the GUI's idle-frame time while training.
Prints one JSON object.

    CNNVIZ_MNIST_DIR=... python benchmarks/bench_training.py [--images 4096] [--epochs 1] [--batch-size 128]
        [--model tiny] [--no-gui]

Throughput (images/s, same settings, same run): the trainer process (core/trainer.py, one torch thread, timed
from its 'ready' message to 'stopped', so evaluation and message traffic are included) vs ``training.fit`` in a
fresh subprocess timed around the fit call, once with torch's default threads (what ``cnnviz-train fit`` does)
and once with OMP_NUM_THREADS=1 (the same thread count as the trainer).
The trainer runs at lower priority (core/trainer.py: os.nice); the trainer's throughput is measured both at its
default niceness and with CNNVIZ_TRAINER_NICE=0 (the old behaviour), each alone on the machine's idle GUI.
GUI (unless --no-gui): median frame time of the idle 3D view (repaint of the unchanged scene, as bench_stroke.py
measures it) without training, then while the training view trains with live model swaps, then during the same
training with live swaps off; the training part twice, at the trainer's default niceness and at niceness 0.
Needs an X display with OpenGL; without DISPLAY it re-runs itself under xvfb-run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIT = """
import sys, time
from pathlib import Path
from cnnviz_desktop.core import mnist, training
from cnnviz_desktop.core.networks import ARCHITECTURES
data, model, out = sys.argv[1], sys.argv[5], sys.argv[6]
n, epochs, batch = (int(v) for v in sys.argv[2:5])
train = mnist.load(data, "train")
train = mnist.Dataset(train.images[:n], train.labels[:n])
# Warm-up (untimed): torch imports modules lazily on the first deterministic step; the trainer does that before
# its 'ready' message, so neither timing includes it.
training.fit(ARCHITECTURES[model], mnist.Dataset(train.images[:batch], train.labels[:batch]), Path(out), epochs=1,
             batch_size=batch, seed=0)
start = time.perf_counter()
training.fit(ARCHITECTURES[model], train, Path(out), epochs=epochs, batch_size=batch, seed=0)
print(time.perf_counter() - start)
"""


def reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("CNNVIZ_BENCH_NO_XVFB"):
        return
    if not shutil.which("xvfb-run"):
        sys.exit("bench_training: no DISPLAY and no xvfb-run (apt-get install xvfb xauth)")
    os.environ["CNNVIZ_BENCH_NO_XVFB"] = "1"
    os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24 +extension GLX",
                           sys.executable, *sys.argv])


def fit_rate(args, data: str, threads: int | None, out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run([sys.executable, "-c", FIT, data, str(args.images), str(args.epochs),
                             str(args.batch_size), args.model, str(out)], env=env, cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return args.images * args.epochs / float(result.stdout.strip().splitlines()[-1])


def trainer_rate(args, data: str, nice: str | None = None) -> float:
    from cnnviz_desktop.core.networks import ARCHITECTURES
    from cnnviz_desktop.core.trainer import TrainerProcess, TrainSettings

    set_nice(nice)
    trainer = TrainerProcess()
    try:
        trainer.start(TrainSettings(ARCHITECTURES[args.model], data, epochs=args.epochs, batch_size=args.batch_size,
                                    seed=0, train_limit=args.images))
        start = None
        while True:
            message = trainer.recv(600)
            if message is None or message[0] in ("exited", "error"):
                raise SystemExit(f"bench_training: the trainer failed: {message}")
            if message[0] == "ready":
                start = time.perf_counter()
            elif message[0] == "stopped":
                return args.images * args.epochs / (time.perf_counter() - start)
    finally:
        trainer.close()


def set_nice(nice: str | None) -> None:
    """The niceness the next trainer child gets (None: its default); the child reads it at start."""
    if nice is None:
        os.environ.pop("CNNVIZ_TRAINER_NICE", None)
    else:
        os.environ["CNNVIZ_TRAINER_NICE"] = nice


def idle_frames(app, view, count: int = 40) -> float | None:
    frames, last = [], [time.perf_counter()]

    def on_frame():
        now = time.perf_counter()
        frames.append((now - last[0]) * 1000)
        last[0] = now
        if len(frames) < count:
            view.update()

    view.frameSwapped.connect(on_frame)
    last[0] = time.perf_counter()
    view.update()
    deadline = time.monotonic() + 30
    while len(frames) < count and time.monotonic() < deadline:
        app.processEvents()
    view.frameSwapped.disconnect(on_frame)
    return statistics.median(frames[5:]) if len(frames) > 10 else None


def gui_frames(args, data: str) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from cnnviz_desktop.__main__ import configure_environment, configure_qt_attributes

    configure_environment()
    configure_qt_attributes()

    from PySide6.QtWidgets import QApplication


    app = QApplication.instance() or QApplication(sys.argv[:1])
    from cnnviz_desktop.devtools.gl_bench import open_window

    owner = open_window(app, args.model)
    window = owner.window
    view = window.scene.view
    window.toggle_view("training")
    training = window.views["training"]
    for _ in range(50):
        app.processEvents()
    not_training = idle_frames(app, view)
    training.data_edit.setText(data)
    training.images_spin.setValue(min(60_000, args.images * 4))
    training.epochs_spin.setValue(max(args.epochs, 3))
    training.batch_spin.setValue(args.batch_size)
    result = {"idle_frame_ms_median_not_training": round(not_training, 2) if not_training else None}

    def ratio(value):
        return round(value / not_training, 2) if value and not_training else None

    for nice, suffix in ((None, ""), ("0", "_nice0")):
        set_nice(nice)
        training.live_box.setChecked(True)
        training.unsaved = False
        target = training.swaps + 2
        training.start_training()
        deadline = time.monotonic() + 300
        while training.swaps < target and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.005)
        swaps_before = training.swaps
        while_training = idle_frames(app, view)
        state, swaps = training.state, training.swaps - swaps_before
        training.live_box.setChecked(False)  # the same training, without live model swaps
        for _ in range(50):
            app.processEvents()
        no_swaps = idle_frames(app, view)
        state = state if training.state == "running" else f"{state}, then {training.state}"
        training.unsaved = False
        training.close_requested()
        result.update({
            f"idle_frame_ms_median_training{suffix}": round(while_training, 2) if while_training else None,
            f"idle_frame_ratio_training_vs_not{suffix}": ratio(while_training),
            f"idle_frame_ms_median_training_no_live_swaps{suffix}": round(no_swaps, 2) if no_swaps else None,
            f"idle_frame_ratio_training_no_swaps_vs_not{suffix}": ratio(no_swaps),
            f"live_swaps_during_measurement{suffix}": swaps,
            f"trainer_state_during_measurement{suffix}": state,
        })
    set_nice(None)
    owner.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--no-gui", action="store_true")
    args = parser.parse_args()
    if not args.no_gui:
        reexec_under_xvfb()  # before anything is measured: it restarts this script
    data = os.environ.get("CNNVIZ_MNIST_DIR", "").strip()
    if not data:
        sys.exit("bench_training: set CNNVIZ_MNIST_DIR to the folder with the MNIST IDX files")
    import tempfile

    from cnnviz_desktop.core.trainer import trainer_niceness

    out = Path(tempfile.mkdtemp()) / "fit.safetensors"
    niceness = trainer_niceness()  # the default, before the nice-0 run sets CNNVIZ_TRAINER_NICE
    in_app = trainer_rate(args, data)
    in_app_nice0 = trainer_rate(args, data, "0")
    set_nice(None)
    fit_default = fit_rate(args, data, None, out)
    fit_one = fit_rate(args, data, 1, out)
    result = {
        "model": args.model, "images": args.images, "epochs": args.epochs, "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "trainer_images_per_s": round(in_app, 1),
        "fit_images_per_s_default_threads": round(fit_default, 1),
        "fit_images_per_s_one_thread": round(fit_one, 1),
        "trainer_vs_fit_default": round(in_app / fit_default, 2),
        "trainer_vs_fit_one_thread": round(in_app / fit_one, 2),
        "trainer_niceness": niceness,
        "trainer_images_per_s_nice0": round(in_app_nice0, 1),
        "trainer_vs_fit_default_nice0": round(in_app_nice0 / fit_default, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if not args.no_gui:
        result.update(gui_frames(args, data))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
