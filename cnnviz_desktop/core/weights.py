"""Weight files (safetensors: loading never executes code) and their JSON model cards.

A weight file ``NAME.safetensors`` carries its architecture in the safetensors metadata, so it is
self-describing; ``NAME.json`` beside it is the model card (training data, accuracy, sha256 ...).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CnnvizError
from .networks import ARCHITECTURES, Architecture, ConvNet
from .paths import weights_dir

SUFFIX = ".safetensors"


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode with where it came from and its model card (may be empty)."""

    model: ConvNet
    arch: Architecture
    path: Path
    card: dict

    @property
    def name(self) -> str:
        return self.arch.name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(path: Path) -> Path:
    return path.with_suffix(".json")


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name ('tiny', 'wide') or a path -> the weight file's path."""
    text = os.fspath(name_or_path)
    if text in ARCHITECTURES and not Path(text).exists():
        return weights_dir() / f"{text}{SUFFIX}"
    return Path(text)


def save(model: ConvNet, path: str | os.PathLike, card: dict | None = None) -> Path:
    """Write weights atomically (temp file + rename) and, if given, the model card with their sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, tmp, metadata={"architecture": json.dumps(model.arch.to_dict())})
    os.replace(tmp, path)
    if card is not None:
        card = dict(card, sha256=sha256_of(path), weights_file=path.name)
        tmp_card = card_path(path).with_name(card_path(path).name + ".tmp")
        tmp_card.write_text(json.dumps(card, indent=2) + "\n")
        os.replace(tmp_card, card_path(path))
    return path


def _read_metadata(path: Path) -> dict:
    """The safetensors header's metadata, read without loading tensors."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if size <= 0 or size > 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(fh.read(size))
        return header.get("__metadata__", {}) or {}
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise CnnvizError(
            f"weight file {path} is corrupt or not a safetensors file ({exc}). Re-download or retrain it."
        ) from exc


def load(name_or_path: str | os.PathLike, verify: bool = True) -> LoadedModel:
    """Load a shipped model by name or a weight file by path, validated against its architecture.

    Raises CnnvizError naming the file and the problem: missing, truncated or corrupt, checksum
    different from its model card, or tensors that do not fit the architecture.
    """
    path = resolve(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(ARCHITECTURES))
        raise CnnvizError(f"weight file {path} not found. Use a shipped model ({known}) or the path of a "
                          f"{SUFFIX} file written by cnnviz-train.")
    card: dict = {}
    if card_path(path).is_file():
        try:
            card = json.loads(card_path(path).read_text())
        except (ValueError, OSError) as exc:
            raise CnnvizError(f"model card {card_path(path)} is not valid JSON ({exc}).") from exc
        if verify and card.get("sha256") and card["sha256"] != sha256_of(path):
            raise CnnvizError(
                f"weight file {path} does not match the sha256 in its model card {card_path(path).name}: "
                f"the file is damaged or was replaced. Restore it or retrain."
            )
    meta = _read_metadata(path)
    try:
        arch = Architecture.from_dict(json.loads(meta["architecture"]))
    except KeyError:
        raise CnnvizError(f"weight file {path} has no architecture metadata: it was not written by cnnviz-train.")
    except (ValueError, TypeError) as exc:
        raise CnnvizError(f"weight file {path} has unreadable architecture metadata ({exc}).") from exc
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CnnvizError(f"weight file {path} is truncated or corrupt ({exc}). Re-download or retrain it.") from exc
    try:
        model = ConvNet(arch)
    except ValueError as exc:
        raise CnnvizError(f"weight file {path}: {exc}") from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {', '.join(missing)}")
        if unexpected:
            details.append(f"unexpected {', '.join(unexpected)}")
        for k in wrong:
            details.append(f"{k} has shape {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}")
        raise CnnvizError(f"weight file {path} does not match architecture {arch.name!r}: {'; '.join(details)}.")
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise CnnvizError(f"weight file {path} holds non-finite values in {', '.join(bad)}: it is corrupt.")
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(model=model, arch=arch, path=path, card=card)
