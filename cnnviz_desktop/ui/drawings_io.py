"""File -> Export drawings... / Import drawings... and Edit -> Replay drawing: the window's thin hooks call
these functions.

Export writes the saved drawings (the dashboard's selection, else all) to a drawings JSON file
(core/drawings.py); import reads one into the history database: the file is read and checked, painted
through the canvas model and analysed on the current model in a background lane (ui/tasks.QtTaskRunner),
then saved in ONE transaction (core.history.History.save_all), so a bad file (a message box names the
problem) or a failure half-way imports nothing. Each lane task opens its own History connection (sqlite3
connections belong to one thread).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..core.errors import CnnvizError
from .history_models import HistoryAccess
from .replay import Replayer, speed_text
from .tasks import QtTaskRunner

FILTER = "Drawings files (*.json);;All files (*)"


class DrawingsIO(QObject):
    """The window's export/import lane. Signals: done(kind, message) after an export or import ('export',
    'import') succeeded, failed(kind, message) when it did not (the message box is shown too)."""

    done = Signal(str, str)
    failed = Signal(str, str)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.setObjectName("DrawingsIO")
        self.window = window
        self.lane = QtTaskRunner("drawings-io", self)
        self.lane.finished.connect(self._on_finished)
        self.lane.failed.connect(self._on_failed)
        self.lane.progress.connect(self._on_progress)
        self._kind = ""

    @classmethod
    def of(cls, window) -> DrawingsIO:
        found = window.findChild(DrawingsIO, "DrawingsIO")
        return found if found is not None else cls(window)

    @property
    def busy(self) -> bool:
        return self.lane.busy

    # ------------------------------------------------------------------ export
    def export_to(self, path: Path, ids: list[int] | None = None) -> bool:
        """Write the drawings ``ids`` (None: every saved one) to the drawings file ``path`` in the background."""
        from ..core.drawings import drawing_from_record, write_drawings
        from ..core.history import History

        if self.busy:
            self.window.show_status("An export or import is still running; try again when it is done", 6000)
            return False
        try:
            db_path = HistoryAccess.of(self.window).path
        except CnnvizError as exc:
            QMessageBox.warning(self.window, "Cannot export the drawings", str(exc))
            return False
        path = Path(path)

        def task(ctx):
            with History.open(db_path) as history:
                chosen = history.ids(order="id") if ids is None else list(ids)
                out, images = [], 0
                for n, record in enumerate(history.iter_records(chosen), start=1):
                    if record.strokes is None:
                        images += 1  # a loaded image has no strokes to write
                    else:
                        out.append(drawing_from_record(record))
                    if n % 50 == 0:
                        ctx.progress(n / max(len(chosen), 1))
            if not out:
                raise CnnvizError("none of these saved drawings has strokes (loaded images cannot be written "
                                  "to a drawings file): nothing was exported")
            written = write_drawings(path, out)
            skipped = f"; {images} loaded image{'s' if images != 1 else ''} left out (no strokes)" if images else ""
            return f"Exported {written} drawing{'s' if written != 1 else ''} to {path}{skipped}"

        self._kind = "export"
        self.window.show_status(f"Exporting drawings to {path}...", 0)
        self.lane.submit(task)
        return True

    # ------------------------------------------------------------------ import
    def import_from(self, path: Path) -> bool:
        """Read, check, analyse (current model, if loaded) and save the drawings file ``path``, all or nothing."""
        from ..core.drawings import drawing_to_record, read_drawings
        from ..core.history import History, analyse_record

        if self.busy:
            self.window.show_status("An export or import is still running; try again when it is done", 6000)
            return False
        try:
            db_path = HistoryAccess.of(self.window).path
        except CnnvizError as exc:
            QMessageBox.warning(self.window, "Cannot import the drawings", f"{exc}\n\nNothing was imported.")
            return False
        path = Path(path)
        model = self.window.session.model

        def task(ctx):
            drawings = read_drawings(path)
            if not drawings:
                raise CnnvizError(f"{path} holds no drawings")
            analyzer = None
            if model is not None:
                from ..core.analysis import Analyzer

                analyzer = Analyzer(model)
            records = []
            for n, d in enumerate(drawings, start=1):
                record = drawing_to_record(d, source=f"import:{path.name}")
                if analyzer is not None:
                    record = analyse_record(analyzer, record, model)
                records.append(record)
                ctx.progress(n / len(drawings) * 0.9)
            ctx.check()
            with History.open(db_path) as history:
                ids = history.save_all(records)
            read = f" (read by {model.arch.name})" if model is not None else ""
            return f"Imported {len(ids)} drawing{'s' if len(ids) != 1 else ''} from {path.name}{read}"

        self._kind = "import"
        self.window.show_status(f"Importing drawings from {path}...", 0)
        self.lane.submit(task)
        return True

    # ------------------------------------------------------------------ results
    def _on_progress(self, task_id: int, fraction: float, payload) -> None:
        what = "Exporting" if self._kind == "export" else "Importing"
        self.window.show_status(f"{what} drawings... {fraction:.0%}", 0)

    def _on_finished(self, task_id: int, message) -> None:
        if self._kind == "import":
            HistoryAccess.of(self.window).changed.emit()
        self.window.show_status(str(message), 8000)
        self.done.emit(self._kind, str(message))

    def _on_failed(self, task_id: int, message: str) -> None:
        kind = self._kind
        self.window.show_status(f"{kind.title()} failed: {message}", 8000)
        if kind == "import":
            QMessageBox.warning(self.window, "Cannot import the drawings", f"{message}\n\nNothing was imported.")
        else:
            QMessageBox.warning(self.window, "Cannot export the drawings", message)
        self.failed.emit(kind, message)


# ---------------------------------------------------------------------------------------------------------
# What the window's hooks call


def export_drawings(window) -> None:
    """File -> Export drawings...: the dashboard's selected rows if any, else every saved drawing."""
    view = window.views.get("history")
    ids = view.selected_ids() if view is not None and view.isVisible() and view.model is not None else []
    what = f"the {len(ids)} selected drawing{'s' if len(ids) != 1 else ''}" if ids else "all saved drawings"
    name, _ = QFileDialog.getSaveFileName(window, f"Export {what} to a drawings file",
                                          str(Path.home() / "drawings.json"), FILTER)
    if name:
        DrawingsIO.of(window).export_to(Path(name), ids or None)


def import_drawings(window) -> None:
    """File -> Import drawings...: a drawings file into the saved drawings (all or nothing)."""
    name, _ = QFileDialog.getOpenFileName(window, "Import a drawings file into your saved drawings",
                                          str(Path.home()), FILTER)
    if name:
        DrawingsIO.of(window).import_from(Path(name))


def replay(window, drawing, speed: float = 1.0, what: str = "the drawing") -> Replayer | None:
    """Replay ``drawing`` (core.drawings.Drawing) on the window's grid; says so in the status bar."""
    dock = getattr(window, "docks", {}).get("drawing")
    if dock is not None and not dock.isVisible():
        dock.show()  # the grid must be on screen: the replay is for watching (and it maps cells to pixels)
        window.schedule_layout()
    replayer = Replayer.of(window)
    try:
        replayer.start(drawing, speed)
    except CnnvizError as exc:
        window.show_status(f"Cannot replay: {exc}", 6000)
        return None
    window.show_status(f"Replaying {what} at {speed_text(speed)} (Esc stops)", 0)

    def done(cancelled: bool) -> None:
        replayer.finished.disconnect(done)
        window.show_status("Replay stopped: what was drawn so far stays (Ctrl+Z undoes it)" if cancelled
                           else f"Replayed {what}", 5000)

    replayer.finished.connect(done)
    return replayer


def replay_current(window, speed: float = 1.0) -> Replayer | None:
    """Edit -> Replay drawing: the strokes on the grid, replayed at their original pace."""
    from ..core.drawings import Drawing

    strokes = window.session.canvas.strokes
    if strokes is None:
        window.show_status("The grid holds a loaded image, not strokes: nothing to replay", 6000)
        return None
    try:
        drawing = Drawing.from_strokes(strokes)
    except CnnvizError:
        window.show_status("Nothing drawn: draw a digit first, then replay it", 6000)
        return None
    return replay(window, drawing, speed, "your drawing")


__all__ = ["DrawingsIO", "export_drawings", "import_drawings", "replay", "replay_current"]
