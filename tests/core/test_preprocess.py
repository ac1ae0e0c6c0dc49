"""Preprocessing: MNIST's own preparation of a drawn canvas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.preprocess import BLACK, MNIST_MEAN, MNIST_STD, normalise, preprocess
from cnnviz_desktop.core.training import predict_batches


@pytest.mark.parametrize("shape", [(28, 28), (280, 280), (100, 37)])
def test_empty_canvas_is_nothing_drawn(shape):
    assert preprocess(np.zeros(shape, np.float32)) is None
    # Faint fringes below the ink threshold are not a drawing either; NaN is not ink.
    faint = np.full(shape, 0.01, np.float32)
    faint[0, 0] = np.nan
    assert preprocess(faint) is None


def test_rejects_non_2d():
    with pytest.raises(CnnvizError):
        preprocess(np.zeros((3, 28, 28)))


def test_box_centre_of_mass_and_normalisation():
    canvas = np.zeros((280, 280), np.float32)
    canvas[30:130, 200:240] = 1.0  # a 100x40 bar in the top-right corner
    out = preprocess(canvas)
    img = out.image
    rows, cols = np.flatnonzero(img.any(1) > 0), np.flatnonzero(img.any(0) > 0)
    assert rows[-1] - rows[0] + 1 == 20  # longest side scaled to 20 px
    assert 7 <= cols[-1] - cols[0] + 1 <= 9  # aspect ratio kept (40/100 * 20 = 8)
    ys, xs = np.mgrid[:28, :28]
    assert abs((img * ys).sum() / img.sum() - 14) <= 0.5 + 1e-4  # integer placement
    assert abs((img * xs).sum() / img.sum() - 14) <= 0.5 + 1e-4  # integer placement
    assert out.tensor.shape == (1, 1, 28, 28) and out.tensor.dtype == torch.float32
    assert torch.allclose(out.tensor[0, 0], (torch.from_numpy(img) - MNIST_MEAN) / MNIST_STD)
    assert float(out.tensor.min()) == pytest.approx(BLACK)


def test_tiny_dot_and_single_line_are_defined():
    canvas = np.zeros((28, 28), np.float32)
    canvas[5, 5] = 1.0
    assert np.isfinite(preprocess(canvas).image).all()
    canvas[:, 10] = 1.0
    out = preprocess(canvas)
    assert np.isfinite(out.tensor.numpy()).all() and out.image.max() > 0


def test_to_canvas_maps_back_onto_the_drawing():
    canvas = np.zeros((28, 28), np.float32)
    canvas[2:12, 15:20] = 1.0  # a small block off-centre
    out = preprocess(canvas)
    back = out.to_canvas(out.image)
    assert back.shape == (28, 28)
    # The resampled digit lies where it was drawn.
    inside = back[2:12, 15:20].mean()
    outside = back[np.ones_like(canvas, bool) & (canvas == 0)].mean()
    assert inside > 0.5 and outside < 0.1


def render_on_canvas(digit: np.ndarray, rng: np.random.Generator, size: int = 280) -> np.ndarray:
    """Redraw an MNIST digit at a random size (40-90% of the canvas) and position."""
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    crop = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    target = int(rng.uniform(0.4, 0.9) * size)
    factor = target / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * factor)), max(1, round(crop.shape[1] * factor))
    big = F.interpolate(torch.from_numpy(crop)[None, None], size=(h, w), mode="bilinear",
                        align_corners=False)[0, 0].numpy()
    canvas = np.zeros((size, size), np.float32)
    top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    canvas[top:top + h, left:left + w] = big
    return canvas


def test_redrawn_test_digits_keep_accuracy(mnist_test, tiny):
    n = 3000
    rng = np.random.default_rng(7)
    images = mnist_test.images[:n]
    labels = mnist_test.labels[:n]
    original = (predict_batches(tiny.model, images).argmax(1) == labels).mean()
    redrawn = np.stack([preprocess(render_on_canvas(img.astype(np.float32) / 255, rng)).image for img in images])
    with torch.no_grad():
        probs = torch.softmax(tiny.model(normalise(redrawn)), 1).numpy()
    accuracy = (probs.argmax(1) == labels).mean()
    assert accuracy >= original - 0.015, (original, accuracy)
