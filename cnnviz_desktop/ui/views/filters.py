"""The filters view: the first layer's kernels, and each later layer's kernels grouped by input channel (one
row per output channel, one column per input channel), on one signed colour scale with its legend."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...core import colors
from ...core.filters import conv_filters, signed_scale
from ..qimage import to_qimage
from .base import Host, Style, View, scrolled

GAP = 4
LEGEND_H = 16


class _Grid(QWidget):
    def __init__(self, owner: FiltersView) -> None:
        super().__init__()
        self.owner = owner
        self.cells: list[tuple[str, int, int, QRectF]] = []  # (layer, out channel, in channel, rect)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def _layout(self, width: int):
        filters = self.owner.filters
        metrics = QFontMetricsF(self.font())
        line = metrics.height()
        cell = 30.0 * self.owner.scale
        y = LEGEND_H + line + 2 * GAP
        cells, titles = [], []
        for name, w in filters.items():
            c_out, c_in = w.shape[:2]
            titles.append((f"{name}: {c_out} filters \u00d7 {c_in} input channel{'s' if c_in > 1 else ''}, "
                           f"{w.shape[2]}\u00d7{w.shape[3]}", y))
            y += line + GAP
            if c_in == 1:  # first layer: one row of kernels
                per_row = max(1, int((width - GAP) // (cell + GAP)))
                for o in range(c_out):
                    row, col = divmod(o, per_row)
                    cells.append((name, o, 0, QRectF(GAP + col * (cell + GAP), y + row * (cell + GAP), cell, cell)))
                y += -(-c_out // per_row) * (cell + GAP) + GAP
            else:  # grouped by input channel: rows = output channels, columns = input channels
                small = min(cell, max(8.0, (width - 2 * GAP - 40) / c_in - 2))
                for o in range(c_out):
                    for i in range(c_in):
                        cells.append((name, o, i, QRectF(40 + i * (small + 2), y + o * (small + 2), small, small)))
                y += c_out * (small + 2) + GAP
        return cells, titles, y

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, int(self._layout(max(self.width(), 200))[2]))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.setMinimumHeight(self.sizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(14, 15, 19))
        filters, scale, palette = self.owner.filters, self.owner.scale_value, self.owner.palette
        metrics = QFontMetricsF(self.font())
        # Legend: one signed scale for every filter.
        lut = colors.signed_lut(palette)
        bar = QRectF(GAP, GAP, min(200.0, self.width() - 2 * GAP), LEGEND_H * 0.6)
        painter.drawImage(bar, to_qimage(lut[None, :, :]))
        painter.setPen(QColor(210, 214, 222))
        painter.drawText(QRectF(GAP, bar.bottom() + 1, self.width(), metrics.height()), Qt.AlignmentFlag.AlignLeft,
                         f"weight \u2212{scale:.2f}  \u2192  0  \u2192  +{scale:.2f}  (blue negative, red positive)")
        self.cells, titles, _ = self._layout(self.width())
        for text, y in titles:
            painter.setPen(QColor(220, 224, 232))
            painter.drawText(QRectF(GAP, y, self.width() - 2 * GAP, metrics.height()), Qt.AlignmentFlag.AlignLeft, text)
        drawn_rows = set()
        for name, o, i, rect in self.cells:
            kernel = filters[name][o, i]
            rgba = colors.signed_colors(kernel.reshape(-1), scale, palette).reshape(*kernel.shape, 4)
            rgba[..., 3] = 255
            painter.drawImage(rect, to_qimage(np.ascontiguousarray(rgba)))
            painter.setPen(QPen(QColor(60, 64, 74), 1))
            painter.drawRect(rect)
            if filters[name].shape[1] > 1 and (name, o) not in drawn_rows:
                drawn_rows.add((name, o))
                painter.setPen(QColor(170, 175, 186))
                painter.drawText(QRectF(0, rect.top(), 36, rect.height()),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"out {o}")
        painter.end()


class FiltersView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.filters: dict[str, np.ndarray] = {}
        self.scale_value = 1.0
        self.scale = 1.0
        self.palette = "default"
        self.grid = scrolled(self, _Grid(self))
        self.setToolTip("The learned convolution kernels: what pattern each filter looks for. The first layer "
                        "looks at the drawing itself; a later layer's filter has one kernel per input channel "
                        "(one column each). Every kernel uses the same colour scale.")

    def attach(self, host: Host) -> None:
        self.host = host
        self.session = host.session
        self.session.model_changed.connect(self._on_model_changed)
        self.session.changed.connect(self._on_changed)

    def _on_model_changed(self, model) -> None:
        self.filters = conv_filters(model)
        self.scale_value = signed_scale(self.filters)
        self.grid.setMinimumHeight(self.grid.sizeHint().height())
        self.grid.update()

    def _on_changed(self, name: str, value) -> None:
        if name == "palette":
            self.palette = value
            self.grid.update()

    def apply_style(self, style: Style) -> None:
        self.scale = 1.3 if style.presentation else 1.0
        self.palette = style.palette
        self.grid.setMinimumHeight(self.grid.sizeHint().height())
        self.grid.update()
