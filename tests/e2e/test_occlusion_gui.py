"""The occlusion view, driven as a person would: open it (View menu / Alt+7), draw, drag the black square over
the ink, change its size, turn on the sensitivity map."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QPoint, Qt

from cnnviz_desktop.core.occlusion import occlusion_map, patch_logits, patch_probabilities
from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import settle

SHOTS = os.environ.get("CNNVIZ_SHOTS_DIR", "")  # set to save screenshots for the README


def _point(board, row: float, col: float) -> QPoint:
    p = board.cell_centre(col, row)
    return QPoint(round(p.x()), round(p.y()))


def _drag_patch(qtbot, board, path):
    """Press on the first (row, col) cell, move through the others, release on the last."""
    qtbot.mousePress(board, Qt.MouseButton.LeftButton, pos=_point(board, *path[0]))
    for cell in path[1:]:
        qtbot.mouseMove(board, _point(board, *cell))
    qtbot.mouseRelease(board, Qt.MouseButton.LeftButton, pos=_point(board, *path[-1]))


def _wait_patch(qtbot, view):
    qtbot.waitUntil(lambda: view.patch_settled, timeout=30_000)
    return view.patched_probability


def _shot(window, view, name):
    if SHOTS:
        window.resize(1366, 768)
        window.grab().save(os.path.join(SHOTS, f"occlusion_{name}_window.png"))
        view.grab().save(os.path.join(SHOTS, f"occlusion_{name}.png"))


def test_occlusion_patch_drag_size_and_sensitivity_map(start_app, qtbot):
    window = start_app().window
    view = window.views["occlusion"]
    session = window.session
    assert not view.isVisible()
    # The View menu has a toggle for it, with its key.
    toggle = next(a for a in window.menus["&View"].actions() if a.text().replace("&", "") == "Occlusion")
    assert toggle.shortcut().toString() == "Alt+7"
    qtbot.keyClick(window.canvas, Qt.Key.Key_7, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    assert view.image is None and "draw a digit" in view.readout.text().lower()

    # A '7': the top bar and the diagonal.
    drag(window.canvas, [(7.0, 6.0), (20.0, 6.0), (12.0, 23.0)])
    snap = settle(qtbot, window)
    qtbot.waitUntil(lambda: view.image is not None, timeout=5_000)
    explained = view.explained_class
    assert explained == snap.predicted
    image = np.asarray(snap.activations["input"]).reshape(28, 28)
    np.testing.assert_array_equal(view.image, image)
    assert view.unpatched_probability == float(snap.probabilities[explained])

    # Park the square on paper (top-left corner: no ink there), by dragging it.
    board = view.board
    row, col, size = view.patch
    _drag_patch(qtbot, board, [(row + 1, col + 1), (row - 4, col - 4), (1, 1)])
    assert view.patch == (0, 0, size)
    p_paper = _wait_patch(qtbot, view)
    assert abs(p_paper - view.unpatched_probability) < 0.05

    # Then drag it onto the ink: the densest window of ink of this size.
    ink = image > 0.3
    best = max(((r, c) for r in range(29 - size) for c in range(29 - size)),
               key=lambda rc: ink[rc[0]:rc[0] + size, rc[1]:rc[1] + size].sum())
    _drag_patch(qtbot, board, [(1, 1), (best[0] / 2 + 1, best[1] / 2 + 1), (best[0] + 1, best[1] + 1)])
    assert view.patch == (best[0], best[1], size)
    p_ink = _wait_patch(qtbot, view)
    model = session.model.model
    expected = float(patch_probabilities(model, image, best[0], best[1], size)[explained])
    assert abs(p_ink - expected) < 1e-6
    assert view.drop is not None and view.drop > 0 and p_ink < p_paper
    text = view.readout.text()
    assert f"{p_ink:.1%}" in text or f"{p_ink:.3%}" in text
    logits = patch_logits(model, image, best[0], best[1], size)
    assert abs(view.patched_logit - float(logits[explained])) < 1e-5
    assert view.unpatched_logit == float(snap.logits[explained]) and view.patched_logit < view.unpatched_logit
    assert f"{view.patched_logit:.2f}" in text

    # Arrow keys move it one cell (focus is on the board after the click).
    qtbot.keyClick(board, Qt.Key.Key_Right)
    assert view.patch == (best[0], min(best[1] + 1, 28 - size), size)
    qtbot.keyClick(board, Qt.Key.Key_Left)
    assert view.patch == (best[0], best[1], size)

    # A bigger square over the same place hides more of the digit.
    view.size_box.setValue(8)
    assert view.patch[2] == 8
    p_big = _wait_patch(qtbot, view)
    r8, c8, _ = view.patch
    assert abs(p_big - float(patch_probabilities(model, image, r8, c8, 8)[explained])) < 1e-6

    # The sensitivity map, computed in the background, equals occlusion_map for the shown image.
    view.size_box.setValue(4)
    qtbot.mouseClick(view.map_button, Qt.MouseButton.LeftButton)
    assert view.map_button.isChecked()
    qtbot.waitUntil(lambda: view.sensitivity is not None and not view.map_busy, timeout=60_000)
    assert view.sensitivity_class == explained and view.sensitivity_size == 4
    np.testing.assert_allclose(view.sensitivity, occlusion_map(model, image, explained, size=4), atol=1e-6)
    # Put the square on the map's hottest pixel: hiding it there lowers the probability.
    hot_r, hot_c = np.unravel_index(int(np.argmax(view.sensitivity)), (28, 28))
    _drag_patch(qtbot, board, [(view.patch[0] + 1, view.patch[1] + 1), (hot_r, hot_c)])
    assert view.patch == (min(max(hot_r - 1, 0), 24), min(max(hot_c - 1, 0), 24), 4)  # held by its cell (1, 1)
    _wait_patch(qtbot, view)
    assert view.patched_probability < p_paper
    _shot(window, view, "map")

    # Explaining another digit recomputes it for that digit.
    other = 3 if explained != 3 else 2
    view.class_box.setCurrentIndex(other + 1)
    view.class_box.activated.emit(other + 1)
    assert session.target == other
    qtbot.waitUntil(lambda: view.sensitivity_class == other and not view.map_busy, timeout=60_000)
    snap = settle(qtbot, window)
    qtbot.waitUntil(lambda: not view.map_busy and view.sensitivity_class == other, timeout=60_000)
    np.testing.assert_allclose(view.sensitivity, occlusion_map(model, view.image, other, size=4), atol=1e-6)


def test_hidden_view_does_no_work_and_the_map_can_be_cancelled(start_app, qtbot):
    window = start_app().window
    view = window.views["occlusion"]
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    # Hidden: no task on either lane; shown: it catches up with the drawing.
    assert view.patch_lane.latest == 0 and view.map_lane.latest == 0 and view.image is None
    window.toggle_view("occlusion")
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    qtbot.waitUntil(lambda: view.image is not None, timeout=5_000)
    _wait_patch(qtbot, view)
    view.size_box.setValue(2)  # the most positions: 27 x 27
    view.map_button.setChecked(True)
    assert view.map_busy and view.cancel_button.isVisibleTo(view)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.map_button.isChecked(), timeout=30_000)
    assert not view.map_busy and not view.cancel_button.isVisibleTo(view)
    # Turned on again, it completes.
    view.map_button.setChecked(True)
    qtbot.waitUntil(lambda: view.sensitivity is not None and not view.map_busy, timeout=60_000)
    assert view.sensitivity.shape == (28, 28)
    # Switching the model (Ctrl+M) drops tiny's map and computes the new model's.
    tiny_map = view.sensitivity.copy()
    qtbot.keyClick(window.canvas, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.session.model is not None and window.session.model.arch.name == "wide",
                    timeout=60_000)
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.sensitivity is not None and not view.map_busy, timeout=60_000)
    wide = window.session.model.model
    expected = occlusion_map(wide, view.image, view.explained_class, size=2)
    np.testing.assert_allclose(view.sensitivity, expected, atol=1e-6)
    assert np.abs(view.sensitivity - tiny_map).max() > 1e-3
