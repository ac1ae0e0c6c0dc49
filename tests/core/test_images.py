"""Image files -> canvases: huge images are refused before decoding; transparency decides the ink."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz_desktop.core import images
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.images import load_canvas
from cnnviz_desktop.core.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[2]


def blank_png(path: Path, width: int, height: int) -> Path:
    """A 1-bit all-black PNG of any size, written row by row: a 400-megapixel one is ~60 KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0 + packed bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [7_000, 10_000, 20_000], ids=["49MP-over-our-limit", "100MP-PIL-warns",
                                                                "400MP-PIL-refuses"])
def test_huge_image_is_refused_with_its_size_and_the_limit(tmp_path, side):
    path = blank_png(tmp_path / "huge.png", side, side)
    with pytest.raises(CnnvizError) as info:
        load_canvas(path)
    message = str(info.value)
    assert message.startswith("cannot open this image:"), message
    assert str(path) in message and f"{side * side / 1e6:.1f} megapixels" in message
    assert f"limit of {images.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels" in message


def digit_array(mnist_test, index: int, side: int) -> np.ndarray:
    """An MNIST test digit (light on dark, uint8) scaled to side x side."""
    return np.asarray(Image.fromarray(mnist_test.images[index]).resize((side, side), Image.BILINEAR))


def read_as(model, canvas: np.ndarray) -> int | None:
    prepared = preprocess(canvas)
    if prepared is None:
        return None
    with torch.no_grad():
        return int(model(prepared.tensor).argmax())


def ink_overlap(canvas: np.ndarray, digit: np.ndarray) -> float:
    """Intersection over union of the ink (> 0.3) of a canvas and of the digit it should show."""
    a, b = canvas > 0.3, digit > 0.3 * 255
    return float((a & b).sum() / max((a | b).sum(), 1))


def rgba(colour: tuple[int, int, int], alpha: np.ndarray) -> Image.Image:
    h, w = alpha.shape
    data = np.empty((h, w, 4), np.uint8)
    data[..., :3] = colour
    data[..., 3] = alpha
    return Image.fromarray(data, "RGBA")


def palette_with_transparent_index(digit: np.ndarray, dark: bool = False) -> Image.Image:
    # A grey ramp palette; index 0 (black) is transparent: a light digit on a see-through background
    # (dark: a dark digit, index 255 (white) transparent). Anti-aliasing is in the colour, not in alpha.
    pixels = 255 - digit if dark else digit
    img = Image.frombytes("P", digit.shape[::-1], np.ascontiguousarray(pixels).tobytes())
    img.putpalette([v for g in range(256) for v in (g, g, g)])
    img.info["transparency"] = 255 if dark else 0
    return img


KINDS = {
    "white-on-transparent": lambda d: rgba((255, 255, 255), d),
    "black-on-transparent": lambda d: rgba((0, 0, 0), d),
    "red-on-transparent-LA": lambda d: rgba((200, 30, 30), d).convert("LA"),
    "palette-transparent-index": palette_with_transparent_index,
    "dark-palette-transparent-index": lambda d: palette_with_transparent_index(d, dark=True),
    "white-on-transparent-binary-alpha": lambda d: rgba((255, 255, 255), np.where(d > 100, 255, 0)),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_transparent_images_read_as_the_digit(mnist_test, tiny, tmp_path, kind):
    for index in range(4):
        digit = digit_array(mnist_test, index, 112)
        path = tmp_path / f"{kind}-{index}.png"
        KINDS[kind](digit).save(path)
        canvas = load_canvas(path)
        assert canvas.shape == digit.shape
        assert ink_overlap(canvas, digit) > 0.8, kind
        # The same digit as a plain grey file is read the same way.
        plain = tmp_path / f"plain-{index}.png"
        Image.fromarray(digit).save(plain)
        assert read_as(tiny.model, canvas) == read_as(tiny.model, load_canvas(plain)) == mnist_test.labels[index]


def test_opaque_rgba_reads_exactly_as_before(mnist_test, tmp_path):
    digit = 255 - digit_array(mnist_test, 0, 64)  # dark on light, as a scan
    coloured = np.stack([digit, digit // 2, digit], axis=-1)
    opaque = np.concatenate([coloured, np.full(digit.shape + (1,), 255, np.uint8)], axis=-1)
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    Image.fromarray(coloured, "RGB").save(tmp_path / "rgb.png")
    expected = 1.0 - np.asarray(Image.fromarray(coloured, "RGB").convert("L"), np.float32) / 255.0
    np.testing.assert_array_equal(load_canvas(tmp_path / "opaque.png"), expected)
    np.testing.assert_array_equal(load_canvas(tmp_path / "rgb.png"), expected)


def test_fully_transparent_image_is_empty(tmp_path):
    rgba((255, 255, 255), np.zeros((40, 40), np.uint8)).save(tmp_path / "clear.png")
    assert preprocess(load_canvas(tmp_path / "clear.png")) is None


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_large_image_is_reduced_but_keeps_the_digit(mnist_test, tiny, tmp_path, ext):
    digit = digit_array(mnist_test, 1, 4_500)
    path = tmp_path / f"big.{ext}"
    Image.fromarray(255 - digit).save(path)
    canvas = load_canvas(path)
    assert max(canvas.shape) <= images.MAX_CANVAS_SIDE
    assert read_as(tiny.model, canvas) == mnist_test.labels[1]


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(CnnvizError, match="is a folder"):
        load_canvas(tmp_path)


def test_predict_reports_a_huge_image_and_keeps_going(mnist_test, tmp_path):
    files = []
    for i in range(2):
        files.append(tmp_path / f"d{i}.png")
        Image.fromarray(digit_array(mnist_test, i, 56)).save(files[-1])
    huge = blank_png(tmp_path / "huge.png", 20_000, 20_000)
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop.cli.predict", str(files[0]), str(huge),
                             str(files[1]), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {json.loads(result.stdout.splitlines()[1])['error']}"]
    assert "cannot open this image:" in result.stderr and "huge.png" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(files[0]), str(huge), str(files[1])]
    assert [lines[0]["digit"], lines[2]["digit"]] == [int(mnist_test.labels[0]), int(mnist_test.labels[1])]
