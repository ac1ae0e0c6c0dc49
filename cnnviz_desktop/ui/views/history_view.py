"""The saved-drawings dashboard: every drawing saved with Ctrl+S (or reported as misclassified), in a table
paged lazily from the history database; filters, a search over notes and reasons, sorting by column (in
SQL); the per-digit accuracy and confusion matrix of the saved set; open a drawing back into the grid;
delete (undoable), export and import; re-run the saved drawings on the current model in the background.

The database is opened the first time this view is shown (never at start-up)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMainWindow, QMessageBox,
    QProgressBar, QPushButton, QSizePolicy, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from ...core.errors import CnnvizError
from ...core.history import Filter, History, export_folder, import_pngs, rerun
from ..history_models import COLUMNS, HistoryAccess, HistoryTableModel
from ..replay import SPEEDS, Replayer, speed_text
from .base import Host, Style, View


class RerunThread(QThread):
    """Re-analyse saved drawings on a model in a thread of its own, with its own History connection.
    Signals: progress(done, total); done(results, cancelled) with results [(id, before, after)]."""

    progress = Signal(int, int)
    done = Signal(object, bool)
    failed = Signal(str)

    def __init__(self, path, loaded_model, ids=None, parent=None) -> None:
        super().__init__(parent)
        self.path, self.loaded_model, self.ids = path, loaded_model, ids

    def run(self) -> None:
        try:
            with History.open(self.path) as history:
                results = rerun(history, self.loaded_model, self.ids,
                                progress=lambda d, t: self.progress.emit(d, t),
                                cancel=self.isInterruptionRequested)
        except CnnvizError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a bare traceback
            self.failed.emit(f"the re-run failed: {exc}")
            return
        self.done.emit(results, self.isInterruptionRequested())


class HistoryTable(QTableView):
    """The table: Delete deletes the selected drawings, Ctrl+Z undoes the last delete, Enter opens a
    drawing (these keys belong to the table while it has the keyboard, not to the window)."""

    delete_pressed = Signal()
    undo_pressed = Signal()
    open_pressed = Signal()

    def _key(self, event):
        key, mods = event.key(), event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not mods:
            return "delete"
        if key == Qt.Key.Key_Z and mods == Qt.KeyboardModifier.ControlModifier:
            return "undo"
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not mods:
            return "open"
        return None

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and self._key(event):
            event.accept()  # ours, not the window's Ctrl+Z / Delete
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        what = self._key(event)
        if what == "delete":
            self.delete_pressed.emit()
        elif what == "undo":
            self.undo_pressed.emit()
        elif what == "open":
            self.open_pressed.emit()
        else:
            super().keyPressEvent(event)


class ConfusionPicture(QWidget):
    """The confusion matrix (rows: true digit, columns: predicted) and the per-digit accuracy, painted."""

    def __init__(self) -> None:
        super().__init__()
        self.matrix = np.zeros((10, 10), dtype=np.int64)
        self.accuracy = np.full(10, np.nan)
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setToolTip("Confusion matrix of the saved drawings with a true label: row = true digit, "
                        "column = predicted; the bottom row is each digit's accuracy")

    def set_data(self, matrix: np.ndarray, accuracy: np.ndarray) -> None:
        self.matrix, self.accuracy = np.asarray(matrix), np.asarray(accuracy)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, 280)

    def cell_rect(self, row: int, col: int) -> QRectF:
        """Where cell (true row, predicted col) is painted; row 10 is the accuracy row."""
        metrics = QFontMetricsF(self.font())
        margin = metrics.horizontalAdvance("0") * 2 + 6
        top = metrics.height() * 2 + 4
        side = max(8.0, min((self.width() - margin - 4) / 10, (self.height() - top - metrics.height() - 8) / 11.5))
        y = top + row * side + (side * 0.5 if row == 10 else 0)
        return QRectF(margin + col * side, y, side, side)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        metrics = QFontMetricsF(self.font())
        total = int(self.matrix.sum())
        correct = int(np.trace(self.matrix))
        title = (f"{total} labelled: {correct / total:.0%} right" if total else "No labelled drawings yet")
        p.setPen(self.palette().windowText().color())
        p.drawText(QRectF(0, 0, self.width(), metrics.height()), Qt.AlignmentFlag.AlignLeft, title)
        top_cell = self.cell_rect(0, 0)
        p.drawText(QRectF(top_cell.left(), metrics.height(), 10 * top_cell.width(), metrics.height()),
                   Qt.AlignmentFlag.AlignCenter, "predicted \u2192")
        peak = max(int(self.matrix.max()), 1)
        for r in range(10):
            rect = self.cell_rect(r, 0)
            p.setPen(self.palette().windowText().color())
            p.drawText(QRectF(0, rect.top(), rect.left() - 3, rect.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, str(r))
            for c in range(10):
                n = int(self.matrix[r, c])
                cell = self.cell_rect(r, c)
                share = n / peak
                base = QColor(40, 140, 90) if r == c else QColor(210, 70, 50)
                colour = QColor(base) if n else QColor(60, 60, 60, 40)
                if n:
                    colour.setAlpha(int(60 + 195 * share))
                p.fillRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), colour)
                if n and cell.width() >= metrics.horizontalAdvance(str(n)) + 2:
                    p.setPen(QColor(255, 255, 255))
                    p.drawText(cell, Qt.AlignmentFlag.AlignCenter, str(n))
        for c in range(10):
            cell = self.cell_rect(10, c)
            acc = self.accuracy[c]
            if np.isnan(acc):
                p.fillRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), QColor(60, 60, 60, 40))
                continue
            colour = QColor(int(210 - 170 * acc), int(70 + 70 * acc), int(50 + 40 * acc))
            p.fillRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), colour)
            p.setPen(QColor(255, 255, 255))
            p.drawText(cell, Qt.AlignmentFlag.AlignCenter, f"{int(round(acc * 100))}" if cell.width() > 18 else "")
        acc_row = self.cell_rect(10, 0)
        p.setPen(self.palette().windowText().color())
        p.drawText(QRectF(0, acc_row.top(), acc_row.left() - 3, acc_row.height()),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "%")
        p.setPen(QPen(self.palette().mid().color()))
        p.drawRect(QRectF(top_cell.left(), top_cell.top(), 10 * top_cell.width(), 10 * top_cell.width()))
        p.end()


class HistoryView(View):
    """The dashboard (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.host: Host | None = None
        self.access: HistoryAccess | None = None
        self.model: HistoryTableModel | None = None
        self.loaded = False
        self.stale = False
        self.undo_tokens: list[tuple[str, int]] = []
        self.rerun_thread: RerunThread | None = None
        self.last_rerun: list = []
        self.last_rerun_cancelled = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.filter_box = QComboBox()
        self.filter_box.setToolTip("Which saved drawings to show")
        self.filter_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search notes and reasons")
        self.search.setClearButtonEnabled(True)
        self.count_label = QLabel("")
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.filter_box)
        top.addWidget(self.search, 1)
        top.addWidget(self.count_label)
        layout.addLayout(top)

        self.table = HistoryTable()
        self.table.setObjectName("historyTable")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(False)  # sort() is called by the header click below (SQL order)
        self.table.setIconSize(QSize(28, 28))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(32)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.confusion = ConfusionPicture()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.confusion)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        self.table.setMinimumHeight(90)
        layout.addWidget(split, 1)

        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Put the selected drawing on the drawing grid (Enter or double-click)")
        self.replay_button = QPushButton("Replay")
        self.replay_button.setToolTip("Clear the grid and redraw the selected drawing stroke by stroke, through the "
                                      "mouse's input path, so the class watches the prediction change as the digit "
                                      "forms (Esc or Stop replay ends it)")
        self.speed_box = QComboBox()
        for speed in SPEEDS:
            self.speed_box.addItem(speed_text(speed), speed)
        self.speed_box.setToolTip("Replay speed: 1x is the original pace of the strokes, 2x and 4x faster")
        self.speed_box.setAccessibleName("Replay speed")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected drawings (Delete key in the table)")
        self.undo_button = QPushButton("Undo delete")
        self.undo_button.setToolTip("Bring back the last deleted drawings (Ctrl+Z in the table)")
        self.undo_button.setEnabled(False)
        self.export_button = QPushButton("Export...")
        self.export_button.setToolTip("Write the selected drawings (or all shown) as CSV + PNGs into a folder")
        self.import_button = QPushButton("Import PNGs...")
        self.import_button.setToolTip("Add every PNG of a folder (analysed on the current model)")
        self.rerun_all_button = QPushButton("Re-run all")
        self.rerun_all_button.setToolTip("Re-analyse every shown drawing on the current model, in the background")
        self.rerun_selected_button = QPushButton("Re-run selected")
        self.rerun_selected_button.setToolTip("Re-analyse the selected drawings on the current model")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the re-run (the results so far are shown)")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("no re-run yet")
        self.progress.setMaximumWidth(160)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for b in (self.open_button, self.replay_button, self.speed_box, self.delete_button, self.undo_button,
                  self.export_button, self.import_button,
                  self.rerun_all_button, self.rerun_selected_button, self.cancel_button):
            buttons.addWidget(b)
        buttons.addWidget(self.progress)
        buttons.addWidget(self.status, 1)
        layout.addLayout(buttons)

    # ------------------------------------------------------------------ wiring
    def attach(self, host: Host) -> None:
        self.host = host
        self.access = HistoryAccess.of(host)
        self.model = HistoryTableModel(self.access, self)
        self.table.setModel(self.model)
        header = self.table.horizontalHeader()
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(6, Qt.SortOrder.DescendingOrder)
        header.sortIndicatorChanged.connect(self._sort)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((84, 64, 76, 40, 170, 70, 140)):
            self.table.setColumnWidth(col, width)
        self.access.changed.connect(self._on_history_changed)
        self.filter_box.activated.connect(lambda _=0: self.reload())
        self.search.textChanged.connect(lambda _="": self.reload())
        self.table.doubleClicked.connect(lambda index: self.open_row(index.row()))
        self.table.open_pressed.connect(self.open_current)
        self.table.delete_pressed.connect(self.delete_selected)
        self.table.undo_pressed.connect(self.undo_delete)
        self.open_button.clicked.connect(self.open_current)
        self.replay_button.clicked.connect(self._on_replay_clicked)
        self.delete_button.clicked.connect(self.delete_selected)
        self.undo_button.clicked.connect(self.undo_delete)
        self.export_button.clicked.connect(self.export_dialog)
        self.import_button.clicked.connect(self.import_dialog)
        self.rerun_all_button.clicked.connect(lambda: self.start_rerun(selected=False))
        self.rerun_selected_button.clicked.connect(lambda: self.start_rerun(selected=True))
        self.cancel_button.clicked.connect(self.cancel_rerun)
        self._fill_filters([])
        if isinstance(host, QWidget):
            host.installEventFilter(self)  # the window's close stops a running re-run first
        if isinstance(host, QMainWindow):
            # Docked at the bottom, the dashboard sits under the 3D view only: the tall left column
            # (drawing grid, probabilities) keeps its height, so the window still fits a 768 px screen.
            host.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
            host.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Close and obj is self.host:
            self.shutdown()
            if self.access is not None:
                self.access.close()  # reopened on the next use if the window stays
        return False

    def apply_style(self, style: Style) -> None:
        side = int(28 * max(1.0, style.scale))
        self.table.setIconSize(QSize(side, side))
        self.table.verticalHeader().setDefaultSectionSize(side + 4)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self.loaded or self.stale:
            self.reload()
        QTimer.singleShot(0, self._take_room)

    def _take_room(self) -> None:
        """A docked dashboard gets about 40% of the window's height (a dock starts at its minimum)."""
        from PySide6.QtWidgets import QDockWidget, QMainWindow

        dock = self.parentWidget()
        window = dock.parentWidget() if isinstance(dock, QDockWidget) else None
        if isinstance(window, QMainWindow) and not dock.isFloating() and self.height() < window.height() * 0.3:
            window.resizeDocks([dock], [int(window.height() * 0.42)], Qt.Orientation.Vertical)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)
        if self.host is not None:
            self.host.show_status(text, 6000)

    def _error(self, title: str, exc: Exception) -> None:
        self._say(str(exc))
        QMessageBox.warning(self, title, str(exc))

    # ------------------------------------------------------------------ filters and loading
    FIXED = (("All drawings", Filter()), ("Reported", Filter("reported")), ("Misclassified", Filter("misclassified")),
             *((f"Digit {d}", Filter(digit=d)) for d in range(10)))

    def _fill_filters(self, models: list[str]) -> None:
        current = self.current_filter()
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        for text, flt in self.FIXED:
            self.filter_box.addItem(text, flt)
        for name in models:
            self.filter_box.addItem(f"Model {name or '(none)'}", Filter(model=name))
        index = next((i for i in range(self.filter_box.count()) if self.filter_box.itemData(i) == current), 0)
        self.filter_box.setCurrentIndex(index)
        self.filter_box.blockSignals(False)

    def current_filter(self) -> Filter:
        data = self.filter_box.currentData() if self.filter_box.count() else None
        return data if isinstance(data, Filter) else Filter()

    def set_filter(self, text: str) -> None:
        """Choose a filter by its shown text ('Reported', 'Digit 3', ...)."""
        index = self.filter_box.findText(text)
        if index < 0:
            raise ValueError(f"no filter {text!r}")
        self.filter_box.setCurrentIndex(index)
        self.reload()

    def reload(self) -> None:
        """Open the database if needed, run the query again and repaint the confusion matrix."""
        if self.model is None:
            return
        try:
            history = self.access.get()
            self._fill_filters(history.models())
            self.model.set_query(self.current_filter(), self.search.text().strip())
            flt = self.current_filter()
            matrix, accuracy = history.confusion(flt.model)
        except CnnvizError as exc:
            self.loaded = True
            self.count_label.setText("")
            self._say(f"Saved drawings unavailable: {exc}")
            return
        self.loaded, self.stale = True, False
        self.confusion.set_data(matrix, accuracy)
        self._update_count()

    def _update_count(self) -> None:
        total = self.model.total
        self.count_label.setText(f"{total:,} drawing{'s' if total != 1 else ''}")

    def _on_history_changed(self) -> None:
        if self.isVisible():
            self.reload()
        else:
            self.stale = True

    def _sort(self, column: int, order) -> None:
        self.model.sort(column, order)
        self._update_count()

    # ------------------------------------------------------------------ rows
    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()}) if self.model else []
        return [self.model.id_at(r) for r in rows]

    def open_current(self) -> None:
        index = self.table.currentIndex()
        if index.isValid():
            self.open_row(index.row())
        else:
            self._say("Select a drawing to open first")

    def open_row(self, row: int) -> None:
        """Put the drawing in ``row`` on the drawing grid (undoable there)."""
        if self.host is None or row < 0 or row >= self.model.rowCount():
            return
        record_id = self.model.id_at(row)
        try:
            record = self.access.get().get(record_id)
        except CnnvizError as exc:
            self._error("Cannot open the drawing", exc)
            return
        canvas = self.host.session.canvas
        if record.canvas.shape != canvas.pixels.shape:
            self._say(f"Drawing #{record_id} is {record.canvas.shape[0]}x{record.canvas.shape[1]}; "
                      f"the grid is {canvas.pixels.shape[0]}x{canvas.pixels.shape[1]}: not opened")
            return
        self.host.session.load_pixels(np.array(record.canvas))
        self._say(f"Opened drawing #{record_id} on the grid (Ctrl+Z there brings back your drawing)")

    def replay_row(self, row: int, speed: float | None = None) -> bool:
        """Replay the drawing in ``row`` on the grid at ``speed`` (default: the speed box's choice)."""
        from ...core.drawings import drawing_from_record
        from ..drawings_io import replay

        if self.host is None or row < 0 or row >= self.model.rowCount():
            self._say("Select a drawing to replay first")
            return False
        record_id = self.model.id_at(row)
        try:
            drawing = drawing_from_record(self.access.get().get(record_id))
        except CnnvizError as exc:
            self._say(f"Cannot replay: {exc}")
            return False
        speed = float(self.speed_box.currentData()) if speed is None else float(speed)
        replayer = replay(self.host, drawing, speed, f"drawing #{record_id}")
        if replayer is None:
            return False
        self.replay_button.setText("Stop replay")
        self.replay_button.setToolTip("Stop the replay (Esc); what was drawn so far stays on the grid")
        replayer.finished.connect(self._on_replay_finished)
        return True

    def _on_replay_clicked(self) -> None:
        replayer = Replayer.of(self.host) if self.host is not None else None
        if replayer is not None and replayer.running:
            replayer.stop()
            return
        index = self.table.currentIndex()
        self.replay_row(index.row() if index.isValid() else -1)

    def _on_replay_finished(self, cancelled: bool) -> None:
        Replayer.of(self.host).finished.disconnect(self._on_replay_finished)
        self.replay_button.setText("Replay")
        self.replay_button.setToolTip("Clear the grid and redraw the selected drawing stroke by stroke (Esc stops)")

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            self._say("Select drawings to delete first")
            return
        try:
            token = self.access.get().delete(ids)
        except CnnvizError as exc:
            self._error("Cannot delete", exc)
            return
        self.undo_tokens.append((token, len(ids)))
        self.undo_button.setEnabled(True)
        self.access.changed.emit()
        self._say(f"Deleted {len(ids)} drawing{'s' if len(ids) != 1 else ''} (Undo delete or Ctrl+Z brings "
                  f"{'them' if len(ids) != 1 else 'it'} back)")

    def undo_delete(self) -> None:
        if not self.undo_tokens:
            self._say("Nothing to undo")
            return
        token, n = self.undo_tokens.pop()
        try:
            back = self.access.get().undelete(token)
        except CnnvizError as exc:
            self.undo_tokens.append((token, n))
            self._error("Cannot undo the delete", exc)
            return
        self.undo_button.setEnabled(bool(self.undo_tokens))
        self.access.changed.emit()
        self._say(f"Brought back {back} drawing{'s' if back != 1 else ''}")

    # ------------------------------------------------------------------ export and import
    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the drawings into a folder")
        if folder:
            self.export_to(folder)

    def export_to(self, folder) -> int:
        """Export the selected drawings (all shown ones if none is selected) as CSV + PNGs into ``folder``."""
        ids = self.selected_ids() or self.model.ids
        if not ids:
            self._say("No drawings to export")
            return 0
        try:
            n = export_folder(self.access.get().iter_records(ids), folder)
        except CnnvizError as exc:
            self._error("Cannot export", exc)
            return 0
        self._say(f"Exported {n} drawing{'s' if n != 1 else ''} to {folder} (drawings.csv and PNGs)")
        return n

    def import_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of PNG drawings")
        if folder:
            self.import_from(folder)

    def import_from(self, folder) -> int:
        """Save every PNG of ``folder`` into the history (analysed on the current model when one is loaded)."""
        from ...core.history import analyse_record

        try:
            records = import_pngs(folder)
            model = self.host.session.model if self.host is not None else None
            if model is not None:
                from ...core.analysis import Analyzer

                analyzer = Analyzer(model)
                records = [analyse_record(analyzer, r, model) for r in records]
            self.access.get().save_many(records)
        except CnnvizError as exc:
            self._error("Cannot import", exc)
            return 0
        self.access.changed.emit()
        self._say(f"Imported {len(records)} drawing{'s' if len(records) != 1 else ''} from {folder}")
        return len(records)

    # ------------------------------------------------------------------ re-run in the background
    @property
    def rerunning(self) -> bool:
        return self.rerun_thread is not None

    def start_rerun(self, selected: bool = False) -> bool:
        """Re-analyse the selected (or all shown) drawings on the current model in a background thread."""
        if self.rerunning:
            self._say("A re-run is already going: cancel it first")
            return False
        model = self.host.session.model if self.host is not None else None
        if model is None:
            self._say("No model is loaded yet")
            return False
        ids = self.selected_ids() if selected else self.model.ids
        if not ids:
            self._say("Select drawings to re-run first" if selected else "No drawings to re-run")
            return False
        try:
            path = self.access.path
        except CnnvizError as exc:
            self._error("Cannot re-run", exc)
            return False
        thread = RerunThread(path, model, ids, self)
        thread.progress.connect(self._on_rerun_progress)
        thread.done.connect(self._on_rerun_done)
        thread.failed.connect(self._on_rerun_failed)
        thread.finished.connect(self._on_rerun_finished)
        self.rerun_thread = thread
        self.progress.setRange(0, len(ids))
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.cancel_button.setEnabled(True)
        self.rerun_all_button.setEnabled(False)
        self.rerun_selected_button.setEnabled(False)
        self._say(f"Re-running {len(ids)} drawing{'s' if len(ids) != 1 else ''} on {model.arch.name}...")
        thread.start(QThread.Priority.LowPriority)
        return True

    def cancel_rerun(self) -> None:
        if self.rerun_thread is not None:
            self.rerun_thread.requestInterruption()
            self._say("Cancelling the re-run...")

    def _on_rerun_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _on_rerun_done(self, results, cancelled: bool) -> None:
        self.last_rerun, self.last_rerun_cancelled = list(results), cancelled
        self.model.set_reruns(results)
        changed = sum(b.predicted != a.predicted for _, b, a in results)
        what = "Cancelled after" if cancelled else "Re-ran"
        self._say(f"{what} {len(results)} drawing{'s' if len(results) != 1 else ''}: {changed} changed "
                  f"prediction (see the Re-run column: before -> after)")

    def _on_rerun_failed(self, message: str) -> None:
        self.last_rerun_cancelled = False
        self._say(f"Re-run failed: {message}")

    def _on_rerun_finished(self) -> None:
        thread, self.rerun_thread = self.rerun_thread, None
        if thread is not None:
            thread.deleteLater()
        self.cancel_button.setEnabled(False)
        self.rerun_all_button.setEnabled(True)
        self.rerun_selected_button.setEnabled(True)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop a running re-run and wait for its thread (called when the window closes)."""
        if self.rerun_thread is not None:
            self.rerun_thread.requestInterruption()
            self.rerun_thread.wait(10_000)


__all__ = ["COLUMNS", "ConfusionPicture", "HistoryTable", "HistoryView", "RerunThread"]
