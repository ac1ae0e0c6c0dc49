"""InstancedBoxes: every neuron cube (or filter cell) of the scene in one draw call.

Positions and sizes are uploaded once per model; a snapshot re-uploads only the RGBA uint8 colours
(4 bytes per cube; tiny: 31 KB). Two styles: 'sprites' (one point sprite per neuron drawn as a
bevelled tile; 1 vertex instead of 36, the cheapest on software renderers) and 'boxes' (instanced
shaded 3D boxes).
"""

from __future__ import annotations

import numpy as np
from OpenGL import GL
from pyqtgraph.opengl import GLGraphicsItem
from PySide6 import QtGui

from ._common import GLResources, is_compatibility_profile, mvp_array

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
        self._gl = GLResources(vs, fs, ("box", "instance", "color"))
        self._aspect = np.asarray(aspect, dtype=np.float32)
        self._instances = np.zeros((0, 4), dtype=np.float32)
        self._colors = np.zeros((0, 4), dtype=np.uint8)
        self._dirty = {"instance", "color"}
        self.uploaded_bytes = 0  # per paint, for benchmarks

    @property
    def count(self) -> int:
        return int(self._instances.shape[0])

    @property
    def instances(self) -> np.ndarray:
        """(N, 4) float32 copy of the uploaded geometry: centre xyz and edge length per instance."""
        return self._instances.copy()

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
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, mvp_array(self))
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
        if is_compatibility_profile(QtGui.QOpenGLContext.currentContext()):
            GL.glEnable(GL.GL_POINT_SPRITE)  # gl_PointCoord needs it outside the core profile
        GL.glUseProgram(program)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, mvp_array(self))
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
