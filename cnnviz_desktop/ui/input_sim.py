"""Synthetic pointer input through the same event path as a real mouse (self-test, tests, benchmarks)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget


def send_mouse(widget: QWidget, kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton,
               buttons: Qt.MouseButton) -> None:
    """Deliver one mouse event to ``widget`` as the windowing system would."""
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def stroke_events(widget, points: list[tuple[float, float]], erase: bool = False, steps: int = 4):
    """Yield after each event of a drag through ``points`` (cell units on a CanvasWidget), so callers
    can interleave event processing; ``steps`` intermediate moves per segment."""
    button = Qt.MouseButton.RightButton if erase else Qt.MouseButton.LeftButton
    to_widget = widget.cell_centre
    first = to_widget(*points[0])
    send_mouse(widget, QEvent.Type.MouseButtonPress, first, button, button)
    yield
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for i in range(1, steps + 1):
            t = i / steps
            send_mouse(widget, QEvent.Type.MouseMove, to_widget(x0 + t * (x1 - x0), y0 + t * (y1 - y0)),
                       Qt.MouseButton.NoButton, button)
            yield
    last = to_widget(*points[-1])
    send_mouse(widget, QEvent.Type.MouseButtonRelease, last, button, Qt.MouseButton.NoButton)
    yield


def drag(widget, points: list[tuple[float, float]], erase: bool = False, steps: int = 4) -> None:
    """A whole drag at once (events are still delivered one by one)."""
    for _ in stroke_events(widget, points, erase=erase, steps=steps):
        QApplication.processEvents()
