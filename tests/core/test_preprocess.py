"""Preprocessing: MNIST's own preparation of a drawn canvas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.preprocess import BLACK, MNIST_MEAN, MNIST_STD, normalise, preprocess
from cnnviz_desktop.core.training import predict_batches

from .test_analysis import stroke_canvas


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


def torch_resize(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return F.interpolate(torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None], size=size,
                         mode="bilinear", antialias=True, align_corners=False)[0, 0].numpy()


def test_numpy_resize_matches_torch_antialiased_bilinear():
    from cnnviz_desktop.core.preprocess import resize_antialiased

    rng = np.random.default_rng(11)
    sizes = [(h, w) for h in (1, 2, 3, 20, 21, 28, 40, 279, 280) for w in (1, 2, 7, 20, 150, 280)]
    sizes += [tuple(int(v) for v in rng.integers(1, 300, 2)) for _ in range(150)]
    worst = 0.0
    for i, (h, w) in enumerate(sizes):
        out = (int(rng.integers(1, 41)), int(rng.integers(1, 41)))
        if i % 7 == 0:
            out = (out[0], 1)  # one pixel wide: torch's height pass reuses row 0's filter for every row
        crop = rng.random((h, w), dtype=np.float32)
        if i % 3 == 1:
            crop = (crop > 0.8).astype(np.float32)  # hard-edged strokes
        got = resize_antialiased(crop, *out)
        assert got.shape == out and got.dtype == np.float32
        worst = max(worst, float(np.abs(got - torch_resize(crop, out)).max()))
    # Up- and down-scaling, 1-px lines and 280x280 canvases: float32 rounding order only.
    assert worst <= 1e-5, worst


def reference_preprocess(canvas: np.ndarray):
    """The torch implementation this module replaced: (resized image before placement, cy, cx, placement)."""
    array = np.nan_to_num(np.asarray(canvas, np.float32), nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    ink = array > 0.05
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, left = rows[0], cols[0]
    crop = array[top:rows[-1] + 1, left:cols[-1] + 1]
    h, w = crop.shape
    factor = 20 / max(h, w)
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))
    resized = np.clip(torch_resize(crop, (new_h, new_w)), 0.0, 1.0)
    mass = float(resized.sum())
    cy = float(resized.sum(axis=1) @ np.arange(new_h, dtype=np.float32)) / mass
    cx = float(resized.sum(axis=0) @ np.arange(new_w, dtype=np.float32)) / mass
    return resized, cy, cx, (int(top), int(left), new_h / h, new_w / w)


def test_preprocess_matches_the_torch_reference():
    rng = np.random.default_rng(5)
    shapes = [(28, 28), (280, 280), (100, 37), (64, 48)]
    digits = [[(8, 6), (20, 6), (13, 23)], [(17, 23), (17, 5), (7, 17), (21, 17)], [(14, 4), (9, 9), (14, 24), (19, 9)]]
    compared = 0
    for i in range(240):
        shape = shapes[i % 4]
        kind = i % 4
        if kind == 0:
            scale = np.array(shape[::-1]) / 28.0
            pts = [tuple(np.array(p) * scale + rng.normal(0, 0.3, 2)) for p in digits[i % 3]]
            canvas = stroke_canvas(pts, shape=shape, width=float(rng.uniform(1, 8)))
        elif kind == 1:
            canvas = np.zeros(shape, np.float32)
            y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            canvas[y:y + rng.integers(1, shape[0]), x:x + rng.integers(1, 4)] = rng.random((1, 1)) + 0.06  # thin lines
        elif kind == 2:
            canvas = rng.random(shape, dtype=np.float32) * (rng.random(shape) > 0.97)
        else:
            canvas = rng.standard_normal(shape).astype(np.float32)
            canvas[rng.random(shape) > 0.99] = np.nan
            canvas[rng.random(shape) > 0.995] = np.inf
        out = preprocess(canvas)
        resized, cy, cx, (top, left, sy, sx) = reference_preprocess(canvas)
        assert (out.top, out.left, out.scale_y, out.scale_x) == (top, left, sy, sx)
        for shift, centre in ((out.offset_y, cy), (out.offset_x, cx)):
            if abs((14.0 - centre) % 1.0 - 0.5) > 1e-4:  # exact ties (symmetric ink) follow rounding noise
                assert shift == int(round(14.0 - centre))
        # The pasted digit is the reference's resized crop at the chosen placement.
        expected = np.zeros((28, 28), np.float32)
        oy, ox = out.offset_y, out.offset_x
        y0, x0 = max(oy, 0), max(ox, 0)
        y1, x1 = min(oy + resized.shape[0], 28), min(ox + resized.shape[1], 28)
        expected[y0:y1, x0:x1] = resized[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        assert np.abs(out.image - expected).max() <= 1e-5
        compared += 1
    assert compared == 240


def test_tensor_is_made_on_first_use_and_kept():
    canvas = np.zeros((28, 28), np.float32)
    canvas[4:20, 10:14] = 1.0
    out = preprocess(canvas)
    assert out._tensor is None  # the analysis engine never pays for it
    first = out.tensor
    assert first is out.tensor  # computed once
    assert torch.equal(first, normalise(out.image))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.image = None


def test_preprocess_leaves_the_canvas_alone():
    canvas = np.full((30, 30), np.nan, np.float32)
    canvas[5:25, 12:16] = 2.0
    before = canvas.copy()
    out = preprocess(canvas)
    assert np.array_equal(canvas, before, equal_nan=True)
    assert np.isfinite(out.image).all() and out.image.max() <= 1.0
