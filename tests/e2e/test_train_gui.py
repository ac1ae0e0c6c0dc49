"""The training view in the real window, driven as a person would: open it (Alt+T), train tiny from random
weights on a small subset, watch the drawn digit's probabilities change, pause, step, resume, stop, save, load
the result from the Model menu; closing the window while training asks to save and leaves no trainer behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle

TIMEOUT = 180_000  # the trainer process imports torch and reads MNIST: 15-20 s on the shared machine


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_train_watch_pause_step_stop_save_and_load(start_app, qtbot, mnist_dir, tmp_path, monkeypatch):
    owner = start_app()
    window, session = owner.window, owner.session
    view = window.views["training"]
    assert not view.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_T, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    drag(window.canvas, ring())
    settle(qtbot, window)
    shipped = session.model

    # Settings, as typed into the form: tiny from random weights, 1,024 images, batches of 32.
    view.arch_box.setCurrentText("tiny")
    view.init_box.setCurrentIndex(0)
    view.data_edit.setText(str(mnist_dir))
    view.images_spin.setValue(1024)
    view.epochs_spin.setValue(30)
    view.batch_spin.setValue(32)
    view.seed_spin.setValue(3)
    # The probabilities of the drawing under each live model (generation) that got analysed.
    seen: dict[int, np.ndarray] = {}
    session.snapshot_changed.connect(
        lambda snap: seen.__setitem__(session.generation, np.asarray(snap.probabilities))
        if not snap.empty and str(session.model.path).startswith("(training") else None)
    click(qtbot, view.start_button)
    qtbot.waitUntil(lambda: view.state == "running", timeout=TIMEOUT)
    trainer_pid = view.bridge.trainer.pid
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=TIMEOUT)
    first, last = list(seen.values())[0], list(seen.values())[-1]
    assert np.abs(first - last).max() > 1e-3, "the drawing's probabilities did not change while training"
    assert session.model is not shipped and session.last_model() == "tiny"  # live weights are not remembered
    assert len(view.steps) > 0 and view.progress.value() > 0 and "images/s" in view.rate_label.text()

    # Pause, step one batch, resume.
    click(qtbot, view.pause_button)
    qtbot.waitUntil(lambda: view.state == "paused", timeout=30_000)
    assert view.pause_button.text() == "Resume"
    qtbot.wait(300)
    paused_at = view.steps[-1]
    click(qtbot, view.step_batch_button)
    qtbot.waitUntil(lambda: view.steps[-1] == paused_at + 1, timeout=30_000)
    click(qtbot, view.pause_button)
    qtbot.waitUntil(lambda: view.state == "running", timeout=30_000)
    qtbot.waitUntil(lambda: view.steps[-1] > paused_at + 3, timeout=30_000)

    # Stop, save (the file dialog answered), and the saved file is the current model.
    click(qtbot, view.stop_button)
    qtbot.waitUntil(lambda: view.state == "stopped", timeout=30_000)
    out = tmp_path / "mine.safetensors"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "Weight files (*.safetensors)"))
    click(qtbot, view.save_button)
    qtbot.waitUntil(lambda: getattr(session.model, "path", None) == out, timeout=30_000)
    assert out.is_file() and out.with_suffix(".json").is_file()
    card = session.model.card
    assert card["name"] == "tiny" and card["seed"] == 3 and card["batch_size"] == 32
    assert card["training_data"]["images"] == 1024 and "sha256" in card
    settle(qtbot, window)

    # Load it again through the Model menu (Open weights file...).
    window.model_requested.emit("tiny")
    qtbot.waitUntil(lambda: getattr(session.model, "path", Path()).stem == "tiny", timeout=30_000)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(out), "Weight files (*.safetensors)"))
    window.action("open_weights").trigger()
    qtbot.waitUntil(lambda: getattr(session.model, "path", None) == out, timeout=30_000)
    snap = settle(qtbot, window)
    assert not snap.empty

    # Train again, then close the window mid-training: it asks whether to save; Discard; no trainer is left.
    click(qtbot, view.start_button)
    qtbot.waitUntil(lambda: view.unsaved, timeout=TIMEOUT)
    second_pid = view.bridge.trainer.pid
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Discard)
    window.close()
    assert asked and "not saved" in asked[0]
    assert not view.bridge.alive
    for pid in (trainer_pid, second_pid):
        qtbot.waitUntil(lambda pid=pid: not _running(pid), timeout=10_000)


def test_no_data_and_a_dying_trainer_are_clear_messages(start_app, qtbot, mnist_dir, tmp_path):
    import os
    import signal

    owner = start_app()
    window, session = owner.window, owner.session
    view = window.views["training"]
    window.toggle_view("training")
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    before = session.model

    # A folder that does not exist: one sentence saying what to do; nothing starts; the model is unchanged.
    view.data_edit.setText(str(tmp_path / "no-mnist-here"))
    click(qtbot, view.start_button)
    text = view.message_label.text()
    assert "does not exist" in text and "Browse" in text and view.state == "idle"
    assert view.bridge.trainer is None and session.model is before

    # A folder without MNIST files: the trainer reports mnist.load's message; the model is unchanged.
    view.data_edit.setText(str(tmp_path))
    click(qtbot, view.start_button)
    qtbot.waitUntil(lambda: "Training failed" in view.message_label.text(), timeout=TIMEOUT)
    assert "not found" in view.message_label.text() and session.model is before
    qtbot.waitUntil(lambda: view.state == "idle", timeout=10_000)
    assert not view.save_button.isEnabled() and view.bridge.trainer is None

    # The trainer process dies mid-training: the view says so and can start again.
    view.data_edit.setText(str(mnist_dir))
    view.images_spin.setValue(1024)
    view.epochs_spin.setValue(50)
    click(qtbot, view.start_button)
    qtbot.waitUntil(lambda: view.state == "running", timeout=TIMEOUT)
    pid = view.bridge.trainer.pid
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "ended unexpectedly" in view.message_label.text(), timeout=30_000)
    assert view.state == "idle" and view.start_button.isEnabled() and not view.save_button.isEnabled()
    assert not _running(pid)
