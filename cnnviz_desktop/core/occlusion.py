"""Occlusion sensitivity: what happens to a class score when a black square hides part of the input.

Everything works in the 28x28 network input (not the drawing canvas). Images come in as ``image01``:
float arrays of shape (28, 28) with values in [0, 1] (0 = paper, 1 = ink), as
``Snapshot.activations['input'][0]``. The network sees them normalised, (x - 0.1307) / 0.3081.

The patch is *black in the network's units*: a hidden pixel gets the value of paper, 0 in [0, 1], which
is (0 - 0.1307) / 0.3081 = -0.4242 after normalisation (:data:`BLACK`). Occluding with 0 in normalised
units would paint the patch grey (0.1307 in [0, 1]), i.e. add faint ink where there was none.

:func:`occlusion_map` follows captum's ``Occlusion.attribute`` exactly (tests compare the two): the
window of ``size`` x ``size`` cells slides with ``stride``; window starts are 0, stride, 2*stride, ...
with ceil((28 - size) / stride) + 1 positions per axis (the last window is clipped at the border);
each window's score drop ``f(x)[target] - f(x occluded)[target]`` (in LOGITS: the model's output) is
added to every pixel it covers, and each pixel's sum is divided by the number of windows covering it.
Unlike captum's default (one forward per window), all windows go through the model in a few batched
forwards.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .errors import CnnvizError
from .networks import INPUT_SIZE, NUM_CLASSES
from .preprocess import BLACK, MNIST_MEAN, MNIST_STD

MIN_SIZE, MAX_SIZE = 2, 10
# Windows per batched forward: small enough to cancel quickly and report progress, big enough that
# torch's per-call overhead does not dominate (a full map at size 2, stride 1 is 27 x 27 = 729 windows).
CHUNK = 128

__all__ = ["BLACK", "MIN_SIZE", "MAX_SIZE", "occlude", "patch_logits", "patch_probabilities", "softmax",
           "occlusion_map", "window_starts"]


# ---------------------------------------------------------------------------------------------- validation
def _check_image(image01: Any) -> np.ndarray:
    try:
        image = np.array(image01, dtype=np.float32)  # a private, writable copy (snapshot arrays are read-only)
    except (TypeError, ValueError) as exc:
        raise CnnvizError(f"occlusion: the image must be a {INPUT_SIZE}x{INPUT_SIZE} array of numbers in "
                          f"[0, 1] ({exc})") from exc
    if image.shape == (1, INPUT_SIZE, INPUT_SIZE):
        image = image[0]
    if image.shape != (INPUT_SIZE, INPUT_SIZE):
        raise CnnvizError(f"occlusion: the image must have shape ({INPUT_SIZE}, {INPUT_SIZE}) (the network "
                          f"input), got {tuple(image.shape)}")
    if not np.isfinite(image).all():
        raise CnnvizError("occlusion: the image contains NaN or infinite values; pass the preprocessed "
                          "image in [0, 1]")
    if image.min() < -1e-6 or image.max() > 1 + 1e-6:
        raise CnnvizError(f"occlusion: image values must lie in [0, 1] (the preprocessed input, before "
                          f"normalisation), got [{image.min():.3g}, {image.max():.3g}]")
    return image


def _check_int(name: str, value: Any, low: int, high: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CnnvizError(f"occlusion: {name} must be a whole number from {low} to {high} ({hint}), "
                          f"got {value!r}")
    if not low <= int(value) <= high:
        raise CnnvizError(f"occlusion: {name} must be from {low} to {high} ({hint}), got {int(value)}")
    return int(value)


def _check_size(size: Any) -> int:
    return _check_int("the patch size", size, MIN_SIZE, MAX_SIZE, "cells of the 28x28 input")


def _check_position(row: Any, col: Any, size: int) -> tuple[int, int]:
    last = INPUT_SIZE - size
    hint = f"top-left cell of a {size}x{size} patch inside the 28x28 input"
    return _check_int("row", row, 0, last, hint), _check_int("col", col, 0, last, hint)


def _check_target(target: Any) -> int:
    return _check_int("the target class", target, 0, NUM_CLASSES - 1, "a digit")


def _normalised(images01: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) in [0, 1] -> (N, 1, 28, 28) float32 tensor in the network's units."""
    t = torch.tensor(np.asarray(images01, dtype=np.float32))  # a copy: torch refuses read-only numpy memory
    return ((t - MNIST_MEAN) / MNIST_STD)[:, None]


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        return p.dtype
    return torch.float32


# ---------------------------------------------------------------------------------------------- public API
def window_starts(size: int, stride: int = 1) -> np.ndarray:
    """Top-left offsets (int, cells) of the sliding windows along one axis, as captum places them:
    0, stride, ..., (n - 1) * stride with n = ceil((28 - size) / stride) + 1 (the last may overhang
    the border; it is clipped). Shape (n,)."""
    size = _check_size(size)
    stride = _check_int("the stride", stride, 1, size, "cells; at most the patch size, so that every "
                        "pixel is covered")
    n = math.ceil((INPUT_SIZE - size) / stride) + 1
    return np.arange(n, dtype=np.int64) * stride


def occlude(image01: Any, row: int, col: int, size: int) -> np.ndarray:
    """The image with a black ``size`` x ``size`` patch whose top-left cell is (row, col).

    image01: (28, 28) in [0, 1]; row, col: cells, 0 .. 28 - size; size: MIN_SIZE .. MAX_SIZE cells.
    Returns a new (28, 28) float32 array in [0, 1]: the patch is 0 (paper), which the network sees as
    :data:`BLACK` = -0.4242. Raises CnnvizError for a bad image, size or position.
    """
    image = _check_image(image01)
    size = _check_size(size)
    row, col = _check_position(row, col, size)
    out = image.copy()
    out[row:row + size, col:col + size] = 0.0
    return out


def patch_logits(model: torch.nn.Module, image01: Any, row: int, col: int, size: int) -> np.ndarray:
    """Class logits of the image with the patch at (row, col): one forward.

    model: a network taking (N, 1, 28, 28) normalised input and returning (N, 10) logits;
    image01: (28, 28) in [0, 1]; row, col, size: as :func:`occlude`. Returns (10,) float32 logits.
    """
    patched = occlude(image01, row, col, size)
    with torch.no_grad():
        x = _normalised(patched[None]).to(_model_dtype(model))
        logits = model(x)[0]
    return logits.to(torch.float32).numpy()


def softmax(logits: Any) -> np.ndarray:
    """Probabilities (float32, summing to 1) of a (10,) logit vector, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return (e / e.sum()).astype(np.float32)


def patch_probabilities(model: torch.nn.Module, image01: Any, row: int, col: int, size: int) -> np.ndarray:
    """Class probabilities (softmax of the logits) of the image with the patch at (row, col): one forward.

    model: a network taking (N, 1, 28, 28) normalised input and returning (N, 10) logits;
    image01: (28, 28) in [0, 1]; row, col, size: as :func:`occlude`. Returns (10,) float32 summing to 1.
    """
    return softmax(patch_logits(model, image01, row, col, size))


def occlusion_map(model: torch.nn.Module, image01: Any, target: int, size: int = 4, stride: int = 1,
                  ctx=None) -> np.ndarray:
    """Occlusion sensitivity of class ``target``: captum ``Occlusion`` with a black patch.

    Equals ``Occlusion(model).attribute(x, sliding_window_shapes=(1, size, size), strides=(1, stride,
    stride), baselines=BLACK, target=target)[0, 0]`` with x the normalised image (module docstring),
    within float32 rounding. Every window position is evaluated in batched forwards of :data:`CHUNK`
    images.

    model: (N, 1, 28, 28) normalised input -> (N, 10) logits; image01: (28, 28) in [0, 1];
    target: the class 0-9; size: window side in cells, MIN_SIZE .. MAX_SIZE; stride: cells, 1 .. size;
    ctx: a core.tasks.TaskContext or None -- ``ctx.check()`` before each chunk (raises Cancelled),
    ``ctx.progress(fraction)`` after it.

    Returns (28, 28) float32: per pixel, the mean drop of the target LOGIT over the windows covering it
    (positive: hiding this area lowers the class's score; negative: hiding it raises the score).
    Cost: (number of windows) / CHUNK forwards; (28 - size + 1)^2 windows at stride 1.
    Raises CnnvizError for bad arguments.
    """
    image = _check_image(image01)
    size = _check_size(size)
    target = _check_target(target)
    starts = window_starts(size, stride)
    positions = [(r, c) for r in starts for c in starts]
    dtype = _model_dtype(model)
    total = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    counts = np.zeros((INPUT_SIZE, INPUT_SIZE), np.float32)
    x = _normalised(image[None]).to(dtype)
    with torch.no_grad():
        if ctx is not None:
            ctx.check()
        base = model(x)[0, target]
        for first in range(0, len(positions), CHUNK):
            if ctx is not None:
                ctx.check()
            chunk = positions[first:first + CHUNK]
            batch = x.repeat(len(chunk), 1, 1, 1)
            for i, (r, c) in enumerate(chunk):
                batch[i, 0, r:r + size, c:c + size] = BLACK
            drops = (base - model(batch)[:, target]).to(torch.float32).numpy()
            for drop, (r, c) in zip(drops, chunk):
                total[r:r + size, c:c + size] += drop
                counts[r:r + size, c:c + size] += 1.0
            if ctx is not None:
                ctx.progress(min(first + CHUNK, len(positions)) / len(positions))
    return total / counts
