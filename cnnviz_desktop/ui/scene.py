"""The 3D network scene: neuron cubes, contribution lines, filter grids, labels, legend, camera, picking.

``ScenePanel`` is a QWidget holding a pyqtgraph ``GLViewWidget`` (or, without OpenGL, a text
explaining why the 3D area is empty). Geometry is built once per model (:func:`core.layout.layout`);
:meth:`ScenePanel.apply` only recolours: one uint8 colour upload for all cubes and one upload of the
significant lines, never a Python object per neuron or per line.

Camera: left drag rotates, right drag (or middle drag, or Ctrl + left drag) pans, the wheel zooms;
a click picks a neuron (signal ``neuron_picked``), hovering shows its value.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from ..core import colors  # noqa: E402
from ..core.architecture import Architecture  # noqa: E402
from ..core.layout import SceneLayout, layout  # noqa: E402
from .qimage import to_qimage  # noqa: E402

CONNECTION_MODES = ("significant", "all", "none")
PRESET_VIEWS = {  # name -> (azimuth, elevation) in pyqtgraph's degrees
    "default": (-40.0, 18.0),
    "front": (-90.0, 0.0),
    "side": (0.0, 0.0),
    "top": (0.0, 89.9),
}
FOV = 30.0
CLICK_SLOP = 4  # pixels a press may move and still count as a click
AUTO_ROTATE_MS = 33
AUTO_ROTATE_DEG = 0.35
# Significant lines drawn per layer at most (the strongest) in a view of BUDGET_REFERENCE_VIEW. Each
# long line costs ~5 us on a software renderer (input -> conv1 alone has ~16k significant ones); 700
# keeps the fans as readable as 1000 did (the strongest lines, less wash over the maps behind them).
DEFAULT_LINE_BUDGET = 700
BUDGET_REFERENCE_VIEW = (1600, 1000)  # this size; 'auto' scales it with the view's diagonal (see _auto_budget)
BUDGET_LIMITS = (250, 2000)
FADE_ABOVE = 800  # drawn lines per layer (at the reference size) above which the layer's lines fade


def gl_unavailable_reason() -> str | None:
    """None if an OpenGL >= 3.3 context can be created here, else a sentence saying why not."""
    from .scene_items import MIN_GL_VERSION

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


def _make_view_class():
    import pyqtgraph.opengl as gl

    class SceneView(gl.GLViewWidget):
        """GLViewWidget with right-drag pan, click picking and hover (pyqtgraph pans with the middle button)."""

        clicked = QtCore.Signal(float, float)
        hovered = QtCore.Signal(float, float)
        left = QtCore.Signal()
        interacted = QtCore.Signal()

        def __init__(self) -> None:
            super().__init__()
            self.setMouseTracking(True)
            self._press = None

        def mousePressEvent(self, ev):  # noqa: N802
            super().mousePressEvent(ev)
            self._press = ev.position()
            self.interacted.emit()

        def mouseMoveEvent(self, ev):  # noqa: N802
            buttons = ev.buttons()
            if buttons == QtCore.Qt.MouseButton.NoButton:
                p = ev.position()
                self.hovered.emit(p.x(), p.y())
                return
            if buttons == QtCore.Qt.MouseButton.RightButton:
                lpos = ev.position()
                diff = lpos - self.mousePos
                self.mousePos = lpos
                self.pan(diff.x(), diff.y(), 0, relative="view")
                return
            super().mouseMoveEvent(ev)

        def mouseReleaseEvent(self, ev):  # noqa: N802
            if self._press is not None and ev.button() == QtCore.Qt.MouseButton.LeftButton:
                d = ev.position() - self._press
                if abs(d.x()) + abs(d.y()) <= CLICK_SLOP:
                    self.clicked.emit(ev.position().x(), ev.position().y())
            self._press = None

        def wheelEvent(self, ev):  # noqa: N802
            super().wheelEvent(ev)
            self.interacted.emit()

        def leaveEvent(self, ev):  # noqa: N802
            self.left.emit()
            super().leaveEvent(ev)

        def contextMenuEvent(self, ev):  # noqa: N802
            ev.accept()  # right button pans; no context menu

    return SceneView


class ScenePanel(QtWidgets.QWidget):
    """The 3D scene of one network.

    Signals:
        neuron_picked(layer, index, value): a neuron was clicked (index: (c, y, x) or (n,)).
        neuron_hovered(layer, index, value): the pointer is over a neuron ('' and () when it leaves).
        status_text_changed(text): e.g. '1,234 of 73,024 connections shown'.
        frame_rendered(): the GL view swapped a frame (never emitted in the fallback).

    Args:
        gl: True forces the GL view (raises if it cannot work), False forces the text fallback, None
            (default) checks that an OpenGL >= 3.3 context can be created first.
        cube_style: 'sprites' (default: one point sprite per neuron, a bevelled square; cheapest on
            software renderers) or 'boxes' (instanced shaded 3D boxes, 36 vertices per neuron).
    """

    neuron_picked = QtCore.Signal(str, tuple, float)
    neuron_hovered = QtCore.Signal(str, tuple, float)
    status_text_changed = QtCore.Signal(str)
    frame_rendered = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None, gl: bool | None = None,
                 cube_style: str = "sprites") -> None:
        super().__init__(parent)
        self.layout_: SceneLayout | None = None
        self._snapshot = None
        self._mode = "significant"
        self._palette = "default"
        self._presentation = False
        self._picked: int | None = None
        self._hovered: int | None = None
        self._hover_pos = (0.0, 0.0)
        self._status = "No model loaded"
        self._shown_edges = 0
        self._filters: dict[str, np.ndarray] = {}
        self._cube_rgba = np.zeros((0, 4), dtype=np.uint8)
        self._values = np.zeros(0, dtype=np.float32)  # the value shown by each cube (for picking)
        self._contrib = np.zeros(0, dtype=np.float32)
        self._edge_norm = np.zeros(0, dtype=np.float32)
        self._significant = np.zeros(0, dtype=bool)
        self.line_budget = DEFAULT_LINE_BUDGET  # the per-layer budget in effect (0: no limit)
        self._budget_auto = True
        self.cube_style = cube_style

        reason = None
        if gl is None:
            reason = gl_unavailable_reason()
        elif gl is False:
            reason = "The 3D view is switched off (started without OpenGL)."
        self.fallback_reason = reason

        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.view = None
        self.fallback: QtWidgets.QLabel | None = None
        if reason is not None:
            self.fallback = QtWidgets.QLabel(
                f"<h3>3D network view unavailable</h3><p>{reason}</p>"
                "<p>Drawing, predictions and the Grad-CAM overlay still work.</p>")
            self.fallback.setObjectName("sceneFallback")
            self.fallback.setWordWrap(True)
            self.fallback.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            self.fallback.setStyleSheet("QLabel { color: #d8dbe2; background: #0e0f13; padding: 24px; }")
            box.addWidget(self.fallback)
        else:
            self._build_view()
            box.addWidget(self.view)
        self._rotate_timer = QtCore.QTimer(self)
        self._rotate_timer.setInterval(AUTO_ROTATE_MS)
        self._rotate_timer.timeout.connect(self._on_rotate_tick)

    # ------------------------------------------------------------------ construction
    def _build_view(self) -> None:
        from .scene_items import InstancedBoxes, LineBatch, OverlayItem

        self.view = _make_view_class()()
        self.view.setBackgroundColor(tuple(int(c * 255) for c in colors.BACKGROUND))
        self.view.opts["fov"] = FOV
        self.cubes = InstancedBoxes(style=self.cube_style)
        self.filter_cells = InstancedBoxes(aspect=(1.0, 0.25, 1.0), style=self.cube_style)
        self.lines = LineBatch()
        self.overlay = OverlayItem()
        self.lines.occluders = [self.cubes, self.filter_cells]  # for the cached 'all' layer
        self._dirty_panels = {"status", "legend", "info"}
        self.overlay.before_paint = self._render_panels
        for item in (self.cubes, self.filter_cells, self.lines, self.overlay):
            self.view.addItem(item)
        self.view.frameSwapped.connect(self.frame_rendered)
        self.view.clicked.connect(self._on_clicked)
        self.view.hovered.connect(self._on_hovered)
        self.view.left.connect(self._on_left)
        self.view.interacted.connect(self._on_interacted)

    @property
    def has_gl(self) -> bool:
        return self.view is not None

    @property
    def status_text(self) -> str:
        return self._status

    @property
    def connection_mode(self) -> str:
        return self._mode

    @property
    def palette_name(self) -> str:
        return self._palette

    @property
    def picked(self) -> tuple[str, tuple[int, ...]] | None:
        """(layer, index) of the picked neuron, or None."""
        return None if self._picked is None or self.layout_ is None else self.layout_.locate(self._picked)

    # ------------------------------------------------------------------ model
    def set_model(self, model: Any, filters: dict[str, np.ndarray] | None = None) -> None:
        """Build the geometry of a network once (also when the user switches model).

        model: a weights.LoadedModel (its conv weights colour the filter grids), or an Architecture
            with optional ``filters``: conv layer name -> (Cout, Cin, k, k) weights.
        """
        arch = model if isinstance(model, Architecture) else model.arch
        self.layout_ = lay = layout(arch)
        self._filters = dict(filters or {}) if isinstance(model, Architecture) else _conv_weights(model, lay)
        self._snapshot = None
        self._picked = self._hovered = None
        n, e = lay.cube_count, lay.edge_count
        self._cube_rgba = np.empty((n, 4), dtype=np.uint8)
        self._values = np.zeros(n, dtype=np.float32)
        self._contrib = np.zeros(e, dtype=np.float32)
        self._edge_norm = np.zeros(e, dtype=np.float32)
        self._significant = np.zeros(e, dtype=bool)
        self._edge_alpha = np.full(e, 255.0, dtype=np.float32)
        # Interleaved (src, dst) endpoints of every edge, once per model: a snapshot only gathers rows.
        self._endpoints = np.ascontiguousarray(np.stack([lay.edge_src, lay.edge_dst], axis=1))
        if self.view is not None:
            self.cubes.set_instances(lay.centers, lay.sizes)
            self.filter_cells.set_instances(lay.filter_centers, lay.filter_sizes)
            self.lines.set_layer("base", positions=lay.centers[self._endpoints.reshape(-1)])
            self.lines.set_layer("shown", positions=np.zeros((0, 3), np.float32), colors=np.zeros((0, 4), np.uint8))
            self.lines.set_layer("highlight", positions=np.zeros((0, 3), np.float32),
                                 colors=np.zeros((0, 4), np.uint8))
            self._update_labels()
            self._color_filters()
        self._recolor()
        self.reset_view()

    # ------------------------------------------------------------------ per snapshot
    def apply(self, snapshot) -> bool:
        """Show a Snapshot: recolour cubes and lines (no geometry rebuild).

        Returns False (and changes nothing) when no model is set or the snapshot belongs to another
        network (its activation shapes differ), e.g. a late result after a model switch.
        """
        lay = self.layout_
        if lay is None:
            return False
        acts = snapshot.activations
        for name, box in lay.layers.items():
            a = acts.get(name)
            if a is None or a.size != box.cubes.stop - box.cubes.start:
                return False
        self._snapshot = snapshot
        self._recolor()
        return True

    def _recolor(self) -> None:
        lay = self.layout_
        if lay is None:
            self._set_status("No model loaded")
            return
        snap = self._snapshot
        palette = self._palette
        empty = snap is None or snap.empty
        for name, box in lay.layers.items():
            rows = self._cube_rgba[box.cubes]
            if empty:
                values = np.zeros(box.cubes.stop - box.cubes.start, np.float32)
                scale = 1.0
            elif box.kind == "output" and snap.probabilities is not None:
                values, scale = np.asarray(snap.probabilities, np.float32).reshape(-1), 1.0
            else:
                values = np.asarray(snap.activations[name], np.float32).reshape(-1)
                scale = 1.0 if box.kind == "input" else None
            self._values[box.cubes] = values
            colors.activation_colors(values, scale, palette, out=rows)

        # Contributions, normalised per target layer (their magnitudes differ by orders between layers).
        if empty:
            self._significant[:] = False
            self._contrib[:] = 0.0
            self._edge_norm[:] = 0.0
        else:
            for name, sl in lay.edge_slices.items():
                c = np.asarray(snap.contributions[name], np.float32)
                self._contrib[sl] = c
                self._significant[sl] = snap.significant[name]
                m = float(np.abs(c).max()) if c.size else 0.0
                drawn = int(np.count_nonzero(snap.significant[name]))
                if self.line_budget:
                    drawn = min(drawn, self.line_budget)
                density = math.sqrt(FADE_ABOVE * self._density_scale() / max(1, drawn))
                self._edge_alpha[sl] = 255.0 * min(1.0, max(0.1, density))
                np.multiply(c, np.float32(1.0 / m) if m > 0 else np.float32(0.0), out=self._edge_norm[sl])
        self._update_lines()
        if self.view is not None:
            self.cubes.set_colors(self._cube_rgba)
            self._update_highlight()

    def _update_lines(self) -> None:
        lay = self.layout_
        mode = self._mode
        if mode == "none":
            shown = np.zeros(0, dtype=np.int64)
        else:
            shown = self._drawn_edges()
        self._shown_edges = int(shown.size) if mode != "all" else lay.edge_count
        if self.view is not None:
            norm = self._edge_norm[shown]
            rgba = colors.signed_colors(norm, 1.0, self._palette)
            # Opacity grows with |contribution|, and layers with thousands of shown lines (input ->
            # conv1) fade as a whole, so their fan does not hide the maps behind it.
            rgba[:, 3] = (self._edge_alpha[shown] * (0.12 + 0.88 * np.abs(norm))).astype(np.uint8)
            positions = lay.centers[self._endpoints[shown].reshape(-1)]
            self.lines.set_layer("shown", positions=positions, colors=np.repeat(rgba, 2, axis=0),
                                 visible=mode != "none")
            self.lines.set_layer("base", visible=mode == "all")
        total = lay.edge_count
        if mode == "none":
            text = f"Connections hidden ({total:,} in the network)"
        elif mode == "all":
            sig = int(np.count_nonzero(self._significant))
            text = f"All {total:,} connections shown ({sig:,} significant in colour)"
        else:
            sig = int(np.count_nonzero(self._significant))
            text = f"{self._shown_edges:,} of {total:,} connections shown (significant only)"
            if self._shown_edges < sig:
                text = (f"{self._shown_edges:,} of {total:,} connections shown (the strongest of "
                        f"{sig:,} significant)")
        self._set_status(text)

    def _drawn_edges(self) -> np.ndarray:
        """Positions of the significant edges to draw: all of them, or per layer the strongest
        ``line_budget`` (by |contribution|) when a layer has more (input -> conv1 has ~16k; a software
        renderer spends ~6 ms per 1000 long lines)."""
        lay = self.layout_
        parts = []
        budget = self.line_budget
        for name, sl in lay.edge_slices.items():
            idx = np.flatnonzero(self._significant[sl])
            if budget and idx.size > budget:
                strength = np.abs(self._edge_norm[sl][idx])
                idx = np.sort(idx[np.argpartition(strength, idx.size - budget)[idx.size - budget:]])
            parts.append(idx + sl.start)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def set_line_budget(self, per_layer: int | str | None) -> None:
        """Draw at most this many significant lines per layer (the strongest); None or 0: all of them;
        'auto' (the default): DEFAULT_LINE_BUDGET scaled with the view's size (see _auto_budget)."""
        self._budget_auto = per_layer == "auto"
        budget = self._auto_budget() if self._budget_auto else int(per_layer or 0)
        if budget != self.line_budget:
            self.line_budget = budget
            if self.layout_ is not None:
                self._recolor()

    def _view_size(self) -> tuple[int, int]:
        """The GL view's size in pixels (the reference size while the view is not laid out yet)."""
        if self.view is None:
            return BUDGET_REFERENCE_VIEW
        width, height = self.view.width(), self.view.height()
        return (width, height) if width >= 50 and height >= 50 else BUDGET_REFERENCE_VIEW

    def _density_scale(self) -> float:
        """View diagonal / reference diagonal: how many more lines the view holds at the same density."""
        width, height = self._view_size()
        ref_w, ref_h = BUDGET_REFERENCE_VIEW
        return math.hypot(width, height) / math.hypot(ref_w, ref_h)

    def _auto_budget(self) -> int:
        """DEFAULT_LINE_BUDGET at the reference view size, proportional to the view's diagonal otherwise.

        A line covers pixels in proportion to the view's linear size and the view has area for
        (linear size)^2 of them, so lines in proportion to the diagonal keep the picture equally
        dense at every size, and their fill cost (the bulk of a software-rendered frame) grows with
        the area like the rest of the frame. Rounded to 50 so resizing rarely changes it.
        """
        budget = int(round(DEFAULT_LINE_BUDGET * self._density_scale() / 50.0) * 50)
        return max(BUDGET_LIMITS[0], min(BUDGET_LIMITS[1], budget))

    def _set_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.status_text_changed.emit(text)
            self._mark_panels("status")

    # ------------------------------------------------------------------ options
    def set_connection_mode(self, mode: str) -> None:
        """'significant' (coloured significant lines only), 'all' (plus every other line in dim grey), 'none'."""
        if mode not in CONNECTION_MODES:
            raise ValueError(f"connection mode must be one of {CONNECTION_MODES}, got {mode!r}")
        self._mode = mode
        if self.layout_ is not None:
            self._update_lines()

    def set_palette(self, palette: str) -> None:
        """'default' or 'colorblind' (see core.colors)."""
        if palette not in colors.PALETTES:
            raise ValueError(f"palette must be one of {colors.PALETTES}, got {palette!r}")
        self._palette = palette
        if self.layout_ is not None:
            if self.view is not None:
                self._color_filters()
                self._mark_panels("legend")
            self._recolor()

    def set_presentation(self, on: bool) -> None:
        """Presentation mode: thicker lines and larger labels (for projectors)."""
        self._presentation = bool(on)
        if self.view is not None:
            self.lines.set_layer("base", width=1.5 if on else 1.0)
            self.lines.set_layer("shown", width=2.6 if on else 1.4)
            self.lines.set_layer("highlight", width=4.0 if on else 2.5)
            self.overlay.scale = 1.25 if on else 1.0
            if self.layout_ is not None:
                self._update_labels()
                if getattr(self, "_framed_view", None):
                    self.preset_view(self._framed_view)
            self._mark_panels("status", "legend", "info")

    # ------------------------------------------------------------------ camera
    def reset_view(self) -> None:
        """The default oblique camera, framing the whole network."""
        self.preset_view("default")

    def preset_view(self, name: str) -> None:
        """'default', 'front' (look along the data flow at the input), 'side' or 'top'; framed to fit."""
        if name not in PRESET_VIEWS:
            raise ValueError(f"view must be one of {tuple(PRESET_VIEWS)}, got {name!r}")
        if self.view is None or self.layout_ is None:
            return
        self._framed_view = name
        azimuth, elevation = PRESET_VIEWS[name]
        center, distance = self._frame(azimuth, elevation)
        self.view.opts["fov"] = FOV
        self.view.setCameraPosition(pos=QtGui.QVector3D(*map(float, center)), azimuth=azimuth, elevation=elevation,
                                    distance=distance)

    def front_view(self) -> None:
        self.preset_view("front")

    def side_view(self) -> None:
        self.preset_view("side")

    def top_view(self) -> None:
        self.preset_view("top")

    def _frame(self, azimuth: float, elevation: float) -> tuple[np.ndarray, float]:
        """(centre, distance) at which everything drawn fills about 90% of the view, centred.

        Projects the cube centres and label anchors (not the bounding box, whose empty corners
        would leave the network small) with the camera's own perspective, and iterates: distance
        by bisection for the current centre, then the centre moves to the middle of the footprint.
        """
        lay = self.layout_
        anchors = np.array([b.label_anchor for b in lay.layers.values()], np.float32)
        # Left-aligned labels run to the right of their anchor: keep room for about 20 characters.
        text_ends = np.array([np.add(b.label_anchor, (24.0, 0.0, 0.0)) for b in lay.layers.values()
                              if b.label_align == "left"], np.float32).reshape(-1, 3)
        pts = np.concatenate([lay.centers[:: max(1, lay.cube_count // 4000)], lay.filter_centers,
                              anchors, text_ends]).astype(np.float64)
        az, el = math.radians(azimuth), math.radians(elevation)
        back = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        right = np.cross(np.array([0.0, 0.0, 1.0]), back)
        if np.linalg.norm(right) < 1e-6:  # looking straight down: pyqtgraph's screen-right for this azimuth
            right = np.array([-math.sin(az), math.cos(az), 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        width, height = max(self.view.width(), 1), max(self.view.height(), 1)
        if width < 50 or height < 50:  # not laid out yet: assume a 16:10 area
            width, height = 1600, 1000
        tan_x = math.tan(math.radians(FOV) / 2.0)
        tan_y = tan_x * height / width
        center = lay.center.astype(np.float64)

        def extent(c: np.ndarray, d: float):
            rel = pts - c
            z = d - rel @ back
            if np.any(z <= 1e-3):
                return None
            return (rel @ right) / (z * tan_x), (rel @ up) / (z * tan_y)

        fill = 0.9
        dist = 10.0
        for _ in range(3):
            lo, hi = 1.0, 1e5
            for _ in range(40):
                mid = math.sqrt(lo * hi)
                e = extent(center, mid)
                if e is None or max(np.abs(e[0]).max(), np.abs(e[1]).max()) > fill:
                    lo = mid
                else:
                    hi = mid
            dist = hi
            nx, ny = extent(center, dist)
            cx, cy = (nx.max() + nx.min()) / 2.0, (ny.max() + ny.min()) / 2.0
            center = center + right * cx * dist * tan_x + up * cy * dist * tan_y
        return center, dist

    def set_auto_rotate(self, on: bool) -> None:
        """Slowly orbit the camera (stops when the user drags or zooms)."""
        if self.view is None:
            return
        if on:
            self._rotate_timer.start()
        else:
            self._rotate_timer.stop()

    @property
    def auto_rotating(self) -> bool:
        return self._rotate_timer.isActive()

    def _on_rotate_tick(self) -> None:
        if self.view is not None and self.isVisible():
            self.view.orbit(AUTO_ROTATE_DEG, 0.0)

    def _on_interacted(self) -> None:
        # The user placed the camera: resizing the window must not undo that.
        self._framed_view = None

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._budget_auto and self.view is not None:
            budget = self._auto_budget()
            if budget != self.line_budget:
                self.line_budget = budget
                if self.layout_ is not None:
                    self._recolor()
        # Until the user moves the camera, keep the network framed to the area it actually has
        # (the first framing happens before the window's layout has settled).
        if getattr(self, "_framed_view", None) and not self._rotate_timer.isActive():
            self.preset_view(self._framed_view)

    # ------------------------------------------------------------------ picking
    def pick(self, x: float, y: float) -> int | None:
        """Global cube index under widget pixel (x, y) (the nearest to the camera), or None."""
        if self.view is None or self.layout_ is None:
            return None
        view = self.view
        w, h = max(view.width(), 1), max(view.height(), 1)
        region = (0, 0, w, h)
        proj = np.array(view.projectionMatrix(region, region).data(), dtype=np.float64).reshape(4, 4).T
        model_view = np.array(view.viewMatrix().data(), dtype=np.float64).reshape(4, 4).T
        mvp = proj @ model_view
        pts = self.layout_.centers.astype(np.float64)
        clip = pts @ mvp[:3, :3].T + mvp[:3, 3]
        wcol = pts @ mvp[3, :3] + mvp[3, 3]
        front = wcol > 1e-6
        wsafe = np.where(front, wcol, 1.0)
        sx = (clip[:, 0] / wsafe + 1.0) * 0.5 * w
        sy = (1.0 - clip[:, 1] / wsafe) * 0.5 * h
        # Half the cube's projected size in pixels (+1 px tolerance so tiny far cubes stay pickable).
        radius = 0.5 * self.layout_.sizes * proj[0, 0] * 0.5 * w / wsafe + 1.0
        hit = front & (np.abs(sx - x) <= radius) & (np.abs(sy - y) <= radius)
        candidates = np.flatnonzero(hit)
        if candidates.size == 0:
            return None
        return int(candidates[np.argmin(wcol[candidates])])

    def screen_position(self, layer: str, index: tuple[int, ...]) -> tuple[float, float] | None:
        """Widget pixel position of a neuron's centre (for tests and tours), or None without GL."""
        if self.view is None or self.layout_ is None:
            return None
        cube = self.layout_.cube_of(layer, index)
        view = self.view
        w, h = max(view.width(), 1), max(view.height(), 1)
        region = (0, 0, w, h)
        proj = np.array(view.projectionMatrix(region, region).data(), dtype=np.float64).reshape(4, 4).T
        model_view = np.array(view.viewMatrix().data(), dtype=np.float64).reshape(4, 4).T
        p = proj @ model_view @ np.r_[self.layout_.centers[cube].astype(np.float64), 1.0]
        return float((p[0] / p[3] + 1.0) * 0.5 * w), float((1.0 - p[1] / p[3]) * 0.5 * h)

    def select_neuron(self, layer: str | None, index: tuple[int, ...] = ()) -> None:
        """Pick a neuron programmatically (None clears); emits neuron_picked like a click."""
        if self.layout_ is None:
            return
        if layer is None:
            self._picked = None
        else:
            self._picked = self.layout_.cube_of(layer, tuple(index))
            name, idx = self.layout_.locate(self._picked)
            self.neuron_picked.emit(name, idx, float(self._values[self._picked]))
        if self.view is not None:
            self._update_highlight()

    def _on_clicked(self, x: float, y: float) -> None:
        cube = self.pick(x, y)
        if cube is None:
            self._picked = None
            self._update_highlight()
            return
        self._picked = cube
        name, idx = self.layout_.locate(cube)
        self._update_highlight()
        self.neuron_picked.emit(name, idx, float(self._values[cube]))

    def _on_hovered(self, x: float, y: float) -> None:
        cube = self.pick(x, y)
        self._hover_pos = (x, y)
        if cube == self._hovered:
            return
        self._hovered = cube
        if cube is None:
            self.neuron_hovered.emit("", (), 0.0)
        else:
            name, idx = self.layout_.locate(cube)
            self.neuron_hovered.emit(name, idx, float(self._values[cube]))
        self._mark_panels("info")

    def _on_left(self) -> None:
        if self._hovered is not None:
            self._hovered = None
            self.neuron_hovered.emit("", (), 0.0)
            self._mark_panels("info")

    def _update_highlight(self) -> None:
        lay = self.layout_
        cube = self._picked
        self._mark_panels("info")
        if cube is None or lay is None:
            self.lines.set_layer("highlight", positions=np.zeros((0, 3), np.float32), colors=np.zeros((0, 4), np.uint8))
            return
        edges = lay.incoming(cube)
        src = lay.edge_src[edges]
        dst = lay.centers[cube]
        seg = np.empty((edges.size * 2, 3), dtype=np.float32)
        seg[0::2] = lay.centers[src]
        seg[1::2] = dst
        norm = self._edge_norm[edges]
        m = float(np.abs(norm).max()) if norm.size else 0.0
        rgba = colors.signed_colors(norm / m if m > 0 else norm, 1.0, self._palette)
        rgba[:, 3] = 255
        # A bright outline around the picked cube (12 box edges).
        s = float(lay.sizes[cube]) * 0.72
        corners = np.array([[x, y, z] for x in (-s, s) for y in (-s, s) for z in (-s, s)], dtype=np.float32) + dst
        pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7)]
        box = corners[np.array(pairs).reshape(-1)]
        box_rgba = np.tile(np.array([[255, 255, 255, 255]], np.uint8), (box.shape[0], 1))
        self.lines.set_layer("highlight", positions=np.concatenate([seg, box]),
                             colors=np.concatenate([np.repeat(rgba, 2, axis=0), box_rgba]))

    # ------------------------------------------------------------------ labels, filters, panels
    def _update_labels(self) -> None:
        from .scene_items import Label

        lay = self.layout_
        labels = []
        for spec in lay.specs:
            box = lay.layers[spec.name]
            labels.append(Label(_layer_title(spec, lay, compact=self._presentation), box.label_anchor, 1.05, bold=True,
                                align=box.label_align))
        for text, pos in lay.unit_labels:
            labels.append(Label(text, pos, 0.95, color=(200, 205, 215)))
        self.overlay.set_labels(labels)

    def _color_filters(self) -> None:
        lay = self.layout_
        n = lay.filter_centers.shape[0]
        rgba = np.empty((n, 4), dtype=np.uint8)
        rgba[:] = (70, 72, 80, 255)
        for name, sl in lay.filter_slices.items():
            w = self._filters.get(name)
            if w is not None and w.size == sl.stop - sl.start:
                colors.signed_colors(np.asarray(w, np.float32).reshape(-1), None, self._palette, out=rgba[sl])
        self.filter_cells.set_colors(rgba)

    def _mark_panels(self, *names: str) -> None:
        """Re-render these screen-space panels ('status', 'legend', 'info') before the next frame."""
        if self.view is not None:
            self._dirty_panels.update(names)
            self.overlay.update()

    def _render_panels(self) -> None:
        """Rasterise the dirty panels into images for the overlay (CPU, only when their content changed)."""
        from .scene_items import render_text_panel

        dirty, self._dirty_panels = self._dirty_panels, set()
        if not dirty:
            return
        scale = self.overlay.scale
        dpr = self.view.devicePixelRatioF()
        font = QtGui.QFont(self.view.font())
        font.setPointSizeF(9.0 * scale)
        font.setBold(False)
        metrics = QtGui.QFontMetricsF(font)
        line_h = metrics.height()
        pad = 10.0 * scale

        if "status" in dirty:  # top left
            text = self._status

            def draw_status(painter: QtGui.QPainter) -> None:
                painter.setFont(font)
                painter.setPen(QtGui.QColor(200, 204, 214))
                painter.drawText(QtCore.QPointF(0, metrics.ascent()), text)

            image = render_text_panel(draw_status, metrics.horizontalAdvance(text) + 4, line_h + 2, dpr)
            self.overlay.set_panel("status", image, "top-left", (pad, pad))

        if "legend" in dirty:  # bottom left: activation ramp with its 'zero' swatch, contribution ramp, dim line
            bar_w, bar_h = 150.0 * scale, 10.0 * scale
            act = colors.activation_lut(self._palette)
            sig = colors.signed_lut(self._palette)
            rows = [
                ("Activation: low \u2192 high", act[1:], True),
                ("Contribution: \u2212 \u2192 +  (activation \u00d7 weight)", sig, False),
            ]
            last = "insignificant ('all' mode)  \u00b7  filters: weight \u2212/+"
            text_w = max([metrics.horizontalAdvance(t) for t, _, _ in rows]
                         + [bar_h * 3.6 + metrics.horizontalAdvance(last)])
            panel_w = max(bar_w + 110 * scale, text_w) + 12
            panel_h = 3 * (line_h + bar_h + 6 * scale) + 12

            def draw_legend(painter: QtGui.QPainter) -> None:
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

            image = render_text_panel(draw_legend, panel_w, panel_h, dpr)
            self.overlay.set_panel("legend", image, "bottom-left", (pad - 6, pad - 6))

        if "info" in dirty:  # bottom right: picked / hovered neuron
            lines = []
            if self.layout_ is not None and self._picked is not None:
                lines.append("Picked: " + self._describe(self._picked))
            if self.layout_ is not None and self._hovered is not None and self._hovered != self._picked:
                lines.append(self._describe(self._hovered))
            if not lines:
                self.overlay.set_panel("info", None)
            else:
                box_w = max(metrics.horizontalAdvance(t) for t in lines) + 12
                box_h = len(lines) * line_h + 10

                def draw_info(painter: QtGui.QPainter) -> None:
                    painter.setFont(font)
                    painter.setPen(QtCore.Qt.PenStyle.NoPen)
                    painter.setBrush(QtGui.QColor(10, 11, 16, 190))
                    painter.drawRoundedRect(QtCore.QRectF(0, 0, box_w, box_h), 5, 5)
                    painter.setPen(QtGui.QColor(235, 238, 245))
                    for i, t in enumerate(lines):
                        painter.drawText(QtCore.QPointF(6, 5 + metrics.ascent() + i * line_h), t)

                image = render_text_panel(draw_info, box_w, box_h, dpr)
                self.overlay.set_panel("info", image, "bottom-right", (pad, pad))

    def _describe(self, cube: int) -> str:
        lay = self.layout_
        name, idx = lay.locate(cube)
        box = lay.layers[name]
        if len(idx) == 3:
            where = f"channel {idx[0]}, row {idx[1]}, col {idx[2]}" if box.shape[0] > 1 else f"row {idx[1]}, col {idx[2]}"
        else:
            where = f"digit {idx[0]}" if box.kind == "output" else f"unit {idx[0]}"
        what = "probability" if box.kind == "output" else ("pixel" if box.kind == "input" else "activation")
        text = f"{name} {where}: {what} {self._values[cube]:.3f}"
        fan_in = lay.fan_in(name)
        if fan_in:
            edges = lay.incoming(cube)
            sig = int(np.count_nonzero(self._significant[edges]))
            text += f"  \u00b7  {sig} of {fan_in} inputs significant"
        return text


def _layer_title(spec, lay: SceneLayout, compact: bool = False) -> str:
    """The layer's label; ``compact`` (presentation mode) keeps only name and shape, so that the larger
    labels of neighbouring layers do not run into each other."""
    shape = spec.shape
    if compact:
        if spec.kind == "output":
            return "output 0-9"
        dims = "\u00d7".join(str(n) for n in shape)
        return f"{spec.name} \u00b7 {dims}"
    if spec.kind == "input":
        return f"input {shape[1]}\u00d7{shape[2]}"
    if spec.kind == "conv":
        cin = lay.layers[spec.source].shape[0]
        return (f"{spec.name}: {shape[0]} maps {shape[1]}\u00d7{shape[2]}  \u00b7  "
                f"{shape[0]}\u00d7{cin} filters {spec.kernel}\u00d7{spec.kernel}")
    if spec.kind == "pool":
        return f"{spec.name}: max {spec.kernel}\u00d7{spec.kernel} \u2192 {shape[0]}\u00d7{shape[1]}\u00d7{shape[2]}"
    if spec.kind == "dense":
        return f"{spec.name}: {shape[0]} units"
    return "output: digits 0-9"


def _conv_weights(loaded, lay: SceneLayout) -> dict[str, np.ndarray]:
    """conv layer name -> (Cout, Cin, k, k) float32 weights of a LoadedModel (empty if unavailable)."""
    out: dict[str, np.ndarray] = {}
    model = getattr(loaded, "model", None)
    body = getattr(model, "body", None)
    if body is None:
        return out
    for spec in lay.specs:
        if spec.kind == "conv" and spec.weight_module is not None:
            weight = getattr(body[spec.weight_module], "weight", None)
            if weight is not None:
                out[spec.name] = weight.detach().cpu().numpy().astype(np.float32)
    return out
