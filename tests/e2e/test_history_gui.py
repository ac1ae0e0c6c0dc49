"""Saved drawings in the window, driven as a person would: Ctrl+S, the Report dialog (X, a digit key, a
reason), the dashboard (Alt+5): filters, open a row, delete and undo, re-run with progress and cancel,
10,000 rows scrolled to the end. Each test has its own CNNVIZ_USER_DATA, so the real history is never touched."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QTimer, Qt
from PySide6.QtWidgets import QApplication

from cnnviz_desktop.core.history import DrawingRecord, History, default_path
from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    folder = tmp_path / "userdata"
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(folder))
    return folder


def open_dashboard(qtbot, window):
    view = window.views["history"]
    if not view.isVisible():
        qtbot.keyClick(window.canvas, Qt.Key.Key_5, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    return view


def click_row(qtbot, view, row: int, column: int = 1):
    table = view.table
    table.scrollTo(view.model.index(row, column))
    rect = table.visualRect(view.model.index(row, column))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def report_with_dialog(qtbot, window, digit_key, reason_steps: int = 1):
    """Press X; in the dialog type the digit key, step the reason combo down, click Save report."""
    seen = {}

    def drive():
        dialog = window.report_dialog
        try:
            assert dialog is not None and dialog.isVisible()
            qtbot.keyClick(dialog, digit_key)
            for _ in range(reason_steps):
                qtbot.keyClick(dialog.reason_box, Qt.Key.Key_Down)
            qtbot.keyClicks(dialog.details, "the loop is open")
            seen["reason"] = dialog.reason_box.currentText()
            qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        finally:
            if dialog is not None and dialog.isVisible():
                dialog.reject()

    QTimer.singleShot(0, drive)
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    return seen


def test_save_report_filter_open_delete_undo(start_app, qtbot, user_data):
    window = start_app().window
    path = default_path()
    assert path.parent == user_data.resolve()
    assert not path.exists(), "the history must not be opened at start-up"

    # Nothing drawn: Ctrl+S says so and saves nothing (the database is not even created).
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "Nothing drawn" in window.statusBar().currentMessage()
    assert not path.exists()

    # Two drawings saved with Ctrl+S.
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    one = settle(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "Saved drawing #1" in window.statusBar().currentMessage()
    line_pixels = window.session.canvas.pixels.copy()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)  # clear the grid
    assert window.session.canvas.is_empty
    drag(window.canvas, ring())
    settle(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "Saved drawing #2" in window.statusBar().currentMessage()
    assert path.exists()

    # Report the ring as a misclassified 6 through the dialog.
    seen = report_with_dialog(qtbot, window, Qt.Key.Key_6)
    assert "Reported drawing #3" in window.statusBar().currentMessage(), seen
    ring_pixels = window.session.canvas.pixels.copy()

    view = open_dashboard(qtbot, window)
    model = view.model
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=5_000)
    with History.open(path) as history:
        reported = history.get(3)
        assert reported.label == 6 and reported.reason.startswith(seen["reason"])
        assert reported.reason.endswith("the loop is open") and reported.note == "the loop is open"
        assert history.get(1).predicted == one.predicted and history.get(1).cam is not None
        assert np.array_equal(history.get(1).canvas, line_pixels)
    # Newest first; thumbnails are pictures.
    assert [model.id_at(r) for r in range(3)] == [3, 2, 1]
    assert not model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole).isNull()
    assert model.data(model.index(0, 3)) == "6"

    # Filter 'Reported' (typed into the filter box as a person would) shows only the report.
    view.filter_box.setFocus()
    qtbot.keyClick(view.filter_box, Qt.Key.Key_Down)
    assert view.filter_box.currentText() == "Reported"
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5_000)
    assert model.id_at(0) == 3 and model.data(model.index(0, 4)).startswith(seen["reason"])
    # The search field looks in notes and reasons.
    qtbot.keyClick(view.filter_box, Qt.Key.Key_Up)  # back to 'All drawings'
    assert view.filter_box.currentText() == "All drawings"
    qtbot.mouseClick(view.search, Qt.MouseButton.LeftButton)
    assert view.search.hasFocus()
    qtbot.keyClicks(view.search, "loop is")
    qtbot.waitUntil(lambda: model.rowCount() == 1 and model.id_at(0) == 3, timeout=5_000)
    view.search.clear()
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=5_000)
    # The confusion matrix holds the one labelled drawing.
    assert int(view.confusion.matrix.sum()) == 1 and view.confusion.matrix[6].sum() == 1

    # Open drawing #1 (the line) into the grid: click its row, press Enter.
    click_row(qtbot, view, 2)
    assert view.table.hasFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert np.array_equal(window.session.canvas.pixels, line_pixels)
    settle(qtbot, window)

    # Delete drawing #2 with the Delete key in the table; the grid is not cleared. Ctrl+Z brings it back
    # (and does not undo the grid).
    click_row(qtbot, view, 1)
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=5_000)
    assert [model.id_at(r) for r in range(2)] == [3, 1]
    assert np.array_equal(window.session.canvas.pixels, line_pixels)
    assert view.undo_button.isEnabled()
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=5_000)
    assert np.array_equal(window.session.canvas.pixels, line_pixels)
    # The button works too.
    click_row(qtbot, view, 0)
    qtbot.mouseClick(view.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=5_000)
    qtbot.mouseClick(view.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=5_000)
    assert not view.undo_button.isEnabled()
    assert not np.array_equal(ring_pixels, line_pixels)


def test_report_needs_a_drawing_and_a_failed_save_keeps_it(start_app, qtbot, user_data, tmp_path, monkeypatch):
    window = start_app().window
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert "Nothing drawn" in window.statusBar().currentMessage()
    assert getattr(window, "report_dialog", None) is None
    # A folder that cannot hold the database: a clear message, the drawing stays.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(blocker / "data"))
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    pixels = window.session.canvas.pixels.copy()
    shown = {}

    def close_box():
        box = QApplication.activeModalWidget()
        if box is not None:
            shown["text"] = box.text() if hasattr(box, "text") else ""
            box.close()

    QTimer.singleShot(100, close_box)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "nothing was saved" in shown.get("text", "") and "still on the grid" in shown["text"]
    assert np.array_equal(window.session.canvas.pixels, pixels)


def _records(n: int, predicted: int = 8):
    canvas = np.zeros((28, 28), np.float32)
    canvas[4:24, 13:15] = 1.0  # a vertical bar: the network reads 1
    probs = np.full(10, 0.02, np.float32)
    probs[predicted] = 0.82
    return [DrawingRecord(canvas=canvas, model="old", predicted=predicted, probabilities=probs, label=1)
            for _ in range(n)]


def test_rerun_in_the_background_to_the_end_and_cancel(start_app, qtbot, user_data):
    window = start_app().window
    with History.open() as history:
        history.save_many(_records(20))
        history.save_many(_records(2000, predicted=1))
    drag(window.canvas, ring())
    settle(qtbot, window)
    live = window.session.canvas.pixels.copy()
    view = open_dashboard(qtbot, window)
    qtbot.waitUntil(lambda: view.model.total == 2020, timeout=5_000)

    # Re-run the selected 20 (the oldest rows, predicted 8 when saved): progress to the end, all changed.
    view.set_filter("Model old")
    view.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # click 'Drawing': by id
    assert view.model.id_at(0) == 1
    view.table.setFocus()
    click_row(qtbot, view, 0)
    for _ in range(19):
        qtbot.keyClick(view.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_ids() == list(range(1, 21))
    qtbot.mouseClick(view.rerun_selected_button, Qt.MouseButton.LeftButton)
    assert view.rerunning and view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not view.rerunning, timeout=60_000)
    assert view.progress.value() == view.progress.maximum() == 20
    assert len(view.last_rerun) == 20 and not view.last_rerun_cancelled
    assert all(b.predicted == 8 and a.predicted == 1 for _, b, a in view.last_rerun)
    assert sorted(view.model.changed_ids()) == list(range(1, 21))
    text = view.model.data(view.model.index(0, 7))
    assert text == "8 -> 1 changed"
    assert view.model.data(view.model.index(0, 7), Qt.ItemDataRole.BackgroundRole) is not None
    # The live drawing was not disturbed.
    assert np.array_equal(window.session.canvas.pixels, live)

    # Re-run all 2020 and cancel: it stops early, with what it had.
    qtbot.mouseClick(view.rerun_all_button, Qt.MouseButton.LeftButton)
    assert view.rerunning
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.rerunning, timeout=60_000)
    assert view.last_rerun_cancelled and len(view.last_rerun) < 2020
    assert view.rerun_all_button.isEnabled() and not view.cancel_button.isEnabled()
    # The live analysis still answers.
    drag(window.canvas, [(20.0, 4.0), (20.0, 24.0)])
    settle(qtbot, window)


def test_ten_thousand_rows_scroll_to_the_end(start_app, qtbot, user_data):
    window = start_app().window
    with History.open() as history:
        history.save_many(_records(10_000, predicted=1))
    view = open_dashboard(qtbot, window)
    model = view.model
    qtbot.waitUntil(lambda: model.total == 10_000, timeout=10_000)
    assert model.rowCount() < 10_000  # lazy: only the first pages
    assert view.count_label.text() == "10,000 drawings"
    view.table.setFocus()
    presses = 0
    # Ctrl+End goes to the last loaded row; reaching the bottom loads the next page, as the wheel would.
    while view.table.currentIndex().row() != 9_999 and presses < 200:
        qtbot.keyClick(view.table, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
        QApplication.processEvents()
        presses += 1
    assert model.rowCount() == 10_000 and view.table.currentIndex().row() == 9_999
    assert model.id_at(9_999) == 1  # newest first: the first saved is last
    assert model.data(model.index(9_999, 1)) == "1"
    bar = view.table.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0


def test_export_and_import_folders(start_app, qtbot, user_data, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    window = start_app().window
    with History.open() as history:
        history.save_many(_records(3, predicted=1))
    view = open_dashboard(qtbot, window)
    qtbot.waitUntil(lambda: view.model.rowCount() == 3, timeout=5_000)
    out = tmp_path / "export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    click_row(qtbot, view, 0)
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    assert (out / "drawings.csv").exists() and len(list(out.glob("*.png"))) == 1
    qtbot.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.model.rowCount() == 4, timeout=10_000)
    with History.open() as history:
        newest = history.get(view.model.id_at(0))
    assert newest.source.startswith("import:") and newest.label == 1 and newest.predicted == 1


def test_a_corrupt_history_is_moved_aside_and_the_user_told_once(start_app, qtbot, user_data):
    from PySide6.QtWidgets import QMessageBox

    user_data.mkdir(parents=True)
    (user_data / "history.sqlite").write_bytes(b"this is not a database" * 100)
    window = start_app().window
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "HistoryNotice") is not None, timeout=5_000)
    box = window.findChild(QMessageBox, "HistoryNotice")
    assert "corrupt" in box.text() and box.isVisible()
    assert list(user_data.glob("history.sqlite.corrupt-*"))
    assert "Saved drawing #1" in window.statusBar().currentMessage()
    box.close()
    QApplication.processEvents()
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "Saved drawing #2" in window.statusBar().currentMessage()
    boxes = [b for b in window.findChildren(QMessageBox, "HistoryNotice") if b.isVisible()]
    assert boxes == []


def test_ctrl_shift_s_still_exports_a_png(start_app, qtbot, user_data, tmp_path, monkeypatch):
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog

    window = start_app().window
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    target = tmp_path / "digit.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG image (*.png)"))
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert target.exists() and Image.open(target).size == (28, 28)
    assert not default_path().exists()  # exporting a PNG does not open the history
