"""Record and replay strokes, drawings files and ``cnnviz --replay``, driven as a person (or a script) would.
Each test has its own CNNVIZ_USER_DATA, so the real history is never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cnnviz_desktop.core.history import History, default_path
from cnnviz_desktop.ui.input_sim import drag
from cnnviz_desktop.ui.replay import Replayer

from .test_history_gui import click_row, open_dashboard
from .test_main_window import settle

ROOT = Path(__file__).resolve().parents[2]
SEVEN = [[(7.0, 6.0), (20.0, 6.0)], [(20.0, 6.0), (17.0, 12.0), (14.0, 18.0), (12.0, 23.0)]]


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    folder = tmp_path / "userdata"
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(folder))
    return folder


def draw_and_save(qtbot, window, strokes):
    for stroke in strokes:
        drag(window.canvas, stroke, steps=6)
        settle(qtbot, window)  # the pen is lifted a while between strokes, as a person does
    snapshot = settle(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "Saved drawing" in window.statusBar().currentMessage()
    return snapshot


def test_replay_from_the_dashboard_shows_the_digit_forming(start_app, qtbot, user_data):
    window = start_app().window
    original = draw_and_save(qtbot, window, SEVEN)
    pixels = window.session.canvas.pixels.copy()

    view = open_dashboard(qtbot, window)
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5_000)
    click_row(qtbot, view, 0)
    view.speed_box.setCurrentIndex(view.speed_box.findText("2x"))
    seen = []
    window.session.snapshot_changed.connect(seen.append)
    replayer = Replayer.of(window)
    with qtbot.waitSignal(replayer.finished, timeout=60_000) as finished:
        qtbot.mouseClick(view.replay_button, Qt.MouseButton.LeftButton)
        assert replayer.running and view.replay_button.text() == "Stop replay"
        assert "Replaying drawing #1 at 2x" in window.statusBar().currentMessage()
    assert finished.args == [False]
    final = settle(qtbot, window)
    window.session.snapshot_changed.disconnect(seen.append)
    # The digit formed on the grid stroke by stroke: several analysed states, not one jump to the end.
    drawn = [s for s in seen if not s.empty]
    distinct = {tuple(np.round(s.probabilities, 4)) for s in drawn}
    assert len(distinct) > 1, len(seen)
    assert final.predicted == original.predicted
    np.testing.assert_allclose(window.session.canvas.pixels, pixels, atol=1e-4)
    assert view.replay_button.text() == "Replay"
    # The replay cleared the grid first, as one undo step: undo takes the two replayed strokes back, then
    # brings back the drawing that was on the grid.
    assert window.session.undo() and not window.session.canvas.is_empty
    assert window.session.undo() and window.session.canvas.is_empty
    assert window.session.undo()
    np.testing.assert_allclose(window.session.canvas.pixels, pixels)


def test_edit_replay_drawing_replays_the_grid_and_esc_stops_it(start_app, qtbot, user_data):
    window = start_app().window
    # A slow drawing: points 80 ms apart (a real pace), replayed from the Edit menu at the original pace.
    model = window.session.canvas
    model.begin_stroke(14.0, 3.0, t=0.0)
    for k in range(1, 40):
        model.extend_stroke(14.0, 3.0 + k * 0.55, t=k * 0.08)
    model.end_stroke()
    window.canvas.notify_changed()
    settle(qtbot, window)
    replayer = Replayer.of(window)
    window.action("replay").trigger()
    assert replayer.running and "Esc stops" in window.statusBar().currentMessage()
    canvas = window.session.canvas
    qtbot.waitUntil(lambda: canvas.in_stroke and len(canvas.strokes[-1]) >= 3, timeout=10_000)
    # A real mouse on the grid meanwhile is ignored (it would tangle with the replayed stroke).
    qtbot.mouseClick(window.canvas, Qt.MouseButton.LeftButton, pos=window.canvas.cell_centre(3, 3).toPoint())
    assert window.session.canvas.pixels[3, 3] == 0
    with qtbot.waitSignal(replayer.finished, timeout=10_000) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert finished.args == [True] and not replayer.running
    assert not window.session.canvas.in_stroke
    strokes = window.session.canvas.strokes
    assert len(strokes) == 1 and 1 < len(strokes[0]) < 40  # stopped half-way: the part drawn stays
    assert "Replay stopped" in window.statusBar().currentMessage()
    settle(qtbot, window)


def test_export_then_import_drawings_through_the_file_menu(start_app, qtbot, user_data, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from cnnviz_desktop.core.drawings import read_drawings
    from cnnviz_desktop.ui.drawings_io import DrawingsIO

    window = start_app().window
    first = draw_and_save(qtbot, window, SEVEN)
    window.session.clear()
    draw_and_save(qtbot, window, [[(14.0, 4.0), (14.5, 24.0)]])
    target = tmp_path / "class.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    io = DrawingsIO.of(window)
    file_menu = window.menus["&File"]
    texts = [a.text() for a in file_menu.actions()]
    assert "Export &drawings..." in texts and "&Import drawings..." in texts

    with qtbot.waitSignal(io.done, timeout=30_000) as done:
        window.action("export_drawings").trigger()
    assert done.args[0] == "export" and "Exported 2 drawings" in done.args[1]
    back = read_drawings(target)
    assert len(back) == 2 and len(back[0].strokes) == 2

    with qtbot.waitSignal(io.done, timeout=30_000) as done:
        window.action("import_drawings").trigger()
    assert done.args[0] == "import" and "Imported 2 drawings" in done.args[1]
    with History.open(default_path()) as history:
        assert history.count() == 4
        imported = history.get(3)
        saved = history.get(1)
    assert imported.source == "import:class.json" and imported.predicted == first.predicted
    np.testing.assert_allclose(imported.canvas, saved.canvas, atol=1e-3)

    # A bad file: one message box naming the problem; nothing half-imported (the first drawing was fine).
    doc = json.loads(target.read_text())
    doc["drawings"][1]["strokes"][0][2][0] = -5
    target.write_text(json.dumps(doc))
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append((title, text)))
    with qtbot.waitSignal(io.failed, timeout=30_000):
        window.action("import_drawings").trigger()
    assert shown and shown[0][0] == "Cannot import the drawings"
    assert "drawing 2, stroke 1, point 3: x is -5, must be 0-28" in shown[0][1]
    assert "Nothing was imported" in shown[0][1]
    with History.open(default_path()) as history:
        assert history.count() == 4


def _replay_cli(tmp_path, *args):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), CNNVIZ_USER_DATA=str(tmp_path / "data"),
               PYTHONPATH=str(ROOT))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1366x768x24 +extension GLX +render -nolisten tcp",
           sys.executable, "-m", "cnnviz_desktop", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_cnnviz_replay_json_prints_one_line_per_drawing(tmp_path):
    from cnnviz_desktop.core.canvas import builtin_digit

    seven, one = builtin_digit("seven"), builtin_digit("one")
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"drawings": [
        {"label": 7, "strokes": [[[x, y] for x, y in s] for s in seven]},
        {"label": None, "strokes": [[[x, y, 0.02 * k] for k, (x, y) in enumerate(s)] for s in one]},
    ]}))
    result = _replay_cli(tmp_path, "--replay", str(path), "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["index"] for r in lines] == [1, 2] and [r["label"] for r in lines] == [7, None]
    assert [r["predicted"] for r in lines] == [7, 1]
    assert all(len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-3 for r in lines)
    plain = _replay_cli(tmp_path, "--replay", str(path), "--replay-speed", "4", "--model", "wide")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0].startswith("1: label 7, predicted 7 (")


def test_cnnviz_replay_refuses_a_malformed_file_before_the_window_opens(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"drawings": [{"strokes": [[[1, 1], [2, NaN]]]}]}')
    env = dict(os.environ, DISPLAY="", QT_QPA_PLATFORM="", PYTHONPATH=str(ROOT))  # no display: no window possible
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop", "--replay", str(path)], capture_output=True,
                            text=True, timeout=60, env=env, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {path}: drawing 1, stroke 1, point 2: y is NaN, must be a finite number"
    assert result.stdout == ""
    bad_speed = subprocess.run([sys.executable, "-m", "cnnviz_desktop", "--replay", str(path), "--replay-speed",
                                "0"], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert bad_speed.returncode == 2 and "--replay-speed" in bad_speed.stderr and "Traceback" not in bad_speed.stderr


SELF_TEST_WITH_BROKEN_HISTORY = (
    "import sys\n"
    "from cnnviz_desktop.core import history\n"
    "def broken(self, record):\n"
    "    raise RuntimeError('no sqlite in this bundle')\n"
    "history.History.save = broken\n"
    "from cnnviz_desktop.__main__ import main\n"
    "sys.exit(main(['--self-test']))\n"
)


@pytest.mark.parametrize("broken", [False, True])
def test_self_test_saves_and_reads_one_drawing_in_a_temporary_history(tmp_path, broken):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), CNNVIZ_USER_DATA=str(tmp_path / "data"),
               PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", SELF_TEST_WITH_BROKEN_HISTORY] if broken else \
        [sys.executable, "-m", "cnnviz_desktop", "--self-test"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not (tmp_path / "data" / "history.sqlite").exists()  # the user's history is not touched
    if broken:
        assert result.returncode == 1 and report["history"] == "failed: RuntimeError: no sqlite in this bundle"
        assert "error: the history database failed" in result.stderr and "Traceback" not in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert report["ok"] and report["history"] == "ok"


def test_replay_shows_a_drawing_grid_that_was_closed_since_launch(start_app, qtbot, user_data, settings):
    from cnnviz_desktop.core.drawings import Drawing
    from cnnviz_desktop.core.strokes import Stroke
    from cnnviz_desktop.ui.drawings_io import replay

    settings.setValue("window/docks", json.dumps({"drawing": False}))
    window = start_app().window
    assert not window.docks["drawing"].isVisible()
    line = Drawing.from_strokes([Stroke([[14.0, 4.0 + k, 0.01 * k, 1.0] for k in range(21)])])
    replayer = replay(window, line, 4.0)
    with qtbot.waitSignal(replayer.finished, timeout=30_000):
        pass
    assert window.docks["drawing"].isVisible()
    pixels = window.session.canvas.pixels
    assert pixels[4:24, 14].min() > 0.9 and pixels[:, :10].max() == 0  # the line where the file put it
    assert settle(qtbot, window).predicted == 1
