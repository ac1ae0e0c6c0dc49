"""Batched OpenGL items for the 3D scene: instanced boxes, line batches and a 2D text/legend overlay.

Each item draws thousands of primitives in one or two draw calls from contiguous numpy buffers:

- :class:`InstancedBoxes` draws every neuron cube (or filter cell) as one instanced draw of a 36-vertex
  box. Positions and sizes are uploaded once per model; a snapshot re-uploads only the RGBA uint8
  colours (4 bytes per cube; tiny: 31 KB).
- :class:`LineBatch` draws connection lines in three layers: a static layer of every edge in one
  uniform dim colour (uploaded once per model, drawn only in 'all' mode), the coloured subset the
  snapshot marks significant (uploaded per snapshot: 2 vertices x (12 + 4) bytes per edge), and a
  small highlight layer (a picked neuron's incoming edges and outline).
- :class:`OverlayItem` paints every label, the legend and the info text with ONE QPainter per frame
  (pyqtgraph's GLTextItem opens a QPainter per label).

GL resources are created lazily in ``paint`` and re-created when the widget's context changes (Qt
replaces a QOpenGLWidget's context when it is re-parented). Shaders need OpenGL 3.3 (instancing).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from OpenGL import GL
from OpenGL.GL import shaders
from pyqtgraph.opengl import GLGraphicsItem
from pyqtgraph.opengl.items.GLScatterPlotItem import _is_compatibility_profile
from PySide6 import QtCore, QtGui

MIN_GL_VERSION = (3, 3)

_BOX_VS = """
#version 330
uniform mat4 u_mvp;
uniform vec3 u_aspect;
layout(location = 0) in vec4 a_vertex;   // unit box corner (xyz in [-0.5, 0.5]), w = face shade
layout(location = 1) in vec4 a_instance; // centre xyz, edge length
layout(location = 2) in vec4 a_color;    // normalised uint8 RGBA
out vec4 v_color;
void main() {
    vec3 p = a_instance.xyz + a_vertex.xyz * a_instance.w * u_aspect;
    gl_Position = u_mvp * vec4(p, 1.0);
    v_color = vec4(a_color.rgb * a_vertex.w, a_color.a);
}
"""

_BOX_FS = """
#version 330
in vec4 v_color;
out vec4 frag_color;
void main() {
    if (v_color.a < 0.02) discard;
    frag_color = v_color;
}
"""

_SPRITE_VS = """
#version 330
uniform mat4 u_mvp;
uniform float u_px;  // projection[0][0] * viewport width / 2: world size at w = 1 -> pixels
layout(location = 1) in vec4 a_instance; // centre xyz, edge length
layout(location = 2) in vec4 a_color;
out vec4 v_color;
void main() {
    gl_Position = u_mvp * vec4(a_instance.xyz, 1.0);
    gl_PointSize = max(1.0, a_instance.w * u_px / gl_Position.w);
    v_color = a_color;
}
"""

_SPRITE_FS = """
#version 330
in vec4 v_color;
out vec4 frag_color;
void main() {
    if (v_color.a < 0.02) discard;
    // A bevelled tile: lit top-left rim, shaded bottom-right rim, so each neuron reads as a block.
    vec2 p = gl_PointCoord;
    float shade = 1.0;
    if (p.x < 0.14 || p.y < 0.14) shade = 1.22;
    if (p.x > 0.86 || p.y > 0.86) shade = 0.62;
    frag_color = vec4(min(v_color.rgb * shade + (shade > 1.0 ? 0.05 : 0.0), 1.0), v_color.a);
}
"""

_LINE_VS = """
#version 330
uniform mat4 u_mvp;
uniform vec4 u_color;
uniform int u_uniform_color;
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec4 a_color;
out vec4 v_color;
void main() {
    gl_Position = u_mvp * vec4(a_position, 1.0);
    v_color = u_uniform_color == 1 ? u_color : a_color;
}
"""

_LINE_FS = """
#version 330
in vec4 v_color;
out vec4 frag_color;
void main() {
    frag_color = v_color;
}
"""


def _unit_box() -> np.ndarray:
    """(36, 4) float32 triangles of a unit box centred on 0; w is a per-face shade (fake lighting).

    The face towards the default camera (-y, the front) keeps the full colour, so what the viewer
    mostly sees is the true colour of the map; the others are darker so cubes read as solids.
    """
    faces = [  # (normal axis, sign, shade)
        (1, -1, 1.00),  # front (faces the input side)
        (2, +1, 0.86),  # top
        (0, -1, 0.74),  # left
        (0, +1, 0.74),  # right
        (1, +1, 0.62),  # back
        (2, -1, 0.50),  # bottom
    ]
    tris = []
    for axis, sign, shade in faces:
        u, v = [a for a in range(3) if a != axis]
        quad = []
        for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            p = [0.0, 0.0, 0.0]
            p[axis] = 0.5 * sign
            p[u] = 0.5 * du
            p[v] = 0.5 * dv
            quad.append(p + [shade])
        # Counter-clockwise seen from outside, so back faces can be culled.
        a, b, c = (np.array(q[:3]) for q in quad[:3])
        normal = np.zeros(3)
        normal[axis] = sign
        order = (0, 1, 2, 0, 2, 3) if np.dot(np.cross(b - a, c - a), normal) > 0 else (0, 2, 1, 0, 3, 2)
        for i in order:
            tris.append(quad[i])
    return np.ascontiguousarray(np.array(tris, dtype=np.float32))


UNIT_BOX = _unit_box()


def _mvp_array(item: GLGraphicsItem) -> np.ndarray:
    return np.array(item.mvpMatrix().data(), dtype=np.float32)


class _Buffer:
    """One GL array buffer that re-allocates when the size changes and otherwise updates in place."""

    def __init__(self) -> None:
        self.id = None
        self.nbytes = -1

    def upload(self, array: np.ndarray) -> None:
        if self.id is None:
            self.id = int(GL.glGenBuffers(1))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.id)
        if array.nbytes != self.nbytes:
            GL.glBufferData(GL.GL_ARRAY_BUFFER, max(array.nbytes, 4), array if array.nbytes else None,
                            GL.GL_DYNAMIC_DRAW)
            self.nbytes = array.nbytes
        elif array.nbytes:
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, array.nbytes, array)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def bind_attribute(self, location: int, size: int, gl_type, normalised: bool, divisor: int = 0) -> None:
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.id)
        GL.glVertexAttribPointer(location, size, gl_type, GL.GL_TRUE if normalised else GL.GL_FALSE, 0,
                                 ctypes.c_void_p(0))
        GL.glEnableVertexAttribArray(location)
        GL.glVertexAttribDivisor(location, divisor)


class _GLResources:
    """Buffers and a program of one item, tied to the GL context they were made in."""

    def __init__(self, vs: str, fs: str, buffers: tuple[str, ...]) -> None:
        self._sources = (vs, fs)
        self._names = buffers
        self.context = None
        self.program = None
        self.buffers: dict[str, _Buffer] = {}

    def ensure(self) -> bool:
        """True when the resources were (re)created for the current context: upload everything again."""
        ctx = QtGui.QOpenGLContext.currentContext()
        if ctx is self.context and self.program is not None:
            return False
        vs, fs = self._sources
        self.program = shaders.compileProgram(
            shaders.compileShader(vs, GL.GL_VERTEX_SHADER), shaders.compileShader(fs, GL.GL_FRAGMENT_SHADER),
            validate=False)
        self.buffers = {name: _Buffer() for name in self._names}
        self.context = ctx
        return True


class InstancedBoxes(GLGraphicsItem.GLGraphicsItem):
    """Many boxes in one instanced draw call.

    set_instances(centers (N, 3), sizes (N,) or float): geometry, once per model.
    set_colors(rgba (N, 4) uint8): per-box colour; alpha < 5 hides a box. Only this is uploaded per snapshot.
    aspect: (3,) scale of the unit box per axis (e.g. flat tiles for filter cells).
    """

    STYLES = ("sprites", "boxes")

    def __init__(self, aspect=(1.0, 1.0, 1.0), style: str = "sprites") -> None:
        super().__init__()
        if style not in self.STYLES:
            raise ValueError(f"style must be one of {self.STYLES}")
        self.style = style
        vs, fs = (_SPRITE_VS, _SPRITE_FS) if style == "sprites" else (_BOX_VS, _BOX_FS)
        self._gl = _GLResources(vs, fs, ("box", "instance", "color"))
        self._aspect = np.asarray(aspect, dtype=np.float32)
        self._instances = np.zeros((0, 4), dtype=np.float32)
        self._colors = np.zeros((0, 4), dtype=np.uint8)
        self._dirty = {"instance", "color"}
        self.uploaded_bytes = 0  # per paint, for benchmarks

    @property
    def count(self) -> int:
        return int(self._instances.shape[0])

    def set_instances(self, centers: np.ndarray, sizes) -> None:
        n = centers.shape[0]
        inst = np.empty((n, 4), dtype=np.float32)
        inst[:, :3] = centers
        inst[:, 3] = sizes
        self._instances = inst
        if self._colors.shape[0] != n:
            self._colors = np.full((n, 4), 128, dtype=np.uint8)
        self._dirty |= {"instance", "color"}
        self.update()

    def set_colors(self, rgba: np.ndarray) -> None:
        if rgba.shape != (self.count, 4):
            raise ValueError(f"expected ({self.count}, 4) colours, got {rgba.shape}")
        self._colors = np.ascontiguousarray(rgba, dtype=np.uint8)
        self._dirty.add("color")
        self.update()

    def colors(self) -> np.ndarray:
        return self._colors

    def paint(self) -> None:
        self.uploaded_bytes = 0
        if self.count == 0:
            return
        if self._gl.ensure():
            self._gl.buffers["box"].upload(UNIT_BOX)
            self._dirty |= {"instance", "color"}
        for name in self._dirty:
            data = self._instances if name == "instance" else self._colors
            self._gl.buffers[name].upload(data)
            self.uploaded_bytes += data.nbytes
        self._dirty = set()

        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glDisable(GL.GL_BLEND)
        if self.style == "sprites":
            self._paint_sprites()
            return
        GL.glEnable(GL.GL_CULL_FACE)  # half the triangles; the software renderer is fill- and vertex-bound
        GL.glCullFace(GL.GL_BACK)
        GL.glFrontFace(GL.GL_CCW)
        program = self._gl.program
        GL.glUseProgram(program)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, _mvp_array(self))
        GL.glUniform3f(GL.glGetUniformLocation(program, "u_aspect"), *self._aspect.tolist())
        buffers = self._gl.buffers
        buffers["box"].bind_attribute(0, 4, GL.GL_FLOAT, False, 0)
        buffers["instance"].bind_attribute(1, 4, GL.GL_FLOAT, False, 1)
        buffers["color"].bind_attribute(2, 4, GL.GL_UNSIGNED_BYTE, True, 1)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        GL.glDrawArraysInstanced(GL.GL_TRIANGLES, 0, UNIT_BOX.shape[0], self.count)
        GL.glDisable(GL.GL_CULL_FACE)
        # Other items (pyqtgraph's) use locations 0-2 without instancing: leave them as found.
        for loc in (0, 1, 2):
            GL.glVertexAttribDivisor(loc, 0)
            GL.glDisableVertexAttribArray(loc)
        GL.glUseProgram(0)


    def _paint_sprites(self) -> None:
        """One point sprite per box: 1 vertex instead of 36 (the software renderer is vertex-bound)."""
        program = self._gl.program
        view = self.view()
        GL.glEnable(GL.GL_PROGRAM_POINT_SIZE)
        if _is_compatibility_profile(QtGui.QOpenGLContext.currentContext()):
            GL.glEnable(GL.GL_POINT_SPRITE)  # gl_PointCoord needs it outside the core profile
        GL.glUseProgram(program)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, _mvp_array(self))
        proj = np.array(self.projectionMatrix().data(), dtype=np.float32)
        GL.glUniform1f(GL.glGetUniformLocation(program, "u_px"), float(proj[0]) * view.deviceWidth() / 2.0)
        buffers = self._gl.buffers
        buffers["instance"].bind_attribute(1, 4, GL.GL_FLOAT, False, 0)
        buffers["color"].bind_attribute(2, 4, GL.GL_UNSIGNED_BYTE, True, 0)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        GL.glDrawArrays(GL.GL_POINTS, 0, self.count)
        for loc in (1, 2):
            GL.glDisableVertexAttribArray(loc)
        GL.glDisable(GL.GL_PROGRAM_POINT_SIZE)
        GL.glUseProgram(0)


@dataclass
class _LineLayer:
    positions: np.ndarray  # (2M, 3) float32
    colors: np.ndarray | None  # (2M, 4) uint8, or None for the uniform colour
    width: float
    visible: bool = True
    dirty: bool = True


class LineBatch(GLGraphicsItem.GLGraphicsItem):
    """Line segments ('lines' mode: vertex pairs) in named layers drawn in order, one draw call each.

    A layer with a uniform colour uploads positions only (the static 'every edge' layer); the others
    upload per-vertex uint8 colours too. Lines test depth against the cubes but do not write depth,
    so overlapping translucent lines blend in draw order.
    """

    LAYERS = ("base", "shown", "highlight")

    def __init__(self) -> None:
        super().__init__()
        self._gl = _GLResources(_LINE_VS, _LINE_FS, tuple(f"{n}_{k}" for n in self.LAYERS for k in ("pos", "col")))
        empty = np.zeros((0, 3), dtype=np.float32)
        self._layers = {name: _LineLayer(empty, None, 1.0) for name in self.LAYERS}
        self.base_color = (0.45, 0.46, 0.5, 0.16)
        self.uploaded_bytes = 0

    def set_layer(self, name: str, positions: np.ndarray | None = None, colors: np.ndarray | None = None,
                  width: float | None = None, visible: bool | None = None) -> None:
        layer = self._layers[name]
        if positions is not None:
            layer.positions = np.ascontiguousarray(positions, dtype=np.float32)
            layer.colors = None if colors is None else np.ascontiguousarray(colors, dtype=np.uint8)
            layer.dirty = True
        elif colors is not None:
            layer.colors = np.ascontiguousarray(colors, dtype=np.uint8)
            layer.dirty = True
        if width is not None:
            layer.width = float(width)
        if visible is not None:
            layer.visible = bool(visible)
        self.update()

    def segment_count(self, name: str) -> int:
        layer = self._layers[name]
        return int(layer.positions.shape[0] // 2) if layer.visible else 0

    def layer_data(self, name: str) -> _LineLayer:
        return self._layers[name]

    def paint(self) -> None:
        self.uploaded_bytes = 0
        if self._gl.ensure():
            for layer in self._layers.values():
                layer.dirty = True
        program = self._gl.program
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_FALSE)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glUseProgram(program)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, _mvp_array(self))
        loc_uniform = GL.glGetUniformLocation(program, "u_uniform_color")
        loc_color = GL.glGetUniformLocation(program, "u_color")
        for name in self.LAYERS:
            layer = self._layers[name]
            count = layer.positions.shape[0]
            if not layer.visible or count == 0:
                continue
            pos_buf = self._gl.buffers[f"{name}_pos"]
            col_buf = self._gl.buffers[f"{name}_col"]
            if layer.dirty:
                pos_buf.upload(layer.positions)
                self.uploaded_bytes += layer.positions.nbytes
                if layer.colors is not None:
                    col_buf.upload(layer.colors)
                    self.uploaded_bytes += layer.colors.nbytes
                layer.dirty = False
            pos_buf.bind_attribute(0, 3, GL.GL_FLOAT, False)
            if layer.colors is not None:
                col_buf.bind_attribute(1, 4, GL.GL_UNSIGNED_BYTE, True)
                GL.glUniform1i(loc_uniform, 0)
            else:
                GL.glDisableVertexAttribArray(1)
                GL.glUniform1i(loc_uniform, 1)
                GL.glUniform4f(loc_color, *self.base_color)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
            GL.glLineWidth(layer.width)
            GL.glDrawArrays(GL.GL_LINES, 0, count)
            GL.glDisableVertexAttribArray(0)
            GL.glDisableVertexAttribArray(1)
        GL.glLineWidth(1.0)
        GL.glUseProgram(0)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glDisable(GL.GL_BLEND)


@dataclass
class Label:
    text: str
    position: tuple[float, float, float]
    size: float = 1.0  # relative to the base font
    color: tuple[int, int, int] = (225, 228, 235)
    bold: bool = False
    align: str = "center"  # or "left": the text starts at the anchor


class OverlayItem(GLGraphicsItem.GLGraphicsItem):
    """Labels anchored at 3D points plus 2D panels (legend, status, info), painted with one QPainter.

    draw_2d: callable(painter, width, height) for the screen-space panels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[Label] = []
        self.scale = 1.0
        self.draw_2d = None
        self.setDepthValue(1000)  # after every 3D item

    def set_labels(self, labels: list[Label]) -> None:
        self.labels = list(labels)
        self.update()

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Screen (x, y) in widget pixels and a 'in front of the camera' mask for (N, 3) world points."""
        view = self.view()
        mvp = np.array(self.mvpMatrix().data(), dtype=np.float64).reshape(4, 4).T
        h = np.c_[points, np.ones(len(points))] @ mvp.T
        w = h[:, 3]
        ok = w > 1e-6
        w = np.where(ok, w, 1.0)
        x = (h[:, 0] / w + 1.0) * 0.5 * view.width()
        y = (1.0 - h[:, 1] / w) * 0.5 * view.height()
        return np.stack([x, y], axis=1), ok

    def paint(self) -> None:
        view = self.view()
        if view is None:
            return
        painter = QtGui.QPainter(view)
        try:
            painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
            if self.labels:
                pts, ok = self.project(np.array([lb.position for lb in self.labels], dtype=np.float64))
                base = painter.font()
                for label, (x, y), visible in zip(self.labels, pts, ok):
                    if not visible:
                        continue
                    font = QtGui.QFont(base)
                    font.setPointSizeF(max(6.0, 10.0 * label.size * self.scale))
                    font.setBold(label.bold)
                    painter.setFont(font)
                    metrics = QtGui.QFontMetricsF(font)
                    width = metrics.horizontalAdvance(label.text)
                    left = x - 4 if label.align == "left" else x - width / 2 - 4
                    rect = QtCore.QRectF(left, y - metrics.height() / 2 - 1, width + 8, metrics.height() + 2)
                    painter.setPen(QtCore.Qt.PenStyle.NoPen)
                    painter.setBrush(QtGui.QColor(10, 11, 16, 150))
                    painter.drawRoundedRect(rect, 3, 3)
                    painter.setPen(QtGui.QColor(*label.color))
                    painter.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, label.text)
            if self.draw_2d is not None:
                self.draw_2d(painter, view.width(), view.height())
        finally:
            painter.end()
