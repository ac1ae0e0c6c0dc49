"""The real window under Xvfb, driven as a person would: drags on the grid, key presses, clicks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from cnnviz_desktop.ui.input_sim import drag


def settle(qtbot, window):
    """Wait until the analysis of the last request is shown."""
    qtbot.waitUntil(lambda: window.snapshot is not None and window.snapshot.request_id == window.last_request_id,
                    timeout=30_000)
    return window.snapshot


def ring(cx=14.0, cy=14.0, rx=6.0, ry=8.5, n=48):
    return [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in np.linspace(0, 2 * math.pi, n)]


def test_vertical_drag_reads_one_and_ring_reads_zero(start_app, qtbot):
    window = start_app().window
    assert window.snapshot.empty and "Nothing drawn" in window.prediction_label.text()
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    snap = settle(qtbot, window)
    assert snap.predicted == 1, snap.probabilities
    assert "Prediction: 1" in window.prediction_label.text()
    window.clear_canvas()
    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    assert snap.predicted == 0, snap.probabilities
    assert window.probabilities.predicted == 0


def test_right_drag_erases(start_app, qtbot):
    window = start_app().window
    drag(window.canvas, [(4.0, 14.0), (24.0, 14.0)])
    assert window.canvas.model.pixels[13, 14] > 0.9
    drag(window.canvas, [(14.0, 8.0), (14.0, 20.0)], erase=True)
    pixels = window.canvas.model.pixels
    assert pixels[13, 14] == 0.0 and pixels[13, 5] > 0.9
    settle(qtbot, window)


def test_channel_keys_change_overlay_and_toolbar(start_app, qtbot):
    window = start_app().window
    drag(window.canvas, ring())
    settle(qtbot, window)
    both = window.canvas._overlay_buffer.copy()
    qtbot.keyClick(window.canvas, Qt.Key.Key_0)
    assert window.channel == 0
    ch0 = window.canvas._overlay_buffer.copy()
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)
    assert window.channel == 1
    ch1 = window.canvas._overlay_buffer.copy()
    assert not np.array_equal(both, ch0) and not np.array_equal(ch0, ch1)
    button = window.toolbar.widgetForAction(window.channel_actions[1])
    assert button.isChecked() and not window.toolbar.widgetForAction(window.act_both).isChecked()
    # The keys work whatever has focus: here the probability panel.
    window.probabilities.plot.setFocus()
    qtbot.keyClick(window.probabilities.plot, Qt.Key.Key_B)
    assert window.channel is None and window.toolbar.widgetForAction(window.act_both).isChecked()
    assert np.array_equal(window.canvas._overlay_buffer, both)
    # H hides the overlay, and brings it back.
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas._overlay is None
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas._overlay is not None


def test_undo_redo_and_clear(start_app, qtbot):
    window = start_app().window
    drag(window.canvas, [(14.0, 4.0), (14.0, 24.0)])
    one_stroke = window.canvas.model.pixels.copy()
    drag(window.canvas, [(6.0, 10.0), (22.0, 10.0)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(window.canvas.model.pixels, one_stroke)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.canvas.model.pixels[10, 8] > 0.9
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    snap = settle(qtbot, window)
    assert snap.empty and window.canvas.model.is_empty
    assert "Nothing drawn" in window.prediction_label.text()
    assert window.canvas._overlay is None


def test_clicking_a_bar_changes_the_target(start_app, qtbot):
    window = start_app().window
    drag(window.canvas, ring())
    settle(qtbot, window)
    plot = window.probabilities.plot
    view = plot.getPlotItem().vb
    scene_pos = view.mapViewToScene(QPointF(6, 0.5))
    widget_pos = plot.mapFromScene(scene_pos)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos)
    snap = settle(qtbot, window)
    assert snap.target == 6 and "digit 6" in window.target_label.text()
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos)
    snap = settle(qtbot, window)
    assert snap.target == snap.predicted == 0


def test_presentation_mode_and_settings_are_remembered(start_app, qtbot, settings):
    owner = start_app()
    window = owner.window
    normal_size = window.font().pointSizeF()
    qtbot.keyClick(window.canvas, Qt.Key.Key_F11)
    assert window.presentation and window.isFullScreen()
    assert window.font().pointSizeF() > normal_size * 1.4
    qtbot.keyClick(window.canvas, Qt.Key.Key_F11)
    assert not window.presentation
    window.opacity_slider.setValue(40)
    window.close()
    assert int(settings.value("overlay/opacity")) == 40
    assert settings.value("model/last") == "tiny"


def test_shortcut_overlay_opens_and_closes(start_app, qtbot):
    window = start_app().window
    qtbot.keyClick(window.canvas, Qt.Key.Key_F1)
    assert window.overlay.isVisible()
    qtbot.keyClick(window.overlay, Qt.Key.Key_Escape)
    assert not window.overlay.isVisible()
    qtbot.keyClick(window.canvas, "?")
    assert window.overlay.isVisible()
    qtbot.keyClick(window.overlay, Qt.Key.Key_Escape)
    assert not window.overlay.isVisible()


def test_switch_model_rebuilds_and_keeps_drawing(start_app, qtbot):
    window = start_app().window
    drag(window.canvas, ring())
    settle(qtbot, window)
    drawing = window.canvas.model.pixels.copy()
    window.model_requested.emit("wide")
    qtbot.waitUntil(lambda: window.loaded.arch.name == "wide", timeout=60_000)
    snap = settle(qtbot, window)
    assert snap.predicted == 0 and np.array_equal(window.canvas.model.pixels, drawing)
    assert len(snap.activations["pool2"]) == 16


def test_bad_model_file_keeps_the_current_model(start_app, qtbot, tmp_path, monkeypatch):
    window = start_app().window
    shown = []
    monkeypatch.setattr(window, "show_model_error", shown.append)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    window.model_requested.emit(str(bad))
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    assert "bad.safetensors" in shown[0] and window.loaded.arch.name == "tiny"


@pytest.mark.parametrize("extra", [[], ["--presentation"], ["--model", "wide"]])
def test_self_test_subprocess(tmp_path, extra):
    shot = tmp_path / "shot.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop", "--self-test", "--screenshot", str(shot), *extra],
                            capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["predicted"] == 7, report
    assert len(report["probabilities"]) == 10 and report["seconds_to_first_frame"] > 0
    assert report["gl"] is True
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_self_test_reports_a_bad_model(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop", "--self-test", "--model",
                             str(tmp_path / "missing.safetensors")], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 2 and "missing.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_no_gl_still_draws_and_predicts(start_app, qtbot):
    window = start_app(no_gl=True).window
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    snap = settle(qtbot, window)
    assert snap.predicted == 1 and window.canvas._overlay is not None
    assert not window.scene.has_gl and "without OpenGL" in window.scene.fallback_reason


def test_self_test_fails_fast_on_an_unexpected_exception(tmp_path):
    """A bug inside a Qt slot makes --self-test exit non-zero with one line, not hang."""
    script = (
        "import sys\n"
        "from cnnviz_desktop.ui import main_window\n"
        "def broken(self, snapshot):\n"
        "    raise RuntimeError('injected failure')\n"
        "main_window.MainWindow.apply_snapshot = broken\n"
        "from cnnviz_desktop.__main__ import main\n"
        "sys.exit(main(['--self-test']))\n"
    )
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), CNNVIZ_USER_DATA=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert "injected failure" in result.stderr and "Traceback" not in result.stderr
    assert "injected failure" in (tmp_path / "data" / "error.log").read_text()


def test_clicking_a_neuron_outlines_its_receptive_field(start_app, qtbot):
    from PySide6.QtCore import QPoint

    from cnnviz_desktop.core.architecture import describe, receptive_field

    window = start_app().window
    drag(window.canvas, ring())
    settle(qtbot, window)
    scene = window.scene
    qtbot.waitSignal(scene.view.frameSwapped, timeout=10_000, raising=False)
    x, y = scene.screen_position("pool2", (0, 2, 2))
    with qtbot.waitSignal(scene.neuron_picked, timeout=10_000) as picked:
        qtbot.mouseClick(scene.view, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    layer, index, _ = picked.args
    assert layer == "pool2" and tuple(index) == (0, 2, 2)
    box = receptive_field(describe(window.loaded.arch), layer, tuple(index))
    assert window.canvas._highlight == window.snapshot.placement.box_to_canvas(box)
    r0, c0, r1, c1 = window.canvas._highlight
    assert 0 <= r0 < r1 <= 28 and 0 <= c0 < c1 <= 28
    assert f"{layer} {tuple(index)}" in window.statusBar().currentMessage()
