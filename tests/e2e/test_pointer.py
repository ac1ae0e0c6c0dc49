"""Pointer input on the drawing grid: real X pointer events (XTEST via xdotool) while the 3D view renders,
pen (tablet) pressure and eraser, touch.

The real-pointer test is the regression test for lost stroke points: with Qt's default motion-event
compression on X11, moves queued while the GUI thread renders were merged into the newest one, and a fast
circle became a polygon of long chords.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cnnviz_desktop.core.canvas import CanvasModel

from .test_main_window import settle

pytestmark = pytest.mark.gl

HZ = 125.0


def circle_cells(n: int, cx: float = 14.0, cy: float = 14.0, r: float = 8.0) -> list[tuple[float, float]]:
    """n positions (cell units) once round a circle, starting at the top, clockwise."""
    return [(cx + r * math.sin(2 * math.pi * i / n), cy - r * math.cos(2 * math.pi * i / n)) for i in range(n)]


def screen_points(canvas, cells) -> list[QPoint]:
    """Cell positions -> distinct global screen pixels (XTEST moves the pointer by whole pixels)."""
    points: list[QPoint] = []
    for x, y in cells:
        p = canvas.mapToGlobal(canvas.cell_centre(x, y)).toPoint()
        if not points or p != points[-1]:
            points.append(p)
    return points


def xdotool_stroke(points: list[QPoint], hz: float = HZ) -> subprocess.Popen:
    """Press the left button at points[0], move through the rest at ``hz``, release: one xdotool process
    (XTEST), so the X server, not Qt, produces the events."""
    cmd = ["xdotool", "mousemove", str(points[0].x()), str(points[0].y()), "sleep", "0.3", "mousedown", "1"]
    for p in points[1:]:
        cmd += ["sleep", f"{1 / hz:.4f}", "mousemove", str(p.x()), str(p.y())]
    cmd += ["sleep", "0.05", "mouseup", "1"]
    return subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_fast_real_pointer_circle_keeps_every_position(start_app, qtbot):
    if not shutil.which("xdotool"):
        pytest.skip("xdotool is not installed (apt-get install xdotool)")
    window = start_app().window
    canvas = window.canvas
    view = window.scene.view
    assert view is not None
    # The user's situation: the 3D view keeps rendering (analyses arrive and it auto-rotates or is redrawn).
    frames = []

    def keep_rendering():
        frames.append(1)
        view.update()

    view.frameSwapped.connect(keep_rendering)
    view.update()
    points = screen_points(canvas, circle_cells(80))
    assert len(points) >= 60
    applied: list[tuple[float, float]] = []
    canvas.point_applied.connect(lambda x, y: applied.append((x, y)))
    finished = []
    canvas.stroke_finished.connect(lambda: finished.append(1))
    proc = xdotool_stroke(points)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60_000)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    view.frameSwapped.disconnect(keep_rendering)
    assert frames, "the 3D view did not render during the stroke"

    expected = [canvas.to_cells(QPointF(canvas.mapFromGlobal(p))) for p in points]
    # Every position X delivered reached the grid, in order (a merged move would be missing here).
    assert len(applied) == len(expected), (len(applied), len(expected))
    assert np.allclose(np.array(applied), np.array(expected), atol=1e-3)

    # The curve keeps its shape: the drawing equals the same positions painted one by one, every cell on
    # the ideal circle is inked and the centre is not.
    ideal = CanvasModel()
    ideal.set_radius(canvas.model.radius)
    ideal.begin_stroke(*expected[0])
    for x, y in expected[1:]:
        ideal.extend_stroke(x, y)
    ideal.end_stroke()
    assert np.abs(canvas.model.pixels - ideal.pixels).max() < 1e-4
    pixels = canvas.model.pixels
    for x, y in circle_cells(160):
        assert pixels[int(y), int(x)] > 0.5, (x, y)
    assert pixels[13:15, 13:15].max() == 0.0
    snap = settle(qtbot, window)
    assert not snap.empty


# --- pen (tablet) and touch -------------------------------------------------------------------------------

def make_pen(pointer: QPointingDevice.PointerType, name: str) -> QPointingDevice:
    caps = (QInputDevice.Capability.Position | QInputDevice.Capability.Pressure
            | QInputDevice.Capability.Hover)
    return QPointingDevice(name, 4242 + int(pointer.value), QInputDevice.DeviceType.Stylus, pointer, caps, 1, 3)


def send_tablet(canvas, device, kind, cell, pressure, buttons=Qt.MouseButton.LeftButton) -> bool:
    pos = canvas.cell_centre(*cell)
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.TabletMove else Qt.MouseButton.NoButton
    event = QTabletEvent(kind, device, pos, QPointF(canvas.mapToGlobal(pos)), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                         Qt.KeyboardModifier.NoModifier, button, buttons)
    QApplication.sendEvent(canvas, event)
    return event.isAccepted()


def pen_line(canvas, device, pressure, row=14.0):
    """A horizontal pen stroke across the grid at ``row`` with constant pressure."""
    assert send_tablet(canvas, device, QEvent.Type.TabletPress, (4.0, row), pressure)
    for i in range(1, 21):
        send_tablet(canvas, device, QEvent.Type.TabletMove, (4.0 + i, row), pressure)
    send_tablet(canvas, device, QEvent.Type.TabletRelease, (24.0, row), pressure, Qt.MouseButton.NoButton)


def test_pen_pressure_sets_width_and_zero_is_thinnest(start_app, qtbot):
    window = start_app().window
    canvas = window.canvas
    pen = make_pen(QPointingDevice.PointerType.Pen, "test pen")
    ink = {}
    for pressure in (0.0, 0.5, 1.0):
        window.clear_canvas()
        points: list[tuple[float, float]] = []
        canvas.point_applied.connect(lambda x, y, points=points: points.append((x, y)))
        pen_line(canvas, pen, pressure)
        canvas.point_applied.disconnect()
        assert len(points) == 21 and not canvas.model.in_stroke
        ink[pressure] = float(canvas.model.pixels.sum())
        # The same line painted by the model at that pressure: the widget passes the pressure through.
        ref = CanvasModel()
        ref.set_radius(canvas.model.radius)
        ref.begin_stroke(*points[0], pressure=pressure)
        for x, y in points[1:]:
            ref.extend_stroke(x, y, pressure=pressure)
        assert np.allclose(canvas.model.pixels, ref.pixels, atol=1e-5), pressure
    assert 0 < ink[0.0] < ink[0.5] < ink[1.0], ink
    # Pressure 0 is the thinnest line (radius x 0.5), not a full-width one.
    full = CanvasModel()
    full.set_radius(canvas.model.radius)
    full.begin_stroke(4.5, 14.5)
    full.extend_stroke(24.5, 14.5)
    assert ink[0.0] < 0.8 * float(full.pixels.sum())
    settle(qtbot, window)


def test_pen_eraser_end_erases(start_app, qtbot):
    window = start_app().window
    canvas = window.canvas
    pen = make_pen(QPointingDevice.PointerType.Pen, "test pen")
    eraser = make_pen(QPointingDevice.PointerType.Eraser, "test pen eraser")
    pen_line(canvas, pen, 1.0)
    assert canvas.model.pixels[14, 14] > 0.9
    # The eraser end, crossing the line vertically.
    assert send_tablet(canvas, eraser, QEvent.Type.TabletPress, (14.5, 8.0), 1.0)
    for i in range(1, 13):
        send_tablet(canvas, eraser, QEvent.Type.TabletMove, (14.5, 8.0 + i), 1.0)
    send_tablet(canvas, eraser, QEvent.Type.TabletRelease, (14.5, 20.0), 1.0, Qt.MouseButton.NoButton)
    pixels = canvas.model.pixels
    assert pixels[14, 14] == 0.0 and pixels[14, 6] > 0.9
    # One undo step brings the erased part back.
    window.session.undo()
    assert canvas.model.pixels[14, 14] > 0.9
    settle(qtbot, window)


def test_touch_draws(start_app, qtbot):
    window = start_app().window
    canvas = window.canvas
    device = QTest.createTouchDevice()
    points = []
    canvas.point_applied.connect(lambda x, y: points.append((x, y)))
    QTest.touchEvent(canvas, device).press(0, canvas.cell_centre(14.0, 4.0).toPoint(), canvas).commit()
    for i in range(1, 21):
        QTest.touchEvent(canvas, device).move(0, canvas.cell_centre(14.0, 4.0 + i).toPoint(), canvas).commit()
    QTest.touchEvent(canvas, device).release(0, canvas.cell_centre(14.0, 24.0).toPoint(), canvas).commit()
    qtbot.waitUntil(lambda: not canvas.model.in_stroke, timeout=5_000)
    assert len(points) == 21
    pixels = canvas.model.pixels
    assert pixels[4:24, 14].min() > 0.9 and pixels[14, 4] == 0.0
    snap = settle(qtbot, window)
    assert not snap.empty
