"""The in-app trainer process (core/trainer.py), driven through its pipe protocol as the GUI drives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from cnnviz_desktop.core import weights
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.networks import ARCHITECTURES
from cnnviz_desktop.core.trainer import TRAINER_NICE, TrainerProcess, TrainSettings, family_architecture

from .test_mnist import make_split

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # spawning a child that imports torch takes 15-20 s on the shared 2-core machine


@pytest.fixture
def small_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    make_split(data, 300, split="train")
    make_split(data, 50, split="test")
    return data


def until(trainer: TrainerProcess, kind: str, seen: list | None = None, timeout: float = TIMEOUT) -> dict:
    """Messages up to and including the first of ``kind`` (the others appended to ``seen``); its payload."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = trainer.recv(1.0)
        if message is None:
            continue
        if message[0] == kind:
            return message[1]
        if seen is not None:
            seen.append(message)
        assert message[0] not in ("exited", "error"), message
    raise AssertionError(f"no {kind!r} message within {timeout} s")


@pytest.fixture
def trainer():
    t = TrainerProcess()
    yield t
    t.close()
    assert not t.alive()


def test_steps_pause_resume_stop_and_save(trainer, small_data, tmp_path):
    trainer.start(TrainSettings(ARCHITECTURES["tiny"], str(small_data), epochs=50, batch_size=64, seed=1,
                                start_paused=True, weights_interval_s=0.0))
    ready = until(trainer, "ready")
    assert ready["images"] == 300 and ready["test_images"] == 50 and ready["steps_per_epoch"] == 5
    assert ready["drawings"] == 0 and ready["before"]["drawings_accuracy"] is None
    assert ready["before"]["test_n"] == 50 and 0 <= ready["before"]["test_accuracy"] <= 1
    # The trainer runs at lower priority than the GUI (so drawing and rendering win the CPU).
    if "CNNVIZ_TRAINER_NICE" not in os.environ:
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, trainer.pid) == min(19, ours + TRAINER_NICE)
    initial = until(trainer, "weights")
    assert initial["steps"] == 0 and set(initial["state"]) == set(weights.tensor_shapes(ARCHITECTURES["tiny"]))

    # One batch: exactly one step, stats for it, and weights that changed.
    trainer.send("step_batch")
    stats = until(trainer, "batches")
    assert stats["steps"] == 1 and len(stats["points"]) == 1
    step, epoch, loss, accuracy, lr = stats["points"][0]
    assert (step, epoch) == (1, 1) and loss > 0 and 0 <= accuracy <= 1 and lr > 0
    assert stats["images_per_s"] > 0 and 0 < stats["progress"] < 1
    after_one = until(trainer, "weights")
    assert after_one["steps"] == 1
    assert any(not np.array_equal(after_one["state"][k], initial["state"][k]) for k in initial["state"])

    # One epoch: the rest of epoch 1, an epoch message with test accuracy on the fixed subset, then paused.
    trainer.send("step_epoch")
    seen: list = []
    done = until(trainer, "epoch", seen)
    assert done["epoch"] == 1 and done["test_n"] == 50 and 0 <= done["test_accuracy"] <= 1
    epoch1 = until(trainer, "weights")
    assert epoch1["steps"] == 5 and epoch1["epoch"] == 1

    # Resume and pause: it runs, then stops stepping (pausing flushes the stats first).
    log: list = []
    trainer.send("resume")
    assert until(trainer, "state", log)["state"] == "running"
    time.sleep(0.5)
    trainer.send("pause")
    assert until(trainer, "state", log)["state"] == "paused"
    paused_at = [p for kind, p in log if kind == "batches"][-1]["steps"]
    assert paused_at > 5
    assert trainer.recv(0.5) is None  # nothing more while paused
    trainer.send("step_batch")
    stats = until(trainer, "batches", log)
    assert stats["steps"] == paused_at + 1
    if stats["step_in_epoch"] == 5:  # landed on an epoch end: one more, to stop mid-epoch
        trainer.send("step_batch")
        assert until(trainer, "batches", log)["steps"] == paused_at + 2

    # Stop mid-epoch: the weights go back to the last complete epoch.
    trainer.send("stop")
    stopped = until(trainer, "stopped", log)
    final = [p for kind, p in log if kind == "weights" and p["final"]][-1]
    assert stopped["reason"] == "stopped" and "last complete" in stopped["note"]
    at_epoch_end = {p["epoch"]: p for kind, p in log if kind == "weights" and not p["final"]
                    and p["step_in_epoch"] == 0}
    assert final["epoch"] in at_epoch_end and final["step_in_epoch"] == 0
    for k, v in at_epoch_end[final["epoch"]]["state"].items():
        np.testing.assert_array_equal(final["state"][k], v)

    # Save: a bad place is a message (the trainer lives on); a good one writes weights + card as fit does.
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    trainer.send("save", {"path": str(blocker / "m.safetensors")})
    failed = until(trainer, "save_failed")
    assert "cannot write" in failed["message"]
    out = tmp_path / "out" / "m.safetensors"
    trainer.send("save", {"path": str(out)})
    saved = until(trainer, "saved")
    loaded = weights.load(out)
    assert loaded.card == weights.load(out).card and saved["card"]["epochs"] == final["epoch"]
    for field in ("name", "architecture", "parameters", "training_data", "augmentation", "epochs", "seed",
                  "batch_size", "optimizer", "final_train_loss", "test_accuracy", "test_n", "sha256"):
        assert field in loaded.card
    for k, v in final["state"].items():
        np.testing.assert_array_equal(loaded.model.state_dict()[k].numpy(), v)

    # A trainer that dies (killed) reads as 'exited' with its exit code, not a hang.
    os.kill(trainer.pid, signal.SIGKILL)
    assert until(trainer, "exited")["exitcode"] == -signal.SIGKILL


def test_same_weights_as_cnnviz_train_fit(trainer, small_data, tmp_path):
    # The trainer uses one torch thread; the CLI gets the same with OMP_NUM_THREADS=1 (thread count changes
    # how reductions are split, hence the last bits).
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cli_out = tmp_path / "cli" / "m.safetensors"
    cli = subprocess.Popen([sys.executable, "-m", "cnnviz_desktop.cli.train", "fit", "--model", "tiny", "--data",
                            str(small_data), "--out", str(cli_out), "--epochs", "2", "--seed", "7",
                            "--batch-size", "32", "--lr", "0.02", "--quiet", "--no-eval"],
                           cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    trainer.start(TrainSettings(ARCHITECTURES["tiny"], str(small_data), epochs=2, batch_size=32, lr=0.02, seed=7))
    until(trainer, "stopped")
    app_out = tmp_path / "app" / "m.safetensors"
    trainer.send("save", {"path": str(app_out)})
    until(trainer, "saved")
    _, stderr = cli.communicate(timeout=TIMEOUT)
    assert cli.returncode == 0, stderr
    ours, theirs = load_file(app_out), load_file(cli_out)
    assert set(ours) == set(theirs)
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k])
    assert weights.sha256_of(app_out) == weights.sha256_of(cli_out)
    app_card, cli_card = weights.load(app_out).card, weights.load(cli_out).card
    for field in ("epochs", "seed", "batch_size", "optimizer", "final_train_loss", "final_train_accuracy"):
        assert app_card[field] == cli_card[field]


def test_missing_data_is_one_clear_message(trainer, tmp_path):
    trainer.start(TrainSettings(ARCHITECTURES["tiny"], str(tmp_path / "nowhere")))
    seen: list = []
    deadline = time.monotonic() + TIMEOUT
    while not any(kind == "stopped" for kind, _ in seen) and time.monotonic() < deadline:
        message = trainer.recv(1.0)
        if message is not None:
            seen.append(message)
    errors = [p["message"] for kind, p in seen if kind == "error"]
    assert len(errors) == 1 and "does not exist" in errors[0] and "CNNVIZ_MNIST_DIR" in errors[0]
    assert [p["reason"] for kind, p in seen if kind == "stopped"] == ["error"]


def test_bad_settings_are_refused_before_spawning():
    for bad in (dict(epochs=0), dict(batch_size=0), dict(lr=float("nan")), dict(seed=-1), dict(train_limit=0)):
        with pytest.raises(CnnvizError):
            TrainSettings(ARCHITECTURES["tiny"], "/data", **bad).validated()
    with pytest.raises(CnnvizError, match="architecture"):
        family_architecture("tiny", conv_channels=(8, 2, 2, 2))
    assert family_architecture("tiny").name == "tiny"
    assert family_architecture("tiny", dense_units=(32,)).dense_units == (32,)


PARENT = """
import sys, time
from cnnviz_desktop.core.networks import ARCHITECTURES
from cnnviz_desktop.core.trainer import TrainerProcess, TrainSettings
if __name__ == "__main__":
    t = TrainerProcess()
    t.start(TrainSettings(ARCHITECTURES["tiny"], sys.argv[1], epochs=1000))
    while (m := t.recv(60)) is not None and m[0] != "ready":
        pass
    print(t.pid, flush=True)
    time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_the_parent_leaves_no_orphan(small_data):
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(small_data)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the trainer outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()
