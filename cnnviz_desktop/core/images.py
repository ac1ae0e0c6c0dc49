"""Image files -> canvases (light digit on dark, float in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CnnvizError


def to_light_on_dark(gray: np.ndarray) -> np.ndarray:
    """Invert a dark-on-light image; the border's median tells the background colour."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 1.0 - gray if float(np.median(border)) > 0.5 else gray


def load_canvas(path: Path) -> np.ndarray:
    """Read a PNG/JPEG (any size, any mode) as a (H, W) float32 canvas, light digit on dark."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                # Transparent pixels are background: flatten onto white, then detect polarity as usual.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError as exc:
        raise CnnvizError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CnnvizError(f"{path}: not a readable PNG or JPEG image ({exc})") from exc
    if gray.ndim != 2 or min(gray.shape) < 2:
        raise CnnvizError(f"{path}: image is too small ({gray.shape})")
    return to_light_on_dark(gray)
