"""Weight files (safetensors: loading never executes code) and their JSON model cards.

A weight file ``NAME.safetensors`` carries its architecture in the safetensors metadata, so it is
self-describing; ``NAME.json`` beside it is the model card (training data, accuracy, sha256 ...).

Weight files are untrusted input: :func:`load` reads the safetensors header itself and checks every
field (header size, JSON, architecture within :mod:`.architecture`'s limits, tensor names, dtypes, shapes
and byte offsets against the file size) before anything is allocated or built. Any problem is one
:class:`CnnvizError` naming the file.

Checkpoints are crash-safe: :func:`save` writes the weights and the card under temporary names, syncs
them, then renames the weights and then the card, with SIGINT deferred meanwhile. If the process dies
between the two renames, the new weights sit beside the previous card and a complete pending card
(``NAME.json.tmp``) whose sha256 matches them; :func:`load` accepts that pending card, and the next
:func:`save` or :func:`write_card` completes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .architecture import ArchitectureError, tensor_shapes, validated_architecture
from .errors import CnnvizError
from .networks import ARCHITECTURES, Architecture, ConvNet
from .paths import weights_dir

SUFFIX = ".safetensors"
# The safetensors header (JSON) of any network within the architecture limits is a few KB; the shipped
# ones are under 1 KB. Bounding it keeps a hostile length field from making us read or parse much.
MAX_HEADER_BYTES = 1 << 20
# Model cards are small JSON files (about 1 KB); a larger one is not a model card.
MAX_CARD_BYTES = 1 << 20
# Tensor dtypes accepted in weight files, with their size in bytes. cnnviz-train writes float32.
DTYPES = {"F32": 4}
TENSOR_FIELDS = {"dtype", "shape", "data_offsets"}


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
    """Hex sha256 of a file's bytes (read in 1 MB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path(path: Path) -> Path:
    """The model card beside a weight file: ``NAME.json``."""
    return Path(path).with_suffix(".json")


def pending_card_path(path: Path) -> Path:
    """Where a card is written before it is renamed into place: ``NAME.json.tmp``."""
    card = card_path(path)
    return card.with_name(card.name + ".tmp")


def _pending_weights_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name ('tiny', 'wide') or a path -> the weight file's path."""
    text = os.fspath(name_or_path)
    if text in ARCHITECTURES and not Path(text).exists():
        return weights_dir() / f"{text}{SUFFIX}"
    return Path(text)


# ---------------------------------------------------------------------------------------------------------
# Writing: atomic, durable, and never split by Ctrl+C.


@contextlib.contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold back SIGINT (Ctrl+C) for the duration of the block, then deliver it.

    In the main thread, with a Python SIGINT handler installed, a flag-setting handler replaces it for
    the block; a SIGINT received meanwhile is passed to the previous handler after the block (the
    default one raises KeyboardInterrupt there). Elsewhere (other threads, SIGINT ignored) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    received: list[tuple[int, object]] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(*received[0])


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    # Makes the renames themselves durable; not every platform can open a folder (Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_durably(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _card_text(card: dict) -> str:
    return json.dumps(card, indent=2) + "\n"


def _settle_pending_card(path: Path) -> None:
    """Finish an interrupted save (its pending card matches the weights) or drop a stale pending card."""
    pending = pending_card_path(path)
    if not pending.is_file():
        return
    if path.is_file() and _parse_card(pending, strict=False).get("sha256") == sha256_of(path):
        os.replace(pending, card_path(path))
    else:
        pending.unlink(missing_ok=True)


def write_card(path: str | os.PathLike, card: dict) -> Path:
    """Write (or rewrite) the model card of weight file ``path`` atomically; returns the card's path.

    The card gets the file's sha256 and name; it is written to ``NAME.json.tmp``, synced and renamed,
    with SIGINT deferred, so the card on disk is always either the old or the new one.
    Raises CnnvizError if the folder is not writable.
    """
    path = Path(path)
    with deferred_sigint():
        try:
            _settle_pending_card(path)
            card = dict(card, sha256=sha256_of(path), weights_file=path.name)
            _write_durably(pending_card_path(path), _card_text(card))
            os.replace(pending_card_path(path), card_path(path))
            _fsync_dir(path.parent)
        except OSError as exc:
            pending_card_path(path).unlink(missing_ok=True)
            raise CnnvizError(f"cannot write the model card {card_path(path)}: {exc.strerror or exc}") from exc
    return card_path(path)


def save(model: ConvNet, path: str | os.PathLike, card: dict | None = None) -> Path:
    """Write a network's weights to ``path`` and, if given, its model card (with their sha256) beside it.

    Crash-safe: weights and card go to temporary names first, are synced, then the weights and then the
    card are renamed into place, with SIGINT deferred throughout (see the module docstring). Without a
    card, a card left beside ``path`` by earlier weights is removed (it would not match). Raises
    CnnvizError if the file cannot be written; no temporary file is left behind then.
    """
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.stored_state().items()}
    tmp, pending = _pending_weights_path(path), pending_card_path(path)
    renamed = False
    with deferred_sigint():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _settle_pending_card(path)
            save_file(tensors, tmp, metadata={"architecture": json.dumps(model.arch.to_dict())})
            _fsync_file(tmp)
            if card is not None:
                card = dict(card, sha256=sha256_of(tmp), weights_file=path.name)
                _write_durably(pending, _card_text(card))
            else:
                card_path(path).unlink(missing_ok=True)
            os.replace(tmp, path)
            renamed = True
            if card is not None:
                os.replace(pending, card_path(path))
            _fsync_dir(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if not renamed:  # once the weights are in place, the pending card is what matches them
                pending.unlink(missing_ok=True)
            raise CnnvizError(f"cannot write weight file {path}: {exc.strerror or exc}") from exc
    return path


# ---------------------------------------------------------------------------------------------------------
# Reading: every field of an untrusted file is checked before anything is allocated.


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(raw: bytes | str) -> object:
    # RecursionError: deeply nested arrays ('[[[[...') exhaust the parser's stack.
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def read_header(path: Path) -> tuple[Architecture, dict[str, dict]]:
    """Read and check a weight file's safetensors header without loading any tensor.

    Layout: 8-byte little-endian header length, that many bytes of JSON (``__metadata__`` with the
    architecture as a JSON string, and per tensor ``dtype``, ``shape``, ``data_offsets`` relative to the
    data that follows), then the tensor bytes. Checks the header length (1..MAX_HEADER_BYTES and within
    the file), the JSON, the architecture (see ``architecture.validated_architecture``), that the tensors
    are exactly those of that architecture with its shapes and an accepted dtype, and that their byte
    ranges exactly tile the rest of the file. Returns (architecture, tensor entries).
    Raises CnnvizError naming the file and the field.
    """

    def bad(what: str) -> CnnvizError:
        return CnnvizError(f"weight file {path}: {what}")

    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise bad(f"only {size} bytes long: it is truncated or not a safetensors file. Re-download or retrain it.")
        length = int.from_bytes(prefix, "little")
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise bad(f"header length {length} is not between 2 and {MAX_HEADER_BYTES:,} bytes: it is corrupt or "
                      f"not a safetensors file. Re-download or retrain it.")
        if 8 + length > size:
            raise bad(f"header length {length} runs past the end of the file ({size} bytes): it is truncated or "
                      f"corrupt. Re-download or retrain it.")
        raw = fh.read(length)
    try:
        header = _json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"header is not valid JSON ({exc}): it is corrupt or not a safetensors file.") from exc
    if not isinstance(header, dict):
        raise bad(f"header must be a JSON object, got {type(header).__name__}: it is corrupt.")
    meta = header.pop("__metadata__", None)
    if meta is None or (isinstance(meta, dict) and "architecture" not in meta):
        raise CnnvizError(f"weight file {path} has no architecture metadata: it was not written by cnnviz-train.")
    if not isinstance(meta, dict):
        raise bad(f"metadata ('__metadata__') must be a JSON object, got {type(meta).__name__}.")
    text = meta["architecture"]
    if not isinstance(text, str):
        raise bad(f"metadata field 'architecture' must be a JSON string, got {type(text).__name__}.")
    try:
        arch = validated_architecture(_json(text))
    except ArchitectureError as exc:
        raise bad(f"{exc}. The file was not written by cnnviz-train or was altered.") from exc
    except ValueError as exc:
        raise bad(f"metadata field 'architecture' is not valid JSON ({exc}).") from exc

    expected = tensor_shapes(arch)
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"missing {', '.join(missing)}")
        if unexpected:
            details.append(f"unexpected {', '.join(_shown(k) for k in unexpected[:5])}"
                           + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
        raise CnnvizError(f"weight file {path} does not match architecture {arch.name!r}: {'; '.join(details)}.")
    data_size = size - 8 - length
    spans = []
    for name, shape in expected.items():
        entry = header[name]
        if not isinstance(entry, dict) or set(entry) != TENSOR_FIELDS:
            raise bad(f"tensor {name!r} must be an object with fields dtype, shape, data_offsets, got {_shown(entry)}.")
        dtype, dims, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise bad(f"tensor {name!r} has dtype {_shown(dtype)}; only {', '.join(DTYPES)} is accepted.")
        if not isinstance(dims, list) or not all(_is_int(d) for d in dims):
            raise bad(f"tensor {name!r} field 'shape' must be a list of integers, got {_shown(dims)}.")
        if tuple(dims) != shape:
            raise CnnvizError(f"weight file {path} does not match architecture {arch.name!r}: "
                              f"{name} has shape {tuple(dims)}, expected {shape}.")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            raise bad(f"tensor {name!r} field 'data_offsets' must be two integers, got {_shown(offsets)}.")
        begin, end = offsets
        needed = math.prod(shape) * DTYPES[dtype]
        if not 0 <= begin <= end or end - begin != needed:
            raise bad(f"tensor {name!r} has data_offsets {offsets}, which do not hold the {needed} bytes of its "
                      f"shape: the file is corrupt.")
        if end > data_size:
            raise bad(f"tensor {name!r} has data_offsets {offsets} past the end of the file's data ({data_size} "
                      f"bytes): the file is truncated or corrupt. Re-download or retrain it.")
        spans.append((begin, end, name))
    spans.sort()
    for (_, end, first), (begin, _, second) in itertools.pairwise(spans):
        if begin < end:
            raise bad(f"tensors {first!r} and {second!r} have overlapping data_offsets: the file is corrupt.")
    position = 0
    for begin, end, name in spans:
        if begin > position:
            raise bad(f"{begin - position} bytes before tensor {name!r} belong to no tensor: the file is corrupt.")
        position = end
    if position != data_size:
        raise bad(f"{data_size - position} bytes after the last tensor belong to no tensor: the file is corrupt.")
    return arch, {name: header[name] for name in expected}


def _parse_card(path: Path, strict: bool = True) -> dict:
    """A model card as a dict; strict: CnnvizError if unreadable, else {} (for pending cards)."""
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            raise ValueError(f"larger than {MAX_CARD_BYTES:,} bytes")
        card = _json(path.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise ValueError(f"a JSON {type(card).__name__}, not an object")
        if "sha256" in card and not isinstance(card["sha256"], str):
            raise ValueError("its 'sha256' is not a string")
    except (ValueError, OSError) as exc:
        if strict:
            raise CnnvizError(f"model card {path} is not a valid model card ({exc}). Restore it or delete it.") from exc
        return {}
    return card


def _read_card(path: Path, verify: bool) -> dict:
    """The card that belongs to weight file ``path``: NAME.json, or a complete pending NAME.json.tmp whose
    sha256 matches (a save interrupted between its two renames); {} if there is none."""
    main, pending = card_path(path), pending_card_path(path)
    card = _parse_card(main) if main.is_file() else None
    if not verify:
        return card if card is not None else (_parse_card(pending, strict=False) if pending.is_file() else {})
    if card is not None and not card.get("sha256"):
        return card
    digest = None
    if card is not None:
        digest = sha256_of(path)
        if card["sha256"] == digest:
            return card
    if pending.is_file():
        candidate = _parse_card(pending, strict=False)
        if candidate.get("sha256") and candidate["sha256"] == (digest or sha256_of(path)):
            return candidate
    if card is not None:
        raise CnnvizError(
            f"weight file {path} does not match the sha256 in its model card {main.name}: "
            f"the file is damaged or was replaced. Restore it or retrain."
        )
    return {}


def _folder_message(path: Path) -> str:
    inside = sorted(p.name for p in path.glob(f"*{SUFFIX}"))[:3]
    hint = f" (it holds {', '.join(inside)})" if inside else ""
    return (f"{path} is a folder, not a weight file{hint}. Pass the {SUFFIX} file itself, e.g. "
            f"{path / (inside[0] if inside else 'NAME' + SUFFIX)}, or a shipped model name "
            f"({', '.join(sorted(ARCHITECTURES))}).")


def load(name_or_path: str | os.PathLike, verify: bool = True) -> LoadedModel:
    """Load a shipped model by name or a weight file by path, validated against its architecture.

    Raises CnnvizError (and nothing else) naming the file and the problem: missing, a folder, truncated or
    corrupt, a header field out of range (see :func:`read_header`), checksum different from its model card,
    non-finite values.
    """
    path = resolve(name_or_path)
    if path.is_dir():
        raise CnnvizError(_folder_message(path))
    if not path.is_file():
        known = ", ".join(sorted(ARCHITECTURES))
        what = "is not a regular file" if path.exists() else "not found"
        raise CnnvizError(f"weight file {path} {what}. Use a shipped model ({known}) or the path of a "
                          f"{SUFFIX} file written by cnnviz-train.")
    try:
        return _load(path, verify)
    except CnnvizError:
        raise
    except MemoryError as exc:
        raise CnnvizError(f"weight file {path}: not enough memory to load it.") from exc
    except Exception as exc:  # the file is untrusted: any failure is a bad file, never a crash
        raise CnnvizError(f"weight file {path} could not be loaded ({type(exc).__name__}: {exc}): it is corrupt "
                          f"or not a weight file written by cnnviz-train.") from exc


def _load(path: Path, verify: bool) -> LoadedModel:
    try:
        arch, _ = read_header(path)
        card = _read_card(path, verify)
    except OSError as exc:
        raise CnnvizError(f"weight file {path} cannot be read: {exc.strerror or exc}.") from exc
    try:
        state = load_file(path)
    except Exception as exc:  # safetensors raises its own error types, and OSError
        raise CnnvizError(f"weight file {path} is truncated or corrupt ({exc}). Re-download or retrain it.") from exc
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise CnnvizError(f"weight file {path} holds non-finite values in {', '.join(bad)}: it is corrupt.")
    model = ConvNet(arch)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise CnnvizError(f"weight file {path} does not match architecture {arch.name!r}: "
                          f"missing {', '.join(missing) or 'nothing'}, "
                          f"unexpected {', '.join(unexpected) or 'nothing'}.")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(model=model, arch=arch, path=path, card=card)
