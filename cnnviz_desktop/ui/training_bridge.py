"""Qt bridge to the trainer process (core/trainer.py): a reader thread turns its pipe messages into signals.

The reader thread only reads the pipe and emits; slots run on the GUI thread (queued: the bridge lives there),
so the training view never blocks on the pipe, and the child never blocks on a full pipe while the GUI is busy.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QTimer, Signal

from ..core.trainer import TrainerProcess, TrainSettings


class TrainingBridge(QObject):
    """One trainer process at a time. Signals (GUI thread): message(kind, payload) for every protocol message
    (see core/trainer.py), exited(exitcode) once the process is gone."""

    message = Signal(str, object)
    exited = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trainer: TrainerProcess | None = None
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    @property
    def alive(self) -> bool:
        return self.trainer is not None and self.trainer.alive()

    def start(self, settings: TrainSettings) -> None:
        """End any previous trainer, spawn a new one with ``settings`` (CnnvizError if they are invalid)."""
        self.shutdown()
        trainer = TrainerProcess()
        trainer.start(settings)
        self.trainer = trainer
        self._stop_reading = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(trainer, self._stop_reading),
                                        name="cnnviz-trainer-reader", daemon=True)
        self._reader.start()

    def send(self, kind: str, payload=None) -> bool:
        return self.trainer is not None and self.trainer.send(kind, payload)

    def _read(self, trainer: TrainerProcess, stop: threading.Event) -> None:
        while not stop.is_set():
            message = trainer.recv(0.2)
            if message is None:
                continue
            kind, payload = message
            if stop.is_set():
                return
            if kind == "exited":
                self.exited.emit(payload.get("exitcode"))
                return
            self.message.emit(kind, payload)

    def wait_for(self, kinds: tuple[str, ...], timeout_ms: int = 15_000) -> tuple[str, object] | None:
        """Run a local event loop until one of ``kinds`` arrives (or the process exits, or the timeout): the
        (kind, payload) or None. Used when the window closes and must save before it stops the trainer."""
        loop = QEventLoop()
        got: list = []

        def on_message(kind: str, payload) -> None:
            if kind in kinds:
                got.append((kind, payload))
                loop.quit()

        self.message.connect(on_message)
        self.exited.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        self.message.disconnect(on_message)
        self.exited.disconnect(loop.quit)
        return got[0] if got else None

    def shutdown(self) -> None:
        """Stop the reader, ask the child to quit, terminate it if needed, join it. Idempotent."""
        self._stop_reading.set()
        if self._reader is not None:
            self._reader.join(2.0)
            self._reader = None
        if self.trainer is not None:
            self.trainer.close()
            self.trainer = None
