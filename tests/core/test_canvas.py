"""The drawing model: brush, eraser, undo/redo by stroke; receptive fields for the picking highlight."""

from __future__ import annotations

import numpy as np

from cnnviz_desktop.core.architecture import ARCHITECTURES, describe, receptive_field
from cnnviz_desktop.core.canvas import CanvasModel, builtin_digit
from cnnviz_desktop.core.preprocess import preprocess


def draw(model: CanvasModel, points, erase=False):
    model.begin_stroke(*points[0], erase=erase)
    for p in points[1:]:
        model.extend_stroke(*p)
    model.end_stroke()


def test_stroke_paints_a_continuous_antialiased_line():
    m = CanvasModel()
    draw(m, [(14.0, 4.0), (14.0, 24.0)])
    column = m.pixels[:, 13]
    assert (column[5:23] == 1.0).all()  # no gaps however fast the pointer moved
    edge = m.pixels[14, 11:17]
    assert ((edge > 0) & (edge < 1)).any()  # anti-aliased edge cells
    assert m.pixels[14, 2] == 0 and m.pixels[14, 25] == 0
    assert m.pixels.dtype == np.float32 and m.pixels.max() <= 1.0


def test_erase_undo_redo_by_stroke():
    m = CanvasModel()
    draw(m, [(14.0, 4.0), (14.0, 24.0)])
    after_first = m.pixels.copy()
    draw(m, [(4.0, 14.0), (24.0, 14.0)])
    draw(m, [(14.0, 10.0), (14.0, 18.0)], erase=True)
    assert m.pixels[14, 13] == 0
    assert m.undo() and m.undo()
    assert np.array_equal(m.pixels, after_first)
    assert m.redo()
    assert m.pixels[14, 5] == 1.0
    m.undo()
    assert m.undo() and m.is_empty and not m.can_undo and not m.undo()


def test_clear_is_undoable_and_empty_clear_is_not_a_step():
    m = CanvasModel()
    assert not m.clear() and not m.can_undo
    draw(m, builtin_digit("zero")[0])
    drawn = m.pixels.copy()
    assert m.clear() and m.is_empty
    assert m.undo() and np.array_equal(m.pixels, drawn)


def test_erasing_nothing_adds_no_undo_step():
    m = CanvasModel()
    draw(m, [(3.0, 3.0), (5.0, 5.0)], erase=True)
    assert not m.can_undo


def test_pressure_thins_the_stroke():
    light, heavy = CanvasModel(), CanvasModel()
    light.begin_stroke(14, 14, pressure=0.1)
    heavy.begin_stroke(14, 14, pressure=1.0)
    assert light.pixels.sum() < heavy.pixels.sum()


def test_receptive_fields_follow_the_wiring():
    specs = describe(ARCHITECTURES["tiny"])
    assert receptive_field(specs, "conv1", (0, 0, 0)) == (0, 0, 3, 3)
    assert receptive_field(specs, "pool1", (0, 1, 1)) == (2, 2, 6, 6)
    # A 5x5 cell i covers input pixels 4i .. 4i+9: centred on 4i+4.5 (ARCHITECTURE.md section 4).
    assert receptive_field(specs, "pool2", (1, 2, 3)) == (8, 12, 18, 22)
    assert receptive_field(specs, "dense1", (0,)) == (0, 0, 28, 28)
    assert receptive_field(specs, "pool2", (2, 0, 0)) is None
    assert receptive_field(specs, "nope", (0,)) is None


def test_box_to_canvas_inverts_the_placement():
    canvas = np.zeros((28, 28), np.float32)
    canvas[4:24, 2:12] = 1.0  # a 20x10 block: scale 1, moved right to centre its mass
    prepared = preprocess(canvas)
    rows, cols = np.flatnonzero(prepared.image.any(1)), np.flatnonzero(prepared.image.any(0))
    box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    assert prepared.box_to_canvas(box) == (4, 2, 24, 12)
