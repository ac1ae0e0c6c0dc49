"""The command-line tools, run as a user runs them: exit codes, JSON, messages (never tracebacks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnviz_desktop.core import weights

from .test_mnist import make_split


def cli(module: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("CNNVIZ_MNIST_DIR", None) if kwargs.pop("no_env_data", False) else None
    return subprocess.run([sys.executable, "-m", f"cnnviz_desktop.cli.{module}", *args], capture_output=True,
                          text=True, env=env, timeout=kwargs.pop("timeout", 300), **kwargs)


def assert_user_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr


@pytest.mark.parametrize("name,minimum", [("tiny", 0.965), ("wide", 0.988)])
def test_evaluate_json_meets_accuracy(mnist_dir, name, minimum):
    result = cli("train", "evaluate", "--model", name, "--data", str(mnist_dir), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == name and report["n"] == 10_000
    assert report["accuracy"] >= minimum
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10_000
    assert np.trace(matrix) / 10_000 == pytest.approx(report["accuracy"])


def test_evaluate_errors(tmp_path):
    assert_user_error(cli("train", "evaluate", "--model", str(tmp_path / "x.safetensors"), "--data", str(tmp_path)),
                      "not found")
    assert_user_error(cli("train", "evaluate", "--model", "tiny", no_env_data=True), "--data")
    make_split(tmp_path, 4, n_labels=3)
    assert_user_error(cli("train", "evaluate", "--data", str(tmp_path)), "do not belong together")


def test_argument_errors_are_usage_errors():
    result = cli("train", "fit", "--model", "huge", "--out", "x")
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def small_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    make_split(data, 300, split="train")
    make_split(data, 50, split="test")
    return data


def test_fit_is_deterministic_and_writes_a_card(small_data, tmp_path):
    outs = []
    for run in range(2):
        out = tmp_path / f"run{run}" / "m.safetensors"
        result = cli("train", "fit", "--model", "tiny", "--data", str(small_data), "--out", str(out),
                     "--epochs", "2", "--seed", "3", "--quiet")
        assert result.returncode == 0, result.stderr
        outs.append(out)
    assert weights.sha256_of(outs[0]) == weights.sha256_of(outs[1])
    card = json.loads(weights.card_path(outs[0]).read_text())
    assert card["epochs"] == 2 and card["seed"] == 3 and card["training_data"]["images"] == 300
    assert card["test_n"] == 50 and "test_accuracy" in card
    assert weights.load(outs[0]).arch.name == "tiny"


def test_blank_paper_penalty_silences_the_last_block_on_blank_paper_and_is_on_the_card(small_data, tmp_path):
    """The blank-paper penalty term drives pool2's activation on a blank sheet down, and the card
    says it was used; without it the card has no such field."""
    import torch

    from cnnviz_desktop.core.training import blank_paper_activation

    blank = {}
    for penalty in ("0", "20"):
        out = tmp_path / f"p{penalty}" / "m.safetensors"
        result = cli("train", "fit", "--model", "tiny", "--data", str(small_data), "--out", str(out),
                     "--epochs", "2", "--seed", "1", "--quiet", "--no-eval", "--blank-paper-penalty", penalty)
        assert result.returncode == 0, result.stderr
        card = json.loads(weights.card_path(out).read_text())
        assert card.get("blank_paper_penalty") == (None if penalty == "0" else 20.0)
        with torch.no_grad():
            blank[penalty] = float(blank_paper_activation(weights.load(out).model).mean())
    assert blank["20"] < 0.5 * blank["0"]


def test_fit_ctrl_c_keeps_last_complete_checkpoint(small_data, tmp_path):
    out = tmp_path / "m.safetensors"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "cnnviz_desktop.cli.train", "fit", "--data", str(small_data),
                             "--out", str(out), "--epochs", "100000", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not weights.card_path(out).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert weights.card_path(out).exists(), "no checkpoint appeared"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "kept the last complete" in stderr
    loaded = weights.load(out)  # the checkpoint is complete and consistent with its card
    assert 1 <= loaded.card["epochs"] < 100000


def test_fit_with_broken_data(tmp_path):
    make_split(tmp_path, 10, split="train")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    result = cli("train", "fit", "--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors"))
    assert_user_error(result, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "m.safetensors").exists()


def save_digit(path: Path, digit: np.ndarray, dark_on_light: bool, size: int) -> None:
    img = Image.fromarray(digit).resize((size, size), Image.BILINEAR)
    arr = np.asarray(img)
    if dark_on_light:
        arr = 255 - arr
    Image.fromarray(arr).convert("RGB").save(path)


def test_predict_json_both_polarities_and_a_bad_file(mnist_test, tmp_path):
    files, expected = [], []
    for i, (dark, size, ext) in enumerate([(False, 28, "png"), (True, 300, "png"), (True, 150, "jpg")]):
        # Pick digits the shipped model reads correctly in MNIST form, so the test checks the file path.
        path = tmp_path / f"d{i}.{ext}"
        save_digit(path, mnist_test.images[i], dark, size)
        files.append(str(path))
        expected.append(int(mnist_test.labels[i]))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    result = cli("predict", *files[:1], str(bad), *files[1:], "--json")
    assert result.returncode != 0
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    good = [line for line in lines if "error" not in line]
    assert [line["file"] for line in good] == files
    assert [line["digit"] for line in good] == expected
    for line in good:
        assert len(line["probabilities"]) == 10 and sum(line["probabilities"]) == pytest.approx(1, abs=1e-4)


def test_predict_blank_image_is_nothing_drawn(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(path)
    result = cli("predict", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"file": str(path), "digit": None, "probabilities": None}


BAD_FIT_ARGS = [
    (["--batch-size", "0"], "--batch-size must be 1-"),
    (["--batch-size", "-3"], "--batch-size must be 1-"),
    (["--lr", "-1"], "--lr must be a number above 0"),
    (["--lr", "0"], "--lr must be a number above 0"),
    (["--lr", "nan"], "--lr must be a number above 0"),
    (["--lr", "inf"], "--lr must be a number above 0"),
    (["--epochs", "0"], "--epochs must be 1-"),
    (["--seed", "-1"], "--seed must be 0-"),
    (["--seed", str(2**64)], "--seed must be 0-"),
    (["--blank-paper-penalty", "-1"], "--blank-paper-penalty must be 0-100"),
    (["--blank-paper-penalty", "nan"], "--blank-paper-penalty must be 0-100"),
]


def run_main(capsys, argv: list[str]) -> tuple[int, str]:
    """cnnviz-train's entry point in this process (what the console script calls): exit code, stderr."""
    from cnnviz_desktop.cli import train

    try:
        code = train.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("extra,fragment", BAD_FIT_ARGS, ids=[" ".join(a) for a, _ in BAD_FIT_ARGS])
def test_fit_refuses_bad_numbers_before_reading_data(capsys, tmp_path, extra, fragment):
    out = tmp_path / "out" / "m.safetensors"
    # --data does not exist: a message about it would mean the options were not checked first.
    code, err = run_main(capsys, ["fit", "--data", str(tmp_path / "no-data"), "--out", str(out), *extra])
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: ") and fragment in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the folder


def bad_outs(tmp_path: Path) -> list[tuple[Path, str]]:
    (tmp_path / "a-folder.safetensors").mkdir()
    (tmp_path / "a-file").write_text("x")
    return [
        (tmp_path / "a-folder.safetensors", "is a folder"),
        (tmp_path, "must be a .safetensors file"),
        (tmp_path / "model.pt", "must be a .safetensors file"),
        (tmp_path / "a-file" / "sub" / "m.safetensors", "is a file, not a folder"),
    ]


def test_fit_refuses_bad_out_before_training(capsys, small_data, tmp_path):
    work = tmp_path / "outs"
    work.mkdir()
    for out, fragment in bad_outs(work):
        before = sorted(work.rglob("*"))
        code, err = run_main(capsys, ["fit", "--data", str(small_data), "--out", str(out), "--quiet"])
        assert code == 2 and err.startswith("error: ") and fragment in err and "Traceback" not in err, err
        assert sorted(work.rglob("*")) == before, out  # nothing written


def test_fit_refuses_an_unwritable_folder(capsys, small_data, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    code, err = run_main(capsys, ["fit", "--data", str(small_data), "--out", str(locked / "m.safetensors")])
    assert code == 2 and "not writable" in err
    assert list(locked.iterdir()) == []


def test_fit_bad_argument_as_a_process(tmp_path):
    result = cli("train", "fit", "--out", str(tmp_path / "m.safetensors"), "--batch-size", "0", no_env_data=True)
    assert_user_error(result, "--batch-size must be 1-")
    assert list(tmp_path.iterdir()) == []


def test_fit_on_an_empty_training_set(capsys, tmp_path):
    make_split(tmp_path, 0, split="train")
    code, err = run_main(capsys, ["fit", "--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors"),
                                  "--no-eval"])
    assert code == 2 and "no images" in err
    assert not (tmp_path / "m.safetensors").exists()
