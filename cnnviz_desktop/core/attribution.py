"""Gradient attributions of one drawing (saliency, gradient x input) and how much two maps agree.

Everything here is about the NETWORK INPUT: ``image01`` is the preprocessed (28, 28) image in [0, 1]
(``snapshot.activations['input'][0]``) and the network sees x = (image01 - 0.1307) / 0.3081. The
gradient is taken with respect to that normalised x, of the class LOGIT (not a probability, which
saturates), exactly as captum does when it is given the same model and the same normalised input:

- :func:`saliency`: ``|d logit[target] / d x|`` = captum ``Saliency(model).attribute(x, target=c, abs=True)``.
- :func:`input_x_gradient`: ``x * d logit[target] / d x`` = captum ``InputXGradient(model).attribute(x, target=c)``.

Both cost one forward and one backward pass (about a millisecond for tiny/wide on one core); they run on
whatever thread calls them and never touch the parameters' ``.grad`` (``torch.autograd.grad`` with
respect to the input only), so the analysis worker and a background lane may share one model.

What background (no ink) means: a black pixel is x = (0 - 0.1307) / 0.3081 = -0.4242, not 0. Its
saliency is the local sensitivity there (ink added at a sensitive empty spot would change the score),
and its gradient x input is -0.4242 * gradient, NOT zero: gradient x input measures the pixel against an
all-zero normalised image (uniform grey), so blank paper gets credit or blame too.

Torch is imported lazily (analysis.py imports this module without loading torch); :func:`agreement`
and :func:`rank_correlation` are numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CnnvizError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
SIZE = 28
NUM_CLASSES = 10
# Saliency / gradient x input names as AnalysisOptions.extras and Session.need use them.
EXTRAS = ("saliency", "inputxgrad")
TOP_FRACTION = 0.1


def _module(model: Any):
    """The torch module of a weights.LoadedModel (``.model``), or the module itself."""
    inner = getattr(model, "model", None)
    return inner if inner is not None and callable(inner) else model


def _image(image01: Any) -> np.ndarray:
    image = np.asarray(image01, dtype=np.float32)
    if image.shape == (1, SIZE, SIZE):
        image = image[0]
    if image.shape != (SIZE, SIZE):
        raise CnnvizError(f"an attribution needs the preprocessed {SIZE}x{SIZE} image, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise CnnvizError("the image holds NaN or infinite values; preprocess the drawing first")
    return image


def _class(value: Any, label: str) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= int(value) < NUM_CLASSES:
        raise CnnvizError(f"{label} must be a class 0-{NUM_CLASSES - 1}, got {value!r}")
    return int(value)


def normalise(image01: np.ndarray) -> np.ndarray:
    """(28, 28) float32 x = (image01 - 0.1307) / 0.3081, the input the network sees (black = -0.4242)."""
    return (_image(image01) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)


def input_gradient(model: Any, image01: np.ndarray, target: int, contrast: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(gradient, x), both (28, 28) float32: d score / d x and the normalised input x.

    score = logit[target], or logit[target] - logit[contrast] ('why target rather than contrast').
    model: a ConvNet (input (N, 1, 28, 28) normalised -> (N, 10) logits) or a weights.LoadedModel;
    image01: (28, 28) (or (1, 28, 28)) preprocessed image in [0, 1]. One forward + one backward pass,
    gradients enabled even if the caller is inside ``torch.no_grad()``; the parameters' .grad is not
    touched. Raises CnnvizError for a bad image or class.
    """
    import torch

    module = _module(model)
    target = _class(target, "target")
    contrast = None if contrast is None else _class(contrast, "contrast")
    x_np = normalise(image01)
    with torch.enable_grad():
        x = torch.from_numpy(x_np.copy())[None, None].requires_grad_(True)
        logits = module(x)[0]
        score = logits[target] if contrast is None or contrast == target else logits[target] - logits[contrast]
        (grad,) = torch.autograd.grad(score, x)
    return grad[0, 0].detach().numpy().astype(np.float32, copy=False), x_np


def saliency(model: Any, image01: np.ndarray, target: int, contrast: int | None = None) -> np.ndarray:
    """(28, 28) float32 >= 0: |d logit[target] / d x|, x the normalised input (captum's Saliency, abs=True).

    Large where a small change of ink would change the class score most; unsigned (it does not say in
    which direction). Background pixels (x = -0.4242) have a saliency too: sensitivity, not evidence.
    With ``contrast`` the score is logit[target] - logit[contrast]. Units: logit per normalised unit.
    """
    grad, _ = input_gradient(model, image01, target, contrast)
    return np.abs(grad)


def input_x_gradient(model: Any, image01: np.ndarray, target: int, contrast: int | None = None) -> np.ndarray:
    """(28, 28) float32 signed: x * d logit[target] / d x, x the normalised input (captum's InputXGradient).

    Positive: this pixel's value, compared with x = 0 (uniform grey, not black), pushes the score up;
    negative: down. It is NOT zero off the ink: there x = -0.4242, so blank paper is scored as 'darker
    than grey' and gets -0.4242 * gradient. With ``contrast`` the score is logit[target] -
    logit[contrast]. Units: logits (a first-order estimate of each pixel's share of the score).
    """
    grad, x = input_gradient(model, image01, target, contrast)
    return (x * grad).astype(np.float32, copy=False)


def gradient_maps(model: Any, image01: np.ndarray, target: int, contrast: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(saliency, input_x_gradient), both (28, 28) float32, from ONE forward + backward pass."""
    grad, x = input_gradient(model, image01, target, contrast)
    return np.abs(grad), (x * grad).astype(np.float32, copy=False)


def top_cells(values: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Bool mask (same shape) of the cells whose |value| is among the largest ``fraction`` of all cells.

    Ties at the threshold are all kept and zero cells never count, so a map with fewer non-zero cells
    than the quota (Grad-CAM outside its footprint, occlusion of empty corners) marks only those.
    """
    magnitude = np.abs(np.asarray(values, dtype=np.float64)).reshape(-1)
    if not np.isfinite(magnitude).all():
        raise CnnvizError("a map to compare holds NaN or infinite values")
    k = max(1, int(round(float(fraction) * magnitude.size)))
    threshold = np.partition(magnitude, magnitude.size - k)[magnitude.size - k]
    mask = (magnitude >= threshold) & (magnitude > 0)
    return mask.reshape(np.shape(values))


def agreement(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """How much two maps of the same grid agree: overlap (intersection over union) of their top cells.

    a, b: maps of the same shape, e.g. (28, 28) on the network input; each marks the ``fraction``
    (default 10%) of cells with the largest |value| (:func:`top_cells`). Magnitude, not sign, because
    the methods do not share a sign convention (saliency has none). Returns a float in [0, 1]: 1 = the
    same cells, 0 = disjoint or a map with no non-zero cell; two independent random 10% selections of
    784 cells score about 0.05.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise CnnvizError(f"maps to compare must have the same shape, got {a.shape} and {b.shape}")
    top_a, top_b = top_cells(a, fraction), top_cells(b, fraction)
    union = int((top_a | top_b).sum())
    return 0.0 if union == 0 else float((top_a & top_b).sum()) / union


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of |a| and |b| over every cell (ties get their average rank), in [-1, 1].

    0.0 when either map is constant (no ranking to compare). a, b: same shape.
    """
    a = np.abs(np.asarray(a, dtype=np.float64)).reshape(-1)
    b = np.abs(np.asarray(b, dtype=np.float64)).reshape(-1)
    if a.shape != b.shape:
        raise CnnvizError(f"maps to compare must have the same shape, got {a.shape} and {b.shape}")
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return 0.0 if denominator == 0.0 else float((ra * rb).sum() / denominator)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (0-based) of a 1-D array, ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.append(first, values.size))
    mean_rank = first + (counts - 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks
