"""Background lanes for heavy work (occlusion sweeps, input maximisation, t-SNE, batch re-runs).

A :class:`TaskRunner` is one lane: one daemon thread that runs one task at a time. Submitting a new task
cancels the one running (its token is set; the task stops at its next ``ctx.check()``) and drops any that
waited, so a lane always works on the newest request, never on a queue of stale ones (the pattern of
Orange3's ``widgets/utils/concurrent.py``). It is not the latest-wins analysis worker: the per-stroke path
never waits for a lane, and a lane never runs on the GUI thread.

Qt-free: updates are handed to a ``post`` callback *on the lane's thread*; the Qt adapter
(``ui/tasks.py``) turns them into queued signals for the GUI thread.

A task is ``fn(ctx) -> result``. ``ctx.progress(fraction, payload)`` reports progress (and partial
results, e.g. an image being optimised); ``ctx.check()`` raises :class:`Cancelled` once the task was
cancelled or superseded. A :class:`~.errors.CnnvizError` from the task becomes a 'failed' update with its
message; any other exception a 'failed' update naming it (the lane keeps running).
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from .errors import CnnvizError


class Cancelled(Exception):
    """Raised by :meth:`TaskContext.check` in a task that was cancelled or superseded."""


@dataclass(frozen=True)
class TaskUpdate:
    """What a lane reports. kind: 'progress' (fraction in [0, 1], payload: anything the task passed),
    'done' (payload: the result), 'failed' (message: what went wrong, for the user), 'cancelled'."""

    task_id: int
    kind: str
    fraction: float = 0.0
    payload: Any = None
    message: str = ""


class TaskContext:
    """Handed to a running task: its id, cancellation, progress."""

    def __init__(self, task_id: int, runner: "TaskRunner") -> None:
        self.task_id = task_id
        self._runner = runner
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if this task was cancelled or a newer one was submitted."""
        if self._cancelled.is_set():
            raise Cancelled

    def progress(self, fraction: float, payload: Any = None) -> None:
        """Report progress (fraction of the work done, 0-1) and an optional partial result; then check."""
        self.check()
        self._runner._post(TaskUpdate(self.task_id, "progress", float(min(max(fraction, 0.0), 1.0)), payload))


class TaskRunner:
    """One background lane (see the module docstring). ``post(update)`` is called on the lane's thread."""

    def __init__(self, name: str, post: Callable[[TaskUpdate], None]) -> None:
        self.name = name
        self._post_cb = post
        self._lock = threading.Condition()
        self._pending: tuple[TaskContext, Callable[[TaskContext], Any]] | None = None
        self._running: TaskContext | None = None
        self._next_id = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=f"cnnviz-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public
    def submit(self, fn: Callable[[TaskContext], Any]) -> int:
        """Queue ``fn`` as the lane's next task, cancelling the running one and any waiting. Returns its id."""
        with self._lock:
            if self._stopped:
                raise CnnvizError(f"the {self.name} lane has been shut down")
            self._next_id += 1
            ctx = TaskContext(self._next_id, self)
            if self._pending is not None:
                self._pending[0].cancel()
                self._post(TaskUpdate(self._pending[0].task_id, "cancelled"))
            if self._running is not None:
                self._running.cancel()
            self._pending = (ctx, fn)
            self._lock.notify_all()
            return ctx.task_id

    def cancel(self) -> None:
        """Cancel the running task and any waiting (the lane stays usable)."""
        with self._lock:
            if self._pending is not None:
                self._pending[0].cancel()
                self._post(TaskUpdate(self._pending[0].task_id, "cancelled"))
                self._pending = None
            if self._running is not None:
                self._running.cancel()

    @property
    def busy(self) -> bool:
        """True while a task runs or waits."""
        with self._lock:
            return self._running is not None or self._pending is not None

    @property
    def current_id(self) -> int:
        """The id of the newest submitted task (0: none yet)."""
        return self._next_id

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing runs or waits (for scripts and tests). False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._running is None and self._pending is None, timeout)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel everything and stop the thread (waits up to ``timeout`` s; the thread is a daemon)."""
        with self._lock:
            self._stopped = True
        self.cancel()
        with self._lock:
            self._lock.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ lane thread
    def _post(self, update: TaskUpdate) -> None:
        try:
            self._post_cb(update)
        except Exception:  # a receiver that is gone (window closed) must not kill the lane
            pass

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None or self._stopped)
                if self._pending is None:
                    return
                ctx, fn = self._pending
                self._pending = None
                self._running = ctx
            try:
                ctx.check()
                result = fn(ctx)
                ctx.check()
                update = TaskUpdate(ctx.task_id, "done", 1.0, result)
            except Cancelled:
                update = TaskUpdate(ctx.task_id, "cancelled")
            except CnnvizError as exc:
                update = TaskUpdate(ctx.task_id, "failed", message=str(exc))
            except MemoryError:
                update = TaskUpdate(ctx.task_id, "failed", message="not enough memory for this computation; "
                                    "close other programs or choose smaller settings")
            except Exception as exc:  # noqa: BLE001 - reported to the user, the lane survives
                detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                update = TaskUpdate(ctx.task_id, "failed", message=f"internal error in {self.name}: {detail}")
            self._post(update)  # before the lane reads as idle: wait_idle() implies the update was posted
            with self._lock:
                self._running = None
                self._lock.notify_all()
            with self._lock:
                if self._stopped and self._pending is None:
                    return
