"""Turn a hand-drawn canvas into what the network was trained on (MNIST's own preparation).

MNIST digits were fitted into a 20x20 box keeping their aspect ratio (anti-aliased) and placed in a
28x28 image with their centre of mass at pixel (14, 14) (index coordinates; measured on the test set:
13.99, 14.01). The network then sees (x - 0.1307) / 0.3081 with x in [0, 1]. Getting this wrong costs
far more accuracy than any model choice (ARCHITECTURE.md section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .errors import CnnvizError
from .strokes import paste_centred

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
    tensor: (1, 1, 28, 28) float32, normalised (a property, made from ``image`` on first use: the
    analysis engine never needs it, a torch model does).
    Placement of the digit, for mapping 28x28 maps back onto the canvas: the ink's bounding box on the
    canvas starts at (top, left), was scaled by (scale_y, scale_x) and its top-left placed at
    (offset_y, offset_x) in the 28x28 image, i.e. canvas position c (cells) lands on input coordinate
    (c - top) * scale + offset (pixel centres at k + 0.5). The offsets are whole pixels when made
    from pixels (:func:`preprocess`), fractional when made from strokes (core.strokes.rasterise).
    """

    image: np.ndarray
    canvas_shape: tuple[int, int]
    top: int
    left: int
    scale_y: float
    scale_x: float
    offset_y: float
    offset_x: float
    _tensor: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def tensor(self) -> torch.Tensor:
        """(1, 1, 28, 28) float32, normalised; computed once, on first access."""
        tensor = self._tensor
        if tensor is None:
            tensor = normalise(self.image)
            object.__setattr__(self, "_tensor", tensor)
        return tensor

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


@lru_cache(maxsize=512)
def _aa_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 matrix of torch's anti-aliased bilinear resize along one axis
    (``F.interpolate(mode='bilinear', antialias=True, align_corners=False)``, PIL's scheme: a
    triangle filter stretched by in/out when shrinking, normalised per output pixel).

    Read off torch itself by resizing an identity matrix, so the weights are torch's to the last
    bit (recomputing them in numpy differs by an ulp here and there). Read-only, cached.
    """
    eye = torch.eye(in_size, dtype=torch.float32)[None, None]
    with torch.no_grad():
        resized = F.interpolate(eye, size=(in_size, out_size), mode="bilinear", antialias=True,
                                align_corners=False)
    matrix = np.ascontiguousarray(resized[0, 0].numpy().T)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=512)
def _resize_matrices(h: int, w: int, new_h: int, new_w: int) -> tuple[np.ndarray, np.ndarray]:
    """(Wy (new_h, h), Wx^T (w, new_w)): resized = Wy @ (crop @ Wx^T) is torch's anti-aliased
    bilinear F.interpolate of an (h, w) crop to (new_h, new_w), up to float32 rounding.

    torch resizes the width first, then the height, and on an image one pixel wide (new_w == 1)
    its height pass gives EVERY output row the filter of row 0 (torch 2.x: a thin vertical stroke
    becomes a uniform bar). That is reproduced so that preprocessing keeps matching torch.
    """
    wy = _aa_weights(h, new_h)
    if new_w == 1 and new_h != h:
        wy = np.ascontiguousarray(np.broadcast_to(wy[:1], wy.shape))
        wy.setflags(write=False)
    wx_t = np.ascontiguousarray(_aa_weights(w, new_w).T)
    wx_t.setflags(write=False)
    return wy, wx_t


def resize_antialiased(crop: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """(h, w) float32 -> (new_h, new_w) float32, equal to torch's ``F.interpolate(mode='bilinear',
    antialias=True, align_corners=False)`` within ~3e-6 (measured; float32 rounding order), as two
    small matrix products with cached weights instead of a torch call.

    Width first, like torch: the rounding then differs least, which matters only where the centre
    of mass of a symmetric digit sits exactly half-way between two integer placements.
    """
    h, w = crop.shape
    wy, wx_t = _resize_matrices(h, w, new_h, new_w)
    return wy @ (crop @ wx_t)


def preprocess(canvas: np.ndarray) -> Preprocessed | None:
    """Canvas (H, W) float in [0, 1], light digit on dark -> :class:`Preprocessed`, or None if empty.

    Crop to the ink's bounding box, scale its longer side to 20 px keeping the aspect ratio
    (anti-aliased), place it in 28x28 with the centre of mass at (14, 14), normalise.
    """
    array = np.asarray(canvas, dtype=np.float32)
    if array.ndim != 2 or min(array.shape) < 1:
        raise CnnvizError(f"a canvas must be a 2-D image, got shape {array.shape}")
    # Ink is decided on the raw values: NaN and -inf compare False, +inf and values above 1 count
    # as ink exactly as they would after the clean-up below, which then only touches the crop.
    ink = array > INK_THRESHOLD
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(ink[rows[0]:rows[-1] + 1].any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = array[top:bottom, left:right]
    # NaN -> 0, +inf -> 1, -inf -> 0, then clip to [0, 1] (a new array: the canvas is not touched).
    crop = np.where(crop > 0.0, np.minimum(crop, np.float32(1.0)), np.float32(0.0))
    h, w = crop.shape
    factor = BOX / max(h, w)
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))
    resized = resize_antialiased(crop, new_h, new_w)
    np.clip(resized, 0.0, 1.0, out=resized)
    image, oy, ox = paste_centred(resized)
    return Preprocessed(
        image=image,
        canvas_shape=(array.shape[0], array.shape[1]),
        top=int(top), left=int(left),
        scale_y=new_h / h, scale_x=new_w / w,
        offset_y=oy, offset_x=ox,
    )
