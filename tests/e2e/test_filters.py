"""The filters view: open it with its key, check every kernel is shown on one signed scale."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from cnnviz_desktop.core import colors
from cnnviz_desktop.core.filters import conv_filters, signed_scale


def test_filters_view_shows_every_kernel_on_one_scale(start_app, qtbot):
    owner = start_app()
    window = owner.window
    view = window.views["filters"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_4, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    grid = view.grid
    image = grid.grab().toImage()
    qtbot.waitUntil(lambda: len(grid.cells) > 0, timeout=5_000)
    weights = conv_filters(window.session.model)
    # tiny: conv1 8 kernels (1 input channel), conv2 2 filters x 8 input channels
    assert len(grid.cells) == sum(w.shape[0] * w.shape[1] for w in weights.values()) == 8 + 16
    scale = signed_scale(weights)
    assert scale == max(float(np.abs(w).max()) for w in weights.values())
    # The centre weight of a kernel is painted in its signed colour on the shared scale.
    name, o, i, rect = next(c for c in grid.cells if c[0] == "conv1")
    kernel = weights[name][o, i]
    expected = colors.signed_colors(kernel.reshape(-1), scale, "default")[4][:3]
    centre = rect.center().toPoint()
    painted = image.pixelColor(centre.x(), centre.y())
    assert np.allclose([painted.red(), painted.green(), painted.blue()], expected, atol=3)
