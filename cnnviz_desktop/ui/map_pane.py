"""A painted pane for one 28x28 explanation map of the network input: title, the map as a square heat image
with the digit's outline on top, and its colour legend (sequential for unsigned maps, the signed diverging
map otherwise). Shared by the saliency and compare views (views do not import each other).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core import colors
from .qimage import to_qimage

INK = 0.5  # input value above which a pixel counts as ink for the outline
LEGEND_H = 10.0


def heat_image(values: np.ndarray, scale: float, signed: bool, palette: str) -> np.ndarray:
    """(H, W, 4) uint8 opaque RGBA of a map: the signed diverging map, or the sequential activation map
    (whose lowest entry is the 'zero' grey) for unsigned values."""
    if signed:
        rgba = colors.signed_colors(values, scale, palette)
    else:
        rgba = colors.activation_colors(values, scale, palette)
    rgba = np.ascontiguousarray(rgba)
    rgba[..., 3] = 255
    return rgba


def outline_segments(ink: np.ndarray, threshold: float = INK) -> list[tuple[int, int, int, int]]:
    """Cell-edge segments (x0, y0, x1, y1 in cells) between ink and non-ink cells of an (H, W) image."""
    mask = np.asarray(ink) > threshold
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), bool)
    padded[1:-1, 1:-1] = mask
    rows = padded[:-1, 1:-1] != padded[1:, 1:-1]  # (h + 1, w): an edge on line y above cell (y, x)
    cols = padded[1:-1, :-1] != padded[1:-1, 1:]  # (h, w + 1): an edge on line x left of cell (y, x)
    segments = [(x, y, x + 1, y) for y, x in zip(*np.nonzero(rows))]
    segments += [(x, y, x, y + 1) for y, x in zip(*np.nonzero(cols))]
    return segments


class MapPane(QWidget):
    """One map. :meth:`set_map` gives it values (or None and a message); public state: ``values``,
    ``scale``, ``signed``, ``title``, ``message``, ``image_rect`` (where the map was last painted)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: np.ndarray | None = None
        self.target: int | None = None  # the class the shown map explains (set by the view)
        self.ink: np.ndarray | None = None
        self.scale = 1.0
        self.signed = True
        self.title = ""
        self.message = "Draw a digit"
        self.legend_text = ""
        self.palette_name = "default"
        self.text_scale = 1.0
        self.image_rect = QRectF()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(150, 190)

    def set_map(self, values: np.ndarray | None, *, signed: bool, title: str, ink: np.ndarray | None = None,
                message: str = "", palette: str = "default", scale: float | None = None,
                legend: str = "") -> None:
        """values: (28, 28) map or None (then ``message`` is shown); signed: diverging legend centred on 0,
        else sequential from 0; scale: the magnitude at full colour (default: max |values|)."""
        self.values = None if values is None else np.asarray(values, dtype=np.float32)
        self.signed = bool(signed)
        self.title = title
        self.ink = None if ink is None else np.asarray(ink)
        self.message = message
        self.palette_name = palette
        self.legend_text = legend
        if self.values is not None:
            top = float(np.abs(self.values).max()) if scale is None else float(scale)
            self.scale = top if np.isfinite(top) and top > 0 else 1.0
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(240, 300)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(14, 15, 19))
        metrics = QFontMetricsF(self.font())
        line = metrics.height()
        width, height = float(self.width()), float(self.height())
        painter.setPen(QColor(225, 228, 235))
        painter.drawText(QRectF(4, 2, width - 8, line), Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextSingleLine,
                         self.title)
        legend_room = LEGEND_H + line + 8
        side = max(20.0, min(width - 8, height - line - 6 - legend_room))
        rect = QRectF((width - side) / 2, line + 4, side, side)
        self.image_rect = rect
        if self.values is None:
            painter.fillRect(rect, QColor(28, 30, 36))
            painter.setPen(QColor(170, 175, 186))
            painter.drawText(rect.adjusted(6, 6, -6, -6), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.message)
            painter.end()
            return
        rgba = heat_image(self.values, self.scale, self.signed, self.palette_name)
        painter.drawImage(rect, to_qimage(rgba))
        if self.ink is not None:
            h, w = self.ink.shape
            cell_w, cell_h = rect.width() / w, rect.height() / h
            # Dark on the signed map's pale middle, light on the sequential map's dark low end.
            pen = QPen(QColor(20, 20, 20, 210) if self.signed else QColor(255, 255, 255, 190), 1.4)
            painter.setPen(pen)
            painter.drawLines([QLineF(rect.left() + x0 * cell_w, rect.top() + y0 * cell_h,
                                      rect.left() + x1 * cell_w, rect.top() + y1 * cell_h)
                               for x0, y0, x1, y1 in outline_segments(self.ink)])
        painter.setPen(QPen(QColor(70, 74, 84), 1))
        painter.drawRect(rect)
        # The legend: the colour ramp under the map, with its range in the map's units.
        bar = QRectF(rect.left(), rect.bottom() + 4, rect.width(), LEGEND_H)
        if self.signed:
            ramp = colors.signed_colors(np.linspace(-1, 1, 256, dtype=np.float32), 1.0, self.palette_name)
            text = f"\u2212{self.scale:.3g}   0   +{self.scale:.3g}"
        else:
            ramp = colors.activation_colors(np.linspace(0, 1, 256, dtype=np.float32), 1.0, self.palette_name)
            text = f"0   \u2192   {self.scale:.3g}"
        ramp = np.ascontiguousarray(ramp[None, :, :])
        ramp[..., 3] = 255
        painter.drawImage(bar, to_qimage(ramp))
        painter.setPen(QColor(200, 204, 214))
        label = f"{text}   {self.legend_text}" if self.legend_text else text
        painter.drawText(QRectF(rect.left() - 20, bar.bottom() + 1, rect.width() + 40, line),
                         Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextSingleLine, label)
        painter.end()
