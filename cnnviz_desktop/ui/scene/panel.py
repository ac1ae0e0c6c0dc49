"""ScenePanel: the thin Qt adapter of the 3D network scene.

A QWidget holding a pyqtgraph ``GLViewWidget`` (or, without OpenGL, a text explaining why the 3D area
is empty). The decisions live in Qt-free core modules: geometry in core.layout (once per model),
colours and line selection in core.scene_style, camera maths, picking and framing in core.camera,
label placement in core.labels. This class wires them to the GL items of ui/gl and to the user's
mouse. :meth:`ScenePanel.apply` only recolours: one uint8 colour upload for all cubes and one upload
of the drawn lines, never a Python object per neuron or per line.

Camera: left drag rotates, right drag (or middle drag, or Ctrl + left drag) pans, the wheel zooms;
a click picks a neuron (signal ``neuron_picked``), hovering shows its value.

Surface mode (:meth:`ScenePanel.set_surface_mode`): the conv and pool maps are drawn as activation
surfaces (ui/gl/surfaces.py, maths in core.surfaces) instead of cubes; the input, dense and output layers
stay cubes, and the connections follow the connection mode, ending at each map's zero level.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6 import QtCore, QtGui, QtWidgets

from ...core import camera as cam
from ...core import colors, scene_style, surfaces
from ...core.architecture import Architecture
from ...core.labels import layer_titles
from ...core.layout import SceneLayout, layout
from ...core.scene_style import CONNECTION_MODES, DEFAULT_LINE_BUDGET
from . import panels
from .view import gl_unavailable_reason, make_view

PRESET_VIEWS = cam.PRESET_VIEWS
FOV = cam.FOV
AUTO_ROTATE_MS = 33
AUTO_ROTATE_DEG = 0.35
DIGIT_PX = 17  # output digit font size in pixels (digit glyphs ~12.4 px tall); x1.6 in presentation
PRESENTATION_TEXT_SCALE = 1.6  # every text of the scene (labels, status, legend), as the rest of the window
FRAME_MARGIN = 10.0  # pixels kept free around the framed network
STATUS_RESERVE = 22.0  # the status line's height at the top: the framed network stays below it
SURFACE_STATUS = "Activation surfaces (height = activation)  ·  "


class ScenePanel(QtWidgets.QWidget):
    """The 3D scene of one network.

    Signals:
        neuron_picked(layer, index, value): a neuron was clicked (index: (c, y, x) or (n,)).
        neuron_hovered(layer, index, value): the pointer is over a neuron ('' and () when it leaves).
        status_text_changed(text): e.g. '1,234 of 73,024 connections shown'.
        frame_rendered(): the GL view swapped a frame (never emitted in the fallback).
        auto_rotate_changed(on): auto-rotation started or stopped (also when a drag or zoom stops it).

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
    auto_rotate_changed = QtCore.Signal(bool)

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
        self._status = "No model loaded"
        self._shown_edges = 0
        self._framed_view: str | None = None
        self._filters: dict[str, np.ndarray] = {}
        self._cube_rgba = np.zeros((0, 4), dtype=np.uint8)
        self._values = np.zeros(0, dtype=np.float32)  # the value shown by each cube (for picking)
        self._contrib = np.zeros(0, dtype=np.float32)
        self._edge_norm = np.zeros(0, dtype=np.float32)
        self._significant = np.zeros(0, dtype=bool)
        self._edge_alpha = np.zeros(0, dtype=np.float32)
        self.line_budget = DEFAULT_LINE_BUDGET  # the per-layer budget in effect (0: no limit)
        self._budget_auto = True
        self.cube_style = cube_style
        self._surface_mode = False
        self._surface_grids: dict = {}  # layer -> core.surfaces.SurfaceGrid, built once per model
        self._surface_items: dict = {}  # layer -> ui.gl.SurfaceMesh
        self._surface_buffers: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # layer -> (heights, rgba)
        self.surface_generation = 0  # surface geometry builds (once per model while the mode is on)
        self._lifted_centers: np.ndarray | None = None  # cube centres on the raised surfaces (picking)

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
            self._status = "3D view unavailable (no OpenGL): drawing and predictions still work"
        else:
            self._build_view()
            box.addWidget(self.view)
        self._rotate_timer = QtCore.QTimer(self)
        self._rotate_timer.setInterval(AUTO_ROTATE_MS)
        self._rotate_timer.timeout.connect(self._on_rotate_tick)

    # ------------------------------------------------------------------ construction
    def _build_view(self) -> None:
        from ..gl import HighlightLines, InstancedBoxes, LineBatch, OverlayItem

        self.view = make_view()
        self.view.setBackgroundColor(tuple(int(c * 255) for c in colors.BACKGROUND))
        self.view.opts["fov"] = FOV
        self.cubes = InstancedBoxes(style=self.cube_style)
        self.filter_cells = InstancedBoxes(aspect=(1.0, 0.25, 1.0), style=self.cube_style)
        self.lines = LineBatch()
        self.highlight = HighlightLines(self.lines)
        self.overlay = OverlayItem()
        self._dirty_panels = {"status", "legend", "info"}
        self.overlay.before_paint = self._render_panels
        for item in (self.lines, self.cubes, self.filter_cells, self.highlight, self.overlay):
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

    def label_rects(self) -> list[tuple[str, tuple[float, float, float, float]]]:
        """(text, (x, y, w, h)) in view pixels of every label drawn in the last rendered frame."""
        return [] if self.view is None else list(self.overlay.placed)

    # ------------------------------------------------------------------ model
    def set_model(self, model: Any, filters: dict[str, np.ndarray] | None = None) -> None:
        """Build the geometry of a network once (also when the user switches model).

        model: a weights.LoadedModel (its conv weights colour the filter grids), or an Architecture
            with optional ``filters``: conv layer name -> (Cout, Cin, k, k) weights.
        """
        arch = model if isinstance(model, Architecture) else model.arch
        if self.layout_ is not None and arch == getattr(self, "_arch", None) and not isinstance(model, Architecture):
            # The same network with new weights (live training, or the same file again): recolour the filter
            # grids only; the geometry, the camera, the pick and the shown snapshot stay until the next one.
            self._filters = scene_style.conv_filters(getattr(model, "model", None), self.layout_.specs)
            if self.view is not None:
                self._color_filters()
            return
        self._arch = arch
        self.layout_ = lay = layout(arch)
        if isinstance(model, Architecture):
            self._filters = dict(filters or {})
        else:
            self._filters = scene_style.conv_filters(getattr(model, "model", None), lay.specs)
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
            self.lines.set_layer("base", positions=lay.centers[lay.base_lines.reshape(-1)])
            self.lines.set_layer("shown", positions=np.zeros((0, 3), np.float32), colors=np.zeros((0, 4), np.uint8))
            self.lines.set_layer("highlight", positions=np.zeros((0, 3), np.float32),
                                 colors=np.zeros((0, 4), np.uint8))
            self._update_labels()
            self._color_filters()
        self._surface_grids = {}
        if self._surface_mode:
            self._build_surfaces()
        self._recolor()
        if self.view is None:  # tell a status bar connected after construction what the area is
            self.status_text_changed.emit(self._status)
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
            if a is None or a.size != box.size:
                return False
        self._snapshot = snapshot
        self._recolor()
        return True

    def _recolor(self) -> None:
        lay = self.layout_
        if lay is None:
            self._set_status("No model loaded")
            return
        scene_style.cube_colors(lay, self._snapshot, self._palette, self._cube_rgba, self._values)
        if self._surface_mode:
            self._apply_surfaces()
        scene_style.edge_state(lay, self._snapshot, self.line_budget, self._view_size(), self._contrib,
                               self._edge_norm, self._significant, self._edge_alpha)
        self._update_lines()
        if self.view is not None:
            self.cubes.set_colors(self._cube_rgba)
            self._update_highlight()

    def _update_lines(self) -> None:
        lay = self.layout_
        mode = self._mode
        if self.view is None:
            self._set_status("3D view unavailable (no OpenGL): drawing and predictions still work")
            return
        if mode == "none":
            shown = np.zeros(0, dtype=np.int64)
        else:
            shown = scene_style.drawn_edges(lay, self._significant, self._edge_norm, self.line_budget)
        self._shown_edges = int(shown.size) if mode != "all" else len(lay.base_lines)
        rgba = scene_style.line_colors(self._edge_norm[shown], self._edge_alpha[shown], self._palette)
        positions = lay.centers[self._endpoints[shown].reshape(-1)]
        self.lines.set_layer("shown", positions=positions, colors=np.repeat(rgba, 2, axis=0), visible=mode != "none")
        self.lines.set_layer("base", visible=mode == "all")
        sig = int(np.count_nonzero(self._significant))
        text = scene_style.status_text(mode, self._shown_edges, lay.edge_count, sig, lay)
        self._set_status(SURFACE_STATUS + text if self._surface_mode else text)

    def set_line_budget(self, per_layer: int | str | None) -> None:
        """Draw at most this many significant lines per layer (the strongest); None or 0: all of them;
        'auto' (the default): DEFAULT_LINE_BUDGET scaled with the view's size (see scene_style.auto_budget)."""
        self._budget_auto = per_layer == "auto"
        budget = self._auto_budget() if self._budget_auto else int(per_layer or 0)
        if budget != self.line_budget:
            self.line_budget = budget
            if self.layout_ is not None:
                self._recolor()

    def _view_size(self) -> tuple[int, int]:
        """The GL view's size in pixels (the reference size while the view is not laid out yet)."""
        if self.view is None:
            return scene_style.BUDGET_REFERENCE_VIEW
        # The panel's own size: the view fills it (no margins), and in the panel's resizeEvent the
        # view has not been resized yet.
        width, height = self.width(), self.height()
        return (width, height) if width >= 50 and height >= 50 else scene_style.BUDGET_REFERENCE_VIEW

    def _auto_budget(self) -> int:
        return scene_style.auto_budget(self._view_size())

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
            self.lines.set_layer("shown", width=2.2 if on else 1.2)
            self.lines.set_layer("highlight", width=4.0 if on else 2.5)
            self.overlay.scale = PRESENTATION_TEXT_SCALE if on else 1.0
            if self.layout_ is not None:
                self._update_labels()
                if self._framed_view:
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
        camera = self.framing(name)
        self.view.opts["fov"] = camera.fov
        self.view.setCameraPosition(pos=QtGui.QVector3D(*camera.center), azimuth=camera.azimuth,
                                    elevation=camera.elevation, distance=camera.distance)

    def front_view(self) -> None:
        self.preset_view("front")

    def side_view(self) -> None:
        self.preset_view("side")

    def top_view(self) -> None:
        self.preset_view("top")

    def framing_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(points (N, 3), pads (N, 4) px) the framing keeps in view: cubes, filter cells, and every
        label anchor with the extent of its shortest text around it."""
        lay = self.layout_
        cubes = np.concatenate([lay.centers[:: max(1, lay.cube_count // 4000)], lay.filter_centers])
        labels = self.overlay.labels if self.view is not None else []
        sizes = self.overlay.label_sizes(labels) if labels else []
        anchors, pads = [], []
        for label, variants in zip(labels, sizes):
            w, h = variants[-1]
            anchors.append(label.position)
            if label.align == "left":
                pads.append((0.0, w, h / 2, h / 2))
            elif label.align == "above":
                pads.append((w / 2, w / 2, h, 0.0))
            elif label.align == "below":
                pads.append((w / 2, w / 2, 0.0, h))
            else:
                pads.append((w / 2, w / 2, h / 2, h / 2))
        points = np.concatenate([cubes, np.array(anchors, np.float64).reshape(-1, 3)])
        pad = np.concatenate([np.zeros((cubes.shape[0], 4)), np.array(pads, np.float64).reshape(-1, 4)])
        return points, pad

    def framing(self, name: str = "default", size: tuple[int, int] | None = None) -> cam.Camera:
        """The camera of preset view ``name`` framing the network (and its labels) in a view of ``size``
        (default: the current view size)."""
        azimuth, elevation = PRESET_VIEWS[name]
        width, height = size or self._view_size()
        points, pads = self.framing_points()
        pads[:, 2] += STATUS_RESERVE * self.overlay.scale  # nothing framed under the status line ...
        # ... nor under the legend (bottom left): the input map would sit in that corner.
        pads[:, 3] += panels.legend_height(panels.panel_font(self.view.font(), self.overlay.scale),
                                           self.overlay.scale)
        return cam.frame(points, azimuth, elevation, width, height, pads=pads, margin=FRAME_MARGIN, fov=FOV,
                         start=self.layout_.center)

    def set_auto_rotate(self, on: bool) -> None:
        """Slowly orbit the camera (a drag or a zoom stops it); emits auto_rotate_changed on a change."""
        on = bool(on) and self.view is not None
        if on == self._rotate_timer.isActive():
            return
        if on:
            self._rotate_timer.start()
        else:
            self._rotate_timer.stop()
        self.auto_rotate_changed.emit(on)

    @property
    def auto_rotating(self) -> bool:
        return self._rotate_timer.isActive()

    def _on_rotate_tick(self) -> None:
        if self.view is not None and self.isVisible():
            self.view.orbit(AUTO_ROTATE_DEG, 0.0)

    def _on_interacted(self) -> None:
        # The user placed the camera: resizing the window must not undo that, and rotation stops.
        self._framed_view = None
        self.set_auto_rotate(False)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._budget_auto and self.view is not None:
            budget = self._auto_budget()
            if budget != self.line_budget:
                self.line_budget = budget
                if self.layout_ is not None:
                    self._recolor()
        self._mark_panels("status")  # elided to the new width
        # Until the user moves the camera, keep the network framed to the area it actually has
        # (the first framing happens before the window's layout has settled).
        if self._framed_view and not self._rotate_timer.isActive():
            self.preset_view(self._framed_view)

    # ------------------------------------------------------------------ picking
    def mvp(self) -> tuple[np.ndarray, int, int]:
        """The view's model-view-projection matrix (4x4) and its size in pixels, as the GL items use them."""
        return self._mvp()

    def _mvp(self) -> tuple[np.ndarray, int, int]:
        """(world -> clip matrix the view draws with, width, height) in view pixels."""
        view = self.view
        w, h = max(view.width(), 1), max(view.height(), 1)
        region = (0, 0, w, h)
        proj = np.array(view.projectionMatrix(region, region).data(), dtype=np.float64).reshape(4, 4).T
        model_view = np.array(view.viewMatrix().data(), dtype=np.float64).reshape(4, 4).T
        return proj @ model_view, w, h

    def pick(self, x: float, y: float) -> int | None:
        """Global cube index under widget pixel (x, y) (the nearest to the camera), or None."""
        if self.view is None or self.layout_ is None:
            return None
        mvp, w, h = self._mvp()
        return cam.pick(self._pick_centers(), self.layout_.sizes, mvp, self.view.opts["fov"], w, h, x, y)

    def screen_position(self, layer: str, index: tuple[int, ...]) -> tuple[float, float] | None:
        """Widget pixel position of a neuron's centre (for tests and tours), or None without GL."""
        if self.view is None or self.layout_ is None:
            return None
        cube = self.layout_.cube_of(layer, index)
        mvp, w, h = self._mvp()
        xy = cam.project(self._pick_centers()[cube:cube + 1], mvp, w, h).xy[0]
        return float(xy[0]), float(xy[1])

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
        centers = self._pick_centers()  # in surface mode: on the raised surfaces
        dst = centers[cube]
        seg = np.empty((edges.size * 2, 3), dtype=np.float32)
        seg[0::2] = centers[src]
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
        from ..gl import Label

        lay = self.layout_
        labels = []
        last = len(lay.specs) - 1
        for i, spec in enumerate(lay.specs):
            box = lay.layers[spec.name]
            source = lay.layers[spec.source].shape[0] if spec.source else None
            texts = layer_titles(spec, source)
            if self._presentation:
                texts = texts[1:]  # larger labels: the compact form first
            # The ends of the network matter most (where the digit goes in, where the answer comes out).
            priority = 90 if i == last else 80 if i == 0 else 50 - i
            labels.append(Label(texts, box.label_anchor, 1.05, bold=True, align=box.label_align,
                                priority=priority))
        for text, pos in lay.unit_labels:
            # Digits stay under their own cube (a shift would name the wrong unit) or hide; the overlay
            # staggers the row when neighbours are too close and hides it when seen end-on (side view).
            labels.append(Label((text,), pos, pixel_size=DIGIT_PX, bold=True, color=(215, 220, 230),
                                priority=100, max_shift=4.0, max_dx=2.0, plate=False, row="digits"))
        self.overlay.set_labels(labels)

    def _color_filters(self) -> None:
        lay = self.layout_
        n = lay.filter_centers.shape[0]
        rgba = np.empty((n, 4), dtype=np.uint8)
        rgba[:] = (70, 72, 80, 255)
        for name, sl in lay.filter_slices.items():
            w = scene_style.filter_values(lay, name, self._filters.get(name))
            if w is not None:
                colors.signed_colors(w, None, self._palette, out=rgba[sl])
        self.filter_cells.set_colors(rgba)

    def _mark_panels(self, *names: str) -> None:
        """Re-render these screen-space panels ('status', 'legend', 'info') before the next frame."""
        if self.view is not None:
            self._dirty_panels.update(names)
            self.overlay.update()

    def _render_panels(self) -> None:
        """Rasterise the dirty panels into images for the overlay (CPU, only when their content changed)."""
        dirty, self._dirty_panels = self._dirty_panels, set()
        if not dirty:
            return
        scale = self.overlay.scale
        dpr = self.view.devicePixelRatioF()
        font = panels.panel_font(self.view.font(), scale)
        pad = 10.0 * scale
        if "status" in dirty:  # top left
            image = panels.status_image(self._status, font, dpr, max_width=self.view.width() - 2 * pad)
            self.overlay.set_panel("status", image, "top-left", (pad, pad))
        if "legend" in dirty:  # bottom left
            self.overlay.set_panel("legend", panels.legend_image(self._palette, font, scale, dpr), "bottom-left",
                                   (pad - 6, pad - 6))
        if "info" in dirty:  # bottom right: picked / hovered neuron
            lines = []
            if self.layout_ is not None and self._picked is not None:
                lines.append("Picked: " + self._describe(self._picked))
            if self.layout_ is not None and self._hovered is not None and self._hovered != self._picked:
                lines.append(self._describe(self._hovered))
            image = panels.info_image(lines, font, dpr) if lines else None
            self.overlay.set_panel("info", image, "bottom-right", (pad, pad))

    def _describe(self, cube: int) -> str:
        lay = self.layout_
        name, _ = lay.locate(cube)
        sig = None
        if lay.fan_in(name):
            sig = int(np.count_nonzero(self._significant[lay.incoming(cube)]))
        return scene_style.describe_neuron(lay, cube, float(self._values[cube]), sig)

    # ------------------------------------------------------------------ activation surfaces
    @property
    def surface_mode(self) -> bool:
        """True while the conv and pool maps are drawn as activation surfaces."""
        return self._surface_mode

    def set_surface_mode(self, on: bool) -> None:
        """Draw the conv and pool maps as activation surfaces (True) or as cubes (False)."""
        on = bool(on)
        if on == self._surface_mode:
            return
        self._surface_mode = on
        if self.layout_ is None:
            return
        if on and not self._surface_grids:
            self._build_surfaces()
        for item in self._surface_items.values():
            item.setVisible(on)
        self._recolor()

    def surface_heights(self, layer: str) -> np.ndarray | None:
        """(V,) float32 copy of the vertex heights layer ``layer``'s surface shows (world units; see
        core.surfaces.SurfaceGrid for the vertex order), or None when it has no surface."""
        buffers = self._surface_buffers.get(layer)
        return None if buffers is None else buffers[0].copy()

    def surface_rgba(self, layer: str) -> np.ndarray | None:
        """(V, 4) uint8 copy of the vertex colours of layer ``layer``'s surface, or None without one."""
        buffers = self._surface_buffers.get(layer)
        return None if buffers is None else buffers[1].copy()

    def surface_grid(self, layer: str):
        """The core.surfaces.SurfaceGrid of ``layer`` (None before surface mode was first switched on)."""
        return self._surface_grids.get(layer)

    @property
    def surface_items(self) -> dict:
        """layer -> its ui.gl.SurfaceMesh (empty without GL or before surface mode was first on)."""
        return dict(self._surface_items)

    def _pick_centers(self) -> np.ndarray:
        """Where each neuron is drawn: its cube centre, or in surface mode its point on the raised surface."""
        lifted = self._lifted_centers
        return lifted if self._surface_mode and lifted is not None else self.layout_.centers

    def _build_surfaces(self) -> None:
        """The surfaces' geometry of the current model, once per model (GL items are reused)."""
        self._surface_grids = surfaces.surface_grids(self.layout_)
        self._surface_buffers = {name: (np.zeros(g.vertex_count, np.float32),
                                        np.zeros((g.vertex_count, 4), np.uint8))
                                 for name, g in self._surface_grids.items()}
        self.surface_generation += 1
        self._lifted_centers = np.array(self.layout_.centers, dtype=np.float32)
        if self.view is None:
            return
        from ..gl import SurfaceMesh

        for name in list(self._surface_items):
            if name not in self._surface_grids:
                self.view.removeItem(self._surface_items.pop(name))
        for name, grid in self._surface_grids.items():
            item = self._surface_items.get(name)
            if item is None:
                item = self._surface_items[name] = SurfaceMesh()
                self.view.addItem(item)
            item.set_grid(grid.base, grid.faces, grid.direction)
            item.setVisible(self._surface_mode)

    def _apply_surfaces(self) -> None:
        """Per snapshot: heights and colours of every surface; the maps' cubes are hidden (alpha 0)."""
        lay = self.layout_
        snapshot = self._snapshot
        empty = snapshot is None or getattr(snapshot, "empty", False)
        lifted = self._lifted_centers
        for name, grid in self._surface_grids.items():
            heights, rgba = self._surface_buffers[name]
            act = None if empty else snapshot.activations.get(name)
            surfaces.surface_heights(grid, act, out=heights)
            surfaces.surface_colors(grid, act, self._palette, out=rgba)
            cubes = lay.layers[name].cubes
            self._cube_rgba[cubes, 3] = 0
            lifted[cubes] = lay.centers[cubes] + surfaces.cell_heights(grid, act)[:, None] * grid.direction
            item = self._surface_items.get(name)
            if item is not None:
                item.set_surface(heights, rgba)
