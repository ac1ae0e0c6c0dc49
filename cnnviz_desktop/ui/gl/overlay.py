"""OverlayItem: the scene's labels, placed in screen space each frame without collisions, and 2D panels.

Painting text with a QPainter on the GL surface every frame cost ~5 ms on a software renderer (glyph
by glyph through Qt's GL paint engine). Instead every text variant of every label, and every panel,
is rasterised once on the CPU into a QImage when its text, the scale or the palette changes, and
uploaded to a texture. A frame projects the label anchors (core.camera.project), places the labels
(core.labels.place_labels: no overlaps, inside the view, clear of the panels, shortened or hidden
when there is no room) and draws textured quads, pixel aligned (nearest sampling, so text stays as
crisp as QPainter drew it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from OpenGL import GL
from pyqtgraph.opengl import GLGraphicsItem
from PySide6 import QtCore, QtGui

from ...core.camera import project
from ...core.labels import LabelRequest, place_labels
from ._common import TEXTURE_FS, GLResources


@dataclass
class Label:
    """A label anchored at a 3D point.

    texts: variants, longest first (the placer falls back to a shorter one where the long one collides).
    size: font size relative to the base (10 pt); pixel_size: an absolute font size in pixels instead.
    align: where the text sits relative to the anchor's screen position (see core.labels.ALIGNMENTS).
    priority: higher wins a contested spot; max_shift: pixels it may move from its preferred place.
    plate: draw a translucent dark plate behind the text.
    row: a name shared by the labels of a row of neighbouring units, in order: when the row is seen
        end-on (neighbouring anchors closer on screen than half a label's width), the labels could
        not tell which unit they name, so the whole row is hidden; when they are merely too close for
        one line, they are staggered over two or three lines (0, 1, 2 on successive lines, 3 back up).
    """

    texts: tuple[str, ...]
    position: tuple[float, float, float]
    size: float = 1.0
    color: tuple[int, int, int] = (225, 228, 235)
    bold: bool = False
    align: str = "center"
    priority: float = 0.0
    max_shift: float | None = None
    max_dx: float | None = None
    pixel_size: float | None = None
    plate: bool = True
    row: str | None = None  # labels of one row of neighbours (the output digits): see OverlayItem.place

    @property
    def text(self) -> str:
        return self.texts[0]


class _Sheet:
    """Small images packed top to bottom into one RGBA texture (a shelf atlas of one column).

    rects[i] = (u0, v0, u1, v1) in texture coordinates and sizes[i] = (w, h) in device pixels.
    """

    def __init__(self, images: list[QtGui.QImage]) -> None:
        self.sizes = [(img.width(), img.height()) for img in images]
        self.texture = None  # GL id once uploaded (in the context of OverlayItem._gl)
        if len(images) == 1:  # a panel: no packing, one conversion
            image = images[0].convertToFormat(QtGui.QImage.Format.Format_RGBA8888_Premultiplied)
            w, h = self.sizes[0]
            rows = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine() // 4, 4)
            self.pixels = rows[:, :w].copy()
            self.rects = [(0.0, 0.0, 1.0, 1.0)]
            return
        width = max([w for w, _ in self.sizes] + [1])
        height = max(sum(h + 1 for _, h in self.sizes), 1)
        sheet = QtGui.QImage(width, height, QtGui.QImage.Format.Format_RGBA8888_Premultiplied)
        sheet.fill(0)
        painter = QtGui.QPainter(sheet)
        painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Source)
        self.rects = []
        y = 0
        for img, (w, h) in zip(images, self.sizes):
            painter.drawImage(QtCore.QRectF(0, y, w, h), img)  # device pixels, whatever img's ratio
            self.rects.append((0.0, y / height, w / width, (y + h) / height))
            y += h + 1
        painter.end()
        rows = np.frombuffer(sheet.constBits(), np.uint8).reshape(height, sheet.bytesPerLine() // 4, 4)
        self.pixels = rows[:, :width].copy()  # own the memory: the QImage goes away with this frame


def render_text_panel(draw, width: float, height: float, dpr: float = 1.0) -> QtGui.QImage:
    """A transparent (width x height logical px) premultiplied QImage painted by draw(painter) on the CPU."""
    image = QtGui.QImage(max(1, math.ceil(width * dpr)), max(1, math.ceil(height * dpr)),
                         QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(dpr)
    image.fill(0)
    painter = QtGui.QPainter(image)
    try:
        painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
        draw(painter)
    finally:
        painter.end()
    return image


def label_font(label: Label, font: QtGui.QFont, scale: float) -> QtGui.QFont:
    """The font a label is drawn in (``font``: the view's, ``scale``: presentation scale)."""
    font = QtGui.QFont(font)
    if label.pixel_size is not None:
        font.setPixelSize(max(6, round(label.pixel_size * scale)))
    else:
        font.setPointSizeF(max(6.0, 10.0 * label.size * scale))
    font.setBold(label.bold)
    return font


def text_size(text: str, label: Label, metrics: QtGui.QFontMetricsF) -> tuple[int, int]:
    """(w, h) pixels of one text variant's image (a plate adds 4 px each side, bare text 0.5)."""
    return math.ceil(metrics.horizontalAdvance(text) + (8 if label.plate else 1)), math.ceil(metrics.height() + 2)


def label_image(text: str, label: Label, font: QtGui.QFont, dpr: float) -> QtGui.QImage:
    """One text variant of a label on its rounded plate."""
    metrics = QtGui.QFontMetricsF(font)
    width, height = text_size(text, label, metrics)

    def draw(painter: QtGui.QPainter) -> None:
        painter.setFont(font)
        rect = QtCore.QRectF(0, 0, width, height)
        if label.plate:
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(QtGui.QColor(10, 11, 16, 170))
            painter.drawRoundedRect(rect, 3, 3)
        painter.setPen(QtGui.QColor(*label.color))
        painter.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, text)

    return render_text_panel(draw, width, height, dpr)


_OVERLAY_VS = """
#version 330
uniform vec2 u_viewport;  // device pixels
layout(location = 0) in vec4 a_vertex;  // x, y in device pixels from the top left; u, v
out vec2 v_uv;
void main() {
    gl_Position = vec4(a_vertex.x / u_viewport.x * 2.0 - 1.0, 1.0 - a_vertex.y / u_viewport.y * 2.0, 0.0, 1.0);
    v_uv = a_vertex.zw;
}
"""


PANEL_CORNERS = ("top-left", "bottom-left", "bottom-right")


class OverlayItem(GLGraphicsItem.GLGraphicsItem):
    """Labels anchored at 3D points plus 2D panels (legend, status, info) over the scene.

    set_labels(labels): the 3D-anchored labels (one texture sheet for all their variants).
    set_panel(name, image, corner, margin): a screen-space QImage (None removes it) at a corner.
    before_paint: optional callable run at the start of each paint (to render dirty panels lazily).
    placed: after a frame, (text, (x, y, w, h)) in view pixels of every label drawn in it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[Label] = []
        self.scale = 1.0
        self.before_paint = None
        self.placed: list[tuple[str, tuple[float, float, float, float]]] = []
        self._gl = GLResources(_OVERLAY_VS, TEXTURE_FS, ("quads",))
        self._label_sheet: _Sheet | None = None
        self._label_key = None
        self._variant_image: list[list[int]] = []  # label -> image index of each text variant
        self._panels: dict[str, tuple[_Sheet, str, tuple[float, float], float]] = {}
        self._stale_textures: list[int] = []
        self._placement_key = None
        self._placement: list = []
        self.setDepthValue(1000)  # after every 3D item

    def set_labels(self, labels: list[Label]) -> None:
        self.labels = list(labels)
        self._label_key = None
        self.update()

    def set_panel(self, name: str, image: QtGui.QImage | None, corner: str = "top-left",
                  margin: tuple[float, float] = (10.0, 10.0)) -> None:
        if corner not in PANEL_CORNERS:
            raise ValueError(f"corner must be one of {PANEL_CORNERS}")
        old = self._panels.pop(name, None)
        if old is not None and old[0].texture is not None:
            self._stale_textures.append(old[0].texture)
        if image is not None:
            dpr = image.devicePixelRatio()
            self._panels[name] = (_Sheet([image]), corner, margin, dpr)
        self.update()

    def panel_names(self) -> list[str]:
        return list(self._panels)

    def label_sizes(self, labels: list[Label], font: QtGui.QFont | None = None) -> list[list[tuple[float, float]]]:
        """(w, h) view pixels of every text variant of ``labels`` at the current scale (for framing)."""
        view = self.view()
        base = QtGui.QFont(view.font()) if view is not None else QtGui.QFont(font or QtGui.QFont())
        out = []
        for label in labels:
            metrics = QtGui.QFontMetricsF(label_font(label, base, self.scale))
            out.append([text_size(t, label, metrics) for t in label.texts])
        return out

    def _panel_rects(self, width: float, height: float) -> list[tuple[float, float, float, float]]:
        """The panels' rectangles in view (logical) pixels."""
        rects = []
        for sheet, corner, (mx, my), dpr in self._panels.values():
            w, h = sheet.sizes[0][0] / dpr, sheet.sizes[0][1] / dpr
            x = mx if corner != "bottom-right" else width - mx - w
            y = my if corner == "top-left" else height - my - h
            rects.append((x, y, w, h))
        return rects

    def _build_labels(self, dpr: float) -> None:
        view = self.view()
        font = QtGui.QFont(view.font())
        key = (self.scale, dpr, font.toString())
        if key == self._label_key:
            return
        if self._label_sheet is not None and self._label_sheet.texture is not None:
            self._stale_textures.append(self._label_sheet.texture)
        images, index = [], []
        for label in self.labels:
            lf = label_font(label, font, self.scale)
            index.append([])
            for text in label.texts:
                index[-1].append(len(images))
                images.append(label_image(text, label, lf, dpr))
        self._label_sheet = _Sheet(images) if images else None
        self._variant_image = index
        self._label_key = key
        self._placement_key = None

    def place(self, mvp: np.ndarray, width: float, height: float, dpr: float) -> list:
        """Placements (core.labels.PlacedLabel or None per label) for a (4, 4) world -> clip matrix."""
        sheet = self._label_sheet
        anchors = project(np.array([lb.position for lb in self.labels], np.float64), mvp, width, height)
        panels = self._panel_rects(width, height)
        key = (np.round(anchors.xy, 1).tobytes(), anchors.front.tobytes(), width, height, self._label_key,
               tuple(panels))
        if key == self._placement_key:
            return self._placement
        sizes = [tuple((sheet.sizes[j][0] / dpr, sheet.sizes[j][1] / dpr) for j in self._variant_image[i])
                 for i in range(len(self.labels))]
        visible = anchors.front.copy()
        xy = anchors.xy.copy()
        rows: dict[str, list[int]] = {}
        for i, label in enumerate(self.labels):
            if label.row is not None:
                rows.setdefault(label.row, []).append(i)
        for members in rows.values():
            if len(members) > 1:
                gaps = np.linalg.norm(np.diff(anchors.xy[members], axis=0), axis=1)
                w, h = sizes[members[0]][0]
                lines = math.ceil((w + 2.0) / max(float(gaps.min()), 1e-6))
                if lines > 3:  # (nearly) end-on: no label could say which unit it names
                    visible[members] = False
                elif lines > 1:  # too close for one line: staggered over 2 or 3 lines
                    # A line's height plus the row's slant on screen, so neighbours clear each other.
                    step = h + 2.0 + float(np.abs(np.diff(anchors.xy[members, 1])).max()) * (lines - 1)
                    for j, m in enumerate(members):
                        xy[m, 1] += (j % lines) * step
        requests = [LabelRequest(tuple(xy[i]), sizes[i], label.priority, label.align, label.max_shift,
                                 label.max_dx, bool(visible[i])) for i, label in enumerate(self.labels)]
        self._placement = place_labels(requests, (width, height), obstacles=panels)
        self._placement_key = key
        return self._placement

    @staticmethod
    def _quads(sheet: _Sheet, corners: np.ndarray, which: np.ndarray) -> np.ndarray:
        """(6 * len(which), 4) float32 triangles (x, y, u, v) of the sheet's images `which` at top-left `corners`."""
        sizes = np.array(sheet.sizes, np.float32)[which]
        rects = np.array(sheet.rects, np.float32)[which]
        x0, y0 = corners[:, 0], corners[:, 1]
        x1, y1 = x0 + sizes[:, 0], y0 + sizes[:, 1]
        u0, v0, u1, v1 = rects.T
        quad = np.stack([
            np.stack([x0, y0, u0, v0], 1), np.stack([x1, y0, u1, v0], 1), np.stack([x1, y1, u1, v1], 1),
            np.stack([x0, y0, u0, v0], 1), np.stack([x1, y1, u1, v1], 1), np.stack([x0, y1, u0, v1], 1),
        ], axis=1)
        return np.ascontiguousarray(quad.reshape(-1, 4), dtype=np.float32)

    def _texture(self, sheet: _Sheet) -> int:
        if sheet.texture is None:
            tex = int(GL.glGenTextures(1))
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 4)
            GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
            h, w = sheet.pixels.shape[:2]
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, w, h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, sheet.pixels)
            sheet.texture = tex
        return sheet.texture

    def paint(self) -> None:
        view = self.view()
        if view is None:
            return
        if self.before_paint is not None:
            self.before_paint()
        if self._gl.ensure():  # a new context: every texture has to be made again
            for sheet in [self._label_sheet] + [p[0] for p in self._panels.values()]:
                if sheet is not None:
                    sheet.texture = None
            self._stale_textures = []
        if self._stale_textures:
            GL.glDeleteTextures(self._stale_textures)
            self._stale_textures = []
        dpr = view.devicePixelRatioF()
        lw, lh = view.width(), view.height()
        width, height = lw * dpr, lh * dpr
        draws: list[tuple[_Sheet, np.ndarray]] = []
        placed: list[tuple[str, tuple[float, float, float, float]]] = []
        if self.labels:
            self._build_labels(dpr)
            sheet = self._label_sheet
            mvp = np.array(self.mvpMatrix().data(), dtype=np.float64).reshape(4, 4).T
            which, corners = [], []
            for p in self.place(mvp, lw, lh, dpr):
                if p is None:
                    continue
                which.append(self._variant_image[p.index][p.variant])
                corners.append((round(p.rect[0] * dpr), round(p.rect[1] * dpr)))
                placed.append((self.labels[p.index].texts[p.variant], p.rect))
            if which:
                draws.append((sheet, self._quads(sheet, np.array(corners, np.float32), np.array(which))))
        self.placed = placed
        for sheet, corner, (mx, my), _ in self._panels.values():
            w, h = sheet.sizes[0]
            x = mx * dpr if corner != "bottom-right" else width - mx * dpr - w
            y = my * dpr if corner == "top-left" else height - my * dpr - h
            draws.append((sheet, self._quads(sheet, np.array([[round(x), round(y)]], np.float32), np.array([0]))))
        if not draws:
            return
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_FALSE)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        program = self._gl.program
        GL.glUseProgram(program)
        GL.glUniform2f(GL.glGetUniformLocation(program, "u_viewport"), float(width), float(height))
        GL.glUniform1i(GL.glGetUniformLocation(program, "u_tex"), 0)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        buf = self._gl.buffers["quads"]
        vertices = np.concatenate([q for _, q in draws])
        buf.upload(vertices)
        buf.bind_attribute(0, 4, GL.GL_FLOAT, False)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        first = 0
        for sheet, quads in draws:
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._texture(sheet))
            GL.glDrawArrays(GL.GL_TRIANGLES, first, quads.shape[0])
            first += quads.shape[0]
        GL.glDisableVertexAttribArray(0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glUseProgram(0)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_BLEND)
