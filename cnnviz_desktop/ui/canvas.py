"""The 28x28 drawing grid: left button draws, right erases; mouse, pen (pressure) and touch.

The widget only translates input into CanvasModel calls and paints; every change emits
``canvas_changed`` so the window can submit an analysis request (the worker coalesces them).

Every position the windowing system delivers is applied (one capsule per segment): the app turns off
Qt's motion-event compression (``keep_every_pointer_event``), so a fast curve keeps its shape instead
of becoming a few straight chords. ``point_applied`` reports each applied position.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QInputDevice, QPainter, QPen, QPointingDevice  # noqa: F401
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.canvas import CanvasModel
from .qimage import to_qimage

BACKGROUND = QColor(12, 14, 18)
GRID_PEN = QColor(255, 255, 255, 22)


def keep_every_pointer_event() -> None:
    """Turn off Qt's merging of queued mouse/touch moves (AA_CompressHighFrequencyEvents) and tablet moves.

    On X11 the xcb platform plugin switches the compression ON while the QApplication is being built
    (measured with PySide6 6.11: False before, True after, whatever was set before), and it reads the flag
    for every event, so this must run after the QApplication exists (running it before as well is
    harmless). Without it, moves that queue while the GUI thread renders the 3D view are merged into the
    newest one: at 125 Hz about 70 % of the positions never reach the grid and curves become chords.
    Every delivered position then costs one capsule stamp and one (coalesced) request: cheap.
    """
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_CompressHighFrequencyEvents, False)
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_CompressTabletEvents, False)


def pen_pressure(event) -> float:
    """Pressure of a tablet event in [0, 1]; 0 is the lightest touch (thinnest line), not "unknown".
    A pointing device that reports no pressure at all (no Pressure capability) draws at full width."""
    device = event.pointingDevice()
    if device is not None and not (device.capabilities() & QInputDevice.Capability.Pressure):
        return 1.0
    return float(np.clip(float(event.pressure()), 0.0, 1.0))


class CanvasWidget(QWidget):
    """Signals: canvas_changed() after every change of the drawing; stroke_finished() when a stroke ends;
    point_applied(x, y) once per input position painted (press or move), in cell units."""

    canvas_changed = Signal()
    stroke_finished = Signal()
    point_applied = Signal(float, float)

    def __init__(self, model: CanvasModel | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model or CanvasModel()
        self._overlay: QImage | None = None
        self._overlay_buffer: np.ndarray | None = None
        self._overlay_opacity = 0.75
        self._highlight: tuple[int, int, int, int] | None = None  # rows r0..r1, cols c0..c1 (exclusive)
        self._hint = "Draw a digit here\nleft button draws, right button erases"
        self._large = False
        self.setMinimumSize(28 * 8, 28 * 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents, True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Left button: draw · right button: erase · [ and ]: brush size")
        self.setAccessibleName("Drawing grid")

    # --- geometry -------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(28 * 14, 28 * 14)

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return width

    def grid_rect(self) -> QRectF:
        """The square area the 28x28 cells occupy, centred in the widget."""
        rows, cols = self.model.pixels.shape
        cell = min(self.width() / cols, self.height() / rows)
        w, h = cell * cols, cell * rows
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_cells(self, pos: QPointF) -> tuple[float, float]:
        """Widget position -> continuous (x, y) in cell units."""
        rect = self.grid_rect()
        rows, cols = self.model.pixels.shape
        return ((pos.x() - rect.left()) / rect.width() * cols, (pos.y() - rect.top()) / rect.height() * rows)

    def cell_centre(self, x: float, y: float) -> QPointF:
        """Cell-unit (x, y) -> widget position (inverse of to_cells)."""
        rect = self.grid_rect()
        rows, cols = self.model.pixels.shape
        return QPointF(rect.left() + x / cols * rect.width(), rect.top() + y / rows * rect.height())

    # --- display state --------------------------------------------------------------------------
    def set_overlay(self, rgba: np.ndarray | None) -> None:
        """rgba: (rows, cols, 4) uint8 heatmap (alpha carries strength) or None to hide it."""
        if rgba is None:
            self._overlay, self._overlay_buffer = None, None
        else:
            self._overlay_buffer = np.array(rgba, dtype=np.uint8)
            self._overlay = to_qimage(self._overlay_buffer)
        self.update()

    @property
    def overlay_rgba(self) -> np.ndarray | None:
        """The overlay shown on the grid, (rows, cols, 4) uint8 (a copy), or None when none is shown."""
        return None if self._overlay_buffer is None else self._overlay_buffer.copy()

    @property
    def highlight(self) -> tuple[int, int, int, int] | None:
        """The outlined block of cells (row0, col0, row1, col1; end exclusive), or None."""
        return self._highlight

    def set_overlay_opacity(self, opacity: float) -> None:
        self._overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        self.update()

    @property
    def overlay_opacity(self) -> float:
        return self._overlay_opacity

    def set_highlight(self, cells: tuple[int, int, int, int] | None) -> None:
        """Outline a block of cells (row0, col0, row1, col1; end exclusive), e.g. a receptive field."""
        self._highlight = cells
        self.update()

    def set_large(self, large: bool) -> None:
        self._large = large
        self.update()

    def notify_changed(self) -> None:
        """Call after changing the model directly (clear, undo, load)."""
        self.update()
        self.canvas_changed.emit()

    # --- painting -------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        rect = self.grid_rect()
        pixels = self.model.pixels
        image = to_qimage((pixels * 255.0 + 0.5).astype(np.uint8))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, image)
        if self._overlay is not None:
            painter.setOpacity(self._overlay_opacity)
            painter.drawImage(rect, self._overlay)
            painter.setOpacity(1.0)
        rows, cols = pixels.shape
        painter.setPen(QPen(GRID_PEN, 1))
        for i in range(1, cols):
            x = rect.left() + rect.width() * i / cols
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        for i in range(1, rows):
            y = rect.top() + rect.height() * i / rows
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        if self._highlight is not None:
            r0, c0, r1, c1 = self._highlight
            top_left = self.cell_centre(c0, r0)
            bottom_right = self.cell_centre(c1, r1)
            painter.setPen(QPen(QColor(255, 220, 40), 3 if self._large else 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(top_left, bottom_right))
        if self.model.is_empty and not self.model.in_stroke:
            painter.setPen(QColor(190, 196, 206))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * (1.8 if self._large else 1.25))
            # Never wider than the grid (presentation mode's large font on a narrow window): scale it down.
            widest = max(QFontMetricsF(font).horizontalAdvance(line) for line in self._hint.split("\n"))
            if widest > rect.width() * 0.94:
                font.setPointSizeF(max(6.0, font.pointSizeF() * rect.width() * 0.94 / widest))
            painter.setFont(font)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._hint)
        painter.setPen(QPen(QColor(80, 86, 96), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
        painter.end()

    # --- input ------------------------------------------------------------------------------------
    def _begin(self, pos: QPointF, erase: bool, pressure: float = 1.0) -> None:
        x, y = self.to_cells(pos)
        self.model.begin_stroke(x, y, erase=erase, pressure=pressure)
        self.point_applied.emit(x, y)
        self.notify_changed()

    def _extend(self, pos: QPointF, pressure: float = 1.0) -> None:
        if not self.model.in_stroke:
            return
        x, y = self.to_cells(pos)
        self.model.extend_stroke(x, y, pressure=pressure)
        self.point_applied.emit(x, y)
        self.notify_changed()

    def _end(self) -> None:
        if self.model.in_stroke:
            self.model.end_stroke()
            self.update()
            self.stroke_finished.emit()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        button = event.button()
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) and not self.model.in_stroke:
            self._begin(event.position(), erase=button == Qt.MouseButton.RightButton)
            event.accept()
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self.model.in_stroke:
            self._extend(event.position())
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            self._end()
            event.accept()
        else:
            super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802
        event.accept()  # the right button erases; no context menu on the grid

    def tabletEvent(self, event) -> None:  # noqa: N802
        """Pen input with pressure (0 = thinnest line); the eraser end of a pen erases."""
        kind = event.type()
        pressure = pen_pressure(event)
        eraser = (event.pointerType() == QPointingDevice.PointerType.Eraser
                  or bool(event.buttons() & Qt.MouseButton.RightButton))
        if kind == QEvent.Type.TabletPress:
            self._begin(event.position(), erase=eraser, pressure=pressure)
        elif kind == QEvent.Type.TabletMove:
            self._extend(event.position(), pressure=pressure)
        elif kind == QEvent.Type.TabletRelease:
            self._end()
        event.accept()  # no synthesised mouse events on top

    def event(self, event) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.TouchEnd,
                    QEvent.Type.TouchCancel):
            points = event.points()
            if points:
                pos = points[0].position()
                if kind == QEvent.Type.TouchBegin:
                    self._begin(pos, erase=False)
                elif kind == QEvent.Type.TouchUpdate:
                    self._extend(pos)
                else:
                    self._end()
            event.accept()
            return True
        return super().event(event)
