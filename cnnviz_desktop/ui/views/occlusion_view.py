"""The occlusion view: hide part of the network's 28x28 input under a black square and watch the explained
digit's probability; the full sensitivity map (the square swept over every position) on demand.

Everything is in the network input (the preprocessed 28x28 image of the snapshot), not on the drawing canvas.
The computations are core/occlusion.py's; they run on two background lanes (ui/tasks.py): one for the
patched image's probabilities (the newest patch position cancels the old) and one for the sensitivity map
(progress bar, Cancel). Nothing is computed while the view is hidden; showing it catches up.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)

from ...core import colors
from ...core.occlusion import BLACK, MAX_SIZE, MIN_SIZE, occlusion_map, patch_logits, softmax
from ..qimage import to_qimage
from ..tasks import QtTaskRunner
from .base import Host, Style, View

N = 28
GAP = 10.0
MAP_STRIDE = 1
DEFAULT_SIZE = 4
PATCH_COLOUR = QColor(255, 200, 40)

SUMMARY = ("Drag the black square over the network's 28\u00d728 input (or click the image and use the arrow "
           "keys) and watch the probability of the explained digit. 'Sensitivity map' sweeps the square over "
           "every position: red where hiding the input lowers the digit's score, blue where it raises it.")
DETAILS = (
    "<b>Occlusion sensitivity</b> asks: what if this part of the input were not there?<br>"
    "<b>What it shows.</b> Left: the preprocessed image the network reads (28\u00d728, white ink on black), with "
    "the square you move. Below: the explained digit's probability without and with the square, and the drop. "
    "Right (Sensitivity map): for each pixel, the mean drop of the digit's <i>logit</i> over every position of "
    "the square that covers it (stride 1), computed like captum's <tt>Occlusion</tt>.<br>"
    "<b>Why black.</b> The hidden pixels are set to paper: 0 in the [0, 1] image, which the network sees as "
    f"(0 \u2212 0.1307) / 0.3081 = {BLACK:.4f} after normalisation. Filling with 0 in normalised units would "
    "paint the square grey, i.e. add faint ink where there was none.<br>"
    "<b>Limits.</b> The map costs one forward pass per position, (29 \u2212 size)\u00b2 of them (batched), so "
    "it is computed on demand. Its answer depends on the square's size: small squares find single strokes, big "
    "ones find whole parts; a square that hides two redundant strokes can matter where each alone does not. "
    "It works on the network's 28\u00d728 input, not on the canvas you draw on (the digit was scaled and "
    "centred first).")


def _explained(session) -> int | None:
    """The class to explain: the session's target, else the prediction (None: nothing drawn)."""
    if session.target is not None:
        return int(session.target)
    return session.predicted


def _percent(p: float, signed: bool = False) -> str:
    """A probability as a percentage, with more digits near 0 and 100% (where tiny's answers sit)."""
    digits = 1 if 0.01 <= abs(p) <= 0.99 or p == 0 else 3
    return f"{p:+.{digits}%}" if signed else f"{p:.{digits}%}"


def _torch_model(session):
    model = session.model
    return getattr(model, "model", model)  # a weights.LoadedModel holds the torch module


class _Board(QWidget):
    """The painted input image with its patch, and the sensitivity map with its legend (side by side when
    wide enough, else stacked). Drag the patch on either image; arrow keys move it while focused."""

    patch_moved = Signal(int, int)  # row, col (top-left cell)

    def __init__(self, owner: OcclusionView) -> None:
        super().__init__()
        self.owner = owner
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)  # square images: the height follows the dock's width
        self.setSizePolicy(policy)
        self.setAccessibleName("Occlusion patch")
        self.setToolTip("Drag the yellow-framed black square to hide part of the input; click, then use the "
                        "arrow keys to move it one cell (Shift: by its size).")
        self._grab: tuple[int, int] | None = None  # the patch cell held by the pointer while dragging

    # ---------------------------------------------------------------- geometry
    def _legend_height(self) -> float:
        return QFontMetricsF(self.font()).height() * 2 + 22

    def rects(self) -> tuple[QRectF, QRectF | None]:
        """The input image's square and the map's square (None while no map is shown), widget coordinates."""
        w, h = float(self.width()), float(self.height())
        title = QFontMetricsF(self.font()).height() + 2
        show_map = self.owner.map_visible
        cap = self._max_side()
        if not show_map:
            side = max(40.0, min(w - 2, h - title - 2, cap))
            return QRectF((w - side) / 2, title, side, side), None
        legend = self._legend_height()
        side_by_side = min((w - GAP) / 2, h - title - legend, cap)
        stacked = min(w - 2, (h - 2 * title - legend - GAP) / 2, cap)
        if side_by_side >= stacked:
            side = max(40.0, side_by_side)
            left = (w - 2 * side - GAP) / 2
            return QRectF(left, title, side, side), QRectF(left + side + GAP, title, side, side)
        side = max(40.0, stacked)
        left = (w - side) / 2
        return QRectF(left, title, side, side), QRectF(left, 2 * title + side + GAP, side, side)

    def _max_side(self) -> float:
        return 340.0 * self.owner.scale

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        title = QFontMetricsF(self.font()).height() + 2
        if self.owner.map_visible:
            return int(title + min((width - GAP) / 2, self._max_side()) + self._legend_height() + 2)
        return int(title + min(width - 2, self._max_side()) + 2)

    def sizeHint(self) -> QSize:  # noqa: N802
        width = int(300 * self.owner.scale)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, 140)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(row, col) of the input cell under a widget position, on the image or the map (None: neither)."""
        for rect in self.rects():
            if rect is not None and rect.contains(pos):
                col = int((pos.x() - rect.left()) / rect.width() * N)
                row = int((pos.y() - rect.top()) / rect.height() * N)
                return min(max(row, 0), N - 1), min(max(col, 0), N - 1)
        return None

    def cell_centre(self, col: float, row: float) -> QPointF:
        """The widget position of the centre of input cell (row, col) on the image (x = col, as the canvas)."""
        rect = self.rects()[0]
        return QPointF(rect.left() + (col + 0.5) * rect.width() / N, rect.top() + (row + 0.5) * rect.height() / N)

    # ---------------------------------------------------------------- input
    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        cell = self.cell_at(event.position())
        if cell is None:
            return super().mousePressEvent(event)
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        row, col, size = self.owner.patch
        if row <= cell[0] < row + size and col <= cell[1] < col + size:
            self._grab = (cell[0] - row, cell[1] - col)  # keep the hold point under the pointer
        else:  # a press beside the patch brings its centre there, then it follows the pointer
            self._grab = (size // 2, size // 2)
            self.patch_moved.emit(cell[0] - size // 2, cell[1] - size // 2)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._grab is None:
            return super().mouseMoveEvent(event)
        cell = self.cell_at(event.position())
        if cell is not None:
            self.patch_moved.emit(cell[0] - self._grab[0], cell[1] - self._grab[1])
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._grab is not None and event.button() == Qt.MouseButton.LeftButton:
            self._grab = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        steps = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0),
                 Qt.Key.Key_Down: (1, 0)}
        step = steps.get(Qt.Key(event.key()))
        if step is None:
            return super().keyPressEvent(event)
        row, col, size = self.owner.patch
        by = size if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
        self.patch_moved.emit(row + step[0] * by, col + step[1] * by)
        event.accept()

    # ---------------------------------------------------------------- painting
    def paintEvent(self, event) -> None:  # noqa: N802
        owner = self.owner
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(14, 15, 19))
        metrics = QFontMetricsF(self.font())
        image_rect, map_rect = self.rects()
        row, col, size = owner.patch
        painter.setPen(QColor(220, 224, 232))
        painter.drawText(QRectF(image_rect.left(), 0, image_rect.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextSingleLine, "Network input with the patch")
        image = owner.image
        if image is None:
            painter.fillRect(image_rect, QColor(0, 0, 0))
            painter.setPen(QColor(160, 166, 178))
            painter.drawText(image_rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Draw a digit on the grid")
        else:
            grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
            grey[row:row + size, col:col + size] = 0
            painter.drawImage(image_rect, to_qimage(grey))
        painter.setPen(QPen(QColor(70, 74, 84), 1))
        painter.drawRect(image_rect)
        self._draw_patch(painter, image_rect, row, col, size)
        if map_rect is not None:
            self._paint_map(painter, map_rect, metrics)
            self._draw_patch(painter, map_rect, row, col, size)
        painter.end()

    def _draw_patch(self, painter: QPainter, rect: QRectF, row: int, col: int, size: int) -> None:
        cell = rect.width() / N
        pen = QPen(PATCH_COLOUR, 2)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(rect.left() + col * cell, rect.top() + row * cell, size * cell, size * cell))

    def _draw_ink_outline(self, painter: QPainter, rect: QRectF, ink: np.ndarray) -> None:
        """The digit's outline (cell edges between ink and paper), so the map can be read against it."""
        cell = rect.width() / N
        painter.setPen(QPen(QColor(40, 42, 50, 170), 1))
        padded = np.pad(ink, 1)
        x0, y0 = rect.left(), rect.top()
        for r, c in zip(*np.nonzero(ink)):
            if not padded[r, c + 1]:  # paper above
                painter.drawLine(QPointF(x0 + c * cell, y0 + r * cell), QPointF(x0 + (c + 1) * cell, y0 + r * cell))
            if not padded[r + 2, c + 1]:  # below
                painter.drawLine(QPointF(x0 + c * cell, y0 + (r + 1) * cell),
                                 QPointF(x0 + (c + 1) * cell, y0 + (r + 1) * cell))
            if not padded[r + 1, c]:  # left
                painter.drawLine(QPointF(x0 + c * cell, y0 + r * cell), QPointF(x0 + c * cell, y0 + (r + 1) * cell))
            if not padded[r + 1, c + 2]:  # right
                painter.drawLine(QPointF(x0 + (c + 1) * cell, y0 + r * cell),
                                 QPointF(x0 + (c + 1) * cell, y0 + (r + 1) * cell))

    def _paint_map(self, painter: QPainter, rect: QRectF, metrics: QFontMetricsF) -> None:
        owner = self.owner
        painter.setPen(QColor(220, 224, 232))
        cls = owner.sensitivity_class
        title = f"Sensitivity of digit {cls}" if owner.sensitivity is not None and cls is not None \
            else "Sensitivity map"
        painter.drawText(QRectF(rect.left(), rect.top() - metrics.height() - 2, rect.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextSingleLine, title)
        values = owner.sensitivity
        scale = owner.sensitivity_scale
        if values is None:
            painter.fillRect(rect, QColor(30, 32, 38))
            painter.setPen(QColor(160, 166, 178))
            painter.drawText(rect.adjusted(6, 6, -6, -6), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             owner.map_message)
        else:
            rgba = colors.signed_colors(values, scale, owner.palette).copy()
            rgba[..., 3] = 255
            painter.drawImage(rect, to_qimage(np.ascontiguousarray(rgba)))
            if owner.sensitivity_image is not None:
                self._draw_ink_outline(painter, rect, np.asarray(owner.sensitivity_image) > 0.3)
        painter.setPen(QPen(QColor(70, 74, 84), 1))
        painter.drawRect(rect)
        # Legend: the signed scale in logit units.
        bar = QRectF(rect.left(), rect.bottom() + 6, rect.width(), 8)
        painter.drawImage(bar, to_qimage(colors.signed_lut(owner.palette)[None, :, :]))
        painter.setPen(QColor(210, 214, 222))
        s = f"{scale:.2g}" if values is not None else "s"
        lines = (f"\u2212{s}  \u2190 logit drop \u2192  +{s}", "red: hiding lowers the score, blue: raises it")
        for i, text in enumerate(lines):  # the text may use the board's whole width
            left = 4.0 if rect.left() > self.width() / 3 else rect.left()
            line_rect = QRectF(left, bar.bottom() + 2 + i * metrics.height(), self.width() - left - 4,
                               metrics.height())
            painter.drawText(line_rect, Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextSingleLine,
                             metrics.elidedText(text, Qt.TextElideMode.ElideRight, line_rect.width()))


class _DropBar(QWidget):
    """Two bars: the explained digit's probability without the patch (grey) and with it (coloured)."""

    def __init__(self, owner: OcclusionView) -> None:
        super().__init__()
        self.owner = owner
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Grey: the explained digit's probability for the whole input; coloured: with the black "
                        "square. The gap between them is the drop.")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, int(QFontMetricsF(self.font()).height() * 2 + 8))

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(14, 15, 19))
        metrics = QFontMetricsF(self.font())
        label_w = metrics.horizontalAdvance("without ") + 4
        line = metrics.height()
        width = max(10.0, self.width() - label_w - 6)
        owner = self.owner
        lut = colors.signed_lut(owner.palette)
        hot = QColor(*[int(v) for v in lut[-1][:3]])
        for i, (label, value, colour) in enumerate((("without", owner.unpatched_probability, QColor(150, 154, 164)),
                                                     ("with", owner.patched_probability, hot))):
            y = 2 + i * (line + 2)
            painter.setPen(QColor(200, 204, 214))
            painter.drawText(QRectF(0, y, label_w, line), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             label)
            painter.fillRect(QRectF(label_w + 4, y + 2, width, line - 4), QColor(34, 36, 44))
            if value is not None:
                painter.fillRect(QRectF(label_w + 4, y + 2, width * float(value), line - 4), colour)
        painter.end()


class OcclusionView(View):
    """See the module docstring. Public state for tests and scripts: ``patch`` (row, col, size),
    ``explained_class``, ``unpatched_probability``, ``patched_probability``, ``drop``, ``sensitivity``
    ((28, 28) logit drops or None) with ``sensitivity_class`` / ``sensitivity_size`` / ``sensitivity_image``
    (what it was computed for)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.host = None
        self.scale = 1.0
        self.palette = "default"
        self._row, self._col, self._size = 12, 12, DEFAULT_SIZE
        self.image: np.ndarray | None = None  # (28, 28) in [0, 1], the shown snapshot's input
        self.explained_class: int | None = None
        self.unpatched_probability: float | None = None
        self.patched_probability: float | None = None
        self.unpatched_logit: float | None = None
        self.patched_logit: float | None = None
        self._patch_key = None
        self.sensitivity: np.ndarray | None = None
        self.sensitivity_scale = 1.0
        self.sensitivity_class: int | None = None
        self.sensitivity_size: int | None = None
        self.sensitivity_image: np.ndarray | None = None
        self._map_key = None
        self._wanted_map_key = None
        self.map_message = "Press 'Sensitivity map' to sweep the patch over every position"

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        self.explanation = QLabel(SUMMARY + "  <a href='#more'>More\u2026</a>")
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.RichText)
        self.explanation.setToolTip(DETAILS)
        self.explanation.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.explanation.linkActivated.connect(lambda _link: self._toggle_details())
        self.details = QLabel(DETAILS)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.details.setVisible(False)
        layout.addWidget(self.explanation)
        layout.addWidget(self.details)

        controls = QHBoxLayout()
        controls.setSpacing(6)
        controls.addWidget(QLabel("Explain"))
        self.class_box = QComboBox()
        self.class_box.addItem("the prediction", None)
        for d in range(10):
            self.class_box.addItem(f"digit {d}", d)
        self.class_box.setToolTip("The digit whose probability the patch is judged by (the same choice as a click "
                                  "on a probability bar; 'the prediction' follows the network's answer)")
        self.class_box.activated.connect(self._on_class_chosen)
        controls.addWidget(self.class_box)
        controls.addWidget(QLabel("Patch"))
        self.size_box = QSpinBox()
        self.size_box.setRange(MIN_SIZE, MAX_SIZE)
        self.size_box.setValue(DEFAULT_SIZE)
        self.size_box.setSuffix(" cells")
        self.size_box.setToolTip(f"Side of the black square in cells of the 28\u00d728 input ({MIN_SIZE}-{MAX_SIZE}). "
                                 "The sensitivity map depends on it: small squares find strokes, big ones parts.")
        self.size_box.valueChanged.connect(self.set_size)
        controls.addWidget(self.size_box)
        self.map_button = QPushButton("Sensitivity map")
        self.map_button.setCheckable(True)
        self.map_button.setToolTip("Sweep the square over every position (stride 1, one batched forward pass per "
                                   "chunk) and show each pixel's mean logit drop; recomputed when the drawing, "
                                   "the digit, the size or the model changes")
        self.map_button.toggled.connect(self._on_map_toggled)
        controls.addWidget(self.map_button)
        controls.addStretch(1)
        layout.addLayout(controls)

        self.board = _Board(self)
        self.board.patch_moved.connect(self.set_patch)
        layout.addWidget(self.board)

        self.readout = QLabel()
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setAccessibleName("Probability with and without the patch")
        layout.addWidget(self.readout)
        self.drop_bar = _DropBar(self)
        layout.addWidget(self.drop_bar)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFormat("Sensitivity map %p%")
        self.progress.setToolTip("Progress of the sensitivity map (it runs in the background; drawing goes on)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop computing the sensitivity map")
        self.cancel_button.clicked.connect(self.cancel_map)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self._progress_widgets = (self.progress, self.cancel_button)
        for w in self._progress_widgets:
            policy = w.sizePolicy()
            policy.setRetainSizeWhenHidden(True)  # the layout does not jump when a computation starts or ends
            w.setSizePolicy(policy)
            w.setVisible(False)
        layout.addLayout(progress_row)
        layout.addStretch(1)

        self.patch_lane = QtTaskRunner("occlusion patch", self)
        self.patch_lane.finished.connect(self._on_patch_done)
        self.patch_lane.failed.connect(self._on_failed)
        self.map_lane = QtTaskRunner("occlusion map", self)
        self.map_lane.progress.connect(self._on_map_progress)
        self.map_lane.finished.connect(self._on_map_done)
        self.map_lane.failed.connect(self._on_map_failed)
        self.map_lane.cancelled.connect(self._on_map_cancelled)
        self._render_readout()

    # ------------------------------------------------------------------ public state
    @property
    def patch(self) -> tuple[int, int, int]:
        """(row, col, size): the patch's top-left input cell and its side, in cells."""
        return self._row, self._col, self._size

    @property
    def drop(self) -> float | None:
        """Probability without the patch minus with it (None until both are known)."""
        if self.unpatched_probability is None or self.patched_probability is None:
            return None
        return self.unpatched_probability - self.patched_probability

    @property
    def map_visible(self) -> bool:
        return self.map_button.isChecked()

    @property
    def patch_settled(self) -> bool:
        """True when ``patched_probability`` answers the current patch, drawing and class."""
        return self.image is not None and self.session is not None and \
            self._patch_key == (*self._state_key(), *self.patch)

    @property
    def map_busy(self) -> bool:
        """True while a sensitivity map is being computed for the current state."""
        return self._wanted_map_key is not None and self._wanted_map_key != self._map_key

    def set_patch(self, row: int, col: int, size: int | None = None) -> None:
        """Move the patch (top-left cell, clamped into the image) and optionally resize it."""
        size = self._size if size is None else int(min(max(size, MIN_SIZE), MAX_SIZE))
        row = int(min(max(row, 0), N - size))
        col = int(min(max(col, 0), N - size))
        if (row, col, size) == self.patch:
            return
        size_changed = size != self._size
        self._row, self._col, self._size = row, col, size
        if self.size_box.value() != size:
            self.size_box.blockSignals(True)
            self.size_box.setValue(size)
            self.size_box.blockSignals(False)
        self.board.update()
        self._request_patch()
        if size_changed:
            self._request_map()

    def set_size(self, size: int) -> None:
        """Resize the patch, keeping its centre where it was."""
        size = int(min(max(size, MIN_SIZE), MAX_SIZE))
        centre_r, centre_c = self._row + self._size / 2, self._col + self._size / 2
        self.set_patch(round(centre_r - size / 2), round(centre_c - size / 2), size)

    def cancel_map(self) -> None:
        """Stop the running sensitivity map (the toggle goes off, so it is not recomputed until asked; an
        answer already on its way is dropped)."""
        running = self.map_busy
        self.map_lane.cancel()
        self._wanted_map_key = None
        for w in self._progress_widgets:
            w.setVisible(False)
        if self.map_button.isChecked():
            self.map_button.blockSignals(True)
            self.map_button.setChecked(False)
            self.map_button.blockSignals(False)
            self.board.updateGeometry()
            self.board.update()
        if running and self.host is not None:
            self.host.show_status("Sensitivity map cancelled", 4000)

    # ------------------------------------------------------------------ session
    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        self.palette = session.palette
        session.snapshot_changed.connect(self._on_snapshot)
        session.model_changed.connect(self._on_model_changed)
        session.changed.connect(self._on_changed)
        self._sync_class_box()

    def _on_snapshot(self, _snapshot) -> None:
        if self.isVisible():
            self.refresh()

    def _on_model_changed(self, _model) -> None:
        # Results of the previous model must never be shown: cancel, forget, wait for the new snapshot.
        self.patch_lane.cancel()
        self.map_lane.cancel()
        self._patch_key = self._map_key = self._wanted_map_key = None
        self.image = None
        self.explained_class = None
        self.unpatched_probability = self.patched_probability = None
        self.unpatched_logit = self.patched_logit = None
        self.sensitivity = None
        for w in self._progress_widgets:
            w.setVisible(False)
        self._render_readout()
        self.board.update()

    def _on_changed(self, name: str, value) -> None:
        if name == "palette":
            self.palette = value
            self.board.update()
            self.drop_bar.update()
        elif name == "target":
            self._sync_class_box()
            if self.isVisible():
                self.refresh()

    def _sync_class_box(self) -> None:
        target = self.session.target if self.session is not None else None
        index = 0 if target is None else int(target) + 1
        if self.class_box.currentIndex() != index:
            self.class_box.setCurrentIndex(index)

    def _on_class_chosen(self, index: int) -> None:
        self.session.set_target(self.class_box.itemData(index))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def apply_style(self, style: Style) -> None:
        self.scale = style.scale
        self.palette = style.palette
        self.board.updateGeometry()
        self.board.update()
        self.drop_bar.updateGeometry()
        self.drop_bar.update()

    def _toggle_details(self) -> None:
        self.details.setVisible(not self.details.isVisible())

    # ------------------------------------------------------------------ work
    def refresh(self) -> None:
        """Take the shown snapshot's input and explained class; ask the lanes for what is missing."""
        session = self.session
        if session is None:
            return
        snap = session.snapshot
        if snap is None or snap.empty or session.model is None:
            self.image = None
            self.explained_class = None
            self.unpatched_probability = self.patched_probability = None
            self.unpatched_logit = self.patched_logit = None
            self._patch_key = None
            self.sensitivity = None
            self.map_message = "Draw a digit on the grid"
        else:
            self.image = np.asarray(snap.activations["input"], dtype=np.float32).reshape(N, N)
            self.explained_class = _explained(session)
            # Without the patch: the analysis of the shown drawing (the same model, the same input).
            self.unpatched_probability = float(snap.probabilities[self.explained_class])
            self.unpatched_logit = float(snap.logits[self.explained_class])
            if self.sensitivity is None:
                self.map_message = "Press 'Sensitivity map' to sweep the patch over every position"
        self._request_patch()
        self._request_map()
        self.board.update()
        self._render_readout()

    def _state_key(self):
        session = self.session
        # The image's content, not the request id: a new analysis of the same drawing (e.g. after another
        # digit was chosen) must not start the sweep again.
        image = None if self.image is None else hash(self.image.tobytes())
        return (session.generation, image, self.explained_class)

    def _request_patch(self) -> None:
        if self.session is None or self.image is None or self.explained_class is None or not self.isVisible():
            self._render_readout()
            return
        key = (*self._state_key(), *self.patch)
        if key == self._patch_key:
            return
        model, image, (row, col, size), cls = _torch_model(self.session), self.image, self.patch, self.explained_class

        def task(ctx):
            logits = patch_logits(model, image, row, col, size)
            return key, float(softmax(logits)[cls]), float(logits[cls])

        self.patch_lane.submit(task)

    def _on_patch_done(self, _task_id: int, result) -> None:
        key, probability, logit = result
        if self.image is None or key != (*self._state_key(), *self.patch):
            return  # an answer for a patch, drawing or class no longer shown
        self._patch_key = key
        self.patched_probability = probability
        self.patched_logit = logit
        self._render_readout()

    def _request_map(self) -> None:
        if not self.map_visible or self.image is None or self.explained_class is None or not self.isVisible():
            for w in self._progress_widgets:
                w.setVisible(False)
            self._wanted_map_key = None
            return
        key = (*self._state_key(), self._size)
        if key == self._wanted_map_key:
            return  # already on its way
        if key == self._map_key:  # back to what is shown: whatever runs is for another state
            self.map_lane.cancel()
            self._wanted_map_key = None
            for w in self._progress_widgets:
                w.setVisible(False)
            return
        self._wanted_map_key = key
        model, image, cls, size = _torch_model(self.session), self.image, self.explained_class, self._size

        def task(ctx):
            return key, occlusion_map(model, image, cls, size=size, stride=MAP_STRIDE, ctx=ctx), image

        self.progress.setValue(0)
        for w in self._progress_widgets:
            w.setVisible(True)
        self.map_lane.submit(task)

    def _on_map_progress(self, _task_id: int, fraction: float, _payload) -> None:
        self.progress.setValue(int(round(fraction * 100)))

    def _on_map_done(self, _task_id: int, result) -> None:
        key, values, image = result
        if key != self._wanted_map_key:
            return
        self._map_key = key
        self._wanted_map_key = None
        for w in self._progress_widgets:
            w.setVisible(False)
        self.sensitivity = values
        self.sensitivity_scale = float(np.abs(values).max()) or 1.0
        self.sensitivity_class = key[2]
        self.sensitivity_size = key[3]
        self.sensitivity_image = image
        self.board.update()

    def _on_map_failed(self, _task_id: int, message: str) -> None:
        self._wanted_map_key = None
        for w in self._progress_widgets:
            w.setVisible(False)
        self._on_failed(_task_id, message)

    def _on_map_cancelled(self, _task_id: int) -> None:
        # The newest map task was cancelled (by Cancel, a model switch, or the lane shutting down).
        if self._wanted_map_key is not None:
            self.cancel_map()

    def _on_failed(self, _task_id: int, message: str) -> None:
        if self.host is not None:
            self.host.show_status(f"Occlusion: {message}", 8000)

    def _on_map_toggled(self, on: bool) -> None:
        if not on:
            self.map_lane.cancel()
            self._wanted_map_key = None
            for w in self._progress_widgets:
                w.setVisible(False)
        self.board.updateGeometry()  # the map needs room: the board's height follows
        self.board.update()
        self._request_map()

    # ------------------------------------------------------------------ text
    def _render_readout(self) -> None:
        cls = self.explained_class
        if self.image is None or cls is None:
            self.readout.setText("Nothing drawn: draw a digit on the grid, then move the square over it.")
        else:
            row, col, size = self.patch
            p0, p1 = self.unpatched_probability, self.patched_probability
            if p1 is None or self.patched_logit is None:
                with_text, logit_text = "\u2026", ""
            else:
                with_text = f"{_percent(p1)} (drop {_percent(p0 - p1, signed=True)})"
                logit_text = (f"<br>Logit of {cls}: {self.unpatched_logit:.2f} \u2192 {self.patched_logit:.2f} "
                              f"(drop {self.unpatched_logit - self.patched_logit:+.2f}). The map shows logit drops: "
                              f"they do not saturate as probabilities do near 100%.")
            self.readout.setText(f"<b>P(digit {cls})</b>: {_percent(p0)} without the patch \u2192 {with_text} "
                                 f"with a {size}\u00d7{size} patch at row {row}, column {col}.{logit_text}")
        self.drop_bar.update()
