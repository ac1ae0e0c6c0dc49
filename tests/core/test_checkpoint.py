"""Checkpoints always load: a crash or Ctrl+C at any moment of a save leaves a consistent weights + card pair."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnviz_desktop.core import weights
from cnnviz_desktop.core.networks import ARCHITECTURES, ConvNet

from .test_mnist import make_split

ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """Stands for the process dying (SIGKILL, power loss): no cleanup code runs."""


def model_with(value: float) -> ConvNet:
    model = ConvNet(ARCHITECTURES["tiny"])
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model


def crash_at(monkeypatch, step: int) -> list[str]:
    """Make the ``step``-th file-system operation of a save raise Crash (0 = the first)."""
    seen: list[str] = []

    def wrap(name, fn):
        def wrapper(*args, **kwargs):
            if len(seen) == step:
                seen.append(name)
                raise Crash(name)
            seen.append(name)
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(weights, "save_file", wrap("save_file", weights.save_file))
    monkeypatch.setattr(os, "replace", wrap("replace", os.replace))
    monkeypatch.setattr(os, "fsync", wrap("fsync", os.fsync))
    return seen


def test_a_crash_at_any_step_of_a_save_leaves_a_loadable_pair(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    step, completed = 0, False
    while not completed:
        for stale in tmp_path.iterdir():
            stale.unlink()
        weights.save(model_with(1.0), path, {"note": "old"})
        with monkeypatch.context() as patch:
            seen = crash_at(patch, step)
            try:
                weights.save(model_with(2.0), path, {"note": "new"})
                completed = True
            except Crash:
                pass
        loaded = weights.load(path)  # sha256 verified against whichever card belongs to these weights
        value = float(next(loaded.model.parameters()).flatten()[0])
        assert loaded.card["note"] == {1.0: "old", 2.0: "new"}[value], (step, seen)
        assert loaded.card["sha256"] == weights.sha256_of(path)
        # The next save completes any interrupted one and leaves no temporary file behind.
        weights.save(model_with(3.0), path, {"note": "next"})
        assert weights.load(path).card["note"] == "next"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"], (step, seen)
        step += 1
    assert step >= 4  # the save has at least: write weights, write card, two renames


def test_a_crash_in_the_first_save_leaves_nothing_unloadable(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    for step in range(12):
        for stale in tmp_path.iterdir():
            stale.unlink()
        with monkeypatch.context() as patch:
            crash_at(patch, step)
            try:
                weights.save(model_with(2.0), path, {"note": "new"})
            except Crash:
                pass
        if path.exists():
            assert weights.load(path).card.get("note") == "new"


def test_write_card_is_atomic_and_keeps_the_checksum(tmp_path, monkeypatch):
    path = weights.save(model_with(1.0), tmp_path / "m.safetensors", {"note": "a"})
    with monkeypatch.context() as patch:
        crash_at(patch, 1)  # after the card is written and synced, before it is renamed
        with pytest.raises(Crash):
            weights.write_card(path, {"note": "b"})
    assert weights.load(path).card["note"] == "a"
    weights.write_card(path, {"note": "c"})
    assert weights.load(path).card["note"] == "c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_deferred_sigint_delivers_after_the_block():
    order = []
    with pytest.raises(KeyboardInterrupt), weights.deferred_sigint():
        os.kill(os.getpid(), signal.SIGINT)
        order.append("block finished")
    assert order == ["block finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# Drives cnnviz-train's real entry point (cli.train.main, what the console script runs) once per line
# read, in one process, so that 'import torch' is paid once for all the interruptions (an interrupt
# during start-up is test_cli.py's test_fit_ctrl_c_keeps_last_complete_checkpoint's business).
DRIVER = """
import sys
import tqdm  # imported up front: an interrupt inside a half-done 'import torch' breaks torch for the process
from cnnviz_desktop.cli import train
from cnnviz_desktop.core import mnist, training, weights
# One uninterrupted epoch first: torch imports more modules lazily on first use (deterministic mode
# pulls in torch._inductor), and those imports are not what this test interrupts.
train.main(["fit", "--data", sys.argv[1], "--out", sys.argv[2], "--epochs", "1", "--no-eval", "--quiet"])
print("warm", flush=True)
for line in sys.stdin:
    out, data = line.split()
    print("ready", flush=True)
    try:
        code = train.main(["fit", "--data", data, "--out", out, "--epochs", "100000", "--batch-size", "32",
                           "--no-eval", "--quiet"])
    except KeyboardInterrupt:  # landed before run_cli's own handler was reached
        code = 130
    print("done", code, flush=True)
"""


@pytest.fixture
def small_train(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    make_split(data, 300, split="train")
    return data


def test_sigint_at_random_moments_of_a_real_fit(small_train, tmp_path):
    rng = random.Random(1234)
    # One torch thread: on a busy 2-core machine torch's thread pool makes this tiny fit 10x slower.
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(small_train), str(tmp_path / "warm.safetensors")],
                            cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp_path / "stderr.txt", "w"))
    interrupted, with_checkpoint = 0, 0
    try:
        assert proc.stdout.readline().strip() == "warm", (tmp_path / "stderr.txt").read_text()[-3000:]
        for run in range(30):
            folder = tmp_path / f"run{run}"
            folder.mkdir()
            out = folder / "m.safetensors"
            proc.stdin.write(f"{out} {small_train}\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "ready"
            if run % 3:
                # Two runs in three: after the first checkpoint, so most interrupts replace an existing pair.
                deadline = time.monotonic() + 120
                while not weights.card_path(out).exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
            # Then a random moment: in training, in a save, or (every third run) maybe before the first epoch.
            try:
                proc.wait(timeout=rng.uniform(0.0, 0.8))
            except subprocess.TimeoutExpired:
                pass
            proc.send_signal(signal.SIGINT)
            done = proc.stdout.readline().split()
            assert done[:1] == ["done"], f"driver died (run {run}): {(tmp_path / 'stderr.txt').read_text()[-3000:]}"
            interrupted += done[1] == "130"
            if out.exists():
                with_checkpoint += 1
                loaded = weights.load(out)  # sha256 verified against the card
                card = json.loads(weights.card_path(out).read_text())
                assert loaded.card == card and card["sha256"] == weights.sha256_of(out)
            leftovers = sorted(p.name for p in folder.iterdir() if p.name not in ("m.safetensors", "m.json"))
            assert leftovers == [], f"run {run} left {leftovers}"
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait()
    assert interrupted == 30 and with_checkpoint >= 20
