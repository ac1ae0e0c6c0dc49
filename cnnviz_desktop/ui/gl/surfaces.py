"""SurfaceMesh: the activation surfaces of one layer (every channel map) in one indexed draw call.

The zero-height vertex positions and the triangle indices are uploaded once per model
(:meth:`SurfaceMesh.set_grid`); a snapshot re-uploads only one float32 height and one RGBA uint8 colour
per vertex (8 bytes; tiny's conv1: 5,408 vertices, 43 KB), flagged dirty as InstancedBoxes does with its
colours. The vertex shader lifts each vertex along the layer's height direction; the fragment shader
shades each triangle by its screen-space normal (flat, two-sided), so the relief reads without a normal
buffer. The maths (grid, heights, colours) is in core.surfaces.
"""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL
from pyqtgraph.opengl import GLGraphicsItem

from ._common import GLResources, mvp_array

_VS = """
#version 330
uniform mat4 u_mvp;
uniform vec3 u_dir;
layout(location = 0) in vec3 a_base;    // vertex at zero activation
layout(location = 1) in float a_height; // world units along u_dir
layout(location = 2) in vec4 a_color;   // normalised uint8 RGBA
out vec3 v_pos;
out vec4 v_color;
void main() {
    vec3 p = a_base + u_dir * a_height;
    v_pos = p;
    v_color = a_color;
    gl_Position = u_mvp * vec4(p, 1.0);
}
"""

_FS = """
#version 330
uniform vec3 u_light;
in vec3 v_pos;
in vec4 v_color;
out vec4 frag_color;
void main() {
    // Flat shading from the triangle's screen-space derivatives; two-sided (abs).
    vec3 n = normalize(cross(dFdx(v_pos), dFdy(v_pos)));
    float shade = 0.42 + 0.58 * abs(dot(n, u_light));
    frag_color = vec4(v_color.rgb * shade, 1.0);
}
"""

LIGHT = np.array([-0.35, -1.0, 0.6], dtype=np.float32) / np.linalg.norm([-0.35, -1.0, 0.6])


class SurfaceMesh(GLGraphicsItem.GLGraphicsItem):
    """One layer's height surfaces.

    set_grid(base (V, 3) float32, faces (F, 3) uint32, direction (3,)): geometry, once per model.
    set_surface(heights (V,) float32, rgba (V, 4) uint8): per snapshot (only these are uploaded).
    geometry_generation counts set_grid calls (a test checks a stroke does not rebuild geometry).
    """

    def __init__(self) -> None:
        super().__init__()
        self._gl = GLResources(_VS, _FS, ("base", "height", "color"))
        self._index_id = None
        self._index_context = None
        self._base = np.zeros((0, 3), np.float32)
        self._faces = np.zeros((0, 3), np.uint32)
        self._direction = np.array([0.0, -1.0, 0.0], np.float32)
        self._heights = np.zeros(0, np.float32)
        self._colors = np.zeros((0, 4), np.uint8)
        self._dirty: set[str] = set()
        self.geometry_generation = 0
        self.uploaded_bytes = 0  # per paint, for benchmarks

    @property
    def vertex_count(self) -> int:
        return int(self._base.shape[0])

    @property
    def face_count(self) -> int:
        return int(self._faces.shape[0])

    @property
    def heights(self) -> np.ndarray:
        """(V,) float32 copy of the heights last set (world units)."""
        return self._heights.copy()

    def colors(self) -> np.ndarray:
        return self._colors

    def set_grid(self, base: np.ndarray, faces: np.ndarray, direction=(0.0, -1.0, 0.0)) -> None:
        self._base = np.ascontiguousarray(base, dtype=np.float32)
        self._faces = np.ascontiguousarray(faces, dtype=np.uint32)
        self._direction = np.asarray(direction, np.float32)
        n = self._base.shape[0]
        self._heights = np.zeros(n, np.float32)
        self._colors = np.full((n, 4), 128, np.uint8)
        self.geometry_generation += 1
        self._dirty = {"base", "faces", "height", "color"}
        self.update()

    def set_surface(self, heights: np.ndarray, rgba: np.ndarray) -> None:
        n = self.vertex_count
        if heights.shape != (n,) or rgba.shape != (n, 4):
            raise ValueError(f"expected ({n},) heights and ({n}, 4) colours, got {heights.shape}, {rgba.shape}")
        self._heights = np.ascontiguousarray(heights, dtype=np.float32)
        self._colors = np.ascontiguousarray(rgba, dtype=np.uint8)
        self._dirty |= {"height", "color"}
        self.update()

    def _upload_faces(self) -> None:
        if self._index_id is None or self._index_context is not self._gl.context:
            self._index_id = int(GL.glGenBuffers(1))
            self._index_context = self._gl.context
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self._index_id)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, max(self._faces.nbytes, 4),
                        self._faces if self._faces.nbytes else None, GL.GL_STATIC_DRAW)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, 0)

    def paint(self) -> None:
        self.uploaded_bytes = 0
        if self.face_count == 0:
            return
        if self._gl.ensure():
            self._dirty |= {"base", "faces", "height", "color"}
        arrays = {"base": self._base, "height": self._heights, "color": self._colors}
        for name in self._dirty:
            if name == "faces":
                self._upload_faces()
                self.uploaded_bytes += self._faces.nbytes
                continue
            self._gl.buffers[name].upload(arrays[name])
            self.uploaded_bytes += arrays[name].nbytes
        self._dirty = set()

        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glDisable(GL.GL_BLEND)
        GL.glDisable(GL.GL_CULL_FACE)
        program = self._gl.program
        GL.glUseProgram(program)
        GL.glUniformMatrix4fv(GL.glGetUniformLocation(program, "u_mvp"), 1, GL.GL_FALSE, mvp_array(self))
        GL.glUniform3f(GL.glGetUniformLocation(program, "u_dir"), *self._direction.tolist())
        GL.glUniform3f(GL.glGetUniformLocation(program, "u_light"), *LIGHT.tolist())
        buffers = self._gl.buffers
        buffers["base"].bind_attribute(0, 3, GL.GL_FLOAT, False, 0)
        buffers["height"].bind_attribute(1, 1, GL.GL_FLOAT, False, 0)
        buffers["color"].bind_attribute(2, 4, GL.GL_UNSIGNED_BYTE, True, 0)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self._index_id)
        GL.glDrawElements(GL.GL_TRIANGLES, self._faces.size, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0))
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, 0)
        for loc in (0, 1, 2):
            GL.glDisableVertexAttribArray(loc)
        GL.glUseProgram(0)
