"""GL plumbing shared by the scene's items: array buffers, per-context programs, matrices, profile check."""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL
from OpenGL.GL import shaders
from PySide6 import QtGui

MIN_GL_VERSION = (3, 3)

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
TEXTURE_FS = """
#version 330
uniform sampler2D u_tex;
in vec2 v_uv;
out vec4 frag_color;
void main() {
    frag_color = texture(u_tex, v_uv);  // premultiplied alpha
}
"""

COMPOSITE_VS = _COMPOSITE_VS
FULL_QUAD = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], dtype=np.float32)


def is_compatibility_profile(context: QtGui.QOpenGLContext | None) -> bool:
    """True when ``context`` offers the compatibility profile (fixed-function state such as
    GL_POINT_SPRITE exists there; enabling it in a core profile is an error).

    Contexts before 3.2 have no profile: 2.1 and older are compatibility contexts, 3.0 when it keeps the
    deprecated functions, 3.1 is when it has GL_ARB_compatibility.
    """
    if context is None:
        return False
    fmt = context.format()
    profile = fmt.profile()
    if profile == QtGui.QSurfaceFormat.OpenGLContextProfile.CompatibilityProfile:
        return True
    if profile == QtGui.QSurfaceFormat.OpenGLContextProfile.CoreProfile:
        return False
    version = tuple(fmt.version())
    if version <= (2, 1):
        return True
    if version == (3, 0):
        return bool(fmt.testOption(QtGui.QSurfaceFormat.FormatOption.DeprecatedFunctions))
    if version == (3, 1):
        return bool(context.hasExtension(b"GL_ARB_compatibility"))
    return False


def mvp_array(item) -> np.ndarray:
    """The item's model-view-projection matrix as 16 float32 (column-major, as glUniformMatrix4fv wants)."""
    return np.array(item.mvpMatrix().data(), dtype=np.float32)


class Buffer:
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


class GLResources:
    """Buffers and a program of one item, tied to the GL context they were made in."""

    def __init__(self, vs: str, fs: str, buffers: tuple[str, ...]) -> None:
        self._sources = (vs, fs)
        self._names = buffers
        self.context = None
        self.program = None
        self.buffers: dict[str, Buffer] = {}

    def ensure(self) -> bool:
        """True when the resources were (re)created for the current context: upload everything again."""
        ctx = QtGui.QOpenGLContext.currentContext()
        if ctx is self.context and self.program is not None:
            return False
        vs, fs = self._sources
        self.program = shaders.compileProgram(
            shaders.compileShader(vs, GL.GL_VERTEX_SHADER), shaders.compileShader(fs, GL.GL_FRAGMENT_SHADER),
            validate=False)
        self.buffers = {name: Buffer() for name in self._names}
        self.context = ctx
        return True
