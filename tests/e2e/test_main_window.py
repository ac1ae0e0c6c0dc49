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
    window.session.clear()
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


def test_channel_keys_change_overlay_thumbnails_and_toolbar(start_app, qtbot):
    window = start_app().window
    drag(window.canvas, ring())
    settle(qtbot, window)
    thumbs = window.views["drawing"].channel_buttons
    assert [b.text() for b in thumbs] == ["Both", "Ch 0", "Ch 1"] and thumbs[0].isChecked()
    both = window.canvas.overlay_rgba
    qtbot.keyClick(window.canvas, Qt.Key.Key_0)
    assert window.session.channel == 0 and thumbs[1].isChecked()
    ch0 = window.canvas.overlay_rgba
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)
    assert window.session.channel == 1
    ch1 = window.canvas.overlay_rgba
    assert not np.array_equal(both, ch0) and not np.array_equal(ch0, ch1)
    assert window.action("channel_1").isChecked() and not window.action("both").isChecked()
    both_button = window.toolbars["Explain"].widgetForAction(window.action("both"))
    assert not both_button.isChecked()
    # The keys work whatever has focus: here the probability panel.
    window.probabilities.plot.setFocus()
    qtbot.keyClick(window.probabilities.plot, Qt.Key.Key_B)
    assert window.session.channel is None and both_button.isChecked()
    assert np.array_equal(window.canvas.overlay_rgba, both)
    # A click on a thumbnail selects its channel too.
    qtbot.mouseClick(thumbs[2], Qt.MouseButton.LeftButton)
    assert window.session.channel == 1 and np.array_equal(window.canvas.overlay_rgba, ch1)
    # H hides the overlay, and brings it back; the legend says what the colours mean.
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas.overlay_rgba is None and not window.action("overlay").isChecked()
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas.overlay_rgba is not None
    legend = window.views["drawing"].legend.text()
    assert "red" in legend and "towards 0" in legend and "against" in legend


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
    assert window.canvas.overlay_rgba is None


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
    assert snap.target == 6 and "towards 6" in window.views["drawing"].legend.text()
    # Shift+click a second bar: why 6 rather than 8.
    other = plot.mapFromScene(view.mapViewToScene(QPointF(8, 0.5)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, pos=other)
    snap = settle(qtbot, window)
    assert (snap.target, snap.contrast) == (6, 8) and "6 rather than 8" in window.views["drawing"].legend.text()
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos)
    snap = settle(qtbot, window)
    assert snap.target == 6 and snap.contrast is None
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos)
    snap = settle(qtbot, window)
    assert snap.target == snap.predicted == 0


def test_presentation_mode_toggles_show_the_truth_and_settings_are_saved_on_change(start_app, qtbot, settings):
    owner = start_app()
    window = owner.window
    normal_size = window.font().pointSizeF()
    assert not window.action("auto_rotate").isChecked() and not window.scene.auto_rotating
    qtbot.keyClick(window.canvas, Qt.Key.Key_F11)
    assert window.presentation and window.isFullScreen()
    assert window.font().pointSizeF() >= normal_size * 1.6 - 0.01
    # It rotates, and the toggle says so.
    assert window.scene.auto_rotating and window.action("auto_rotate").isChecked()
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert not window.scene.auto_rotating and not window.action("auto_rotate").isChecked()
    qtbot.keyClick(window.canvas, Qt.Key.Key_F11)
    assert not window.presentation and not window.scene.auto_rotating
    window.views["drawing"].opacity_slider.setValue(40)
    # Saved at once, before the window closes (so a second instance never loses it).
    assert float(settings.value("overlay/opacity")) == pytest.approx(0.4)
    assert settings.value("model/last") == "tiny"


def dock_layout(window):
    return {name: dock.geometry().getRect() for name, dock in window.docks.items() if dock.isVisible()}


def test_f11_out_and_back_gives_the_presentation_layout(start_app, qtbot):
    window = start_app(presentation=True).window
    qtbot.waitUntil(window.isFullScreen, timeout=10_000)
    qtbot.wait(200)
    first = (dock_layout(window), window.centralWidget().geometry().getRect(), window.layout_report())
    qtbot.keyClick(window.canvas, Qt.Key.Key_F11)
    qtbot.wait(200)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: window.isFullScreen(), timeout=10_000)
    qtbot.wait(300)
    again = (dock_layout(window), window.centralWidget().geometry().getRect(), window.layout_report())
    assert again == first


def test_same_size_same_layout_whatever_the_resize_order(start_app, qtbot):
    window = start_app().window
    sizes = [(1200, 760), (900, 640), (1300, 800), (1200, 760)]
    layouts = []
    for w, h in sizes:
        window.resize(w, h)
        qtbot.waitUntil(lambda: window.size().width() == w, timeout=5_000)
        qtbot.wait(150)
        layouts.append(dock_layout(window))
    assert layouts[0] == layouts[-1]


def test_menu_mnemonics_win_over_single_keys(start_app, qtbot):
    """Alt+H then A opens About (not auto-rotate); Alt+M then C opens the model card (not the next channel)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialog, QMenu, QMessageBox

    window = start_app().window
    opened = []

    def close_dialog():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(50, close_dialog)
            return
        opened.append(dialog.windowTitle())
        dialog.close() if not isinstance(dialog, QDialog) else dialog.reject()

    cases = ((Qt.Key.Key_H, Qt.Key.Key_A, "About"), (Qt.Key.Key_M, Qt.Key.Key_C, "Model card"))
    for menu_key, item_key, title in cases:
        window.activateWindow()  # the closed dialog handed the focus back, as a desktop would
        qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
        qtbot.keyClick(window, menu_key, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu), timeout=5_000)
        QTimer.singleShot(50, close_dialog)
        qtbot.keyClick(QApplication.activePopupWidget(), item_key)
        qtbot.waitUntil(lambda: len(opened) > 0, timeout=10_000)
        assert title in opened.pop()
        qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=5_000)
    assert not window.session.auto_rotate and window.session.channel is None
    assert QMessageBox  # noqa: B018  (imported for readers: About is a QMessageBox)


def test_single_keys_are_ignored_while_a_menu_is_open(start_app, qtbot):
    from PySide6.QtWidgets import QApplication, QMenu

    window = start_app().window
    qtbot.keyClick(window, Qt.Key.Key_V, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu), timeout=5_000)
    popup = QApplication.activePopupWidget()
    qtbot.keyClick(popup, Qt.Key.Key_L)  # not a mnemonic of the View menu's items: nothing may happen
    qtbot.keyClick(popup, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=5_000)
    assert window.session.connection_mode == "significant"
    qtbot.keyClick(window.canvas, Qt.Key.Key_L)  # without the menu it works
    assert window.session.connection_mode == "all"


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
    requests = []
    window.session.request_made.connect(requests.append)
    qtbot.keyClick(window.canvas, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.loaded.arch.name == "wide", timeout=60_000)
    snap = settle(qtbot, window)
    assert snap.predicted == 0 and np.array_equal(window.canvas.model.pixels, drawing)
    assert len(snap.activations["pool2"]) == 16
    assert len(requests) == 1, "a model switch analyses the drawing once"
    assert [b.text() for b in window.views["drawing"].channel_buttons][:3] == ["All", "Ch 0", "Ch 1"]


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
    assert snap.predicted == 1 and window.canvas.overlay_rgba is not None
    assert not window.scene.has_gl and "without OpenGL" in window.scene.fallback_reason
    assert "connections shown" not in window.scene.status_text


# A self-test whose probabilities view raises once a digit is analysed: an unexpected bug inside a Qt slot.
BROKEN_SELF_TEST = (
    "import sys\n"
    "from cnnviz_desktop.ui.views import probabilities_view\n"
    "def broken(self):\n"
    "    if self.session.snapshot is not None and not self.session.snapshot.empty:\n"
    "        raise RuntimeError('injected failure')\n"
    "probabilities_view.ProbabilitiesView.render = broken\n"
    "from cnnviz_desktop.__main__ import main\n"
    "sys.exit(main(['--self-test']))\n"
)


def test_self_test_fails_fast_on_an_unexpected_exception(tmp_path):
    """A bug inside a Qt slot makes --self-test exit non-zero with one line, not hang."""
    script = BROKEN_SELF_TEST
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
    assert window.session.picked == ("pool2", (0, 2, 2))
    assert window.canvas.highlight == window.snapshot.placement.box_to_canvas(box)
    r0, c0, r1, c1 = window.canvas.highlight
    assert 0 <= r0 < r1 <= 28 and 0 <= c0 < c1 <= 28
    assert f"{layer} {tuple(index)}" in window.statusBar().currentMessage()


LAYOUT_SIZES = [(1024, 768), (1280, 800), (1366, 768), (1920, 1080)]


def _self_test_at(tmp_path, size, *extra):
    w, h = size
    shot = tmp_path / f"shot_{w}x{h}{'_p' if extra else ''}.png"
    env = dict(os.environ, CNNVIZ_USER_DATA=str(tmp_path / f"data{w}{extra}"))
    env.pop("DISPLAY", None)
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {w}x{h}x24 +extension GLX +render -nolisten tcp",
           sys.executable, "-m", "cnnviz_desktop", "--self-test", "--screenshot", str(shot), *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("size", LAYOUT_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_layout_fits_every_screen(tmp_path, size):
    """Fresh settings on a screen of this size: the window fits, the 3D view is the stage (>= 55% of the
    window from 1366x768 up), nothing on a toolbar hides behind the overflow chevron, no button or label
    is narrower than its text, the grid is at least 280x280 px; presentation text is 1.6x normal."""
    report = _self_test_at(tmp_path, size)["layout"]
    assert report["fits"], report
    if size[0] >= 1366:
        assert report["scene_share"] >= 0.55, report
    assert report["toolbar_hidden"] == [] and report["clipped"] == [], report
    assert min(report["grid_px"]) >= 280, report
    shown = _self_test_at(tmp_path, size, "--presentation")["layout"]
    assert shown["fits"] and shown["window"] == list(size), shown
    assert shown["toolbar_hidden"] == [] and shown["clipped"] == [], shown
    assert shown["font_pt"] >= 1.6 * shown["normal_font_pt"] - 0.01
    assert min(shown["grid_px"]) >= 280, shown


def test_two_instances_keep_each_others_settings(start_app, qtbot, settings, tmp_path):
    """The other instance (another process) changes a setting while this one runs; this one changes another
    and quits: both changes survive."""
    owner = start_app()
    path = settings.fileName()
    other = (
        "import sys\n"
        "from PySide6.QtCore import QSettings\n"
        "s = QSettings(sys.argv[1], QSettings.Format.IniFormat)\n"
        "s.setValue('view/palette', 'colorblind')\n"
        "s.sync()\n"
    )
    subprocess.run([sys.executable, "-c", other, path], check=True, timeout=60)
    owner.window.views["drawing"].opacity_slider.setValue(30)
    owner.window.close()
    settings.sync()
    assert settings.value("view/palette") == "colorblind"
    assert float(settings.value("overlay/opacity")) == pytest.approx(0.3)


def test_settings_and_error_log_follow_cnnviz_user_data(tmp_path):
    data = tmp_path / "data"
    env = dict(os.environ, CNNVIZ_USER_DATA=str(data), XDG_CONFIG_HOME=str(tmp_path / "config"))
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop", "--self-test"], capture_output=True,
                            text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    assert "[model]\nlast=tiny" in (data / "settings.ini").read_text()
    assert not (tmp_path / "config").exists(), "nothing may be written outside the user data folder"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < report["analysis_ms"] < 10_000


def test_an_unwritable_data_folder_says_where_the_details_could_not_go(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    script = BROKEN_SELF_TEST
    env = dict(os.environ, CNNVIZ_USER_DATA=str(blocker / "data"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert "could not be written to" in result.stderr and str(blocker / "data") in result.stderr
    assert "injected failure" in result.stderr  # the details are not lost: they follow on stderr


def test_open_a_broken_or_huge_image_says_cannot_open_this_image(start_app, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window = start_app().window
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append((title, text)))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    before = window.canvas.model.pixels.copy()
    assert not window.load_image(bad)
    assert shown and shown[0][1].startswith("cannot open this image") and "broken.png" in shown[0][1]
    assert np.array_equal(window.canvas.model.pixels, before)  # the drawing is kept
