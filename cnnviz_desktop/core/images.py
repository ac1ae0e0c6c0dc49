"""Image files -> canvases (light digit on dark, float in [0, 1]).

Image files are untrusted input: the size is checked from the header before anything is decoded, JPEGs
are decoded at a reduced scale, and the picture is turned grey (and reduced) early, so that memory stays
bounded whatever the file claims.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np

from .errors import CnnvizError

# Larger images are refused before decoding (PIL itself would decode up to ~179 megapixels, using
# gigabytes). 40 MP is a 7,300 x 5,500 photo: more than any camera or scan of one digit needs.
MAX_IMAGE_PIXELS = 40_000_000
# The canvas returned is at most this long on its longer side: larger images are reduced by an integer
# factor (box filter) right after decoding. The digit ends up 20 px tall, so nothing of it is lost.
MAX_CANVAS_SIDE = 2048


def to_light_on_dark(gray: np.ndarray) -> np.ndarray:
    """Invert a dark-on-light image; the border's median tells the background colour."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 1.0 - gray if float(np.median(border)) > 0.5 else gray


def _too_big(path: Path, pixels: int | None, size: tuple[int, int] | None = None) -> CnnvizError:
    if size is not None:
        what = f"{size[0]} x {size[1]} pixels ({size[0] * size[1] / 1e6:.1f} megapixels)"
    elif pixels is not None:
        what = f"{pixels / 1e6:.1f} megapixels"
    else:
        what = "too large"
    return CnnvizError(f"cannot open this image: {path} is {what}, more than the limit of "
                       f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. Scale it down or crop it to the digit.")


def _has_transparency(img) -> bool:
    return "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info


def _grey_with_alpha(img):
    """An image with an alpha channel or a transparent colour -> one 'L' image, light or dark ink.

    Opaque images (alpha 255 everywhere) give their plain grey version, as before. With real
    transparency, the ink is what is opaque: the picture is composited onto a background that contrasts
    with the ink (ink = alpha x the contrast of its colour against that background), so a white digit on a
    transparent background reads as the digit, not as 'nothing drawn'. See :func:`_ink_is_light`.
    """
    from PIL import Image

    if img.mode == "LA":
        lum, alpha = img.split()
    else:
        rgba = img.convert("RGBA")
        lum, alpha = rgba.convert("L"), rgba.getchannel("A")
        del rgba
    if alpha.getextrema()[0] == 255:
        return lum
    background = Image.new("L", lum.size, 0 if _ink_is_light(lum, alpha) else 255)
    return Image.composite(lum, background, alpha)


def _ink_is_light(lum, alpha) -> bool:
    """Whether the opaque ink is light (then it goes on black) or dark (then on white).

    With on/off transparency (palettes, PNG tRNS) anti-aliasing lives in the colour: the ink fades
    towards the background at its edge, so the edge pixels' grey, compared with the whole ink's, tells
    the background. Otherwise (soft alpha, or an ink of one colour) the alpha-weighted mean grey of the
    ink decides. Computed on a copy of at most ~512 px, so it costs little on big images.
    """
    step = max(1, math.ceil(max(lum.size) / 512))
    grey = np.asarray(lum, dtype=np.float64)[::step, ::step]
    weight = np.asarray(alpha, dtype=np.float64)[::step, ::step]
    if alpha.histogram()[1:255] == [0] * 254:
        opaque = np.pad(weight > 0, 1)
        inner = opaque[1:-1, 1:-1] & opaque[:-2, 1:-1] & opaque[2:, 1:-1] & opaque[1:-1, :-2] & opaque[1:-1, 2:]
        edge = opaque[1:-1, 1:-1] & ~inner
        if edge.any():
            edge_mean, ink_mean = float(grey[edge].mean()), float(grey[opaque[1:-1, 1:-1]].mean())
            if abs(edge_mean - ink_mean) > 16:
                return edge_mean < ink_mean
    total = float(weight.sum())
    return total > 0 and float((grey * weight).sum()) / total > 127.5


def _open(path: Path):
    """PIL's lazy open (reads the header only), with PIL's own decompression-bomb checks as errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except FileNotFoundError as exc:
        raise CnnvizError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise CnnvizError(f"{path} is a folder, not an image: pass a PNG or JPEG file") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_big(path, int(found.group(1)) if found else None) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CnnvizError(f"{path}: not a readable PNG or JPEG image ({exc})") from exc


def load_canvas(path: Path) -> np.ndarray:
    """Read a PNG/JPEG (any mode) as a (H, W) float32 canvas in [0, 1], light digit on dark.

    Dark-on-light images are inverted; with real transparency the opaque part is the ink. Images above
    MAX_IMAGE_PIXELS are refused (CnnvizError starting 'cannot open this image:') before decoding; images
    longer than MAX_CANVAS_SIDE are reduced by an integer factor, so H and W may be smaller than the file's.
    """
    path = Path(path)
    img = _open(path)
    with img:
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _too_big(path, None, (width, height))
        try:
            factor = max(1, math.ceil(max(width, height) / MAX_CANVAS_SIDE))
            if img.format == "JPEG" and factor > 1:
                # Decode at 1/2, 1/4 or 1/8 scale, in grey: a fraction of the memory and time.
                img.draft("L", (math.ceil(width / factor), math.ceil(height / factor)))
            img.load()
            gray = _grey_with_alpha(img) if _has_transparency(img) else img.convert("L")
            factor = max(1, math.ceil(max(gray.size) / MAX_CANVAS_SIDE))
            if factor > 1:
                gray = gray.reduce(factor)
            array = np.asarray(gray, dtype=np.float32) / 255.0
        except MemoryError as exc:
            raise CnnvizError(f"cannot open this image: {path} needs more memory than is free") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise CnnvizError(f"{path}: not a readable PNG or JPEG image ({exc})") from exc
    if array.ndim != 2 or min(array.shape) < 2:
        raise CnnvizError(f"{path}: image is too small ({array.shape})")
    return to_light_on_dark(array)
