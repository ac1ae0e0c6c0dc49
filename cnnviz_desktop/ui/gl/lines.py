"""LineBatch: connection lines in named layers, each one draw call; drawn BENEATH the maps.

The batch is drawn before every cube (depth value -10) and writes no depth, so the cubes painted
after it always cover it: a line never hides a feature map, whatever the camera; the lines show the
flow in the space between the planes. The picked neuron's highlight (its incoming lines and an
outline) is the exception: :class:`HighlightLines` draws that layer after the cubes, depth-tested.

Layers: 'base' (every edge of the network in one uniform dim colour, uploaded once per model, drawn
only in 'all' mode), 'shown' (the coloured significant subset, uploaded per snapshot: 2 vertices x
(12 + 4) bytes per edge) and 'highlight'.

The 'base' layer (73k-221k lines, ~1 s per frame on a software renderer) does not change with a
snapshot: with ``cache_base`` it is rendered into an offscreen texture once per camera / view size,
and later frames composite that texture (one full-view quad) instead. Blending into a transparent
target and compositing with premultiplied alpha gives the same pixels as drawing the lines directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from OpenGL import GL
from pyqtgraph.opengl import GLGraphicsItem
from PySide6 import QtGui

from ._common import COMPOSITE_VS, FULL_QUAD, TEXTURE_FS, GLResources, mvp_array

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



@dataclass
class _LineLayer:
    positions: np.ndarray  # (2M, 3) float32
    colors: np.ndarray | None  # (2M, 4) uint8, or None for the uniform colour
    width: float
    visible: bool = True
    dirty: bool = True


class _LayerCache:
    """An offscreen colour texture holding one pre-rendered line layer."""

    def __init__(self) -> None:
        self.fbo = self.texture = None
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
        self.fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.texture, 0)
        ok = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) == GL.GL_FRAMEBUFFER_COMPLETE
        self.size = (width, height)
        self.key = None
        if not ok:
            self.failed = True

    def release(self) -> None:
        if self.fbo is not None:
            GL.glDeleteFramebuffers(1, [self.fbo])
            GL.glDeleteTextures([self.texture])
        self.fbo = self.texture = None
        self.key = None


class LineBatch(GLGraphicsItem.GLGraphicsItem):
    """Line segments ('lines' mode: vertex pairs) in named layers, one draw call each, beneath the maps.

    set_layer(name, positions (2M, 3), colors (2M, 4) uint8 or None, width, visible).
    A layer with a uniform colour uploads positions only; the others upload per-vertex colours too.
    """

    LAYERS = ("base", "shown", "highlight")
    BENEATH = ("base", "shown")  # drawn by this item, before the cubes
    DEPTH = -10  # pyqtgraph draws items by increasing depth value: before the cubes (0)

    def __init__(self) -> None:
        super().__init__()
        self._gl = GLResources(_LINE_VS, _LINE_FS, tuple(f"{n}_{k}" for n in self.LAYERS for k in ("pos", "col")))
        self._composite = GLResources(COMPOSITE_VS, TEXTURE_FS, ("quad",))
        empty = np.zeros((0, 3), dtype=np.float32)
        self._layers = {name: _LineLayer(empty, None, 1.0) for name in self.LAYERS}
        self.base_color = (0.45, 0.46, 0.5, 0.16)
        self.cache_base = True
        self._cache = _LayerCache()
        self._base_version = 0
        self.base_renders = 0  # times the base layer was drawn line by line (for tests and benchmarks)
        self.uploaded_bytes = 0
        self.setDepthValue(self.DEPTH)

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
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
            self._draw_layer("base", locs)
            self.base_renders += 1
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
            cache.key = key
        program = self._composite.program
        if self._composite.ensure():
            self._composite.buffers["quad"].upload(FULL_QUAD)
            program = self._composite.program
        GL.glUseProgram(program)
        GL.glUniform1i(GL.glGetUniformLocation(program, "u_tex"), 0)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, cache.texture)
        GL.glBlendFunc(GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        self._composite.buffers["quad"].bind_attribute(0, 2, GL.GL_FLOAT, False)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 6)
        GL.glDisableVertexAttribArray(0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glUseProgram(self._gl.program)
        return True

    def paint_layers(self, names: tuple[str, ...], mvp: np.ndarray, depth_test: bool) -> None:
        """Draw these layers with ``mvp`` (16 float32); no depth writes, blended in order."""
        if self._gl.ensure():
            for layer in self._layers.values():
                layer.dirty = True
            self._cache = _LayerCache()  # the old context's objects went with it
        program = self._gl.program
        if depth_test:
            GL.glEnable(GL.GL_DEPTH_TEST)
        else:
            GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_FALSE)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glUseProgram(program)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, mvp)
        locs = (GL.glGetUniformLocation(program, "u_uniform_color"), GL.glGetUniformLocation(program, "u_color"))
        for name in names:
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
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_BLEND)

    def paint(self) -> None:
        self.uploaded_bytes = 0
        self.paint_layers(self.BENEATH, mvp_array(self), depth_test=False)


class HighlightLines(GLGraphicsItem.GLGraphicsItem):
    """Draws a LineBatch's 'highlight' layer after the cubes (depth-tested against them)."""

    def __init__(self, batch: LineBatch) -> None:
        super().__init__()
        self.batch = batch
        self.setDepthValue(10)

    def paint(self) -> None:
        self.batch.paint_layers(("highlight",), mvp_array(self), depth_test=True)
