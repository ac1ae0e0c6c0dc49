"""The feature-maps view, driven as a person would: open it (Alt+3), draw, click a map."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle


def test_feature_maps_show_the_drawing_and_a_click_selects_the_channel(start_app, qtbot):
    window = start_app().window
    view = window.views["feature_maps"]
    assert not view.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    maps = view.maps
    qtbot.waitUntil(lambda: len(maps.tiles) > 0, timeout=5_000)
    # One tile per channel of every conv and pool layer, labelled.
    expected = sum(s.shape[0] for s in window.session.specs if s.kind in ("conv", "pool"))
    assert len(maps.tiles) == expected
    # What is painted is the layer's activation: the brightest tile of conv1 is its most active channel.
    image = maps.grab().toImage()
    conv1 = [(c, r) for name, c, r in maps.tiles if name == "conv1"]
    brightness = []
    for c, rect in conv1:
        centre = rect.center().toPoint()
        brightness.append(sum(image.pixelColor(centre.x() + dx, centre.y() + dy).value()
                              for dx in range(-8, 9, 4) for dy in range(-8, 9, 4)))
    active = np.asarray(snap.activations["conv1"]).reshape(len(conv1), -1).mean(axis=1)
    assert int(np.argmax(active)) in np.argsort(brightness)[-3:]
    # A click on channel 1 of the Grad-CAM layer selects it for the overlay and picks a neuron.
    name, channel, rect = next(t for t in maps.tiles if t[0] == "pool2" and t[1] == 1)
    maps.ensurePolished()
    qtbot.mouseClick(maps, Qt.MouseButton.LeftButton, pos=QPoint(round(rect.center().x()), round(rect.center().y())))
    assert window.session.channel == 1 and window.action("channel_1").isChecked()
    assert window.session.picked[0] == "pool2" and window.session.picked[1][0] == 1
