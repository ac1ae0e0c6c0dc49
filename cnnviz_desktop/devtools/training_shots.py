"""The README's 'watch it learn' sequence: the window with the same drawn 7 at epoch 0 (random weights),
after one epoch (or a share of it), and trained, in the cube and in the activation-surface mode.

    python -m cnnviz_desktop.devtools.training_shots [OUT_DIR] [--data DIR] [--fraction 1.0]
        [--size 1366x768] [--no-surfaces]                     (default OUT_DIR: resources/screenshots)

Trains ``tiny`` from random weights with seed 0 (core.training.TrainingRun, cnnviz-train's defaults) on the
MNIST folder ``--data`` (default: $CNNVIZ_MNIST_DIR), saving the weights at epoch 0 (before the first step)
and after ``--fraction`` of a one-epoch run (its one-cycle schedule complete at 1.0) into a temporary
folder, deleted afterwards: no weights or data enter the repository. 'Trained' is the shipped tiny model
(its 60 epochs would take too long here). Each model is opened in the real app (``--self-test
--screenshot``: it draws the built-in 7 through the mouse path and grabs the window once the analysed
frame is on screen), on a private virtual screen (xvfb-run with GLX) with fresh settings. Each saved
model's card carries its t10k test accuracy (the status bar shows it). Writes
scene_train_{0_epoch0,1_epoch1,2_trained}[_surfaces].png (1_part for a fraction below 1) and prints one
line per shot (the predicted digit and its probability).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path



def train_stages(data: str, folder: Path, fraction: float, seed: int = 0) -> dict[str, str]:
    """Weights of tiny at epoch 0 and after ``fraction`` of epoch 1 (seed ``seed``), saved in ``folder``.
    Returns stage -> model argument (a .safetensors path, or 'tiny' for the shipped trained weights)."""
    from ..core import mnist, weights
    from ..core.architecture import ARCHITECTURES
    from ..core.training import TrainingRun, evaluate

    train = mnist.load(data, "train")
    test = mnist.load(data, "test")
    run = TrainingRun(ARCHITECTURES["tiny"], train, epochs=1, seed=seed)
    out = {}
    path = folder / "tiny_epoch0.safetensors"
    accuracy = round(evaluate(run.model, test)["accuracy"], 4)
    weights.save(run.model, path, run.card(extra={"note": "random initialisation, seed 0 (no training step)",
                                                  "test_accuracy": accuracy}))
    print(f"epoch 0 (random weights): test accuracy {accuracy:.3f}")
    out["0_epoch0"] = str(path)
    steps = max(1, round(fraction * run.steps_per_epoch))
    for _ in range(steps):
        run.step()
    loss, _ = run.running_stats()
    stage = "1_epoch1" if steps == run.steps_per_epoch else "1_part"
    path = folder / f"tiny_{stage}.safetensors"
    run.model.eval()
    accuracy = round(evaluate(run.model, test)["accuracy"], 4)
    weights.save(run.model, path, run.card(extra={"note": f"{steps} of {run.steps_per_epoch} steps of epoch 1",
                                                  "test_accuracy": accuracy}))
    print(f"trained {steps} of {run.steps_per_epoch} steps ({run.images_count} images): running loss {loss:.3f}, "
          f"test accuracy {accuracy:.3f}")
    out[stage] = str(path)
    out["2_trained"] = "tiny"
    return out


def shoot(model: str, out: Path, size: tuple[int, int], surfaces: bool) -> dict:
    """One window screenshot of ``model`` with the built-in 7 drawn; returns the self-test report."""
    from PySide6.QtCore import QSettings

    w, h = size
    with tempfile.TemporaryDirectory() as data:
        settings = QSettings(str(Path(data) / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue("view/surfaces", "true" if surfaces else "false")
        settings.sync()
        env = dict(os.environ, CNNVIZ_USER_DATA=data)
        env.pop("DISPLAY", None)
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {w}x{h}x24 +extension GLX +render -nolisten tcp",
               sys.executable, "-m", "cnnviz_desktop", "--self-test", "--screenshot", str(out), "--model", model]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if result.returncode:
        raise RuntimeError(f"{out.name}: {result.stderr.strip()[-400:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnviz_desktop.devtools.training_shots")
    default_out = Path(__file__).resolve().parents[2] / "resources" / "screenshots"
    parser.add_argument("out", nargs="?", default=str(default_out))
    parser.add_argument("--data", default=os.environ.get("CNNVIZ_MNIST_DIR"))
    parser.add_argument("--fraction", type=float, default=1.0, help="share of epoch 1 for the middle shot")
    parser.add_argument("--size", default="1366x768")
    parser.add_argument("--no-surfaces", action="store_true", help="only the cube-mode shots")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.data:
        print("error: no MNIST folder: pass --data DIR or set CNNVIZ_MNIST_DIR", file=sys.stderr)
        return 2
    if not 0.0 < args.fraction <= 1.0:
        print(f"error: --fraction must be in (0, 1], got {args.fraction}", file=sys.stderr)
        return 2
    size = tuple(int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        models = train_stages(args.data, Path(folder), args.fraction)
        for stage in models:
            for surfaces in (False, True) if not args.no_surfaces else (False,):
                path = out / f"scene_train_{stage}{'_surfaces' if surfaces else ''}.png"
                report = shoot(models[stage], path, size, surfaces)
                probs = report.get("probabilities") or []
                best = max(probs) if probs else float("nan")
                print(f"{path}: predicted {report.get('predicted')} ({best:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
