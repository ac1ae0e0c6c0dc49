"""Qt adapter for core/tasks.py: a lane whose updates arrive as signals on the GUI thread.

Only the newest task's updates are emitted (a superseded task's late progress is dropped here, once), so a
view connects ``progress``/``finished``/``failed``/``cancelled`` and renders what arrives.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

from ..core.tasks import TaskContext, TaskRunner, TaskUpdate


class QtTaskRunner(QObject):
    """One background lane for a view. Signals (GUI thread): progress(task_id, fraction, payload),
    finished(task_id, result), failed(task_id, message), cancelled(task_id)."""

    progress = Signal(int, float, object)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    _posted = Signal(object)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._runner = TaskRunner(name, self._posted.emit)
        self._latest = 0
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        runner = self._runner
        self.destroyed.connect(lambda *_: runner.shutdown(timeout=1.0))

    def submit(self, fn: Callable[[TaskContext], Any]) -> int:
        """Run ``fn(ctx)`` on the lane, cancelling the previous task. Returns the task id."""
        self._latest = self._runner.submit(fn)
        return self._latest

    def cancel(self) -> None:
        self._runner.cancel()

    @property
    def busy(self) -> bool:
        return self._runner.busy

    @property
    def latest(self) -> int:
        """The id of the newest submitted task."""
        return self._latest

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._runner.wait_idle(timeout)

    def shutdown(self) -> None:
        self._runner.shutdown(timeout=1.0)

    def _deliver(self, update: TaskUpdate) -> None:
        if update.task_id != self._latest:
            return
        if update.kind == "progress":
            self.progress.emit(update.task_id, update.fraction, update.payload)
        elif update.kind == "done":
            self.finished.emit(update.task_id, update.payload)
        elif update.kind == "failed":
            self.failed.emit(update.task_id, update.message)
        elif update.kind == "cancelled":
            self.cancelled.emit(update.task_id)
