"""The feature-maps view: every convolution (after its ReLU) and pooling output of the drawing, one small heat
image per channel, live per stroke. Clicking a map of the Grad-CAM block (the last conv/pool pair) puts that
channel on the grid; clicking any map picks its strongest neuron in the 3D scene.

Painted in one paintEvent from the snapshot's activations (no widget per map); skipped while hidden, so the
per-stroke path costs nothing when the view is closed.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...core import colors
from ..qimage import to_qimage
from .base import Host, Style, View, scrolled

GAP = 6


class _Maps(QWidget):
    """The painted grid of maps; exposes ``tiles`` (layer, channel, QRectF) of the last layout."""

    def __init__(self, owner: FeatureMapsView) -> None:
        super().__init__()
        self.owner = owner
        self.tiles: list[tuple[str, int, QRectF]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setMouseTracking(True)

    def layers(self):
        session = self.owner.session
        if session is None or not session.specs:
            return []
        return [s for s in session.specs if s.kind in ("conv", "pool")]

    def _layout(self, width: int) -> tuple[list[tuple[str, int, QRectF]], list[tuple[str, float]], float]:
        metrics = QFontMetricsF(self.font())
        line = metrics.height()
        tile = 46.0 * self.owner.scale
        tiles, titles = [], []
        y = 2.0
        for spec in self.layers():
            channels = spec.shape[0]
            per_row = max(1, int((width - GAP) // (tile + GAP)))
            titles.append((f"{spec.name}  {'ReLU output' if spec.kind == 'conv' else 'max-pool output'}  "
                           f"{channels}\u00d7{spec.shape[1]}\u00d7{spec.shape[2]}", y))
            y += line + 2
            for c in range(channels):
                row, col = divmod(c, per_row)
                rect = QRectF(GAP + col * (tile + GAP), y + row * (tile + line + GAP), tile, tile)
                tiles.append((spec.name, c, rect))
            rows = -(-channels // per_row)
            y += rows * (tile + line + GAP) + GAP
        return tiles, titles, y

    def sizeHint(self) -> QSize:  # noqa: N802
        _, _, height = self._layout(max(self.width(), 200))
        return QSize(260, int(height))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, self.sizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.setMinimumHeight(self.sizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(14, 15, 19))
        session = self.owner.session
        self.tiles, titles, _ = self._layout(self.width())
        metrics = QFontMetricsF(self.font())
        painter.setPen(QColor(220, 224, 232))
        for text, y in titles:
            painter.drawText(QRectF(GAP, y, self.width() - 2 * GAP, metrics.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextSingleLine, text)
        snap = session.snapshot if session is not None else None
        empty = snap is None or snap.empty
        picked_channel = session.channel if session is not None else None
        cam_layers = self.owner.cam_layers()
        for name, channel, rect in self.tiles:
            if empty:
                painter.fillRect(rect, QColor(*colors.INACTIVE[:3].tolist()))
            else:
                maps = np.asarray(snap.activations[name])
                scale = float(maps.max()) or 1.0  # one scale per layer: a weak channel looks weak
                rgba = colors.activation_colors(maps[channel].reshape(-1), scale, session.palette)
                image = to_qimage(rgba.reshape(maps.shape[1], maps.shape[2], 4))
                painter.drawImage(rect, image)
            selected = name in cam_layers and picked_channel == channel
            painter.setPen(QPen(QColor(255, 200, 40) if selected else QColor(70, 74, 84), 2 if selected else 1))
            painter.drawRect(rect)
            painter.setPen(QColor(200, 204, 214))
            painter.drawText(QRectF(rect.left() - 4, rect.bottom() + 1, rect.width() + 8, metrics.height()),
                             Qt.AlignmentFlag.AlignHCenter, f"Ch {channel}")
        painter.end()

    def tile_at(self, x: float, y: float) -> tuple[str, int] | None:
        for name, channel, rect in self.tiles:
            if rect.contains(x, y):
                return name, channel
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802
        hit = self.tile_at(event.position().x(), event.position().y())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.owner.open_map(*hit)
            event.accept()
            return
        super().mousePressEvent(event)


class FeatureMapsView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.scale = 1.0
        self.maps = scrolled(self, _Maps(self))
        self.setToolTip("Each small image is one channel's output for your drawing (after ReLU for a "
                        "convolution, after max-pooling for a pool): bright = strongly active, dark grey = zero. "
                        "One colour scale per layer. Click a map of the last block to show that channel's "
                        "Grad-CAM on the grid; any click picks the map's strongest neuron in the 3D view.")

    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        session.snapshot_changed.connect(self._on_snapshot)
        session.model_changed.connect(lambda _m: self._relayout())
        session.changed.connect(lambda name, _v: self.maps.update() if name in ("channel", "palette") else None)

    def _on_snapshot(self, _snapshot) -> None:
        if self.isVisible():
            self.maps.update()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        self.maps.setMinimumHeight(self.maps.sizeHint().height())
        self.maps.updateGeometry()
        self.maps.update()

    def apply_style(self, style: Style) -> None:
        self.scale = 1.3 if style.presentation else 1.0
        self._relayout()

    def cam_layers(self) -> set[str]:
        """The Grad-CAM layer and the conv that feeds it: their channel k is Grad-CAM's channel k."""
        session = self.session
        if session is None or not session.specs:
            return set()
        pools = [s for s in session.specs if s.kind == "pool"]
        return {pools[-1].name, pools[-1].source} if pools else set()

    def open_map(self, layer: str, channel: int) -> None:
        """A click on a map: its channel on the grid (Grad-CAM block), its strongest neuron picked."""
        session = self.session
        if layer in self.cam_layers():
            session.set_channel(channel)
        snap = session.snapshot
        if snap is not None and not snap.empty:
            plane = np.asarray(snap.activations[layer])[channel]
            y, x = np.unravel_index(int(np.argmax(plane)), plane.shape)
            session.set_picked(layer, (channel, int(y), int(x)))
        self.host.show_status(f"{layer} channel {channel}", 4000)
