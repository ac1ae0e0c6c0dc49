"""Reading MNIST's IDX files (gzip or raw), and a checksummed download for users who are online."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CnnvizError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# MD5 sums of the official MNIST release (gzip files), as published with it.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# A mirror of the official files (the original host no longer serves them).
DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass(frozen=True)
class Dataset:
    """images: (N, 28, 28) uint8, light digit on dark; labels: (N,) int64."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise CnnvizError(
        f"MNIST file {stem}(.gz) not found in {directory}. Point --data (or CNNVIZ_MNIST_DIR) at the folder "
        f"holding the IDX files, or fetch them with --download DIR."
    )


# Far above the 60,000-image MNIST training file (47 MB): a bound on what a gzip file may inflate to.
MAX_IDX_BYTES = 1 << 30


def _read_bytes(path: Path) -> bytes:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        chunks, total = [], 0
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                total += len(chunk)
                if total > MAX_IDX_BYTES:
                    raise CnnvizError(f"{path} holds more than {MAX_IDX_BYTES >> 20} MB of data: it is not an "
                                      f"MNIST file.")
                chunks.append(chunk)
        return b"".join(chunks)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CnnvizError(f"cannot read {path}: {exc}. The file is damaged or not gzip; download it again.") from exc


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse one IDX file (uint8 data). Images -> (N, rows, cols), labels -> (N,)."""
    data = _read_bytes(path)
    if len(data) < 8:
        raise CnnvizError(f"{path} is too short to be an IDX file ({len(data)} bytes).")
    (magic,) = struct.unpack(">i", data[:4])
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise CnnvizError(
            f"{path} has magic number {magic}, expected {expected_magic} for MNIST {kind}: "
            f"it is not an MNIST {kind} file."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CnnvizError(f"{path} is truncated inside its header.")
    dims = struct.unpack(f">{ndim}i", data[4:header])
    if any(d < 0 for d in dims):
        raise CnnvizError(f"{path} has a corrupt header: it announces dimensions {dims}, and a size cannot be "
                          f"negative. Download the file again.")
    count = math.prod(dims)  # Python ints: absurd dimensions cannot overflow into a small number
    if len(data) - header < count:
        raise CnnvizError(
            f"{path} is truncated: its header announces {dims[0]} items ({count} bytes) but only "
            f"{len(data) - header} bytes follow. Download the file again."
        )
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims)


def load(directory: str | os.PathLike, split: str) -> Dataset:
    """Load 'train' or 'test' from a folder of IDX files; any number of images is accepted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CnnvizError(
            f"MNIST folder {directory} does not exist. Pass --data DIR (or set CNNVIZ_MNIST_DIR), "
            f"or fetch the files with --download DIR."
        )
    images_stem, labels_stem = SPLIT_FILES[split]
    images_path, labels_path = _find(directory, images_stem), _find(directory, labels_stem)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CnnvizError(f"{images_path} holds images of shape {images.shape[1:]}, expected 28x28.")
    if len(images) != len(labels):
        raise CnnvizError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds {len(labels)} labels: "
            f"the files do not belong together."
        )
    if labels.size and labels.max() > 9:
        raise CnnvizError(f"{labels_path} holds labels above 9: it is not an MNIST labels file.")
    return Dataset(images=images, labels=labels.astype(np.int64))


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    directory: str | os.PathLike,
    mirror: str = DEFAULT_MIRROR,
    checksums: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch the four MNIST files into ``directory`` and verify each MD5; files already valid are kept.

    A file whose checksum does not match is deleted and reported; nothing unverified is left behind.
    """
    checksums = OFFICIAL_MD5 if checksums is None else checksums
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base = mirror if mirror.endswith("/") else mirror + "/"
    for name, expected in checksums.items():
        target = directory / name
        if target.is_file() and _md5(target) == expected:
            continue
        partial = target.with_suffix(target.suffix + ".part")
        try:
            with urllib.request.urlopen(base + name, timeout=timeout) as response, open(partial, "wb") as out:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise CnnvizError(f"could not download {base + name}: {exc}. Check the network or the mirror.") from exc
        actual = _md5(partial)
        if actual != expected:
            partial.unlink(missing_ok=True)
            raise CnnvizError(
                f"{name} from {base} has MD5 {actual}, expected {expected}: the download is corrupt or not the "
                f"official file. Nothing was kept; try again or use another mirror."
            )
        os.replace(partial, target)
    return directory
