"""The drawing view: the 28x28 grid with its explanation overlay (Grad-CAM, HiResCAM, saliency or gradient
x input, chosen in the map selector), a legend that says what the colours mean, one thumbnail per Grad-CAM
channel (and 'Both'), and the opacity and brush sliders.

Everything shown comes from the session: the canvas model it draws into, the overlay map and its scale,
the channel maps, the blank-paper channels, the picked neuron's receptive field.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QApplication, QButtonGroup, QComboBox, QFrame, QGridLayout, QLabel, QScrollArea, QSizePolicy,
    QSlider, QToolButton, QVBoxLayout, QWidget,
)

from ...core import colors
from ..canvas import CanvasWidget
from ..qimage import to_qimage
from .base import Host, Style, View

THUMB = 40  # px, normal mode (x 1.2 in presentation)
# The overlay's map kinds (session.MAP_KINDS) as the selector names them, with their tooltips.
MAP_CHOICES = (
    ("gradcam", "Grad-CAM", "Grad-CAM: channel-averaged gradient x activation of the last conv block (coarse, 5x5)"),
    ("hirescam", "HiResCAM", "HiResCAM: exact gradient x activation per cell of the last conv block (M)"),
    ("saliency", "Saliency", "Saliency: |d score / d pixel|, where a small change of ink changes the score most "
                             "(unsigned, pixel-sharp, noisy)"),
    ("inputxgrad", "Gradient \u00d7 input", "Gradient x input: pixel value x gradient, signed. Not zero on blank "
                                         "paper: a black pixel is -0.42 in the network's units, so it gets "
                                         "credit or blame too"),
)


def _thumbnail(values: np.ndarray, scale: float, palette: str, size: int, ink: np.ndarray) -> QPixmap:
    """The drawing in grey with a signed map on top, as a small square pixmap."""
    overlay = colors.signed_overlay(values, scale, palette)
    grey = (np.clip(ink, 0, 1) * 150).astype(np.uint8)
    base = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    alpha = overlay[..., 3:4].astype(np.float32) / 255.0
    rgb = base[..., :3] * (1 - alpha) + overlay[..., :3] * alpha
    image = np.dstack([rgb.astype(np.uint8), np.full(grey.shape, 255, np.uint8)])
    return QPixmap.fromImage(to_qimage(image)).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.FastTransformation)


class DrawingView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.canvas: CanvasWidget | None = None
        self._thumb_size = THUMB
        self._style = Style()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(4)
        self._outer = outer
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.method = QLabel()
        self.method.setStyleSheet("color: #555d6b;")
        self.method.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.map_selector = QComboBox()
        self.map_selector.setAccessibleName("Overlay map")
        self.map_selector.setToolTip("Which explanation the overlay shows (N cycles through them)")
        for i, (kind, text, tip) in enumerate(MAP_CHOICES):
            self.map_selector.addItem(text, kind)
            self.map_selector.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.map_selector.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.legend.setAccessibleName("Overlay legend")
        self.legend.setToolTip("Grad-CAM: which cells pushed the network towards (red) or against (blue) the "
                               "explained digit. Click a probability bar to explain another digit; Shift+click "
                               "a second bar for 'why A rather than B'.")
        self.channel_strip = QWidget()
        self.channel_scroll = QScrollArea()
        self.channel_scroll.setWidget(self.channel_strip)
        self.channel_scroll.setWidgetResizable(True)
        self.channel_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.channel_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.channel_scroll.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.channel_grid = QGridLayout(self.channel_strip)
        self.channel_grid.setContentsMargins(0, 0, 0, 0)
        self.channel_grid.setHorizontalSpacing(4)
        self.channel_grid.setVerticalSpacing(2)
        self.channel_buttons: list[QToolButton] = []
        self.channel_group = QButtonGroup(self)
        self.channel_group.setExclusive(True)
        self.channel_group.idClicked.connect(self._on_channel_clicked)
        self.blank_note = QLabel()
        self.blank_note.setWordWrap(True)
        self.blank_note.setStyleSheet("color: #7a5a00;")
        # The note comes and goes with the drawing: it keeps its room, so the grid never moves mid-stroke.
        policy = self.blank_note.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
        self.blank_note.setSizePolicy(policy)
        sliders = QGridLayout()
        sliders.setHorizontalSpacing(6)
        sliders.setVerticalSpacing(2)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setToolTip("Overlay opacity (Ctrl+Up / Ctrl+Down)")
        self.opacity_slider.setAccessibleName("Overlay opacity")
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(5, 40)
        self.brush_slider.setToolTip("Brush radius in cells ([ and ])")
        self.brush_slider.setAccessibleName("Brush size")
        # The map selector names the overlay, beside its opacity slider (no extra line: the grid keeps its room).
        self._slider_labels = [QLabel("Overlay"), QLabel("Brush")]
        sliders.addWidget(self.map_selector, 0, 0)
        sliders.addWidget(self.opacity_slider, 0, 1)
        sliders.addWidget(self._slider_labels[1], 0, 2)
        sliders.addWidget(self.brush_slider, 0, 3)
        sliders.setColumnStretch(1, 1)
        sliders.setColumnStretch(3, 1)
        self._sliders = sliders
        self._tail = QWidget()
        tail = QVBoxLayout(self._tail)
        tail.setContentsMargins(0, 0, 0, 0)
        tail.setSpacing(2)  # 2, not 3: the map selector's row is a few px taller than a label's
        tail.addWidget(self.legend)
        tail.addWidget(self.method)
        tail.addWidget(self.channel_scroll)
        tail.addWidget(self.blank_note)
        tail.addLayout(sliders)
        self._tail.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    # ------------------------------------------------------------------ protocol
    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        self.canvas = CanvasWidget(session.canvas)
        self.canvas.setMinimumSize(280, 280)
        self._outer.addWidget(self.canvas, 1)
        self._outer.addWidget(self._tail, 0)
        self.canvas.canvas_changed.connect(session.canvas_edited)
        self.opacity_slider.valueChanged.connect(lambda v: session.set_overlay_opacity(v / 100))
        self.brush_slider.valueChanged.connect(lambda v: session.set_brush(v / 10))
        self.map_selector.activated.connect(lambda i: session.set_map_kind(self.map_selector.itemData(i)))
        session.changed.connect(self._on_changed)
        session.snapshot_changed.connect(lambda _snap: self.render())
        session.model_changed.connect(lambda _model: self._rebuild_channels())
        session.picked_changed.connect(lambda _p: self._render_highlight())
        session.canvas_changed.connect(self._on_canvas_changed)
        self._sync_sliders()
        self.canvas.set_overlay_opacity(session.overlay_opacity)
        self._rebuild_channels()
        self.render()

    def apply_style(self, style: Style) -> None:
        self._style = style
        if self.canvas is not None:
            self.canvas.set_large(style.presentation)
        self._thumb_size = int(THUMB * (1.2 if style.presentation else 1.0))
        lines = 1 if style.presentation else 2
        # Heights from the application font (already the style's), never from a widget whose font change may
        # still be pending: the same style always gives the same layout.
        line = QFontMetrics(QApplication.font()).lineSpacing()
        self.blank_note.setFixedHeight(int(line * lines + 4))
        # A compact selector, as tall as a line of text (+4): the tail keeps the height it had with a label.
        self.map_selector.setFixedHeight(int(line + 4))
        # On a projector every line counts: the method line is in the tooltip, the note is one line.
        self.method.setVisible(not style.presentation)
        self._rebuild_channels()
        self.render()

    # ------------------------------------------------------------------ session -> widgets
    def _on_changed(self, name: str, value) -> None:
        if name == "overlay_opacity":
            self.canvas.set_overlay_opacity(value)
            self._sync_sliders()
        elif name == "brush":
            self._sync_sliders()
        elif name in ("channel", "map_kind", "overlay_visible", "palette", "target", "contrast"):
            self.render()

    def _on_canvas_changed(self) -> None:
        if self.session.canvas.is_empty:
            self.canvas.set_highlight(None)

    def _sync_map_selector(self) -> None:
        index = self.map_selector.findData(self.session.map_kind)
        if index >= 0 and index != self.map_selector.currentIndex():
            self.map_selector.blockSignals(True)
            self.map_selector.setCurrentIndex(index)
            self.map_selector.blockSignals(False)

    def _sync_sliders(self) -> None:
        for slider, value in ((self.opacity_slider, round(self.session.overlay_opacity * 100)),
                              (self.brush_slider, round(self.session.brush * 10))):
            if slider.value() != value:
                slider.blockSignals(True)
                slider.setValue(value)
                slider.blockSignals(False)

    def _rebuild_channels(self) -> None:
        """One checkable thumbnail button per channel of the Grad-CAM layer, plus 'Both'."""
        if self.session is None:
            return
        for button in self.channel_buttons:
            self.channel_group.removeButton(button)
            button.deleteLater()
        self.channel_buttons = []
        count = min(self.session.channels, 10)
        labels = ["Both" if count == 2 else "All"] + [f"Ch {k}" for k in range(count)]
        per_row = len(labels)  # one row; the strip scrolls sideways when a model has many channels
        for i, text in enumerate(labels):
            button = QToolButton()
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setText(text)
            button.setIconSize(QSize(self._thumb_size, self._thumb_size))
            button.setToolTip("Grad-CAM of every channel summed (B)" if i == 0 else
                              f"Grad-CAM of channel {i - 1} alone ({i - 1})")
            button.setAccessibleName(f"Grad-CAM {text}")
            self.channel_group.addButton(button, i - 1 if i else -1)
            self.channel_grid.addWidget(button, i // per_row, i % per_row)
            self.channel_buttons.append(button)
        extra = self.channel_scroll.horizontalScrollBar().sizeHint().height()
        height = self._thumb_size + QFontMetrics(QApplication.font()).lineSpacing() + 14
        self.channel_scroll.setFixedHeight(height + (extra if len(labels) > 4 else 0))
        self.render()

    def _on_channel_clicked(self, button_id: int) -> None:
        self.session.set_channel(None if button_id < 0 else button_id)

    def render(self) -> None:
        """Overlay, legend, thumbnails and blank-paper note from the session."""
        session = self.session
        if session is None or self.canvas is None:
            return
        overlay = session.overlay()
        self.canvas.set_overlay(None if overlay is None else
                                colors.signed_overlay(overlay.values, overlay.scale, session.palette))
        self._sync_map_selector()
        self._render_legend()
        maps = session.channel_maps()
        blank = set(session.blank_paper_channels())
        ink = session.canvas.pixels
        scale = 0.0
        if maps:
            scale = max(float(np.abs(m).max()) for _, m in maps)
        for i, button in enumerate(self.channel_buttons):
            channel = None if i == 0 else i - 1
            button.blockSignals(True)
            button.setChecked(session.channel == channel)
            button.blockSignals(False)
            if maps and i < len(maps):
                button.setIcon(_thumbnail(maps[i][1], scale, session.palette, self._thumb_size, ink))
            else:
                button.setIcon(_blank_icon(self._thumb_size))
            label = "Both" if i == 0 and len(self.channel_buttons) == 3 else ("All" if i == 0 else f"Ch {i - 1}")
            button.setText(label)
        if blank:
            names = ", ".join(f"Ch {k}" for k in sorted(blank))
            self.blank_note.setText(f"{names}: blank paper" if self._style.presentation else
                                    f"{names} answers to blank paper: its red means 'no ink here' supports the digit")
            self.blank_note.setToolTip(f"{names} is high where there is no ink (measured on this drawing: most of "
                                       f"its Grad-CAM lies off the strokes), so its red means the absence of ink "
                                       f"there speaks for the explained digit.")
            self.blank_note.show()
        else:
            self.blank_note.hide()
        self._render_highlight()

    def _render_legend(self) -> None:
        session = self.session
        lut = colors.signed_lut(session.palette)
        pos, neg = lut[-1][:3], lut[0][:3]
        red = f"rgb({pos[0]},{pos[1]},{pos[2]})"
        blue = f"rgb({neg[0]},{neg[1]},{neg[2]})"
        snap = session.snapshot
        if snap is None or snap.empty:
            self.legend.setText(f"<b><span style='color:{red}'>red</span></b>: pushes towards the answer &nbsp; "
                                f"<b><span style='color:{blue}'>blue</span></b>: against")
            self.method.setText("Draw a digit to see what the network looked at")
            return
        shown = session.target if session.target is not None else snap.predicted
        kind = session.map_kind
        what = {"hirescam": "exact gradient \u00d7 activation per cell", "saliency": "|gradient|",
                "inputxgrad": "pixel \u00d7 gradient, also off the ink"}.get(kind) or (
            "both channels" if session.channel is None else f"channel {session.channel}")
        if kind == "saliency":
            # Unsigned: no 'against'. Red marks where a small change of ink changes the score most.
            hidden = " (hidden: H shows it)" if not session.overlay_visible else ""
            verb = "for" if self._style.presentation else "sensitive for"
            target = f"{shown}" if session.contrast is None else f"{shown} vs {session.contrast}"
            self.legend.setText(f"<b><span style='color:{red}'>red</span></b>: {verb} {target} &nbsp; "
                                f"pale: insensitive")
            self.method.setText(f"{what}{hidden}")
            self.method.setToolTip(f"Saliency: |d score / d pixel| for {session.explains_text()}")
            return
        if session.contrast is not None:
            towards = f"{shown}, not {session.contrast}" if self._style.presentation else \
                f"towards {shown} rather than {session.contrast}"
        else:
            towards = f"{shown}" if self._style.presentation else f"towards {shown}"
        hidden = " (hidden: H shows it)" if not session.overlay_visible else ""
        verb = "for" if self._style.presentation else "pushes"
        self.legend.setText(f"<b><span style='color:{red}'>red</span></b>: {verb} {towards} &nbsp; "
                            f"<b><span style='color:{blue}'>blue</span></b>: against")
        self.method.setText(f"{what}{hidden}")
        self.method.setToolTip(f"{what}: explains {session.explains_text()}")

    def _render_highlight(self) -> None:
        if self.canvas is not None and self.session is not None:
            self.canvas.set_highlight(self.session.picked_box())


def _blank_icon(size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(20, 22, 28))
    painter = QPainter(pixmap)
    painter.setPen(QPen(QColor(60, 64, 74)))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return pixmap

