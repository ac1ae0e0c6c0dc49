"""Activation surfaces in the real window: press U, draw, the maps' surfaces show the snapshot's activations;
another stroke re-heights them without a geometry rebuild; U again brings the cubes back."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from cnnviz_desktop.core import surfaces
from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle


def _map_layers(panel):
    return [n for n, b in panel.layout_.layers.items() if b.kind in ("conv", "pool")]


def _assert_surfaces_show(panel, snap):
    for name in _map_layers(panel):
        grid = panel.surface_grid(name)
        expected = surfaces.surface_heights(grid, snap.activations[name])
        np.testing.assert_allclose(panel.surface_heights(name), expected, rtol=1e-6)
        item = panel.surface_items[name]
        np.testing.assert_allclose(item.heights, expected, rtol=1e-6)
        np.testing.assert_array_equal(item.colors(), surfaces.surface_colors(grid, snap.activations[name],
                                                                             panel.palette_name))
        assert item.visible()


def test_surface_mode_follows_the_drawing_and_switches_back(start_app, qtbot):
    window = start_app().window
    panel = window.views["scene"].panel
    action = window.action("surfaces")
    assert not action.isChecked() and not panel.surface_mode
    lay = panel.layout_
    conv1 = lay.layers["conv1"].cubes
    assert (panel.cubes.colors()[conv1, 3] > 0).all()

    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    qtbot.waitUntil(lambda: panel.surface_mode, timeout=5_000)
    assert action.isChecked() and window.session.surfaces
    assert window.session.store.value("view/surfaces") in ("true", True)
    assert "Activation surfaces" in panel.status_text
    assert set(panel.surface_items) == set(_map_layers(panel))

    drag(window.canvas, ring())
    first = settle(qtbot, window)
    _assert_surfaces_show(panel, first)
    # The maps' cubes are hidden; the input, dense and output layers stay cubes.
    rgba = panel.cubes.colors()
    for name, box in lay.layers.items():
        if box.kind in ("conv", "pool"):
            assert not rgba[box.cubes, 3].any(), name
        else:
            assert rgba[box.cubes, 3].any(), name
    with qtbot.waitSignal(panel.frame_rendered, timeout=10_000):
        panel.view.update()
    heights_before = {n: panel.surface_heights(n) for n in _map_layers(panel)}
    generation = panel.surface_generation
    geometry = {n: (item.geometry_generation, item.face_count) for n, item in panel.surface_items.items()}

    drag(window.canvas, [(6.0, 6.0), (22.0, 22.0)])  # another stroke across the ring
    second = settle(qtbot, window)
    assert second.request_id != first.request_id
    _assert_surfaces_show(panel, second)
    assert not np.allclose(panel.surface_heights("conv1"), heights_before["conv1"])
    # Re-heighted and recoloured only: no geometry rebuilt.
    assert panel.surface_generation == generation
    assert {n: (item.geometry_generation, item.face_count) for n, item in panel.surface_items.items()} == geometry
    with qtbot.waitSignal(panel.frame_rendered, timeout=10_000):
        panel.view.update()

    # A click on the raised surface picks the cell drawn there (the tallest cell of conv1).
    act = np.asarray(second.activations["conv1"])
    top = tuple(int(i) for i in np.unravel_index(int(np.argmax(act)), act.shape))
    x, y = panel.screen_position("conv1", top)
    qtbot.mouseClick(panel.view, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    qtbot.waitUntil(lambda: window.session.picked is not None, timeout=5_000)
    assert window.session.picked == ("conv1", top)

    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    qtbot.waitUntil(lambda: not panel.surface_mode, timeout=5_000)
    assert not action.isChecked() and not window.session.surfaces
    assert window.session.store.value("view/surfaces") in ("false", False)
    assert not any(item.visible() for item in panel.surface_items.values())
    assert (panel.cubes.colors()[conv1, 3] > 0).all()
    assert "Activation surfaces" not in panel.status_text


def test_surface_mode_is_remembered(start_app, qtbot, settings):
    settings.setValue("view/surfaces", "true")
    settings.sync()
    window = start_app().window
    panel = window.views["scene"].panel
    assert window.session.surfaces and window.action("surfaces").isChecked()
    assert panel.surface_mode and panel.surface_items


def test_surfaces_follow_a_model_switch_and_work_without_gl(qtbot):
    from cnnviz_desktop.core import weights
    from cnnviz_desktop.devtools.scene_shot import snapshot_for
    from cnnviz_desktop.ui.scene import ScenePanel

    tiny, wide = weights.load("tiny"), weights.load("wide")
    for gl in (None, False):
        panel = ScenePanel(gl=gl)
        qtbot.addWidget(panel)
        panel.set_model(tiny)
        panel.set_surface_mode(True)
        panel.apply(snapshot_for(tiny, "seven"))
        generation = panel.surface_generation
        panel.set_model(wide)  # another network: its geometry, once
        assert panel.surface_generation == generation + 1
        snap = snapshot_for(wide, "seven")
        assert panel.apply(snap)
        for name in ("conv1", "pool1", "conv2", "pool2"):
            grid = panel.surface_grid(name)
            assert grid.shape == tuple(np.asarray(snap.activations[name]).shape)
            expected = surfaces.surface_heights(grid, snap.activations[name])
            np.testing.assert_allclose(panel.surface_heights(name), expected, rtol=1e-6)
            if panel.has_gl:
                assert panel.surface_items[name].face_count == grid.face_count
        assert panel.surface_generation == generation + 1
        panel.set_palette("colorblind")  # recoloured with the scene's palette, not rebuilt
        np.testing.assert_array_equal(panel.surface_rgba("conv1"),
                                      surfaces.surface_colors(panel.surface_grid("conv1"), snap.activations["conv1"],
                                                              "colorblind"))
        assert panel.surface_generation == generation + 1
        if not panel.has_gl:
            assert panel.surface_items == {}
        panel.set_surface_mode(False)
        assert not panel.surface_mode
