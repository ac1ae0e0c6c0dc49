"""Colour maps for activations, signed values (contributions, filter weights, Grad-CAM) and dim lines.

Pure numpy (no Qt): every map is a 256-entry RGBA lookup table (uint8) and a vectorised lookup that
turns an array of values into an (..., 4) uint8 array in one ``take``. The scene and the drawing
overlay use the same tables, so the legend, the cubes and the heat map always agree.

Palettes (selected by name): ``'default'`` follows the reference app (activation blue -> green -> red,
brighter for stronger, dark grey for zero; signed blue -> white -> red) and ``'colorblind'`` uses
maps that stay readable with red-green colour blindness (activation: a cividis-like dark blue ->
grey -> yellow ramp; signed: blue -> white -> orange).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

Palette = Literal["default", "colorblind"]
PALETTES: tuple[str, ...] = ("default", "colorblind")
LUT_SIZE = 256

# Zero / inactive neurons: dark grey that still reads as a cube on the near-black background.
INACTIVE = np.array([46, 48, 56, 255], dtype=np.uint8)
# Lines that do not significantly contribute: dim grey, mostly transparent.
INSIGNIFICANT = np.array([110, 112, 120, 40], dtype=np.uint8)
# Scene background (RGB floats 0-1) and label colour, shared by the scene and its screenshots.
BACKGROUND = (0.055, 0.06, 0.075)
LABEL = (225, 228, 235)

# Relative value below which an activation counts as zero (ReLU off, or an undrawn pixel).
ZERO_EPS = 1e-6


def _ramp(stops: list[tuple[float, tuple[float, float, float]]], n: int) -> np.ndarray:
    """(n, 3) float RGB in [0, 1] interpolated linearly between (position, rgb) stops."""
    t = np.linspace(0.0, 1.0, n)
    pos = np.array([s[0] for s in stops])
    rgb = np.array([s[1] for s in stops], dtype=np.float64)
    return np.stack([np.interp(t, pos, rgb[:, k]) for k in range(3)], axis=1)


def _to_lut(rgb: np.ndarray, alpha: np.ndarray | float = 1.0) -> np.ndarray:
    out = np.empty((rgb.shape[0], 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.round(rgb * 255.0), 0, 255)
    out[:, 3] = np.clip(np.round(np.broadcast_to(alpha, rgb.shape[:1]) * 255.0), 0, 255)
    return out


@lru_cache(maxsize=None)
def activation_lut(palette: str = "default") -> np.ndarray:
    """(256, 4) uint8 RGBA for activations: entry 0 is 'zero / inactive' (dark grey), 1..255 low -> high.

    default: dim blue -> green -> bright red (brightness grows with the value);
    colorblind: cividis-like dark blue -> grey -> bright yellow.
    """
    _check(palette)
    if palette == "default":
        stops = [
            (0.0, (0.10, 0.18, 0.48)),
            (0.25, (0.12, 0.42, 0.85)),
            (0.5, (0.15, 0.78, 0.35)),
            (0.75, (0.95, 0.78, 0.15)),
            (1.0, (1.00, 0.22, 0.16)),
        ]
    else:
        stops = [
            (0.0, (0.05, 0.16, 0.36)),
            (0.33, (0.26, 0.33, 0.45)),
            (0.66, (0.60, 0.58, 0.47)),
            (1.0, (1.00, 0.92, 0.22)),
        ]
    lut = _to_lut(_ramp(stops, LUT_SIZE - 1))
    return _freeze(np.concatenate([INACTIVE[None, :], lut], axis=0))


@lru_cache(maxsize=None)
def signed_lut(palette: str = "default") -> np.ndarray:
    """(256, 4) uint8 RGBA diverging map: entry 0 = most negative, 127.5 = zero (white), 255 = most positive.

    default: blue -> white -> red; colorblind: blue -> white -> orange.
    """
    _check(palette)
    if palette == "default":
        neg, pos = (0.16, 0.40, 1.00), (1.00, 0.16, 0.12)
        neg_mid, pos_mid = (0.55, 0.70, 1.00), (1.00, 0.60, 0.52)
    else:
        neg, pos = (0.13, 0.40, 0.90), (0.95, 0.50, 0.05)
        neg_mid, pos_mid = (0.55, 0.72, 0.98), (1.00, 0.76, 0.45)
    stops = [(0.0, neg), (0.25, neg_mid), (0.5, (0.96, 0.96, 0.96)), (0.75, pos_mid), (1.0, pos)]
    return _freeze(_to_lut(_ramp(stops, LUT_SIZE)))


def activation_index(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """LUT indices (uint8, same shape) for non-negative values: 0 for <= eps * scale, else 1..255 by value / scale.

    scale: the value shown as the top colour; None -> max(values) (1 if everything is zero).
    """
    v = np.asarray(values, dtype=np.float32)
    if scale is None:
        scale = float(v.max()) if v.size else 1.0
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    t = v * np.float32(254.0 / scale)
    idx = np.clip(t, 0.0, 254.0).astype(np.uint8) + np.uint8(1)
    idx[v <= np.float32(ZERO_EPS * scale)] = 0
    return idx


def signed_index(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """LUT indices (uint8, same shape) for signed values: -scale -> 0, 0 -> 127/128, +scale -> 255.

    scale: the magnitude shown at the ends; None -> max|values| (1 if everything is zero).
    """
    v = np.asarray(values, dtype=np.float32)
    if scale is None:
        scale = float(np.abs(v).max()) if v.size else 1.0
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    t = v * np.float32(127.5 / scale) + np.float32(127.5)
    return np.clip(t, 0.0, 255.0).astype(np.uint8)


def activation_colors(values: np.ndarray, scale: float | None = None, palette: str = "default",
                      out: np.ndarray | None = None) -> np.ndarray:
    """(..., 4) uint8 RGBA for non-negative activations (see :func:`activation_lut`).

    out: optional preallocated (..., 4) uint8 array written in place (avoids an allocation per frame).
    """
    return np.take(activation_lut(palette), activation_index(values, scale), axis=0, out=out)


def signed_colors(values: np.ndarray, scale: float | None = None, palette: str = "default",
                  out: np.ndarray | None = None) -> np.ndarray:
    """(..., 4) uint8 RGBA for signed values on the diverging map (see :func:`signed_lut`)."""
    return np.take(signed_lut(palette), signed_index(values, scale), axis=0, out=out)


def signed_overlay(values: np.ndarray, scale: float | None = None, palette: str = "default",
                   max_alpha: float = 0.85) -> np.ndarray:
    """(H, W, 4) uint8 heat map for a signed (H, W) map drawn over an image: hue from the diverging
    map, alpha = |value| / scale * max_alpha (zero is fully transparent, so white never shows)."""
    v = np.asarray(values, dtype=np.float32)
    if scale is None:
        scale = float(np.abs(v).max()) if v.size else 1.0
    scale = float(scale) if scale and np.isfinite(scale) and scale > 0 else 1.0
    rgba = signed_colors(v, scale, palette)
    strength = np.clip(np.abs(v) / np.float32(scale), 0.0, 1.0)
    rgba[..., 3] = np.round(strength * (255.0 * max_alpha)).astype(np.uint8)
    return rgba


def to_float(rgba: np.ndarray) -> np.ndarray:
    """uint8 RGBA -> float32 RGBA in [0, 1] (for APIs that want floats)."""
    return np.asarray(rgba, dtype=np.float32) * np.float32(1.0 / 255.0)


def _check(palette: str) -> None:
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r}; choose one of {', '.join(PALETTES)}")


def _freeze(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
