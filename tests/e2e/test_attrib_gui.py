"""The saliency view, the drawing overlay's map selector and the compare view, driven as a person would."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cnnviz_desktop.core import attribution, colors
from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle


def choose(qtbot, combo, text):
    """Pick ``text`` in a combo box with the arrow keys, as a keyboard user does (emits 'activated')."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0, text
    while combo.currentIndex() != target:
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        before = combo.currentIndex()
        qtbot.keyClick(combo, key)
        assert combo.currentIndex() != before, "the combo box did not move"


def _wait_maps(qtbot, window, view, target=None):
    def ready():
        maps = view.maps()
        snap = window.snapshot
        return (maps["saliency"] is not None and snap is not None and snap.saliency is not None
                and snap.request_id == window.last_request_id and (target is None or maps["target"] == target)
                and np.array_equal(maps["saliency"], snap.saliency))
    qtbot.waitUntil(ready, timeout=30_000)
    return view.maps()


def test_saliency_view_shows_both_maps_for_the_chosen_class(start_app, qtbot):
    window = start_app().window
    session = window.session
    view = window.views["saliency"]
    assert not view.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_6, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    assert session.extras() == {"saliency", "inputxgrad"}
    drag(window.canvas, ring())
    settle(qtbot, window)
    maps = _wait_maps(qtbot, window, view)
    snap = window.snapshot
    image01 = np.asarray(snap.activations["input"][0])
    assert maps["target"] == snap.predicted == 0
    np.testing.assert_allclose(maps["saliency"], attribution.saliency(session.model, image01, 0), atol=1e-6)
    np.testing.assert_allclose(maps["inputxgrad"], attribution.input_x_gradient(session.model, image01, 0),
                               atol=1e-6)
    assert "lies off the ink" in view.status.text()
    # Pick digit 3 in the class selector: both maps now explain 3, and so does the rest of the window.
    choose(qtbot, view.class_selector, "3")
    assert session.target == 3
    maps = _wait_maps(qtbot, window, view, target=3)
    np.testing.assert_allclose(maps["saliency"], attribution.saliency(session.model, image01, 3), atol=1e-6)
    assert "digit 3" in view.saliency_pane.title
    # Back to the prediction with the P key: the selector follows.
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert session.target is None and view.class_selector.currentText() == "Prediction"
    # Closing the view (Alt+6 again) stops the engine computing its maps.
    qtbot.keyClick(window.canvas, Qt.Key.Key_6, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=5_000)
    assert session.extras() == frozenset()
    snap = settle(qtbot, window)
    assert snap.saliency is None


def test_drawing_overlay_shows_saliency_and_gradient_x_input(start_app, qtbot):
    window = start_app().window
    session = window.session
    drawing = window.views["drawing"]
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    assert [drawing.map_selector.itemText(i) for i in range(drawing.map_selector.count())] == [
        "Grad-CAM", "HiResCAM", "Saliency", "Gradient \u00d7 input"]
    choose(qtbot, drawing.map_selector, "Saliency")
    assert session.map_kind == "saliency" and session.extras() == {"saliency"}
    qtbot.waitUntil(lambda: window.snapshot.request_id == window.last_request_id
                    and window.snapshot.canvas_saliency is not None, timeout=30_000)
    snap = window.snapshot
    overlay = session.overlay()
    assert overlay.kind == "saliency" and overlay.values is snap.canvas_saliency
    assert overlay.scale == pytest.approx(float(snap.canvas_saliency.max()))
    expected = colors.signed_overlay(snap.canvas_saliency, overlay.scale, session.palette)
    assert np.array_equal(window.canvas.overlay_rgba, expected)
    assert "sensitive for 1" in drawing.legend.text()
    # The same opacity control applies.
    qtbot.keyClick(window.canvas, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert drawing.opacity_slider.value() == round(session.overlay_opacity * 100)
    # N cycles to gradient x input: the selector follows and the overlay is the signed map.
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    assert session.map_kind == "inputxgrad" and drawing.map_selector.currentText() == "Gradient \u00d7 input"
    qtbot.waitUntil(lambda: window.snapshot.request_id == window.last_request_id
                    and window.snapshot.canvas_input_x_gradient is not None, timeout=30_000)
    snap = window.snapshot
    assert np.array_equal(window.canvas.overlay_rgba,
                          colors.signed_overlay(snap.canvas_input_x_gradient,
                                                float(np.abs(snap.canvas_input_x_gradient).max()), session.palette))
    assert "against" in drawing.legend.text()
    # N again: back to Grad-CAM, and the engine no longer computes the extra maps.
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    assert session.map_kind == "gradcam" and session.extras() == frozenset()
    assert window.action("hirescam").isChecked() is False


def _open_compare(qtbot, window):
    view = window.views["compare"]
    assert not view.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_0, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    return view


def test_compare_view_shows_two_methods_and_their_agreement(start_app, qtbot):
    window = start_app().window
    session = window.session
    view = _open_compare(qtbot, window)
    assert view.methods() == ["gradcam", "saliency"]
    drag(window.canvas, ring())
    choose(qtbot, view.selectors[0], "HiResCAM")
    choose(qtbot, view.selectors[1], "Gradient \u00d7 input")
    assert session.extras() == {"inputxgrad"}
    qtbot.waitUntil(lambda: window.snapshot.request_id == window.last_request_id
                    and all(m is not None for m in view.current_maps()), timeout=30_000)
    snap = window.snapshot
    left, right = view.current_maps()
    assert np.array_equal(left, snap.hirescam) and np.array_equal(right, snap.input_x_gradient)
    expected = attribution.agreement(snap.hirescam, snap.input_x_gradient)
    assert view.agreement == pytest.approx(expected)
    text = view.agreement_label.text()
    assert "HiResCAM" in text and "Gradient" in text and f"{expected:.2f}" in text
    # The same method twice agrees completely.
    choose(qtbot, view.selectors[1], "HiResCAM")
    assert view.agreement == 1.0 and "1.00" in view.agreement_label.text()
    assert session.extras() == frozenset()


def test_compare_view_occlusion_pane(start_app, qtbot):
    occlusion = pytest.importorskip("cnnviz_desktop.core.occlusion")
    window = start_app().window
    view = _open_compare(qtbot, window)
    drag(window.canvas, ring())
    settle(qtbot, window)
    choose(qtbot, view.selectors[1], "Occlusion")
    qtbot.waitUntil(lambda: view.current_maps()[1] is not None
                    and view.panes[1].target == window.snapshot.target, timeout=60_000)
    snap = window.snapshot
    image01 = np.array(snap.activations["input"][0])  # a writable copy: snapshot arrays are read-only
    expected = occlusion.occlusion_map(window.session.model.model, image01, snap.target, size=4, stride=1)
    np.testing.assert_allclose(view.current_maps()[1], expected, atol=1e-5)
    assert view.agreement == pytest.approx(attribution.agreement(snap.cam, expected))
