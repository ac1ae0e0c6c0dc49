"""Weight files are untrusted input: crafted headers give one clear error, never a crash or a big allocation.

Each crafted file is checked with weights.load and with both command-line tools run as a user runs them
(exit code 2, one 'error: ...' line naming the file, no traceback).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cnnviz_desktop.core import architecture, weights
from cnnviz_desktop.core.errors import CnnvizError

ROOT = Path(__file__).resolve().parents[2]
TINY_ARCH = {"name": "tiny", "conv_channels": [8, 2], "dense_units": [22], "kernel": 3, "pool": 2}


def shipped_tiny() -> tuple[dict, bytes]:
    """The shipped tiny file's header (as a dict) and its tensor bytes."""
    raw = weights.resolve("tiny").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def craft(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body + data


def with_arch(**changes) -> bytes:
    header, data = shipped_tiny()
    arch = dict(TINY_ARCH, **changes)
    header["__metadata__"] = {"architecture": json.dumps(arch)}
    return craft(header, data)


def with_tensor(name: str, **changes) -> bytes:
    header, data = shipped_tiny()
    header[name] = dict(header[name], **changes)
    return craft(header, data)


def with_raw_arch(text: str) -> bytes:
    header, data = shipped_tiny()
    header["__metadata__"] = {"architecture": text}
    return craft(header, data)


def huge_dense() -> bytes:
    # The reported attack: a ~180-byte file declaring a 5,000,000-unit layer (no tensors at all).
    arch = {"name": "x", "conv_channels": [1], "dense_units": [5_000_000]}
    return craft({"__metadata__": {"architecture": json.dumps(arch)}})


def tail_offsets() -> bytes:
    header, data = shipped_tiny()
    begin, end = header["body.9.weight"]["data_offsets"]
    header["body.9.weight"]["data_offsets"] = [begin + 400, end + 400]
    return craft(header, data)


def overlapping() -> bytes:
    header, data = shipped_tiny()
    header["body.0.bias"]["data_offsets"] = [32, 64]  # inside body.0.weight's [32, 320]
    return craft(header, data)


# (case id, file bytes, fragment the message must contain)
CASES = [
    ("pool-0", with_arch(pool=0), "'pool' must be 1-28, got 0"),
    ("kernel-0", with_arch(kernel=0), "'kernel' must be 1-28, got 0"),
    ("negative-channels", with_arch(conv_channels=[-8, 2]), "'conv_channels[0]' must be 1-512, got -8"),
    ("5M-units", huge_dense(), "'dense_units[0]' must be 1-4096, got 5000000"),
    ("too-many-blocks", with_arch(conv_channels=[8, 8, 8, 8]), "'conv_channels' has too many blocks"),
    ("too-many-neurons", with_arch(conv_channels=[300], kernel=1, pool=1), "more than the limit of 200,000"),
    ("too-many-parameters", with_arch(dense_units=[4096, 4096]), "more than the limit of 5,000,000"),
    ("huge-header-length", craft(b"{}", length=2**63), "header length"),
    ("header-past-end", craft(b'{"a": 1}', length=5000), "runs past the end"),
    ("header-not-json", craft(b"{this is not json" + b" " * 20), "header is not valid JSON"),
    ("header-not-utf8", craft(b"\xff\xfe" * 20), "header is not valid JSON"),
    ("header-a-list", craft(b"[1, 2, 3]"), "header must be a JSON object"),
    ("header-nested-garbage", craft(b"[" * 100_000 + b"]" * 100_000), "header is not valid JSON"),
    ("metadata-not-a-dict", craft({"__metadata__": ["architecture"]}), "'__metadata__') must be a JSON object"),
    ("architecture-not-a-string", craft({"__metadata__": {"architecture": 7}}), "must be a JSON string"),
    ("architecture-not-json", with_raw_arch("{oops"), "'architecture' is not valid JSON"),
    ("architecture-a-list", with_raw_arch("[8, 2]"), "architecture must be a JSON object"),
    ("architecture-nested-garbage", with_raw_arch("[" * 50_000 + "]" * 50_000), "not valid JSON"),
    ("architecture-nested-values", with_arch(conv_channels=[[8], {"a": [2]}]), "'conv_channels[0]' must be an integer"),
    ("architecture-unknown-field", with_arch(padding=1), "'padding' is unknown"),
    ("architecture-missing-field", with_raw_arch('{"name": "x", "conv_channels": [8]}'), "'dense_units' is missing"),
    ("string-for-int", with_arch(pool="2"), "'pool' must be an integer 1-28, got str '2'"),
    ("bool-for-int", with_arch(kernel=True), "'kernel' must be an integer 1-28, got bool True"),
    ("float-for-int", with_arch(pool=2.0), "'pool' must be an integer 1-28, got float 2.0"),
    ("name-not-a-string", with_arch(name=["tiny"]), "'name' must be a printable string"),
    ("wrong-dtype", with_tensor("body.0.bias", dtype="F64"), "dtype 'F64'; only F32"),
    ("dtype-a-list", with_tensor("body.0.bias", dtype=["F32"]), "dtype ['F32']"),
    ("shape-mismatch", with_tensor("body.0.bias", shape=[9]), "body.0.bias has shape (9,), expected (8,)"),
    ("shape-not-ints", with_tensor("body.0.bias", shape=["8"]), "field 'shape' must be a list of integers"),
    ("offsets-not-ints", with_tensor("body.0.bias", data_offsets=[0, "32"]), "'data_offsets' must be two integers"),
    ("offsets-wrong-size", with_tensor("body.0.bias", data_offsets=[0, 36]), "do not hold the 32 bytes"),
    ("offsets-past-end", tail_offsets(), "past the end of the file's data"),
    ("overlapping-offsets", overlapping(), "overlapping data_offsets"),
    ("tensor-entry-garbage", with_tensor("body.0.bias", extra={"x": [1]}), "must be an object with fields"),
    ("missing-tensor", craft({"__metadata__": {"architecture": json.dumps(TINY_ARCH)}}), "missing body.0.bias"),
    ("too-short", b"\x01\x02\x03", "only 3 bytes long"),
]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for case, content, _ in CASES:
        paths[case] = folder / f"{case}.safetensors"
        paths[case].write_bytes(content)
    return paths


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "some.png"
    img = Image.new("L", (28, 28), 0)
    img.paste(255, (12, 4, 16, 24))
    img.save(path)
    return path


def test_the_shipped_header_passes_the_checks():
    arch, entries = weights.read_header(weights.resolve("tiny"))
    assert arch.name == "tiny" and set(entries) == set(shipped_tiny()[0]) - {"__metadata__"}


@pytest.mark.parametrize("case,content,fragment", CASES, ids=[c[0] for c in CASES])
def test_load_refuses_crafted_file(crafted, case, content, fragment):
    path = crafted[case]
    with pytest.raises(CnnvizError) as info:
        weights.load(path)
    message = str(info.value)
    assert str(path) in message and fragment in message, message


def run(module: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", f"cnnviz_desktop.cli.{module}", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# Runs each tool's real entry point (main(argv), what the console script calls) once per argv in ONE
# process, capturing its exit code and stderr: 2 interpreter starts for the whole table instead of 2 per
# file (each start costs 'import torch', several seconds on the shared machine). A few cases also run as
# a separate process each, below, exactly as a user runs them.
DRIVER = """
import contextlib, io, json, sys, traceback
from cnnviz_desktop.cli import predict, train
tools = {"predict": predict.main, "train": train.main}
for line in sys.stdin:
    tool, argv = json.loads(line)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = tools[tool](argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = 1
    print(json.dumps([code, err.getvalue()]), flush=True)
"""


def assert_one_error(code: int, stderr: str, path: Path, fragment: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert str(path) in lines[0] and fragment in lines[0], stderr


def test_cli_entry_points_refuse_every_crafted_file(crafted, digit_png, tmp_path):
    calls = []
    for case, _, fragment in CASES:
        path = crafted[case]
        calls.append((["predict", ["--model", str(path), str(digit_png)]], path, fragment))
        calls.append((["train", ["evaluate", "--model", str(path), "--data", str(tmp_path)]], path, fragment))
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", DRIVER], input="".join(json.dumps(c[0]) + "\n" for c in calls),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(calls)
    for (argv, path, fragment), (code, stderr) in zip(calls, answers):
        assert_one_error(code, stderr, path, fragment)


def assert_one_error_line(proc: subprocess.Popen, path: Path, fragment: str) -> None:
    _, stderr = proc.communicate(timeout=120)
    assert_one_error(proc.returncode, stderr, path, fragment)


@pytest.mark.parametrize("case", ["pool-0", "huge-header-length"])
def test_cli_processes_refuse_crafted_file(crafted, digit_png, tmp_path, case):
    path = crafted[case]
    fragment = next(c[2] for c in CASES if c[0] == case)
    # Both tools at once: the cost is the interpreter start and 'import torch'.
    predict = run("predict", "--model", str(path), str(digit_png))
    evaluate = run("train", "evaluate", "--model", str(path), "--data", str(tmp_path))
    assert_one_error_line(predict, path, fragment)
    assert_one_error_line(evaluate, path, fragment)


def test_huge_layer_is_refused_without_building_the_model(crafted, digit_png, tmp_path):
    """The 180-byte file declaring 5,000,000 units once made the loader allocate 1.4 GB."""
    path = crafted["5M-units"]
    assert path.stat().st_size < 200
    report = tmp_path / "maxrss"
    # A fresh wrapper process whose only child is the tool: its RUSAGE_CHILDREN is the tool's peak memory.
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[2:]); "
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
               "sys.exit(r.returncode)")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", wrapper, str(report), sys.executable, "-m",
                             "cnnviz_desktop.cli.predict", "--model", str(path), str(digit_png)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    peak_mb = int(report.read_text()) / 1024  # Linux reports KiB
    assert peak_mb < 600, f"cnnviz-predict peaked at {peak_mb:.0f} MB on a 180-byte file"


def test_limits_accept_every_shipped_architecture():
    for name in ("tiny", "wide"):
        data = json.loads(weights.card_path(weights.resolve(name)).read_text())["architecture"]
        arch = architecture.validated_architecture(data)
        assert arch.name == name
    assert architecture.MAX_PARAMETERS == 5_000_000 and architecture.MAX_NEURONS == 200_000


def test_folder_is_not_a_weight_file(tmp_path):
    (tmp_path / "mine.safetensors").write_bytes(weights.resolve("tiny").read_bytes())
    with pytest.raises(CnnvizError, match="is a folder, not a weight file") as info:
        weights.load(tmp_path)
    assert "mine.safetensors" in str(info.value)
    proc = run("predict", "--model", str(tmp_path), str(tmp_path / "x.png"))
    assert_one_error_line(proc, tmp_path, "is a folder, not a weight file")


def test_unreadable_file_is_a_user_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    path = tmp_path / "locked.safetensors"
    path.write_bytes(weights.resolve("tiny").read_bytes())
    path.chmod(0)
    with pytest.raises(CnnvizError, match="locked.safetensors"):
        weights.load(path)


def test_random_damage_gives_only_clear_errors(tmp_path):
    """Flipped header bytes and truncations: weights.load succeeds or raises CnnvizError, nothing else."""
    import random

    rng = random.Random(7)
    original = weights.resolve("tiny").read_bytes()
    (length,) = struct.unpack("<Q", original[:8])
    path = tmp_path / "damaged.safetensors"
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(300):
        data = bytearray(original)
        if trial % 3 == 0:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(8 + length)] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            weights.load(path)
            outcomes["loaded"] += 1
        except CnnvizError as exc:
            assert str(path) in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100
