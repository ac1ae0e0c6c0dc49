"""Replay a recorded drawing through the mouse's own input path, so the class watches the prediction change
while the digit forms.

:class:`Replayer` takes a core.drawings.Drawing and the drawing grid (a CanvasWidget), clears the grid (one
undoable step) and sends real QMouseEvents (ui/input_sim.send_mouse: left button draws, right button erases)
at the times of core.drawings.replay_schedule, from a single-shot QTimer: the event loop is never blocked, so
the worker analyses the digit as it forms and the views render each result. The strokes are drawn at the
grid's current brush (a mouse has no pressure).

While it runs, real pointer input on the grid is ignored (it would tangle with the replayed stroke) and Esc
stops it (as does :meth:`Replayer.stop`, e.g. a Stop button); a stroke in progress is released where it is,
so what was drawn so far stays on the grid (Ctrl+Z undoes it stroke by stroke).

``Replayer.of(window)`` is the window's one replayer (the Edit menu's 'Replay drawing', the dashboard's
Replay button and ``cnnviz --replay`` share it).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QWidget

from ..core.drawings import Drawing, Schedule, replay_schedule
from .input_sim import send_mouse

SPEEDS = (1.0, 2.0, 4.0)  # the choices the dashboard offers
MAX_BATCH = 16  # events per event-loop turn at 'max' speed (frames still come between batches)
_POINTER_EVENTS = {
    QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick,
    QEvent.Type.MouseMove, QEvent.Type.TabletPress, QEvent.Type.TabletMove, QEvent.Type.TabletRelease,
    QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.TouchEnd, QEvent.Type.TouchCancel,
}


def speed_text(speed: float) -> str:
    """'1x', '2x', 'max' (as fast as the event loop takes them)."""
    return "max" if math.isinf(speed) else f"{speed:g}x"


class Replayer(QObject):
    """Replays drawings onto a CanvasWidget. Signals: started(total events), progress(sent, total),
    finished(cancelled: bool) -- once per replay, also when stopped."""

    started = Signal(int)
    progress = Signal(int, int)
    finished = Signal(bool)

    def __init__(self, canvas: QWidget, session=None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Replayer")
        self.canvas = canvas
        self.session = session  # core.session.Session: clears through it (analysis request, undo step)
        self._schedule: Schedule | None = None
        self._next = 0
        self._sending = False
        self._button_down: Qt.MouseButton | None = None
        self._last_pos = QPointF(0, 0)
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.speed = 1.0
        self._batch = MAX_BATCH
        canvas.destroyed.connect(self._on_canvas_gone)

    @classmethod
    def of(cls, window) -> Replayer:
        """The replayer of the main window (created on first use, replaying onto ``window.canvas``)."""
        found = window.findChild(Replayer, "Replayer")
        return found if found is not None else cls(window.canvas, window.session, window)

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        return self._schedule is not None

    @property
    def total(self) -> int:
        return len(self._schedule) if self._schedule is not None else 0

    def start(self, drawing: Drawing, speed: float = 1.0, clear: bool = True) -> None:
        """Start replaying ``drawing`` at ``speed`` (1: original pace; math.inf: no waiting, MAX_BATCH events
        per event-loop turn). A replay already running is stopped first. Clears the grid first (undoable)
        unless ``clear`` is False. Raises core CnnvizError for a bad speed (nothing changed then)."""
        schedule = replay_schedule(drawing, speed)
        if self.running:
            self.stop()
        model = self.canvas.model
        if model.in_stroke:  # the user is holding a button: finish their stroke first
            model.end_stroke()
        if clear:
            if self.session is not None:
                self.session.clear()
            elif model.clear():
                self.canvas.notify_changed()
        self.speed = float(speed)
        self._batch = MAX_BATCH if math.isinf(self.speed) else len(schedule)
        self._schedule, self._next = schedule, 0
        self.canvas.installEventFilter(self)
        QApplication.instance().installEventFilter(self)  # Esc, wherever the keyboard is in the window
        self._clock.start()
        self.started.emit(len(schedule))
        self._timer.start(0)

    def stop(self) -> None:
        """Stop the replay (a stroke in progress is released where it is); emits finished(True)."""
        if self.running:
            self._finish(cancelled=True)

    # ------------------------------------------------------------------ sending
    def _tick(self) -> None:
        schedule = self._schedule
        if schedule is None:
            return
        elapsed = self._clock.nsecsElapsed() / 1e9
        if schedule[self._next][0] > elapsed:
            self._timer.start(max(int((schedule[self._next][0] - elapsed) * 1000), 0))
            return
        # Every event that is due goes now, as a real mouse's queued moves are delivered together after a slow
        # frame (one event per event-loop turn would fall behind: each turn may render a new analysis, tens of
        # ms under software OpenGL). At 'max' speed (all due at once) a few go per turn, so frames come between.
        sent = 0
        while self._next < len(schedule) and schedule[self._next][0] <= elapsed and sent < self._batch:
            self._send(schedule[self._next][1])
            self._next += 1
            sent += 1
            if self._schedule is None:
                return  # stopped from inside the event (a slot of the canvas)
        self.progress.emit(self._next, len(schedule))
        if self._next >= len(schedule):
            self._finish(cancelled=False)
            return
        wait = schedule[self._next][0] - self._clock.nsecsElapsed() / 1e9
        self._timer.start(max(int(wait * 1000), 0))

    def _send(self, event) -> None:
        canvas = self.canvas
        pos = self._last_pos = canvas.cell_centre(event.x, event.y)
        button = Qt.MouseButton.RightButton if event.erase else Qt.MouseButton.LeftButton
        self._sending = True
        try:
            if event.kind == "press":
                send_mouse(canvas, QEvent.Type.MouseButtonPress, pos, button, button)
                self._button_down = button
            elif event.kind == "move":
                send_mouse(canvas, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, button)
            else:
                send_mouse(canvas, QEvent.Type.MouseButtonRelease, pos, button, Qt.MouseButton.NoButton)
                self._button_down = None
        finally:
            self._sending = False

    def _finish(self, cancelled: bool) -> None:
        self._timer.stop()
        if self._button_down is not None:
            button, self._button_down = self._button_down, None
            try:
                self._sending = True
                send_mouse(self.canvas, QEvent.Type.MouseButtonRelease, self._last_pos, button,
                           Qt.MouseButton.NoButton)
            except RuntimeError:  # the canvas is being destroyed
                pass
            finally:
                self._sending = False
        self._schedule = None
        try:
            self.canvas.removeEventFilter(self)
        except RuntimeError:
            pass
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.finished.emit(cancelled)

    def _on_canvas_gone(self) -> None:
        self._button_down = None
        if self.running:
            self._timer.stop()
            self._schedule = None
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
            self.finished.emit(True)

    # ------------------------------------------------------------------ input while replaying
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        kind = event.type()
        if kind == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape and self.running:
            app = QApplication.instance()
            window = self.canvas.window()
            if isinstance(obj, QWidget) and obj.window() is window and app.activeModalWidget() is None \
                    and app.activePopupWidget() is None:
                self.stop()
                return True
            return False
        if obj is self.canvas and kind in _POINTER_EVENTS and not self._sending:
            event.accept()
            return True  # a real hand on the grid while the replay draws: ignored
        return False


__all__ = ["SPEEDS", "Replayer", "speed_text"]
