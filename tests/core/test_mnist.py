"""IDX parsing (good and broken files) and the checksummed downloader against a local HTTP server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from cnnviz_desktop.core import mnist
from cnnviz_desktop.core.errors import CnnvizError


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, gz: bool = True) -> Path:
    magic = magic if magic is not None else (mnist.IMAGES_MAGIC if array.ndim == 3 else mnist.LABELS_MAGIC)
    data = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_split(directory: Path, n_images: int, n_labels: int | None = None, gz: bool = True, split="test"):
    rng = np.random.default_rng(0)
    images_name, labels_name = mnist.SPLIT_FILES[split]
    write_idx(directory / images_name, rng.integers(0, 256, (n_images, 28, 28)), gz=gz)
    write_idx(directory / labels_name, rng.integers(0, 10, (n_labels if n_labels is not None else n_images,)), gz=gz)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("count", [1, 37])
def test_any_count_gzip_or_raw(tmp_path, gz, count):
    make_split(tmp_path, count, gz=gz)
    data = mnist.load(tmp_path, "test")
    assert data.images.shape == (count, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.shape == (count,) and len(data) == count


def test_bad_magic(tmp_path):
    make_split(tmp_path, 5)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28)), magic=1234)
    with pytest.raises(CnnvizError, match="magic number 1234"):
        mnist.load(tmp_path, "test")


def test_labels_file_given_as_images(tmp_path):
    make_split(tmp_path, 5)
    shutil.copy(tmp_path / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(CnnvizError, match="not an MNIST images file"):
        mnist.load(tmp_path, "test")


def test_truncated_data(tmp_path):
    make_split(tmp_path, 5, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CnnvizError, match="truncated"):
        mnist.load(tmp_path, "test")


def test_truncated_gzip(tmp_path):
    make_split(tmp_path, 5)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CnnvizError, match="cannot read"):
        mnist.load(tmp_path, "test")


def test_count_mismatch(tmp_path):
    make_split(tmp_path, 5, n_labels=4)
    with pytest.raises(CnnvizError, match="5 images but .* 4 labels"):
        mnist.load(tmp_path, "test")


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(CnnvizError, match="does not exist"):
        mnist.load(tmp_path / "nope", "test")
    with pytest.raises(CnnvizError, match="not found"):
        mnist.load(tmp_path, "test")


def test_shared_data_reads(mnist_dir):
    test = mnist.load(mnist_dir, "test")
    train = mnist.load(mnist_dir, "train")
    assert len(test) == 10_000 and len(train) >= 10_000
    assert set(np.unique(test.labels)) == set(range(10))


@pytest.fixture
def local_server(tmp_path):
    """Serve a folder on 127.0.0.1 (never the internet); yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_official_checksums(mnist_dir, local_server, tmp_path):
    served, url = local_server
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, served / name)
    official_test = {k: v for k, v in mnist.OFFICIAL_MD5.items() if k.startswith("t10k")}
    out = mnist.download(tmp_path / "dl", mirror=url, checksums=official_test)
    assert len(mnist.load(out, "test")) == 10_000


def test_download_rejects_wrong_checksum_and_keeps_nothing(mnist_dir, local_server, tmp_path):
    served, url = local_server
    # The shared training file holds the first 10k images only, so it differs from the official 60k file.
    shutil.copy(mnist_dir / "train-images-idx3-ubyte.gz", served / "train-images-idx3-ubyte.gz")
    only = {"train-images-idx3-ubyte.gz": mnist.OFFICIAL_MD5["train-images-idx3-ubyte.gz"]}
    with pytest.raises(CnnvizError, match="MD5"):
        mnist.download(tmp_path / "dl", mirror=url, checksums=only)
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_reports_missing_file(local_server, tmp_path):
    _, url = local_server
    with pytest.raises(CnnvizError, match="could not download"):
        mnist.download(tmp_path / "dl", mirror=url, checksums={"t10k-labels-idx1-ubyte.gz": "0" * 32})


def test_download_with_generated_files(local_server, tmp_path):
    """The full path without shared data: generated files and their own checksums."""
    served, url = local_server
    make_split(served, 3)
    sums = {p.name: md5(p) for p in served.iterdir()}
    out = mnist.download(tmp_path / "dl", mirror=url, checksums=sums)
    assert len(mnist.load(out, "test")) == 3
    # A second run keeps valid files without fetching again (the server may be gone).
    assert mnist.download(out, mirror="http://127.0.0.1:9/", checksums=sums) == out


def raw_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes = b"") -> Path:
    path.write_bytes(struct.pack(">i", magic) + struct.pack(f">{len(dims)}i", *dims) + payload)
    return path


@pytest.mark.parametrize("dims", [(-5, 28, 28), (5, -28, 28), (3, 28, -1)])
def test_negative_dimensions_are_refused(tmp_path, dims):
    path = raw_idx(tmp_path / "t10k-images-idx3-ubyte", mnist.IMAGES_MAGIC, dims, bytes(5 * 28 * 28))
    with pytest.raises(CnnvizError, match="negative"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)


def test_negative_label_count_is_refused(tmp_path):
    path = raw_idx(tmp_path / "t10k-labels-idx1-ubyte", mnist.LABELS_MAGIC, (-1,), bytes(10))
    with pytest.raises(CnnvizError, match="negative"):
        mnist.read_idx(path, mnist.LABELS_MAGIC)


def test_absurd_dimensions_are_refused_without_allocating(tmp_path):
    # 2**31-1 images of 2**31-1 x 2**31-1 pixels: the byte count overflows 64-bit integers.
    path = raw_idx(tmp_path / "t10k-images-idx3-ubyte", mnist.IMAGES_MAGIC, (2**31 - 1,) * 3, bytes(100))
    with pytest.raises(CnnvizError, match="truncated"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)


def test_corrupt_gzip_stream_is_refused(tmp_path):
    make_split(tmp_path, 5)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[20:40] = b"\xff" * 20  # inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(CnnvizError, match="cannot read"):
        mnist.load(tmp_path, "test")
