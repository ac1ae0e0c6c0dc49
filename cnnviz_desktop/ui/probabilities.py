"""Probability bars for the ten digits (pyqtgraph), live; clicking a bar picks the Grad-CAM target."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QVBoxLayout, QWidget

BAR = QColor(90, 110, 140)
PREDICTED = QColor(255, 140, 40)
PREDICTED_CB = QColor(0, 158, 115)  # colour-blind-safe highlight (bluish green, Okabe-Ito)
TARGET_PEN = QColor(255, 255, 255)


class ProbabilityPanel(QWidget):
    """Ten bars with their values; the predicted digit highlighted, the Grad-CAM target outlined."""

    class_clicked = Signal(int, bool)  # digit, Shift held (contrast: 'why the target rather than this one')

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.values = np.zeros(10, dtype=np.float32)
        self.predicted: int | None = None
        self.target: int | None = None
        self.contrast: int | None = None
        self._highlight = PREDICTED
        self._large = False
        self.plot = pg.PlotWidget(background=(18, 20, 26))
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setYRange(0, 1.12, padding=0)
        self.plot.setXRange(-0.6, 9.6, padding=0)
        self.plot.getAxis("bottom").setTicks([[(i, str(i)) for i in range(10)]])
        self.plot.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1.0)]])
        self.plot.setLabel("bottom", "digit")
        self.plot.setToolTip("Probability of each digit. Click a bar to explain that digit with Grad-CAM;\n"
                             "click it again to go back to the predicted digit. Shift+click a second bar:\n"
                             "why the explained digit rather than that one.")
        self.bars = pg.BarGraphItem(x=np.arange(10), height=self.values, width=0.72, brushes=[BAR] * 10)
        self.plot.addItem(self.bars)
        self.labels = []
        for i in range(10):
            label = pg.TextItem("", anchor=(0.5, 1.0), color=(220, 225, 235))
            label.setPos(i, 0)
            self.plot.addItem(label)
            self.labels.append(label)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.setMinimumSize(180, 130)
        self.setAccessibleName("Digit probabilities")
        self._apply_fonts()

    def set_probabilities(self, values: np.ndarray | None, predicted: int | None, target: int | None,
                          contrast: int | None = None) -> None:
        """values: (10,) in [0, 1] or None for 'nothing drawn' (all bars empty); the explained target is
        outlined in white, a contrast class ('rather than') in dashed white."""
        self.values = np.zeros(10, np.float32) if values is None else np.asarray(values, np.float32)
        self.predicted, self.target, self.contrast = predicted, target, contrast
        self._refresh()

    def set_colorblind(self, enabled: bool) -> None:
        self._highlight = PREDICTED_CB if enabled else PREDICTED
        self._refresh()

    def set_large(self, large: bool) -> None:
        self._large = large
        self._apply_fonts()
        self._refresh()

    def _apply_fonts(self) -> None:
        # Headroom above a 100% bar for its value label.
        self.plot.setYRange(0, 1.38 if self._large else 1.14, padding=0)
        # Fewer, shorter ticks on a projector, so the larger digits keep their room.
        ticks = (0, 0.5, 1.0) if self._large else (0, 0.25, 0.5, 0.75, 1.0)
        self.plot.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in ticks]])
        font = QFont(self.font())  # already the window's (presentation-sized) font
        self.plot.getAxis("bottom").showLabel(not self._large)
        self.plot.getAxis("left").setWidth(int(QFontMetrics(font).horizontalAdvance("100%") + 12))
        self.plot.getAxis("bottom").setHeight(int(QFontMetrics(font).height() * (1.3 if self._large else 2.2) + 8))
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setStyle(tickFont=font)
        for label in self.labels:
            label.setFont(font)

    def _refresh(self) -> None:
        brushes = [self._highlight if i == self.predicted else BAR for i in range(10)]
        pens = [pg.mkPen(TARGET_PEN, width=3) if i == self.target and self.target != self.predicted
                else pg.mkPen(TARGET_PEN, width=2, style=Qt.PenStyle.DashLine) if i == self.contrast
                else pg.mkPen(None) for i in range(10)]
        self.bars.setOpts(height=self.values, brushes=brushes, pens=pens)
        empty = self.predicted is None
        for i, label in enumerate(self.labels):
            value = float(self.values[i])
            label.setText("" if empty else (f"{value:.0%}" if value >= 0.005 else ""))
            label.setPos(i, value)

    def bar_at(self, x: float) -> int | None:
        index = int(round(x))
        return index if 0 <= index <= 9 and abs(x - index) <= 0.45 else None

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos())
        index = self.bar_at(point.x())
        if index is not None:
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self.class_clicked.emit(index, shift)
