"""Probability bars for the ten digits (pyqtgraph), live; clicking a bar picks the Grad-CAM target."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QVBoxLayout, QWidget

BAR = QColor(90, 110, 140)
PREDICTED = QColor(255, 140, 40)
PREDICTED_CB = QColor(0, 158, 115)  # colour-blind-safe highlight (bluish green, Okabe-Ito)
TARGET_PEN = QColor(255, 255, 255)


class ProbabilityPanel(QWidget):
    """Ten bars with their values; the predicted digit highlighted, the Grad-CAM target outlined."""

    class_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.values = np.zeros(10, dtype=np.float32)
        self.predicted: int | None = None
        self.target: int | None = None
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
                             "click it again to go back to the predicted digit.")
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
        self.setMinimumSize(180, 160)
        self.setAccessibleName("Digit probabilities")
        self._apply_fonts()

    def set_probabilities(self, values: np.ndarray | None, predicted: int | None, target: int | None) -> None:
        """values: (10,) in [0, 1] or None for 'nothing drawn' (all bars empty)."""
        self.values = np.zeros(10, np.float32) if values is None else np.asarray(values, np.float32)
        self.predicted, self.target = predicted, target
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
        self.plot.setYRange(0, 1.25 if self._large else 1.12, padding=0)
        # On a projector the values printed on the bars say it all; the axis would squeeze the digits.
        self.plot.getPlotItem().showAxis("left", not self._large)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * (1.7 if self._large else 1.0))
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setStyle(tickFont=font)
        for label in self.labels:
            label.setFont(font)

    def _refresh(self) -> None:
        brushes = [self._highlight if i == self.predicted else BAR for i in range(10)]
        pens = [pg.mkPen(TARGET_PEN, width=3) if i == self.target and self.target != self.predicted
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
            self.class_clicked.emit(index)
