"""Measures of explanation quality shown in benchmarks and the README (Qt-free, numpy).

``ink_share``: how much of a Grad-CAM map's positive evidence lies on the ink. The tiny network's Grad-CAM
has a 'blank paper' channel whose evidence is the empty paper around the strokes ('no ink here'); this
number tells how much of the overlay a student sees lands on what they drew.
"""

from __future__ import annotations

import numpy as np

INK_LEVEL = 0.1


def dilate(mask: np.ndarray, pixels: int = 1) -> np.ndarray:
    """Binary dilation of a (H, W) bool mask by ``pixels`` (8-neighbourhood, i.e. a (2p+1)^2 square)."""
    out = np.asarray(mask, dtype=bool)
    for _ in range(max(0, int(pixels))):
        padded = np.pad(out, 1)
        grown = np.zeros_like(out)
        h, w = out.shape
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                grown |= padded[dy:dy + h, dx:dx + w]
        out = grown
    return out


def ink_share(image: np.ndarray, cam: np.ndarray, level: float = INK_LEVEL, grow: int = 1) -> float | None:
    """Share of the positive mass of ``cam`` that lies on ink.

    image: (H, W) drawing in [0, 1]; cam: (H, W) signed map on the same grid; ink = image > level, dilated
    by ``grow`` pixels. Returns sum(cam+ on ink) / sum(cam+) in [0, 1], or None when the map has no positive
    cell at all (nothing to share out).
    """
    image = np.asarray(image, dtype=np.float32)
    cam = np.asarray(cam, dtype=np.float32)
    if image.shape != cam.shape or image.ndim != 2:
        raise ValueError(f"image and cam must be the same 2-D shape, got {image.shape} and {cam.shape}")
    positive = np.maximum(cam, 0.0)
    total = float(positive.sum())
    if total <= 0.0:
        return None
    ink = dilate(image > level, grow)
    return float(positive[ink].sum()) / total
