"""cnnviz-train fit --arch SPEC: any network of the spec language, trained and written as a weight file."""

from __future__ import annotations

import json

import pytest

from cnnviz_desktop.core import weights
from cnnviz_desktop.core.architecture import parse_spec

from .test_cli import assert_user_error, cli
from .test_mnist import make_split


@pytest.fixture()
def small_mnist(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    make_split(folder, 64, split="train")
    make_split(folder, 32)
    return folder


def test_fit_arch_writes_a_loadable_network_with_its_spec(small_mnist, tmp_path):
    spec = "c6k5p2-relu-max2-c8k3s2p1-bn-relu-gap-fc10"
    out = tmp_path / "gapnet.safetensors"
    result = cli("train", "fit", "--arch", spec, "--name", "gapnet", "--epochs", "1", "--limit", "48",
                 "--batch-size", "16", "--data", str(small_mnist), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    loaded = weights.load(out)
    assert loaded.arch == parse_spec(spec, "gapnet")
    card = json.loads(weights.card_path(out).read_text())
    assert card["architecture"] == {"name": "gapnet", "spec": spec}


@pytest.mark.parametrize("args, fragment", [
    (["--arch", "c8k3-relu-softmax"], "token 3 'softmax': is not a layer"),
    (["--arch", "c8k3-relu-max2-fc12"], "the last fc must have 10 outputs"),
    (["--arch", "c8k5-max6-c8k5-relu-fc10"], "needs at least a 5x5 map but gets 4x4"),
    (["--arch", "c8k3-relu-fc10", "--model", "wide"], "either --model NAME or --arch SPEC"),
    (["--name", "x"], "--name goes with --arch"),
    (["--arch", "c8k3-relu-fc10", "--limit", "0"], "--limit must be at least 1"),
])
def test_fit_refuses_a_bad_arch_before_reading_data(tmp_path, args, fragment):
    result = cli("train", "fit", *args, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.safetensors"))
    assert_user_error(result, fragment)
    assert not (tmp_path / "x.safetensors").exists()
