"""The GL view widget of the scene (pyqtgraph's GLViewWidget with right-drag pan, click and hover) and
the check whether OpenGL can work here at all."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from ..gl._common import MIN_GL_VERSION

CLICK_SLOP = 4  # pixels a press may move and still count as a click


def gl_unavailable_reason() -> str | None:
    """None if an OpenGL >= 3.3 context can be created here, else a sentence saying why not."""
    app = QtWidgets.QApplication.instance()
    platform = app.platformName() if app is not None else "?"
    ctx = QtGui.QOpenGLContext()
    if not ctx.create():
        hint = (" (the 'offscreen' platform has no OpenGL: run under X11/Wayland or Xvfb with GLX)"
                if platform == "offscreen" else "")
        return f"No OpenGL context could be created on the '{platform}' platform{hint}."
    version = ctx.format().version()
    if ctx.isOpenGLES() or tuple(version) < MIN_GL_VERSION:
        kind = "OpenGL ES" if ctx.isOpenGLES() else "OpenGL"
        return (f"The 3D scene needs desktop OpenGL {MIN_GL_VERSION[0]}.{MIN_GL_VERSION[1]}; this system "
                f"offers {kind} {version[0]}.{version[1]}.")
    return None


def make_view():
    """A new SceneView (the class is made on first use: importing pyqtgraph.opengl needs OpenGL)."""
    import pyqtgraph.opengl as gl

    global SceneView
    if SceneView is None:

        class _SceneView(gl.GLViewWidget):
            """GLViewWidget with right-drag pan, click picking and hover (pyqtgraph pans with the middle button).

            Signals: clicked(x, y), hovered(x, y), left(), interacted() (a press or a wheel turn: the
            user is placing the camera).
            """

            clicked = QtCore.Signal(float, float)
            hovered = QtCore.Signal(float, float)
            left = QtCore.Signal()
            interacted = QtCore.Signal()

            def __init__(self) -> None:
                super().__init__()
                self.setMouseTracking(True)
                self._press = None

            def mousePressEvent(self, ev):
                super().mousePressEvent(ev)
                self._press = ev.position()

            def mouseMoveEvent(self, ev):
                buttons = ev.buttons()
                if buttons == QtCore.Qt.MouseButton.NoButton:
                    p = ev.position()
                    self.hovered.emit(p.x(), p.y())
                    return
                if self._press is not None:
                    d = ev.position() - self._press
                    if abs(d.x()) + abs(d.y()) > CLICK_SLOP:
                        self.interacted.emit()  # a drag, not a click
                if buttons == QtCore.Qt.MouseButton.RightButton:
                    lpos = ev.position()
                    diff = lpos - self.mousePos
                    self.mousePos = lpos
                    self.pan(diff.x(), diff.y(), 0, relative="view")
                    return
                super().mouseMoveEvent(ev)

            def mouseReleaseEvent(self, ev):
                if self._press is not None and ev.button() == QtCore.Qt.MouseButton.LeftButton:
                    d = ev.position() - self._press
                    if abs(d.x()) + abs(d.y()) <= CLICK_SLOP:
                        self.clicked.emit(ev.position().x(), ev.position().y())
                self._press = None

            def wheelEvent(self, ev):
                super().wheelEvent(ev)
                self.interacted.emit()

            def leaveEvent(self, ev):
                self.left.emit()
                super().leaveEvent(ev)

            def contextMenuEvent(self, ev):
                ev.accept()  # right button pans; no context menu

        SceneView = _SceneView
    return SceneView()


SceneView = None
