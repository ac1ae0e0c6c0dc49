"""Strokes kept by the canvas, and their size-normalised rasterisation for the network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer
from cnnviz_desktop.core.canvas import CanvasModel, builtin_digit
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.preprocess import preprocess
from cnnviz_desktop.core.strokes import (
    Stroke,
    drawn_digit,
    fit_to_canvas,
    rasterise,
    thin,
    trace,
)

SIX = [[(16.0, 3.0), (11.0, 8.0), (8.5, 14.0), (8.5, 19.0), (11.0, 23.5), (15.0, 24.5), (18.5, 22.0),
        (19.5, 18.0), (17.5, 14.5), (13.5, 14.0), (10.0, 16.5), (8.5, 19.0)]]


def draw(model: CanvasModel, lines, erase=False):
    for line in lines:
        model.begin_stroke(*line[0], erase=erase)
        for p in line[1:]:
            model.extend_stroke(*p)
        model.end_stroke()
    return model


def scaled(lines, fraction):
    return [[tuple(p) for p in line] for line in fit_to_canvas([np.array(line) for line in lines], fraction)]


def corr(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# --- the canvas keeps strokes -------------------------------------------------------------------

def test_canvas_records_strokes_with_time_pressure_and_erase():
    m = CanvasModel()
    m.begin_stroke(5.0, 6.0, pressure=0.4, t=10.0)
    m.extend_stroke(7.0, 8.0, t=10.5)
    assert m.in_stroke and len(m.strokes) == 1 and len(m.strokes[0]) == 2  # the live stroke is included
    m.end_stroke()
    m.begin_stroke(6.0, 7.0, erase=True)
    m.end_stroke()
    (ink, eraser) = m.strokes
    assert ink.points.dtype == np.float32 and ink.points.shape == (2, 4)
    assert ink.x.tolist() == [5.0, 7.0] and ink.y.tolist() == [6.0, 8.0] and ink.t.tolist() == [10.0, 10.5]
    assert ink.pressure[0] == pytest.approx(0.4) and not ink.erase and ink.radius == m.radius
    assert eraser.erase and eraser.t[0] > 0  # time.monotonic() when not given
    with pytest.raises(ValueError):
        ink.points[0, 0] = 1.0  # immutable copies
    with pytest.raises(dataclasses.FrozenInstanceError):
        ink.erase = True


def test_undo_redo_clear_keep_strokes_and_pixels_together():
    m = CanvasModel()
    draw(m, [[(14.0, 4.0), (14.0, 24.0)]])
    one = (m.pixels.copy(), m.strokes)
    draw(m, [[(4.0, 14.0), (24.0, 14.0)]])
    two = (m.pixels.copy(), m.strokes)
    assert len(two[1]) == 2 and two[1][0] is one[1][0]
    assert m.undo() and np.array_equal(m.pixels, one[0]) and m.strokes == one[1]
    assert m.redo() and np.array_equal(m.pixels, two[0]) and m.strokes == two[1]
    assert m.clear() and m.strokes == () and m.is_empty
    assert m.undo() and m.strokes == two[1] and np.array_equal(m.pixels, two[0])
    # Erasing nothing is no step and no stroke.
    draw(m, [[(1.0, 1.0), (2.0, 1.0)]], erase=True)
    assert m.strokes == two[1]
    # Erasing everything leaves an empty drawing.
    draw(m, [[(x, y) for y in np.arange(0.0, 29.0, 1.0) for x in (0.0, 28.0)]], erase=True)
    m2 = CanvasModel()
    m2.radius = 4.0
    draw(m2, [[(14.0, 4.0), (14.0, 24.0)]])
    m2.radius = 4.0
    draw(m2, [[(14.0, 0.0), (14.0, 28.0)]], erase=True)
    assert m2.is_empty and m2.strokes == ()


def test_a_loaded_image_has_no_strokes_until_undone():
    m = draw(CanvasModel(), SIX)
    drawn = m.strokes
    image = np.zeros((28, 28), np.float32)
    image[5:20, 12:15] = 1.0
    m.set_pixels(image)
    assert m.strokes is None
    draw(m, [[(3.0, 3.0), (9.0, 3.0)]])  # drawing on a loaded image: still not made of strokes only
    assert m.strokes is None
    assert m.undo() and m.undo() and m.strokes == drawn
    m.set_pixels(np.zeros((28, 28)))
    assert m.strokes == ()


# --- the rasteriser -----------------------------------------------------------------------------

def test_the_same_digit_at_different_sizes_gives_nearly_the_same_input():
    for lines in (SIX, builtin_digit("seven"), builtin_digit("zero")):
        small = draw(CanvasModel(), scaled(lines, 0.5))
        large = draw(CanvasModel(), scaled(lines, 0.8))
        a, b = rasterise(small.strokes, (28, 28)), rasterise(large.strokes, (28, 28))
        assert corr(a.image, b.image) > 0.95
        assert abs(a.image.sum() - b.image.sum()) < 0.05 * b.image.sum()  # the same stroke width
        # The pixels path makes the small one's strokes thicker relative to its size.
        pa, pb = preprocess(small.pixels), preprocess(large.pixels)
        assert pa.image.sum() > 1.15 * pb.image.sum()


def test_rasterised_digit_is_mnist_shaped_and_placed_on_the_canvas():
    m = draw(CanvasModel(), scaled(SIX, 0.5))
    out = rasterise(m.strokes, m.pixels.shape)
    img = out.image
    assert img.shape == (28, 28) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1.0
    assert img.max() == 1.0 and ((img > 0) & (img < 1)).any()  # solid core, anti-aliased rim
    ys, xs = np.nonzero(img > 0.05)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (20, 21, 22)  # fitted to the 20 px box
    mass = img.sum()
    cy, cx = (img.sum(1) @ np.arange(28)) / mass, (img.sum(0) @ np.arange(28)) / mass
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    # The placement maps the input back onto the canvas cells the ink covers.
    back = out.to_canvas(img)
    ink = m.pixels > 0.5
    assert back[ink].mean() > 0.5 and back[~ink & (m.pixels == 0)].mean() < 0.1
    rows, cols = np.nonzero(ink)
    top, left, bottom, right = out.box_to_canvas((0, 0, 28, 28))
    assert top <= rows.min() and left <= cols.min() and bottom > rows.max() and right > cols.max()


def test_erasers_cut_with_their_own_width_and_shrink_the_box():
    m = draw(CanvasModel(), [[(4.0, 14.0), (24.0, 14.0)], [(14.0, 9.0), (14.0, 19.0)]])
    full = rasterise(m.strokes, (28, 28))
    draw(m, [[(19.0, 14.0), (26.0, 14.0)]], erase=True)  # cut off the bar's right end
    cut = rasterise(m.strokes, (28, 28))
    # The visible digit is narrower now, so it is scaled up to fill the box.
    assert cut.scale_x > 1.1 * full.scale_x
    _, xs = np.nonzero(cut.image > 0.5)  # the faint rim an eraser leaves (as on the canvas) aside
    assert xs.max() - xs.min() + 1 in (19, 20, 21)
    m2 = draw(CanvasModel(), [[(14.0, 4.0), (14.0, 24.0)]])
    draw(m2, [[(14.0, 12.0), (14.0, 16.0)]], erase=True)
    gap = rasterise(m2.strokes, (28, 28))
    column = gap.image[:, 13:16].max(axis=1)
    assert column.min() < 0.05 and column.max() == 1.0  # a hole in the middle of the line


def test_pressure_thins_the_rasterised_pen():
    light, heavy = CanvasModel(), CanvasModel()
    for m, p in ((light, 0.1), (heavy, 1.0)):
        m.begin_stroke(14.0, 4.0, pressure=p)
        m.extend_stroke(14.0, 24.0, pressure=p)
        m.end_stroke()
    assert rasterise(light.strokes, (28, 28)).image.sum() < 0.8 * rasterise(heavy.strokes, (28, 28)).image.sum()


@pytest.mark.parametrize("points", [
    [(np.nan, 3.0, 0.0, 1.0), (5.0, np.nan, 0.1, 1.0)],
    [(np.inf, -np.inf, 0.0, 1.0)],
    [(1e30, 1e30, 0.0, 1.0), (-1e30, 5.0, 0.1, 1.0)],
    [(3e38, -3e38, 0.0, np.nan), (14.0, 14.0, 0.1, np.inf)],
    [(14.0, 14.0, 0.0, 1.0)],
    [(14.0, 14.0, 0.0, 1.0), (14.0, 14.0, 0.1, 1.0), (14.0, 14.0, 0.2, -5.0)],
    [(-50.0, -50.0, 0.0, 1.0), (-40.0, -60.0, 0.0, 1.0)],
    [(-10.0, 14.0, 0.0, 1.0), (40.0, 14.0, 0.0, 1.0)],
    [],
])
def test_hostile_strokes_never_crash(points):
    stroke = Stroke(np.array(points, np.float32).reshape(-1, 4))
    for strokes in ((stroke,), (stroke, Stroke(stroke.points, erase=True)),
                    (Stroke([(14, 4, 0, 1), (14, 24, 0, 1)]), Stroke(stroke.points, erase=True, radius=np.inf)),
                    (Stroke([(14, 4, 0, 1), (14, 24, 0, 1)]), Stroke(stroke.points, erase=True, radius=np.nan))):
        out = rasterise(strokes, (28, 28))
        assert out is None or (np.isfinite(out.image).all() and 0 <= out.image.min() and out.image.max() <= 1)
        if out is not None:
            assert np.isfinite(out.to_canvas(out.image)).all()
            out.box_to_canvas((0, 0, 28, 28))


def test_hostile_input_through_the_canvas_and_the_analysis(tiny):
    m = CanvasModel()
    m.begin_stroke(np.nan, np.nan)
    m.extend_stroke(5.0, 5.0, pressure=np.nan)
    m.extend_stroke(np.inf, 5.0)
    m.extend_stroke(1e30, -1e30)
    m.extend_stroke(9.0, 20.0)
    m.end_stroke()
    m.begin_stroke(20.0, 20.0)  # a single point (a dot)
    m.end_stroke()
    rng = np.random.default_rng(0)
    m.begin_stroke(14.0, 14.0)
    for x, y in rng.uniform(2, 26, (10_000, 2)):  # 10,000 points
        m.extend_stroke(float(x), float(y))
    m.end_stroke()
    assert np.isfinite(m.pixels).all()
    assert all(np.isfinite(s.points).all() for s in m.strokes)
    analyzer = Analyzer(tiny)
    snap = analyzer.analyse(AnalysisRequest(1, m.pixels.copy(), strokes=m.strokes))
    assert not snap.empty and np.isfinite(snap.probabilities).all()
    with pytest.raises(CnnvizError, match="strokes"):
        analyzer.analyse(AnalysisRequest(2, m.pixels.copy(), strokes=("not a stroke",)))


def test_analysis_uses_strokes_when_given_and_pixels_otherwise(tiny):
    analyzer = Analyzer(tiny)
    m = draw(CanvasModel(), scaled(SIX, 0.5))
    with_strokes = analyzer.analyse(AnalysisRequest(1, m.pixels.copy(), strokes=m.strokes))
    without = analyzer.analyse(AnalysisRequest(2, m.pixels.copy()))
    assert np.array_equal(with_strokes.activations["input"][0], rasterise(m.strokes, (28, 28)).image)
    assert np.array_equal(without.activations["input"][0], preprocess(m.pixels).image)
    # The Grad-CAM overlay on the canvas follows the strokes' placement.
    assert with_strokes.canvas_cam.shape == (28, 28) and with_strokes.placement.scale_y != without.placement.scale_y
    # All ink erased: empty, whatever the strokes say.
    empty = analyzer.analyse(AnalysisRequest(3, np.zeros((28, 28), np.float32), strokes=m.strokes))
    assert empty.empty


# --- building drawn digits from images ----------------------------------------------------------

def test_thinning_and_tracing_give_one_pixel_wide_connected_polylines():
    image = np.zeros((28, 28), bool)
    image[6:22, 12:16] = True  # a thick bar
    skeleton = thin(image)
    assert 8 <= skeleton.sum() <= 16 and skeleton[:, :12].sum() == 0
    ring = np.zeros((28, 28), bool)
    yy, xx = np.mgrid[0:28, 0:28]
    ring[(np.hypot(yy - 14, xx - 14) > 5) & (np.hypot(yy - 14, xx - 14) < 8)] = True
    lines = trace(thin(ring))
    assert len(lines) == 1 and np.hypot(*(lines[0][0] - lines[0][-1])) < 1.5  # a closed loop
    radius = np.hypot(lines[0][:, 0] - 14.5, lines[0][:, 1] - 14.5)
    assert 5 < radius.mean() < 8
    six = drawn_digit(rasterise(draw(CanvasModel(), SIX).strokes, (28, 28)).image)
    assert 1 <= len(six) <= 3


@pytest.mark.data
def test_drawn_digits_read_the_same_at_every_size(mnist_test, wide):
    """300 digits traced from t10k skeletons, drawn at 50 / 65 / 80 % of the grid: the strokes path
    reads them alike (the old pixels path loses accuracy on the small ones for tiny)."""
    import torch

    from cnnviz_desktop.core.preprocess import normalise

    labels = mnist_test.labels
    idx = np.concatenate([np.flatnonzero(labels == d)[200:230] for d in range(10)])
    traced = [drawn_digit(mnist_test.images[i] / 255.0) for i in idx]
    accuracy = {}
    for fraction in (0.5, 0.65, 0.8):
        inputs = []
        for lines in traced:
            m = CanvasModel()
            for line in fit_to_canvas(lines, fraction):
                m.begin_stroke(*line[0])
                for x, y in line[1:]:
                    m.extend_stroke(float(x), float(y))
                m.end_stroke()
            inputs.append(rasterise(m.strokes, m.pixels.shape).image)
        with torch.no_grad():
            predicted = wide.model(normalise(np.stack(inputs))).argmax(1).numpy()
        accuracy[fraction] = float((predicted == labels[idx]).mean())
    assert min(accuracy.values()) >= 0.9, accuracy
    assert max(accuracy.values()) - min(accuracy.values()) <= 0.03, accuracy


def test_ink_dragged_off_the_canvas_does_not_count():
    inside = draw(CanvasModel(), [[(8.0, 4.0), (14.0, 4.0), (14.0, 28.0)]])
    beyond = draw(CanvasModel(), [[(8.0, 4.0), (14.0, 4.0), (14.0, 60.0), (-30.0, 60.0)]])
    assert np.array_equal(inside.pixels, beyond.pixels)
    a, b = rasterise(inside.strokes, (28, 28)), rasterise(beyond.strokes, (28, 28))
    assert np.abs(a.image - b.image).max() < 1e-5 and a.scale_y == pytest.approx(b.scale_y)
