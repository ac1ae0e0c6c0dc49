"""Composition root: show the window at once, load torch and the model off the GUI thread, then attach
the worker and the 3D scene. Also runs ``--self-test``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from .core.paths import resources_dir
from .ui.canvas import keep_every_pointer_event
from .ui.main_window import MainWindow


def process_uptime() -> float:
    """Seconds since this process started (Linux /proc), else since this module was imported."""
    try:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - start, 0.0)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


class ModelLoader(QObject):
    """Imports torch and loads weights on a plain Python thread; results arrive as queued signals."""

    loaded = Signal(object)
    failed = Signal(str, str)  # requested name, message

    def load(self, name: str) -> None:
        threading.Thread(target=self._run, args=(name,), name="cnnviz-model-loader", daemon=True).start()

    def _run(self, name: str) -> None:
        try:
            from .core import weights
            from .core.errors import CnnvizError

            try:
                self.loaded.emit(weights.load(name))
            except CnnvizError as exc:
                self.failed.emit(name, str(exc))
        except Exception as exc:  # an import failure (broken install) must reach the user, not a traceback
            self.failed.emit(name, f"{type(exc).__name__}: {exc}")


class Application(QObject):
    """Composition root: the session (core), the window that renders it, the model loader and the worker.

    Data flow: the drawing view edits session.canvas -> session.request_made -> worker.submit (latest wins)
    -> worker.result_ready -> session.accept (the one stale filter) -> views re-render.
    ``settings``: a QSettings (tests) or None (the user data folder's settings.ini).
    """

    def __init__(self, args: argparse.Namespace, app: QApplication, settings: QSettings | None = None):
        super().__init__()
        from .core.session import Session
        from .ui.settings import QtSettingsStore

        self.args = args
        self.qapp = app
        if settings is not None:
            store, problem = QtSettingsStore(settings), None
        else:
            store, problem = QtSettingsStore.open()
        self.store = store
        self.session = Session(store)
        problems = self.session.load_settings()
        if problem:
            problems.insert(0, problem)
        self.window = MainWindow(self.session, gl=not args.no_gl, settings=store)
        self.worker = None
        self.exit_code = 0
        self.loader = ModelLoader()
        self.loader.loaded.connect(self._on_model_loaded)
        self.loader.failed.connect(self._on_model_failed)
        self.window.model_requested.connect(self.loader.load)
        self.session.request_made.connect(self._submit)
        self.session.model_changed.connect(self._on_model_changed)
        self.qapp.aboutToQuit.connect(self.shutdown)
        self.first_model_at: float | None = None
        self.first_frame_at: float | None = None
        self.window_visible_at: float | None = None
        self.session.snapshot_changed.connect(self._on_first_snapshot)
        self._problems = problems

    def start(self) -> None:
        first_run = self.store.value("window/geometry") is None
        self.window.restore_window()
        if self.args.presentation:
            self.session.set_presentation(True)
        else:
            self.window.show()
        self.window.schedule_layout()
        self.window_visible_at = process_uptime()
        if first_run:
            self.window.show_status("Draw a digit on the grid.  F1: every key  \u00b7  Shift+F1: how to use", 15000)
        for problem in self._problems:
            self.window.show_status(problem[:1].upper() + problem[1:], 10000)
        name = self.args.model or self.session.last_model("tiny")
        self.loader.load(name)

    def _submit(self, request) -> None:
        if self.worker is not None:
            self.worker.submit(request)

    def _on_model_loaded(self, loaded) -> None:
        if self.worker is None:
            from .worker import InferenceWorker

            self.worker = InferenceWorker()
            self.worker.result_ready.connect(self.session.accept)
        # The session bumps its generation, the worker gets the model with that generation (below, in
        # _on_model_changed, before the session submits its one new request).
        self.session.set_model(loaded)
        if self.first_model_at is None:
            self.first_model_at = process_uptime()
            if self.args.self_test:
                SelfTest(self).start()
            elif getattr(self.args, "replay", None):
                ReplayRun(self).start()

    def _on_model_changed(self, loaded) -> None:
        if self.worker is not None:
            self.worker.set_model(loaded, generation=self.session.generation)

    def _on_first_snapshot(self, snapshot) -> None:
        """Start-up is over when the first analysed frame is on screen (the next GL frame swap)."""
        self.session.snapshot_changed.disconnect(self._on_first_snapshot)
        scene = self.window.scene
        if scene is not None and scene.has_gl:
            scene.frame_rendered.connect(self._on_first_frame)
        else:
            self.first_frame_at = process_uptime()

    def _on_first_frame(self) -> None:
        self.window.scene.frame_rendered.disconnect(self._on_first_frame)
        self.first_frame_at = process_uptime()

    def _on_model_failed(self, name: str, message: str) -> None:
        if self.args.self_test or getattr(self.args, "replay", None):
            print(f"error: cannot load model {name}: {message}", file=sys.stderr)
            self.exit_code = 2
            self.qapp.quit()
            return
        if self.session.model is None and name != "tiny":
            # Start with the default network rather than an empty window; say what went wrong.
            QMessageBox.warning(self.window, "Cannot load the model",
                                f"{message}\n\nStarting with the shipped 'tiny' network instead.")
            self.loader.load("tiny")
            return
        self.window.show_model_error(message)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def close(self) -> None:
        """Close the window, stop the worker and release both (tests and embedding)."""
        self.window.close()
        self.shutdown()
        self.window.deleteLater()
        if self.worker is not None:
            self.worker.deleteLater()


class SelfTest(QObject):
    """Draws a built-in digit through the mouse path, waits for its analysed frame, reports, exits."""

    TIMEOUT_S = 90

    def __init__(self, owner: Application):
        super().__init__(owner)
        self.owner = owner
        self.window = owner.window
        self._events = None

    def start(self) -> None:
        from .core.canvas import builtin_digit
        from .ui.input_sim import stroke_events

        QTimer.singleShot(self.TIMEOUT_S * 1000, self._timeout)
        self._strokes = builtin_digit("seven")
        self._gen = (None for stroke in self._strokes for _ in stroke_events(self.window.canvas, stroke))
        self._step()

    def _step(self) -> None:
        # One input event per event-loop turn, like a real drag: analyses run while drawing.
        try:
            next(self._gen)
        except StopIteration:
            self._wait_for_result()
            return
        QTimer.singleShot(0, self._step)

    def _wait_for_result(self) -> None:
        self.owner.session.snapshot_changed.connect(self._check)
        if self.window.snapshot is not None:
            self._check(self.window.snapshot)

    def _check(self, snapshot) -> None:
        if snapshot.request_id != self.window.last_request_id:
            return
        self.owner.session.snapshot_changed.disconnect(self._check)
        view = getattr(self.window.scene, "view", None)
        if view is not None and self.window.scene.has_gl:
            view.frameSwapped.connect(self._finish)
            view.update()
        else:
            QTimer.singleShot(50, self._finish)

    def _finish(self) -> None:
        view = getattr(self.window.scene, "view", None)
        if view is not None and hasattr(view, "frameSwapped"):
            try:
                view.frameSwapped.disconnect(self._finish)
            except (RuntimeError, TypeError):
                pass
        snap = self.window.snapshot
        report = {
            "ok": not snap.empty,
            "model": self.window.loaded.arch.name,
            "predicted": snap.predicted,
            "probabilities": [round(float(p), 5) for p in snap.probabilities] if not snap.empty else None,
            "analysis_ms": round(self.owner.session.analysis_ms, 3) if self.owner.session.analysis_ms else None,
            "seconds_to_window": round(self.owner.window_visible_at, 3),
            "seconds_to_first_frame": round(self.owner.first_frame_at or process_uptime(), 3),
            "seconds_to_drawn_digit_frame": round(process_uptime(), 3),
            "gl": bool(self.window.scene is not None and self.window.scene.has_gl),
            "presentation": self.window.presentation,
            "layout": self.window.layout_report(),
            "history": history_self_check(self.window, snap),
        }
        from .core.embedding import self_check as embedding_self_check

        report["embedding"] = embedding_self_check()  # openTSNE/scipy/sklearn and the shipped maps are bundled
        if not report["embedding"]["ok"]:
            print(f"error: embeddings do not work: {report['embedding']['error']}", file=sys.stderr)
            self.owner.exit_code = 1
        if self.owner.args.screenshot:
            path = Path(self.owner.args.screenshot)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.window.grab().save(str(path)):
                print(f"error: could not write the screenshot {path}", file=sys.stderr)
                self.owner.exit_code = 1
            report["screenshot"] = str(path)
        print(json.dumps(report), flush=True)
        if snap.empty:
            print("error: the drawn digit produced no prediction", file=sys.stderr)
            self.owner.exit_code = 1
        if report["history"] != "ok":
            print(f"error: the history database {report['history']}", file=sys.stderr)
            self.owner.exit_code = 1
        self.window.close()
        self.owner.qapp.quit()

    def _timeout(self) -> None:
        print(f"error: self-test timed out after {self.TIMEOUT_S} s waiting for the analysed frame", file=sys.stderr)
        self.owner.exit_code = 1
        self.owner.qapp.quit()


def history_self_check(window, snapshot) -> str:
    """Save the self-test's drawing into a history database in a temporary folder and read it back (so a
    frozen bundle proves it carries sqlite3). 'ok', or 'failed: <what>'."""
    import tempfile

    import numpy as np

    try:
        from .core.history import History, record_from_snapshot

        canvas = window.session.canvas
        with tempfile.TemporaryDirectory(prefix="cnnviz-self-test-") as folder:
            with History.open(Path(folder) / "history.sqlite") as history:
                record = record_from_snapshot(canvas.pixels.copy(), canvas.strokes, snapshot, window.loaded)
                back = history.get(history.save(record))
        strokes_kept = (back.strokes is None) == (record.strokes is None) and (
            record.strokes is None or all(np.allclose(a.points, b.points, atol=1e-4)
                                          for a, b in zip(back.strokes, record.strokes)))
        if back.predicted != record.predicted or not np.array_equal(back.canvas, record.canvas) \
                or not strokes_kept:
            return "failed: the drawing read back differs from the one saved"
        return "ok"
    except Exception as exc:  # noqa: BLE001 - the self-test reports any failure, never a traceback
        return f"failed: {type(exc).__name__}: {exc}"


class ReplayRun(QObject):
    """``cnnviz --replay FILE``: replays every drawing of the file through the mouse path (ui/replay.Replayer),
    waits for each one's analysed frame, prints one line per drawing, exits 0 (1 if a replay stalls)."""

    TIMEOUT_S = 60  # per drawing, on top of its own duration

    def __init__(self, owner: Application):
        super().__init__(owner)
        self.owner = owner
        self.window = owner.window
        self.session = owner.session
        self.drawings = owner.args.replay_drawings
        self.speed = float(owner.args.replay_speed)
        self.index = 0
        self._watchdog = QTimer(self, singleShot=True, timeout=self._timeout)

    def start(self) -> None:
        from .ui.replay import Replayer

        self.replayer = Replayer.of(self.window)
        self.replayer.finished.connect(self._on_replayed)
        self._next()

    def _next(self) -> None:
        from .core.drawings import replay_schedule

        if self.index >= len(self.drawings):
            self._watchdog.stop()
            self.window.close()
            self.owner.qapp.quit()
            return
        drawing = self.drawings[self.index]
        self._watchdog.start(int((replay_schedule(drawing, self.speed).duration_s + self.TIMEOUT_S) * 1000))
        self.replayer.start(drawing, self.speed)

    def _on_replayed(self, cancelled: bool) -> None:
        if cancelled:
            self._fail(f"the replay of drawing {self.index + 1} was interrupted")
            return
        self.session.snapshot_changed.connect(self._check)
        self._check(self.session.snapshot)

    def _check(self, snapshot) -> None:
        if not self.session.settled:
            return  # the worker is still on an older state of the grid
        self.session.snapshot_changed.disconnect(self._check)
        view = getattr(self.window.scene, "view", None)
        if view is not None and self.window.scene.has_gl:
            view.frameSwapped.connect(self._report)  # the analysed frame is on screen
            view.update()
        else:
            QTimer.singleShot(0, self._report)

    def _report(self) -> None:
        view = getattr(self.window.scene, "view", None)
        if view is not None and hasattr(view, "frameSwapped"):
            try:
                view.frameSwapped.disconnect(self._report)
            except (RuntimeError, TypeError):
                pass
        snap = self.session.snapshot
        drawing = self.drawings[self.index]
        self.index += 1
        probs = None if snap.empty else [round(float(p), 5) for p in snap.probabilities]
        predicted = None if snap.empty else int(snap.predicted)
        if self.owner.args.json:
            line = json.dumps({"index": self.index, "label": drawing.label, "predicted": predicted,
                               "probabilities": probs})
        else:
            label = "no label" if drawing.label is None else f"label {drawing.label}"
            read = "nothing (the grid is empty)" if predicted is None else \
                f"predicted {predicted} ({float(snap.probabilities[predicted]):.1%})"
            line = f"{self.index}: {label}, {read}"
        print(line, flush=True)
        QTimer.singleShot(0, self._next)

    def _fail(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        self.owner.exit_code = 1
        self.window.close()
        self.owner.qapp.quit()

    def _timeout(self) -> None:
        self.replayer.finished.disconnect(self._on_replayed)
        self.replayer.stop()
        self._fail(f"drawing {self.index + 1} was not analysed within {self.TIMEOUT_S} s of its replay")


def install_exception_hook(owner: Application) -> None:
    """An unexpected exception in a Qt slot must not leave a silent, half-working window (or a
    self-test that never exits): log the traceback to a file, tell the user in one sentence, keep
    the drawing. In --self-test the run fails at once with a non-zero exit code."""
    import traceback

    shown = {"dialog": False}

    def hook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            owner.qapp.quit()
            return
        text = "".join(traceback.format_exception(kind, value, tb))
        log, log_problem = None, ""
        try:
            from .core.userdata import user_data_dir

            log = user_data_dir() / "error.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{text}")
        except Exception as exc:  # the log is a courtesy; never fail while reporting a failure
            log_problem = f" (the details could not be written to {log or 'the user data folder'}: {exc}; " \
                          f"they follow on standard error)"
            log = None
        where = f" (details in {log})" if log else log_problem
        print(f"error: unexpected {kind.__name__}: {value}{where}", file=sys.stderr)
        if log is None:
            print(text, file=sys.stderr)
        if owner.args.self_test or getattr(owner.args, "replay", None):
            owner.exit_code = 1
            owner.qapp.quit()
        elif not shown["dialog"]:
            shown["dialog"] = True
            QMessageBox.warning(owner.window, "Something went wrong",
                                f"CNNViz hit an unexpected error: {value}{where}.\n\nYour drawing is kept; "
                                f"if the window misbehaves, save your drawing (Ctrl+S) and restart.")
            shown["dialog"] = False

    sys.excepthook = hook


def run(args: argparse.Namespace) -> int:
    QApplication.setOrganizationName("CNNViz")
    QApplication.setApplicationName("CNNViz Desktop")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    keep_every_pointer_event()  # after the QApplication exists: xcb turns motion compression on while building it
    app.setDesktopFileName("cnnviz")
    icon = resources_dir() / "icons" / "cnnviz.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    owner = Application(args, app)
    install_exception_hook(owner)
    # Python's cyclic garbage collector runs in whichever thread allocates when a threshold is crossed; a view's
    # background lane or the analysis worker would then delete dead Qt widgets off the GUI thread, which can
    # deadlock or crash Qt. pyqtgraph's GarbageCollector turns automatic collection off and collects on a GUI
    # timer instead (once a second, by the same generation thresholds).
    from pyqtgraph.util.garbage_collector import GarbageCollector

    collector = GarbageCollector(interval=1.0)
    owner.start()
    code = app.exec()
    collector.timer.stop()
    owner.shutdown()
    return owner.exit_code or code
