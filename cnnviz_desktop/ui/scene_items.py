"""Batched OpenGL items for the 3D scene: instanced boxes, line batches and a 2D text/legend overlay.

Each item draws thousands of primitives in one or two draw calls from contiguous numpy buffers:

- :class:`InstancedBoxes` draws every neuron cube (or filter cell) as one instanced draw of a 36-vertex
  box. Positions and sizes are uploaded once per model; a snapshot re-uploads only the RGBA uint8
  colours (4 bytes per cube; tiny: 31 KB).
- :class:`LineBatch` draws connection lines in three layers: a static layer of every edge in one
  uniform dim colour (uploaded once per model, drawn only in 'all' mode), the coloured subset the
  snapshot marks significant (uploaded per snapshot: 2 vertices x (12 + 4) bytes per edge), and a
  small highlight layer (a picked neuron's incoming edges and outline).
- :class:`OverlayItem` draws every label, the legend and the info text as textured quads: each is
  rasterised on the CPU once (when its text, the scale or the palette changes), not painted through
  Qt's GL paint engine every frame.
- A line layer that does not change with a snapshot ('all' mode's grey edges) is cached in an
  offscreen texture and re-drawn only when the camera or the view size changes.

GL resources are created lazily in ``paint`` and re-created when the widget's context changes (Qt
replaces a QOpenGLWidget's context when it is re-parented). Shaders need OpenGL 3.3 (instancing).
"""

from __future__ import annotations

import ctypes
import math
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
    if (a_color.a < 0.02) gl_Position = vec4(2.0, 2.0, 2.0, 1.0);  // hidden: clipped here, no discard below
    v_color = a_color;
}
"""

_SPRITE_FS = """
#version 330
in vec4 v_color;
out vec4 frag_color;
void main() {
    // A bevelled tile: lit top-left rim, shaded bottom-right rim, so each neuron reads as a block.
    // Branch-free (no discard either: hidden sprites are clipped in the vertex shader), so the
    // software rasteriser can test depth before shading.
    vec2 p = gl_PointCoord;
    float lit = step(min(p.x, p.y), 0.14);
    float dark = step(0.86, max(p.x, p.y));
    float shade = mix(mix(1.0, 1.22, lit), 0.62, dark);
    frag_color = vec4(min(v_color.rgb * shade + 0.05 * lit * (1.0 - dark), 1.0), v_color.a);
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


_COMPOSITE_VS = """
#version 330
layout(location = 0) in vec2 a_corner;  // clip-space corner of the full-view quad
out vec2 v_uv;
void main() {
    gl_Position = vec4(a_corner, 0.0, 1.0);
    v_uv = a_corner * 0.5 + 0.5;
}
"""

# Samples one premultiplied texture: the cached 'all' lines and the overlay's label sheets.
_TEXTURE_FS = """
#version 330
uniform sampler2D u_tex;
in vec2 v_uv;
out vec4 frag_color;
void main() {
    frag_color = texture(u_tex, v_uv);  // premultiplied alpha
}
"""

_FULL_QUAD = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], dtype=np.float32)


class _LayerCache:
    """An offscreen colour texture (plus a depth buffer) holding one pre-rendered line layer."""

    def __init__(self) -> None:
        self.fbo = self.texture = self.depth = None
        self.size = (0, 0)
        self.key = None
        self.failed = False

    def ensure(self, width: int, height: int) -> None:
        if self.fbo is not None and self.size == (width, height):
            return
        self.release()
        self.texture = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.texture)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, width, height, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        for name in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, name, GL.GL_NEAREST)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        self.depth = int(GL.glGenRenderbuffers(1))
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.depth)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH24_STENCIL8, width, height)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, 0)
        self.fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.texture, 0)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_STENCIL_ATTACHMENT, GL.GL_RENDERBUFFER, self.depth)
        ok = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) == GL.GL_FRAMEBUFFER_COMPLETE
        self.size = (width, height)
        self.key = None
        if not ok:
            self.failed = True

    def release(self) -> None:
        if self.fbo is not None:
            GL.glDeleteFramebuffers(1, [self.fbo])
            GL.glDeleteRenderbuffers(1, [self.depth])
            GL.glDeleteTextures([self.texture])
        self.fbo = self.texture = self.depth = None
        self.key = None


class LineBatch(GLGraphicsItem.GLGraphicsItem):
    """Line segments ('lines' mode: vertex pairs) in named layers drawn in order, one draw call each.

    A layer with a uniform colour uploads positions only (the static 'every edge' layer); the others
    upload per-vertex uint8 colours too. Lines test depth against the cubes but do not write depth,
    so overlapping translucent lines blend in draw order.

    The 'base' layer (every edge of the network, 73k-221k lines, ~1 s per frame on a software
    renderer) does not change with a snapshot: with ``cache_base`` it is rendered into an offscreen
    texture against the depth of ``occluders`` (the cube items, drawn again depth-only, whose
    geometry and visibility do not change with a snapshot either), and later frames with the same camera, view
    size and line width composite that texture (one full-view quad) instead of drawing it again.
    Blending into a transparent target and compositing with premultiplied alpha gives the same
    pixels as drawing the lines directly. Only a camera move (or resize) pays the full cost again.
    """

    LAYERS = ("base", "shown", "highlight")

    def __init__(self) -> None:
        super().__init__()
        self._gl = _GLResources(_LINE_VS, _LINE_FS, tuple(f"{n}_{k}" for n in self.LAYERS for k in ("pos", "col")))
        self._composite = _GLResources(_COMPOSITE_VS, _TEXTURE_FS, ("quad",))
        empty = np.zeros((0, 3), dtype=np.float32)
        self._layers = {name: _LineLayer(empty, None, 1.0) for name in self.LAYERS}
        self.base_color = (0.45, 0.46, 0.5, 0.16)
        self.cache_base = True
        self.occluders: list[GLGraphicsItem.GLGraphicsItem] = []  # items drawn before the lines that hide them
        self._cache = _LayerCache()
        self._base_version = 0
        self.base_renders = 0  # times the base layer was drawn line by line (for tests and benchmarks)
        self.uploaded_bytes = 0

    def set_layer(self, name: str, positions: np.ndarray | None = None, colors: np.ndarray | None = None,
                  width: float | None = None, visible: bool | None = None) -> None:
        layer = self._layers[name]
        if positions is not None:
            layer.positions = np.ascontiguousarray(positions, dtype=np.float32)
            layer.colors = None if colors is None else np.ascontiguousarray(colors, dtype=np.uint8)
            layer.dirty = True
            if name == "base":
                self._base_version += 1
        elif colors is not None:
            layer.colors = np.ascontiguousarray(colors, dtype=np.uint8)
            layer.dirty = True
        if width is not None:
            layer.width = float(width)
        if visible is not None:
            layer.visible = bool(visible)
        self.update()

    def invalidate_cache(self) -> None:
        """The depth the cached base layer was tested against changed (e.g. new cube geometry)."""
        self._base_version += 1
        self.update()

    def segment_count(self, name: str) -> int:
        layer = self._layers[name]
        return int(layer.positions.shape[0] // 2) if layer.visible else 0

    def layer_data(self, name: str) -> _LineLayer:
        return self._layers[name]

    def _draw_layer(self, name: str, locs: tuple[int, int]) -> None:
        layer = self._layers[name]
        count = layer.positions.shape[0]
        pos_buf = self._gl.buffers[f"{name}_pos"]
        col_buf = self._gl.buffers[f"{name}_col"]
        if layer.dirty:
            pos_buf.upload(layer.positions)
            self.uploaded_bytes += layer.positions.nbytes
            if layer.colors is not None:
                col_buf.upload(layer.colors)
                self.uploaded_bytes += layer.colors.nbytes
            layer.dirty = False
        loc_uniform, loc_color = locs
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

    def _base_cached(self, mvp: np.ndarray, locs: tuple[int, int]) -> bool:
        """Draw the base layer from (or into, then from) the cache; False if caching is not possible here."""
        cache = self._cache
        if cache.failed:
            return False
        view = self.view()
        ctx = QtGui.QOpenGLContext.currentContext()
        width, height = int(view.deviceWidth()), int(view.deviceHeight())
        target = int(view.defaultFramebufferObject())
        if width < 1 or height < 1 or ctx is None:
            return False
        layer = self._layers["base"]
        key = (mvp.tobytes(), width, height, layer.width, tuple(self.base_color), self._base_version)
        cache.ensure(width, height)
        if cache.failed:
            cache.release()
            return False
        if cache.key != key:
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, cache.fbo)
            GL.glClearColor(0.0, 0.0, 0.0, 0.0)
            GL.glClearDepth(1.0)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
            # The occluders' depth, drawn again rather than blitted: a depth blit rounds by an ulp
            # here and there, and lines start at sprite centres (exactly the sprite's depth), so
            # some of them would win a depth test they lose when drawn directly.
            GL.glColorMask(GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE)
            for item in self.occluders:
                if item.visible():
                    uploaded = getattr(item, "uploaded_bytes", 0)
                    item.paint()
                    item.uploaded_bytes = uploaded
            GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthMask(GL.GL_FALSE)
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
            GL.glUseProgram(self._gl.program)
            self._draw_layer("base", locs)
            self.base_renders += 1
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
            cache.key = key
        program = self._composite.program
        if self._composite.ensure():
            self._composite.buffers["quad"].upload(_FULL_QUAD)
            program = self._composite.program
        GL.glUseProgram(program)
        GL.glUniform1i(GL.glGetUniformLocation(program, "u_tex"), 0)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, cache.texture)
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glBlendFunc(GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        self._composite.buffers["quad"].bind_attribute(0, 2, GL.GL_FLOAT, False)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 6)
        GL.glDisableVertexAttribArray(0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glUseProgram(self._gl.program)
        return True

    def paint(self) -> None:
        self.uploaded_bytes = 0
        if self._gl.ensure():
            for layer in self._layers.values():
                layer.dirty = True
            self._cache = _LayerCache()  # the old context's objects went with it
        program = self._gl.program
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_FALSE)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glUseProgram(program)
        mvp = _mvp_array(self)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, mvp)
        locs = (GL.glGetUniformLocation(program, "u_uniform_color"), GL.glGetUniformLocation(program, "u_color"))
        for name in self.LAYERS:
            layer = self._layers[name]
            if not layer.visible or layer.positions.shape[0] == 0:
                continue
            if name == "base" and self.cache_base and self._base_cached(mvp, locs):
                continue
            if name == "base":
                self.base_renders += 1
            self._draw_layer(name, locs)
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


def label_image(label: Label, font: QtGui.QFont, scale: float, dpr: float) -> tuple[QtGui.QImage, float]:
    """The label's rounded plate with its text, and the x offset of its anchor from the image's left edge."""
    font = QtGui.QFont(font)
    font.setPointSizeF(max(6.0, 10.0 * label.size * scale))
    font.setBold(label.bold)
    metrics = QtGui.QFontMetricsF(font)
    width = metrics.horizontalAdvance(label.text) + 8
    height = metrics.height() + 2

    def draw(painter: QtGui.QPainter) -> None:
        painter.setFont(font)
        rect = QtCore.QRectF(0, 0, width, height)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(QtGui.QColor(10, 11, 16, 150))
        painter.drawRoundedRect(rect, 3, 3)
        painter.setPen(QtGui.QColor(*label.color))
        painter.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, label.text)

    return render_text_panel(draw, width, height, dpr), (4.0 if label.align == "left" else width / 2)


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

    Painting text with a QPainter on the GL surface every frame cost ~5 ms on a software renderer
    (glyph by glyph through Qt's GL paint engine). Instead each label and panel is rasterised once on
    the CPU into a QImage when its text, the scale or the palette changes, and uploaded to a texture;
    a frame only projects the label anchors and draws textured quads, pixel aligned (nearest
    sampling, so text stays as crisp as QPainter drew it).

    set_labels(labels): the 3D-anchored labels (one texture sheet for all of them).
    set_panel(name, image, corner, margin): a screen-space QImage (None removes it) at a corner.
    before_paint: optional callable run at the start of each paint (to render dirty panels lazily).
    """

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[Label] = []
        self.scale = 1.0
        self.before_paint = None
        self._gl = _GLResources(_OVERLAY_VS, _TEXTURE_FS, ("quads",))
        self._label_sheet: _Sheet | None = None
        self._label_key = None
        self._label_offsets = np.zeros((0, 2), np.float32)  # anchor offset from the image's top left (device px)
        self._panels: dict[str, tuple[_Sheet, str, tuple[float, float], float]] = {}
        self._stale_textures: list[int] = []
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

    def _build_labels(self, dpr: float) -> None:
        view = self.view()
        font = QtGui.QFont(view.font())
        key = (self.scale, dpr, font.toString())
        if key == self._label_key:
            return
        if self._label_sheet is not None and self._label_sheet.texture is not None:
            self._stale_textures.append(self._label_sheet.texture)
        images, offsets = [], []
        for label in self.labels:
            image, ax = label_image(label, font, self.scale, dpr)
            images.append(image)
            offsets.append((ax * dpr, image.height() / 2.0))
        self._label_sheet = _Sheet(images) if images else None
        self._label_offsets = np.array(offsets, np.float32).reshape(-1, 2)
        self._label_key = key

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
        width, height = view.width() * dpr, view.height() * dpr
        draws: list[tuple[_Sheet, np.ndarray]] = []
        if self.labels:
            self._build_labels(dpr)
            sheet = self._label_sheet
            pts, ok = self.project(np.array([lb.position for lb in self.labels], dtype=np.float64))
            which = np.flatnonzero(ok)
            if which.size:
                corners = np.round(pts[which] * dpr - self._label_offsets[which])
                draws.append((sheet, self._quads(sheet, corners, which)))
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
