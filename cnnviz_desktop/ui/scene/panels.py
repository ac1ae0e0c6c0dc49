"""The scene's screen-space panels (status line, colour legend, picked/hovered neuron), painted on the CPU
into images that the OverlayItem draws as textures (only when their content changes)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

from ...core import colors
from ..gl.overlay import render_text_panel
from ..qimage import to_qimage


def panel_font(base: QtGui.QFont, scale: float) -> QtGui.QFont:
    font = QtGui.QFont(base)
    font.setPointSizeF(9.0 * scale)
    font.setBold(False)
    return font


def status_image(text: str, font: QtGui.QFont, dpr: float, max_width: float | None = None) -> QtGui.QImage:
    """The status line: light grey text, no plate; elided ('...') to ``max_width`` pixels."""
    metrics = QtGui.QFontMetricsF(font)
    if max_width is not None and metrics.horizontalAdvance(text) + 4 > max_width:
        text = metrics.elidedText(text, QtCore.Qt.TextElideMode.ElideRight, max(10.0, max_width - 4))

    def draw(painter: QtGui.QPainter) -> None:
        painter.setFont(font)
        painter.setPen(QtGui.QColor(200, 204, 214))
        painter.drawText(QtCore.QPointF(0, metrics.ascent()), text)

    return render_text_panel(draw, metrics.horizontalAdvance(text) + 4, metrics.height() + 2, dpr)


def legend_height(font: QtGui.QFont, scale: float) -> float:
    """Height in view pixels of the legend panel drawn by legend_image."""
    return 3 * (QtGui.QFontMetricsF(font).height() + 10.0 * scale + 6 * scale) + 12


def legend_image(palette: str, font: QtGui.QFont, scale: float, dpr: float) -> QtGui.QImage:
    """Activation ramp with its 'zero' swatch, contribution ramp, the dim 'insignificant' line."""
    metrics = QtGui.QFontMetricsF(font)
    line_h = metrics.height()
    bar_w, bar_h = 150.0 * scale, 10.0 * scale
    act = colors.activation_lut(palette)
    sig = colors.signed_lut(palette)
    rows = [
        ("Activation: low \u2192 high", act[1:], True),
        ("Contribution: \u2212 \u2192 +  (activation \u00d7 weight)", sig, False),
    ]
    last = "insignificant ('all' mode)  \u00b7  filters: weight \u2212/+"
    text_w = max([metrics.horizontalAdvance(t) for t, _, _ in rows] + [bar_h * 3.6 + metrics.horizontalAdvance(last)])
    panel_w = max(bar_w + 110 * scale, text_w) + 12
    panel_h = legend_height(font, scale)

    def draw(painter: QtGui.QPainter) -> None:
        painter.setFont(font)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(QtGui.QColor(10, 11, 16, 170))
        painter.drawRoundedRect(QtCore.QRectF(0, 0, panel_w, panel_h), 5, 5)
        x, y = 6.0, 6.0
        for title, lut, zero_swatch in rows:
            painter.setPen(QtGui.QColor(215, 218, 226))
            painter.drawText(QtCore.QPointF(x, y + metrics.ascent()), title)
            y += line_h + 2
            bar_x = x
            if zero_swatch:
                painter.fillRect(QtCore.QRectF(x, y, bar_h * 1.6, bar_h), QtGui.QColor(*act[0][:3].tolist()))
                painter.setPen(QtGui.QColor(160, 164, 175))
                painter.drawText(QtCore.QPointF(x + bar_h * 1.9, y + bar_h), "0")
                bar_x = x + bar_h * 3.2
            painter.drawImage(QtCore.QRectF(bar_x, y, bar_w, bar_h), to_qimage(lut[None, :, :]))
            y += bar_h + 6 * scale
        painter.setPen(QtGui.QPen(QtGui.QColor(*colors.INSIGNIFICANT[:3].tolist()), 2))
        painter.drawLine(QtCore.QPointF(x, y + line_h / 2), QtCore.QPointF(x + bar_h * 3, y + line_h / 2))
        painter.setPen(QtGui.QColor(175, 178, 188))
        painter.drawText(QtCore.QPointF(x + bar_h * 3.6, y + metrics.ascent()), last)

    return render_text_panel(draw, panel_w, panel_h, dpr)


def info_image(lines: list[str], font: QtGui.QFont, dpr: float) -> QtGui.QImage:
    """The picked / hovered neuron's description on a dark plate."""
    metrics = QtGui.QFontMetricsF(font)
    line_h = metrics.height()
    box_w = max(metrics.horizontalAdvance(t) for t in lines) + 12
    box_h = len(lines) * line_h + 10

    def draw(painter: QtGui.QPainter) -> None:
        painter.setFont(font)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(QtGui.QColor(10, 11, 16, 190))
        painter.drawRoundedRect(QtCore.QRectF(0, 0, box_w, box_h), 5, 5)
        painter.setPen(QtGui.QColor(235, 238, 245))
        for i, t in enumerate(lines):
            painter.drawText(QtCore.QPointF(6, 5 + metrics.ascent() + i * line_h), t)

    return render_text_panel(draw, box_w, box_h, dpr)
