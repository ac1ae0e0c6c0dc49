"""The input-maximisation view, driven as a person would: open it (Alt+8), choose class 3, Start, watch the
progress and the curves grow, Cancel a long run; run a short one to the end and 'Draw it' onto the grid."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from .test_main_window import settle


def _open(start_app, qtbot):
    window = start_app().window
    view = window.views["maximize"]
    assert not view.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_8, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    return window, view


def test_start_animates_and_cancel_stops_a_long_run(start_app, qtbot):
    window, view = _open(start_app, qtbot)
    # Nothing is picked yet: the 'picked neuron' target is disabled and says why.
    picked_item = view.kind.model().item(2)
    assert not picked_item.isEnabled() and "3D scene" in picked_item.toolTip()
    view.kind.setCurrentIndex(view.kind.findData("class"))
    view.digit.setValue(3)
    view.steps.setValue(5000)
    assert view.curve_points() == (0, 0)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert view.running and view.cancel_button.isEnabled()
    # The progress bar and both curves grow while it runs; the image is shown.
    qtbot.waitUntil(lambda: view.curve_points()[0] >= 10, timeout=60_000)
    first = view.curve_points()
    first_progress = view.progress_bar.value()
    qtbot.waitUntil(lambda: view.curve_points()[0] > first[0] + 5, timeout=60_000)
    assert view.curve_points()[1] == view.curve_points()[0]
    assert view.progress_bar.value() > first_progress > 0
    assert not view.image.pixmap().isNull()
    # The drawing stays live meanwhile: a stroke is analysed while the optimisation runs.
    from cnnviz_desktop.ui.input_sim import drag

    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    assert view.running
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.running, timeout=30_000)
    assert "Cancelled" in view.status.text()
    assert view.result is not None and view.result.step < 5000 and not view.result.done
    assert not view.cancel_button.isEnabled()
    stopped = view.curve_points()
    qtbot.wait(300)
    assert view.curve_points() == stopped  # nothing arrives after the cancel


def test_a_short_run_to_the_end_then_draw_it(start_app, qtbot):
    window, view = _open(start_app, qtbot)
    view.digit.setValue(3)
    view.steps.setValue(60)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.running and view.result is not None and view.result.done, timeout=120_000)
    assert not view.running and view.progress_bar.value() == view.progress_bar.maximum()
    assert view.curve_points() == (60, 60)
    assert view.draw_button.isEnabled() and "Done" in view.status.text()
    assert "P(3) on this image" in view.probs_label.text()
    assert window.session.canvas.is_empty
    before = window.session.last_request_id
    qtbot.mouseClick(view.draw_button, Qt.MouseButton.LeftButton)
    # The grid got ink and a new prediction arrives for it.
    assert not window.session.canvas.is_empty
    np.testing.assert_allclose(window.session.canvas.pixels, view.result.image01, atol=1e-6)
    snap = settle(qtbot, window)
    assert snap.request_id > before and not snap.empty
    qtbot.waitUntil(lambda: view.drawn_probs is not None, timeout=10_000)
    np.testing.assert_allclose(view.drawn_probs, snap.probabilities)
    assert "After 'Draw it'" in view.probs_label.text()
    # Undo brings back the (empty) drawing.
    window.session.undo()
    assert window.session.canvas.is_empty


def test_the_neuron_picked_in_the_scene_becomes_a_target(start_app, qtbot):
    window, view = _open(start_app, qtbot)
    item = view.kind.model().item(2)
    assert not item.isEnabled()
    # What the 3D scene does on a click: the session's picked neuron.
    window.session.set_picked("dense1", (5,))
    assert item.isEnabled() and "dense1" in view.picked_label.text()
    view.kind.setCurrentIndex(view.kind.findData("neuron"))
    view.steps.setValue(40)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.running and view.result is not None and view.result.done, timeout=120_000)
    assert view.result.objective.layer == "dense1" and view.result.objective.index == (5,)
    assert view.result.score > view.result.start_score
    assert "Activation" in view.probs_label.text()
    # Clearing the pick disables the target again and falls back to a digit.
    window.session.set_picked(None)
    assert not item.isEnabled() and view.kind.currentData() == "class"
