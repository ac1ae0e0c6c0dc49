"""Weight files: shipped models load and match their cards; every broken file gives a clear error."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from cnnviz_desktop.core import weights
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.networks import ARCHITECTURES, Architecture, ConvNet, describe

CARD_KEYS = {"architecture", "parameters", "training_data", "augmentation", "epochs", "seed", "test_accuracy",
             "test_n", "torch_version", "sha256"}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_shipped_model_and_card(name):
    loaded = weights.load(name)
    assert loaded.arch == ARCHITECTURES[name]
    assert CARD_KEYS <= set(loaded.card)
    assert loaded.card["sha256"] == weights.sha256_of(loaded.path)
    assert loaded.card["parameters"] == loaded.model.parameter_count()
    assert loaded.card["training_data"]["images"] == 10_000
    assert loaded.card["test_n"] == 10_000
    out = loaded.model(torch.zeros(1, 1, 28, 28))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_layer_description_matches_modules():
    for arch in [*ARCHITECTURES.values(), Architecture.family("t3", (4, 3), (16, 12))]:
        model = ConvNet(arch)
        outputs, h = [], torch.zeros(1, 1, 28, 28)
        for module in model.body:
            h = module(h)
            outputs.append(h)
        for spec in describe(arch)[1:]:
            assert tuple(outputs[spec.module].shape[1:]) == spec.shape, spec


@pytest.fixture
def copy_of_tiny(tmp_path):
    src = weights.resolve("tiny")
    dst = tmp_path / "model.safetensors"
    shutil.copy(src, dst)
    return dst


def test_missing_file(tmp_path):
    with pytest.raises(CnnvizError, match=r"not found"):
        weights.load(tmp_path / "absent.safetensors")


def test_truncated_file(copy_of_tiny):
    copy_of_tiny.write_bytes(copy_of_tiny.read_bytes()[:-200])
    with pytest.raises(CnnvizError, match=str(copy_of_tiny.name)):
        weights.load(copy_of_tiny, verify=False)


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00\x01not a weight file at all" * 10)
    with pytest.raises(CnnvizError, match="corrupt"):
        weights.load(path)


def test_checksum_mismatch_with_card(tmp_path):
    src = weights.resolve("tiny")
    dst = tmp_path / "tiny.safetensors"
    shutil.copy(src, dst)
    shutil.copy(weights.card_path(src), weights.card_path(dst))
    data = bytearray(dst.read_bytes())
    data[-5] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(CnnvizError, match="sha256"):
        weights.load(dst)


def test_mismatched_architecture(tmp_path):
    model = ConvNet(ARCHITECTURES["tiny"])
    path = weights.save(model, tmp_path / "m.safetensors")
    # Claim a different architecture in the metadata than the tensors have.
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    wide = json.dumps(ARCHITECTURES["wide"].to_dict())
    save_file(tensors, path, metadata={"architecture": wide})
    with pytest.raises(CnnvizError, match="does not match architecture 'wide'"):
        weights.load(path)


def test_no_architecture_metadata(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(2)}, path)
    with pytest.raises(CnnvizError, match="no architecture metadata"):
        weights.load(path)


def test_non_finite_weights(tmp_path):
    model = ConvNet(ARCHITECTURES["tiny"])
    with torch.no_grad():
        model.body[0].weight[0, 0, 0, 0] = float("nan")
    path = weights.save(model, tmp_path / "nan.safetensors")
    with pytest.raises(CnnvizError, match="non-finite"):
        weights.load(path)


def test_save_load_roundtrip_with_card(tmp_path):
    model = ConvNet(ARCHITECTURES["wide"])
    path = weights.save(model, tmp_path / "w.safetensors", {"note": "x"})
    loaded = weights.load(path)
    assert loaded.card["note"] == "x" and loaded.card["sha256"] == weights.sha256_of(path)
    for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
