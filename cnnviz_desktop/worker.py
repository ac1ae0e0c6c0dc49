"""InferenceWorker: one background thread that turns AnalysisRequests into Snapshots, latest wins.

Threading rules (ARCHITECTURE.md section 1):
- The GUI thread calls :meth:`InferenceWorker.submit`, :meth:`set_model` and :meth:`stop`; it receives
  :attr:`result_ready` through a queued connection, so slots run in the GUI
  thread and may touch widgets.
- Only the worker thread touches the model (it builds the Analyzer too). Requests and snapshots are
  immutable, so nothing else is shared except a small mailbox guarded by one condition variable.
- Coalescing: while the worker is busy, a newer request replaces the pending one (counted in
  :attr:`coalesced`). The last submitted request is always analysed.
- Every result is handed to the GUI thread as a :class:`~cnnviz_desktop.core.session.WorkerResult`
  carrying the generation of the model that made it; the session (core/session.py) is the one place that
  drops stale results (an older generation, or an older request than the one shown).
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal

from .core.analysis import AnalysisRequest
from .core.errors import CnnvizError
from .core.session import WorkerResult

log = logging.getLogger(__name__)


class _Thread(QThread):
    """A QThread whose run() is the worker loop (no event loop needed: it waits on a condition)."""

    def __init__(self, loop, parent: QObject | None = None):
        super().__init__(parent)
        self._loop = loop

    def run(self) -> None:  # noqa: D102  (Qt override)
        self._loop()


class InferenceWorker(QObject):
    """Runs analyses on one QThread. Signal: result_ready(WorkerResult), in the GUI thread (queued).

    model: a weights.LoadedModel, an analysis.Analyzer, or any object with ``analyse(request) -> Snapshot``
    (tests inject fakes); may also be given later with :meth:`set_model`. Requests submitted before a
    model is set wait for it. threads: torch intra-op threads in the worker (1 measured fastest here).
    Call :meth:`stop` before the application exits (it is connected to QCoreApplication.aboutToQuit).
    """

    result_ready = Signal(object)
    # Internal: emitted from the worker thread, received (queued) in the GUI thread.
    _result_posted = Signal(object)

    def __init__(self, model: Any = None, parent: QObject | None = None, *, threads: int = 1):
        super().__init__(parent)
        self._threads = max(1, int(threads))
        self._cond = threading.Condition()
        # Mailbox (guarded by _cond): the pending request, a pending model, the current generation.
        self._pending: AnalysisRequest | None = None
        self._pending_model: tuple[int, Any] | None = None
        self._generation = 0
        self._stopping = False
        self._busy = False
        self._last_request: AnalysisRequest | None = None
        # Counters (coalesced/completed under _cond; delivered in the GUI thread only).
        self.coalesced = 0
        self.completed = 0
        self.delivered = 0
        self._stopped = False
        self._result_posted.connect(self._on_result_posted, Qt.ConnectionType.QueuedConnection)
        self._thread = _Thread(self._run, self)
        self._thread.setObjectName("cnnviz-inference")
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)
        if model is not None:
            self.set_model(model, reanalyse=False)
        self._thread.start()

    # -- GUI-thread API --------------------------------------------------------------------------

    @property
    def thread_handle(self) -> QThread:
        """The worker's QThread (for tests and diagnostics)."""
        return self._thread

    @property
    def generation(self) -> int:
        """The generation of the newest model given to :meth:`set_model`."""
        with self._cond:
            return self._generation

    @property
    def busy(self) -> bool:
        """True while an analysis runs or one is pending."""
        with self._cond:
            return self._busy or self._pending is not None

    def submit(self, request: AnalysisRequest) -> bool:
        """Queue a request; a still-pending older one is replaced. False after stop()."""
        with self._cond:
            if self._stopping:
                return False
            if self._pending is not None:
                self.coalesced += 1
            self._pending = request
            self._last_request = request
            self._cond.notify()
        return True

    def set_model(self, model: Any, reanalyse: bool = False, generation: int | None = None) -> None:
        """Use ``model`` for every later analysis; its results carry ``generation`` (default: one more
        than the last), so the session can tell them from the previous model's.

        With reanalyse the last submitted request is analysed again with the new model unless a newer
        one is already pending. The app does not use it: the session submits a fresh request itself
        after a model switch (once: the drawing is not analysed twice).
        """
        with self._cond:
            if self._stopping:
                return
            self._generation = self._generation + 1 if generation is None else int(generation)
            self._pending_model = (self._generation, model)
            if reanalyse and self._pending is None and self._last_request is not None:
                self._pending = self._last_request
            self._cond.notify()

    def stop(self) -> None:
        """Stop the thread and wait for it (an analysis in progress finishes first). Idempotent."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._pending_model = None
            self._cond.notify_all()
        if self._thread.isRunning():
            self._thread.wait()
        self._stopped = True

    # -- worker thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            import torch

            torch.set_num_threads(self._threads)
        except Exception:  # pragma: no cover - torch is always there in practice
            log.exception("could not set torch threads")
        analyzer: Any = None
        generation = 0
        while True:
            with self._cond:
                while not self._stopping and self._pending_model is None and (
                        self._pending is None or analyzer is None):
                    self._cond.wait()
                if self._stopping:
                    return
                model_job, self._pending_model = self._pending_model, None
                request = None
                if model_job is not None or analyzer is not None:
                    request, self._pending = self._pending, None
                self._busy = True
            try:
                if model_job is not None:
                    generation, model = model_job
                    try:
                        analyzer = self._make_analyzer(model)
                    except Exception as exc:  # a model the engine cannot analyse
                        analyzer = None
                        log.error("cannot analyse with model %r:\n%s", model, traceback.format_exc())
                        rid = request.request_id if request is not None else -1
                        self._result_posted.emit((generation, rid, None, _message(exc)))
                        continue
                if request is None or analyzer is None:
                    if request is not None:
                        with self._cond:  # no model yet: keep it for when one arrives
                            if self._pending is None:
                                self._pending = request
                    continue
                try:
                    snapshot = analyzer.analyse(request)
                except Exception as exc:
                    if not isinstance(exc, CnnvizError):
                        log.error("analysis of request %d failed:\n%s", request.request_id, traceback.format_exc())
                    self._result_posted.emit((generation, request.request_id, None, _message(exc)))
                else:
                    self._result_posted.emit((generation, request.request_id, snapshot, None))
                with self._cond:
                    self.completed += 1
            finally:
                with self._cond:
                    self._busy = False

    @staticmethod
    def _make_analyzer(model: Any) -> Any:
        if hasattr(model, "analyse"):
            return model
        from .core.analysis import Analyzer

        return Analyzer(model)

    # -- GUI thread: results -----------------------------------------------------------------------

    def _on_result_posted(self, payload: tuple[int, int, Any, str | None]) -> None:
        if self._stopped:
            return
        generation, request_id, snapshot, error = payload
        self.delivered += 1
        self.result_ready.emit(WorkerResult(generation, request_id, snapshot, error))


def _message(exc: BaseException) -> str:
    if isinstance(exc, CnnvizError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
