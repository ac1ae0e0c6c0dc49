"""Fine-tuning on the class's own drawings in the real window: a history holding labelled drawings (its own
CNNVIZ_USER_DATA, so the real history is never touched), the training view counts them, the box is ticked,
the current model fine-tuned, and the before -> now line for the drawings and the MNIST test subset appears;
with no labelled drawings the box is disabled and says how to label, an unreadable history is a message."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from cnnviz_desktop.core import mnist
from cnnviz_desktop.core.history import DrawingRecord, History, default_path

from cnnviz_desktop.ui.input_sim import drag

from .test_history_gui import report_with_dialog
from .test_main_window import ring, settle
from .test_train_gui import TIMEOUT, click


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    folder = tmp_path / "userdata"
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(folder))
    return folder


def thick_drawings(mnist_dir, n: int = 40):
    """MNIST test digits drawn with a very thick pen (5x5 max filter): a style tiny often gets wrong."""
    test = mnist.load(mnist_dir, "test")
    x = torch.from_numpy(test.images[9000:9000 + n].astype(np.float32) / 255.0)[:, None]
    return torch.nn.functional.max_pool2d(x, 5, stride=1, padding=2)[:, 0].numpy(), test.labels[9000:9000 + n]


def open_training(qtbot, window):
    view = window.views["training"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_T, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    return view


def test_fine_tune_on_labelled_drawings_shows_before_and_after(monkeypatch, start_app, qtbot, user_data, mnist_dir):
    # Closing the window at the end asks whether to save the unsaved training: answer Discard (monkeypatch
    # comes first so that it is undone after start_app has closed the window).
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    images, labels = thick_drawings(mnist_dir)
    with History.open(default_path()) as history:
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            history.save(DrawingRecord(canvas=image, label=int(label)))
        history.save(DrawingRecord(canvas=images[0]))  # no true label: not counted, not used
    window = start_app().window
    view = open_training(qtbot, window)
    qtbot.waitUntil(lambda: "40 labelled drawings in the history" in view.drawings_count_label.text(),
                    timeout=10_000)
    assert view.drawings_box.isEnabled() and not view.drawings_box.isChecked()
    assert not view.drawings_weight_spin.isEnabled()
    qtbot.mouseClick(view.drawings_box, Qt.MouseButton.LeftButton)
    assert view.drawings_box.isChecked() and view.drawings_weight_spin.isEnabled()
    view.drawings_weight_spin.setValue(20)
    view.init_box.setCurrentIndex(1)  # fine-tune the model shown now (tiny)
    view.data_edit.setText(str(mnist_dir))
    view.images_spin.setValue(1000)
    view.epochs_spin.setValue(2)
    view.batch_spin.setValue(64)
    view.live_box.setChecked(False)

    click(qtbot, view.start_button)
    qtbot.waitUntil(lambda: "Your drawings" in view.result_label.text(), timeout=TIMEOUT)
    assert "+ 40 of your drawings" in view.message_label.text()
    first = view.result_label.text()
    assert "(n=40)" in first and "MNIST test" in first and "memorisation" in first
    qtbot.waitUntil(lambda: view.state == "stopped", timeout=TIMEOUT)
    assert "your drawings" in view.message_label.text() or "Training finished" in view.message_label.text()
    text = view.result_label.text()
    found = re.search(r"Your drawings</b>: before ([0-9.]+)% \u2192 now ([0-9.]+)%", text)
    assert found, text
    before, now = float(found[1]), float(found[2])
    assert now > before, text
    assert "now -" not in text  # both numbers came from an epoch


def test_no_labelled_drawings_disables_the_box_and_says_how(start_app, qtbot, user_data):
    with History.open(default_path()) as history:
        history.save(DrawingRecord(canvas=np.eye(28, dtype=np.float32)))  # saved, but no true label
    window = start_app().window
    view = open_training(qtbot, window)
    qtbot.waitUntil(lambda: "0 labelled drawings" in view.drawings_count_label.text(), timeout=10_000)
    assert not view.drawings_box.isEnabled() and not view.drawings_box.isChecked()
    assert "press X" in view.drawings_box.toolTip() and "History view" in view.drawings_box.toolTip()
    # Do what the tooltip says: draw, press X, give the true digit: the count follows and the box is usable.
    drag(window.canvas, ring())
    settle(qtbot, window)
    report_with_dialog(qtbot, window, Qt.Key.Key_0)
    qtbot.waitUntil(lambda: "1 labelled drawing in the history" in view.drawings_count_label.text(), timeout=10_000)
    assert view.drawings_box.isEnabled()


def test_an_unreadable_history_is_a_message_and_training_works_without(start_app, qtbot, tmp_path, monkeypatch,
                                                                       mnist_dir):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(blocker / "data"))
    window = start_app().window
    view = open_training(qtbot, window)
    qtbot.waitUntil(lambda: "Cannot read the saved drawings" in view.message_label.text(), timeout=10_000)
    assert not view.drawings_box.isEnabled() and "Training without them still works" in view.message_label.text()
    view.data_edit.setText(str(mnist_dir))
    settings = view.settings()  # what Start sends: a valid run, without drawings
    assert settings.extra_count == 0
