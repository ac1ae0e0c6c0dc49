"""Qt side of the saved-drawings database (core/history.py): the window's lazily opened History and the
table model the dashboard shows.

``HistoryAccess.of(window)`` is the one History connection of the GUI thread: opened on first use (the first
save, or the first time the dashboard is shown), never at start-up. Its ``changed`` signal tells the
dashboard that rows were saved, changed or deleted.

``HistoryTableModel`` pages the rows in lazily (canFetchMore / fetchMore, PAGE rows at a time): filtering,
searching and sorting are done in SQL by core.history (History.ids), so 10,000 saved drawings cost one
query of ids and only the pages the user scrolls to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPixmap

from ..core.errors import CnnvizError
from ..core.history import Filter, History, Outcome
from .qimage import to_qimage

PAGE = 200
_ROOT = QModelIndex()
THUMB = 28


class HistoryAccess(QObject):
    """The GUI thread's History, opened on first :meth:`get`. Signals: changed() after a save, a label
    change, a delete or an import; notice(str) once, when opening moved a bad file aside."""

    changed = Signal()
    notice = Signal(str)

    def __init__(self, parent: QObject | None = None, path=None) -> None:
        super().__init__(parent)
        self.setObjectName("HistoryAccess")
        self._history: History | None = None
        self._path = path
        self.shown_notice = ""  # the notice shown to the user ('' if none)

    @classmethod
    def of(cls, owner: QObject) -> HistoryAccess:
        """The HistoryAccess belonging to ``owner`` (the main window), created (not opened) on first call."""
        found = owner.findChild(HistoryAccess, "HistoryAccess")
        return found if found is not None else cls(owner)

    @property
    def is_open(self) -> bool:
        return self._history is not None

    def get(self) -> History:
        """The open History (opening it now if needed). Raises CnnvizError with a clear message."""
        if self._history is None:
            self._history = History.open(self._path)
            if self._history.notice:
                self.shown_notice = self._history.notice
                self.notice.emit(self._history.notice)
                self._show_notice(self._history.notice)
        return self._history

    def _show_notice(self, text: str) -> None:
        """Tell the user once (per opening of the file) what opening it did, without blocking."""
        from PySide6.QtWidgets import QMessageBox, QWidget

        parent = self.parent()
        box = QMessageBox(QMessageBox.Icon.Information, "Saved drawings", text,
                          QMessageBox.StandardButton.Ok, parent if isinstance(parent, QWidget) else None)
        box.setObjectName("HistoryNotice")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    @property
    def path(self):
        return self.get().path

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None


@dataclass(frozen=True)
class Row:
    """What the table shows of one drawing (no big arrays kept: only a small thumbnail)."""

    id: int
    predicted: int | None
    confidence: float | None
    label: int | None
    reason: str | None
    note: str
    model: str
    created: str
    thumbnail: QPixmap

    @property
    def misclassified(self) -> bool:
        return self.label is not None and self.predicted is not None and self.label != self.predicted


COLUMNS = ("Drawing", "Predicted", "Confidence", "True", "Reason", "Model", "Date", "Re-run")
# column -> (order when ascending, order when descending): History.ORDERS keys
SORTS = {
    1: ("predicted", "predicted"),
    2: ("-confidence", "confidence"),
    3: ("label", "label"),
    5: ("model", "model"),
    6: ("oldest", "newest"),
    0: ("id", "newest"),
}
CHANGED_BRUSH = QBrush(QColor(255, 176, 0, 110))
MISCLASSIFIED_BRUSH = QBrush(QColor(220, 60, 60, 60))


def thumbnail(canvas: np.ndarray, size: int = THUMB) -> QPixmap:
    """A (H, W) [0, 1] canvas as a grey QPixmap of ``size`` px."""
    grey = (np.clip(np.asarray(canvas, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    image = to_qimage(grey)
    if image.width() != size:
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(image)


class HistoryTableModel(QAbstractTableModel):
    """Rows of the history for a QTableView: columns COLUMNS; DecorationRole of column 0 is the thumbnail;
    Qt.UserRole of any column is the drawing's id. Rows arrive PAGE at a time through fetchMore."""

    def __init__(self, access: HistoryAccess, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.access = access
        self.filter = Filter()
        self.search = ""
        self.order = "newest"
        self._ids: list[int] = []
        self._rows: list[Row] = []
        self.reruns: dict[int, tuple[Outcome, Outcome]] = {}

    # -- what to show ------------------------------------------------------------------------------
    def set_query(self, filter: Filter | None = None, search: str | None = None, order: str | None = None) -> None:
        if filter is not None:
            self.filter = filter
        if search is not None:
            self.search = search
        if order is not None:
            self.order = order
        self.refresh()

    def refresh(self) -> None:
        """Run the query again (ids only), drop the loaded pages and load the first; the view fetches the rest
        as it scrolls."""
        self.beginResetModel()
        try:
            self._ids = self.access.get().ids(self.filter, self.search or None, self.order)
        except CnnvizError:
            self._ids = []
            self.endResetModel()
            raise
        self._rows = []
        self.endResetModel()
        self.fetchMore()  # the first page now, so the rows are there as soon as the query ran

    @property
    def total(self) -> int:
        """How many drawings pass the filter (loaded or not)."""
        return len(self._ids)

    @property
    def ids(self) -> list[int]:
        """Every id the query found, in the shown order (loaded or not)."""
        return list(self._ids)

    def id_at(self, row: int) -> int:
        return self._ids[row]

    def row_info(self, row: int) -> Row:
        return self._rows[row]

    def set_reruns(self, results) -> None:
        """Show re-run results [(id, before, after)] in the 'Re-run' column."""
        self.reruns.update({i: (b, a) for i, b, a in results})
        if self._rows:
            self.dataChanged.emit(self.index(0, len(COLUMNS) - 1), self.index(len(self._rows) - 1, len(COLUMNS) - 1))

    def changed_ids(self) -> list[int]:
        """Ids whose re-run prediction differs from the saved one."""
        return [i for i, (b, a) in self.reruns.items() if b.predicted != a.predicted]

    # -- lazy paging -------------------------------------------------------------------------------
    def canFetchMore(self, parent=_ROOT) -> bool:  # noqa: N802
        return not parent.isValid() and len(self._rows) < len(self._ids)

    def fetchMore(self, parent=_ROOT) -> None:  # noqa: N802
        if parent.isValid():
            return
        start = len(self._rows)
        chunk = self._ids[start:start + PAGE]
        if not chunk:
            return
        found = {r.id: r for r in self.access.get().iter_records(chunk, page=PAGE)}
        rows = []
        for i in chunk:
            r = found.get(i)
            if r is None:  # deleted meanwhile (another window): show it as gone rather than shifting rows
                rows.append(Row(i, None, None, None, "(deleted)", "", "", "", QPixmap()))
                continue
            rows.append(Row(i, r.predicted, r.confidence, r.label, r.reason, r.note, r.model, r.created,
                            thumbnail(r.canvas)))
        self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()

    # -- QAbstractTableModel -----------------------------------------------------------------------
    def rowCount(self, parent=_ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=_ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return ("Click to sort by this column (in the database)" if section in SORTS else
                    "Before -> after of the last re-run (marked when it changed)" if section == 7 else None)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, col = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.UserRole:
            return row.id
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return row.thumbnail
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return f"#{row.id}"
            if col == 1:
                return "-" if row.predicted is None else str(row.predicted)
            if col == 2:
                return "-" if row.confidence is None else f"{row.confidence:.0%}"
            if col == 3:
                return "" if row.label is None else str(row.label)
            if col == 4:
                return row.reason or ""
            if col == 5:
                return row.model
            if col == 6:
                return row.created[:19].replace("T", " ")
            if col == 7:
                rerun = self.reruns.get(row.id)
                if rerun is None:
                    return ""
                before, after = rerun
                text = f"{_digit(before.predicted)} -> {_digit(after.predicted)}"
                return text + (" changed" if before.predicted != after.predicted else "")
        if role == Qt.ItemDataRole.BackgroundRole:
            rerun = self.reruns.get(row.id)
            if col == 7 and rerun is not None and rerun[0].predicted != rerun[1].predicted:
                return CHANGED_BRUSH
            if col in (1, 3) and row.misclassified:
                return MISCLASSIFIED_BRUSH
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.note or None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2, 3):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if column not in SORTS:
            return
        ascending, descending = SORTS[column]
        self.order = ascending if order == Qt.SortOrder.AscendingOrder else descending
        try:
            self.refresh()
        except CnnvizError:
            pass


def _digit(d: int | None) -> str:
    return "-" if d is None else str(d)
