"""A digit drawn with the mouse on the real window reads the same whatever size it is drawn at."""

from __future__ import annotations

import math

import numpy as np

from cnnviz_desktop.core.strokes import fit_to_canvas, rasterise
from cnnviz_desktop.ui.input_sim import drag


def _loop(cx, cy, rx, ry, a0, a1, n):
    return [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in np.linspace(a0, a1, n)]


# The loop digits whose loops filled in when drawn small (cell units on the 28x28 grid).
DIGITS = {
    6: [[(16.0, 3.0), (11.0, 8.0), (8.5, 14.0), (8.5, 19.0), (11.0, 23.5), (15.0, 24.5), (18.5, 22.0),
         (19.5, 18.0), (17.5, 14.5), (13.5, 14.0), (10.0, 16.5), (8.5, 19.0)]],
    8: [[(14 + 5.0 * math.sin(2 * t) * (1.0 if math.cos(t) > 0 else 1.2), 14 - 10 * math.cos(t))
         for t in np.linspace(0, 2 * math.pi, 60)]],
    9: [[(19.0, 9.0)] + _loop(14, 9, 5, 5, math.pi / 2, -3 * math.pi / 2, 36)
        + [(19.0, 9.0), (18.5, 16.0), (17.5, 24.0)]],
}
SIZES = (0.5, 0.65, 0.8)


def settle(qtbot, window):
    qtbot.waitUntil(lambda: window.snapshot is not None and window.snapshot.request_id == window.last_request_id,
                    timeout=30_000)
    return window.snapshot


def test_mouse_drawn_digits_read_alike_at_every_size(start_app, qtbot):
    window = start_app().window
    for digit, lines in DIGITS.items():
        predicted, inputs = [], []
        for fraction in SIZES:
            window.clear_canvas()
            for line in fit_to_canvas([np.array(line) for line in lines], fraction):
                drag(window.canvas, [(float(x), float(y)) for x, y in line], steps=2)
            snap = settle(qtbot, window)
            model = window.canvas.model
            # The network saw the strokes the mouse drew, redrawn at the digit's size.
            assert len(model.strokes) == len(lines)
            expected = rasterise(model.strokes, model.pixels.shape).image
            assert np.array_equal(snap.activations["input"][0], expected)
            predicted.append(snap.predicted)
            inputs.append(snap.activations["input"][0])
        assert predicted == [digit] * len(SIZES), (digit, predicted)
        # Same stroke width relative to the digit at every size (the pixels path differed by > 15 %).
        masses = [float(x.sum()) for x in inputs]
        assert max(masses) < 1.05 * min(masses), (digit, masses)
        assert min(float(np.corrcoef(inputs[0].ravel(), x.ravel())[0, 1]) for x in inputs) > 0.95
