"""Turn a hand-drawn canvas into what the network was trained on (MNIST's own preparation).

MNIST digits were fitted into a 20x20 box keeping their aspect ratio (anti-aliased) and placed in a
28x28 image with their centre of mass at pixel (14, 14) (index coordinates; measured on the test set:
13.99, 14.01). The network then sees (x - 0.1307) / 0.3081 with x in [0, 1]. Getting this wrong costs
far more accuracy than any model choice (ARCHITECTURE.md section 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import CnnvizError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
SIZE = 28
BOX = 20
CENTRE = 14.0
# Canvas values at or below this count as no ink (an anti-aliased brush leaves faint fringes).
INK_THRESHOLD = 0.05
# The normalised value of a black pixel: the right 'nothing here' baseline (0.0 would be grey).
BLACK = (0.0 - MNIST_MEAN) / MNIST_STD


@dataclass(frozen=True)
class Preprocessed:
    """A canvas prepared for the network.

    image: (28, 28) float32 in [0, 1], MNIST-style.
    tensor: (1, 1, 28, 28) float32, normalised.
    Placement of the digit, for mapping 28x28 maps back onto the canvas: the ink's bounding box on the
    canvas starts at (top, left), was scaled by (scale_y, scale_x) and its top-left placed at
    (offset_y, offset_x) in the 28x28 image.
    """

    image: np.ndarray
    tensor: torch.Tensor
    canvas_shape: tuple[int, int]
    top: int
    left: int
    scale_y: float
    scale_x: float
    offset_y: int
    offset_x: int

    def box_to_canvas(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A block of 28x28 input pixels (row0, col0, row1, col1; end exclusive) -> the canvas cells it
        covers, clipped to the canvas."""
        r0, c0, r1, c1 = box
        h, w = self.canvas_shape
        top = int(np.floor((r0 - self.offset_y) / self.scale_y + self.top))
        left = int(np.floor((c0 - self.offset_x) / self.scale_x + self.left))
        bottom = int(np.ceil((r1 - self.offset_y) / self.scale_y + self.top))
        right = int(np.ceil((c1 - self.offset_x) / self.scale_x + self.left))
        return (max(top, 0), max(left, 0), min(max(bottom, top + 1), h), min(max(right, left + 1), w))

    def to_canvas(self, maps: np.ndarray) -> np.ndarray:
        """Resample maps defined on the 28x28 network input onto the canvas grid.

        maps: (..., 28, 28) -> (..., H, W) for the canvas shape; canvas cells outside the digit's
        placement get 0 (no evidence there).
        """
        maps = np.asarray(maps, dtype=np.float32)
        lead = maps.shape[:-2]
        h, w = self.canvas_shape
        # Centre of canvas cell (i, j) -> continuous 28x28 coordinate (pixel centres at k + 0.5).
        ys = (np.arange(h, dtype=np.float32) + 0.5 - self.top) * self.scale_y + self.offset_y
        xs = (np.arange(w, dtype=np.float32) + 0.5 - self.left) * self.scale_x + self.offset_x
        gy = ys / SIZE * 2.0 - 1.0
        gx = xs / SIZE * 2.0 - 1.0
        grid = torch.from_numpy(np.stack(np.meshgrid(gx, gy, indexing="xy"), axis=-1))[None]
        flat = torch.from_numpy(np.ascontiguousarray(maps.reshape(-1, 1, SIZE, SIZE)))
        out = F.grid_sample(flat, grid.expand(flat.shape[0], -1, -1, -1), mode="bilinear",
                            padding_mode="zeros", align_corners=False)
        return out.numpy().reshape(*lead, h, w)


def normalise(image: np.ndarray) -> torch.Tensor:
    """(28, 28) or (N, 28, 28) in [0, 1] -> (N, 1, 28, 28) normalised float32 tensor."""
    t = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if t.ndim == 2:
        t = t[None]
    return ((t - MNIST_MEAN) / MNIST_STD)[:, None]


def preprocess(canvas: np.ndarray) -> Preprocessed | None:
    """Canvas (H, W) float in [0, 1], light digit on dark -> :class:`Preprocessed`, or None if empty.

    Crop to the ink's bounding box, scale its longer side to 20 px keeping the aspect ratio
    (anti-aliased), place it in 28x28 with the centre of mass at (14, 14), normalise.
    """
    array = np.asarray(canvas, dtype=np.float32)
    if array.ndim != 2 or min(array.shape) < 1:
        raise CnnvizError(f"a canvas must be a 2-D image, got shape {array.shape}")
    array = np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    ink = array > INK_THRESHOLD
    if not ink.any():
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = array[top:bottom, left:right]
    h, w = crop.shape
    factor = BOX / max(h, w)
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))
    resized = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(crop))[None, None], size=(new_h, new_w),
        mode="bilinear", antialias=True, align_corners=False,
    )[0, 0].clamp_(0.0, 1.0).numpy()
    mass = float(resized.sum())
    ys, xs = np.arange(new_h, dtype=np.float32), np.arange(new_w, dtype=np.float32)
    cy = float(resized.sum(axis=1) @ ys) / mass
    cx = float(resized.sum(axis=0) @ xs) / mass
    oy, ox = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    image = np.zeros((SIZE, SIZE), dtype=np.float32)
    # Paste with clipping: a lopsided digit's box can poke past the border after centring.
    y0, x0 = max(oy, 0), max(ox, 0)
    y1, x1 = min(oy + new_h, SIZE), min(ox + new_w, SIZE)
    image[y0:y1, x0:x1] = resized[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return Preprocessed(
        image=image,
        tensor=normalise(image),
        canvas_shape=(array.shape[0], array.shape[1]),
        top=int(top), left=int(left),
        scale_y=new_h / h, scale_x=new_w / w,
        offset_y=oy, offset_x=ox,
    )
