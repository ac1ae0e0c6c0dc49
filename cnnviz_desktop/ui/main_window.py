"""The main window: drawing grid (top left), 3D scene (centre), probability bars (top right).

The window is built without torch so that it appears at once; the model, the worker and the 3D scene are
attached by :meth:`MainWindow.attach_model` once they are loaded (app.py does that off the GUI thread).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QFont, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel,
    QMainWindow, QMessageBox, QPlainTextEdit, QSlider, QToolBar, QToolButton, QVBoxLayout, QWidget,
)

from ..core import colors
from ..core.architecture import ARCHITECTURES, describe, last_conv_layer, receptive_field
from ..core.canvas import CanvasModel
from .canvas import CanvasWidget
from .help import ShortcutOverlay, how_to_use_widget
from .probabilities import ProbabilityPanel

PRESENTATION_STYLE = """
QWidget { background: #000000; color: #ffffff; }
QToolBar { background: #101010; border: none; spacing: 10px; }
QToolButton { padding: 6px 10px; border: 2px solid #444; border-radius: 4px; color: #ffffff; }
QToolButton:checked { background: #ffb000; color: #000000; border-color: #ffb000; }
QStatusBar QLabel { color: #ffffff; }
QDockWidget::title { background: #181818; padding: 6px; }
QMenuBar, QMenu { background: #101010; color: #ffffff; }
QMenu::item:selected, QMenuBar::item:selected { background: #ffb000; color: #000000; }
"""


class MainWindow(QMainWindow):
    """Signals: request_ready(object) carries an AnalysisRequest for the worker; model_requested(str)
    asks the app to load another model (name or path)."""

    request_ready = Signal(object)
    model_requested = Signal(str)
    snapshot_applied = Signal(object)

    def __init__(self, settings: QSettings, gl: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self._gl = gl
        self.setWindowTitle("CNNViz Desktop")
        self.setObjectName("MainWindow")
        self.loaded = None  # LoadedModel once attached
        self.scene = None
        self.snapshot = None
        self._next_id = 0
        self._applied_id = -1
        self._target: int | None = None
        self._channel: int | None = None  # None = Both (all channels)
        self._map_kind = "gradcam"
        self._palette = "default"
        self._presentation = False
        self._normal_font = QFont(QApplication.font())
        self._frames: list[float] = []
        self._fps = 0.0
        self._single_key_actions: list[QAction] = []

        self.canvas = CanvasWidget(CanvasModel())
        self.canvas.canvas_changed.connect(self._on_canvas_changed)
        self.canvas.stroke_finished.connect(self._update_undo_actions)
        self.probabilities = ProbabilityPanel()
        self.probabilities.class_clicked.connect(self._on_class_clicked)
        self._placeholder = QLabel("Loading the network ...")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setStyleSheet("color: #9aa3b2; background: #0d0f13;")
        self.setCentralWidget(self._placeholder)

        self._build_docks()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._build_status_bar()
        self.overlay = ShortcutOverlay(self)
        self._fps_timer = QTimer(self, interval=1000, timeout=self._update_fps)
        self._fps_timer.start()
        self._restore_settings()

    # ------------------------------------------------------------------ layout
    def _build_docks(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.canvas, 1)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Overlay"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(75)
        self.opacity_slider.setToolTip("Grad-CAM overlay opacity (Ctrl+Up / Ctrl+Down)")
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_overlay_opacity(v / 100))
        controls.addWidget(self.opacity_slider, 1)
        column.addLayout(controls)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Brush"))
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(5, 40)
        self.brush_slider.setValue(int(self.canvas.model.radius * 10))
        self.brush_slider.setToolTip("Brush radius in cells ([ and ])")
        self.brush_slider.valueChanged.connect(lambda v: self.canvas.model.set_radius(v / 10))
        controls.addWidget(self.brush_slider, 1)
        column.addLayout(controls)
        cam_row = QHBoxLayout()
        self.map_combo = QComboBox()
        self.map_combo.addItem("Grad-CAM", "gradcam")
        self.map_combo.addItem("HiResCAM", "hirescam")
        self.map_combo.setToolTip("Grad-CAM: channel-averaged gradients x activations (M switches).\n"
                                  "HiResCAM: exact gradient x activation per cell.")
        self.map_combo.currentIndexChanged.connect(lambda _: self._set_map_kind(self.map_combo.currentData()))
        cam_row.addWidget(self.map_combo)
        self.target_label = QLabel("explains: the prediction")
        self.target_label.setWordWrap(True)
        self.target_label.setToolTip("Click a probability bar (or Ctrl+digit) to explain another digit; P goes back.")
        cam_row.addWidget(self.target_label, 1)
        column.addLayout(cam_row)
        self.canvas_dock = QDockWidget("Drawing", self)
        self.canvas_dock.setObjectName("DrawingDock")
        self.canvas_dock.setWidget(left)
        self.canvas_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.canvas_dock)

        self.prob_dock = QDockWidget("Probabilities", self)
        self.prob_dock.setObjectName("ProbabilitiesDock")
        self.prob_dock.setWidget(self.probabilities)
        self.prob_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.prob_dock)

        self.help_dock = QDockWidget("How to use", self)
        self.help_dock.setObjectName("HelpDock")
        self.help_dock.setWidget(how_to_use_widget())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.help_dock)
        self.splitDockWidget(self.prob_dock, self.help_dock, Qt.Orientation.Vertical)
        self._default_dock_sizes()

    def _default_dock_sizes(self) -> None:
        """Side panels at a useful size, the 3D scene taking the rest (used until the user resizes)."""
        if self._presentation:
            # The 3D scene is what the room watches: give it at least half the width.
            width = self.width()
            self.resizeDocks([self.canvas_dock, self.prob_dock], [max(240, int(width * 0.26)),
                                                                   max(200, int(width * 0.2))],
                             Qt.Orientation.Horizontal)
            return
        width = max(self.width(), 1200)
        side = max(300, min(460, width // 4))
        self.resizeDocks([self.canvas_dock, self.prob_dock], [side + 40, side], Qt.Orientation.Horizontal)
        self.resizeDocks([self.prob_dock, self.help_dock], [max(240, self.height() // 3), self.height()],
                         Qt.Orientation.Vertical)

    def _action(self, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False,
                single_key: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            # Work whatever has focus (the grid, the 3D view, a dock), not only the focused widget.
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        if tip:
            action.setToolTip(f"{tip} ({action.shortcut().toString()})" if shortcut else tip)
            action.setStatusTip(tip)
        action.setCheckable(checkable)
        if checkable:
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        if single_key:
            self._single_key_actions.append(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a("&Open image...", self.open_image, "Ctrl+O", "Load a PNG/JPEG as the drawing")
        self.act_save = a("&Save drawing...", self.save_drawing, "Ctrl+S", "Save the drawing as a PNG")
        self.act_quit = a("&Quit", self.close, "Ctrl+Q", "Quit CNNViz")
        self.act_clear = a("&Clear", self.clear_canvas, ["Delete", "Backspace"], "Clear the drawing",
                           single_key=True)
        self.act_undo = a("&Undo stroke", self.undo, "Ctrl+Z", "Undo the last stroke")
        self.act_redo = a("&Redo stroke", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "Redo the stroke")
        self.act_brush_down = a("Smaller brush", lambda: self._nudge_brush(-2), "[", "Smaller brush", single_key=True)
        self.act_brush_up = a("Larger brush", lambda: self._nudge_brush(2), "]", "Larger brush", single_key=True)
        self.act_overlay = a("Grad-CAM &overlay", self._set_overlay_visible, "H", "Show or hide the Grad-CAM overlay",
                             checkable=True, single_key=True)
        self.act_overlay.setChecked(True)
        self.act_opacity_up = a("More opaque overlay", lambda: self._nudge_opacity(10), "Ctrl+Up", "Overlay opacity up")
        self.act_opacity_down = a("More transparent overlay", lambda: self._nudge_opacity(-10), "Ctrl+Down",
                                  "Overlay opacity down")
        self.channel_group = QActionGroup(self)
        self.channel_group.setExclusive(True)
        self.act_both = a("Both", lambda: self.set_channel(None), "B", "Both channels: their sum", single_key=True)
        self.channel_actions: list[QAction] = []
        for k in range(10):
            act = a(f"Ch {k}", lambda k=k: self.set_channel(k), str(k), f"Isolate channel {k}", single_key=True)
            act.setCheckable(True)
            self.channel_group.addAction(act)
            self.channel_actions.append(act)
        self.act_both.setCheckable(True)
        self.channel_group.addAction(self.act_both)
        self.act_both.setChecked(True)
        self.act_next_channel = a("Next channel", lambda: self._step_channel(1), "C", "Next channel", single_key=True)
        self.act_prev_channel = a("Previous channel", lambda: self._step_channel(-1), "Shift+C", "Previous channel",
                                  single_key=True)
        self.act_map = a("HiRes&CAM instead of Grad-CAM", lambda on: self._set_map_kind("hirescam" if on else "gradcam"),
                         "M", "Switch between Grad-CAM and HiResCAM", checkable=True, single_key=True)
        self.act_predicted = a("Explain the &prediction", lambda: self.set_target(None), "P",
                               "Grad-CAM explains the predicted digit", single_key=True)
        self.target_actions = [a(f"Explain digit {d}", lambda d=d: self.set_target(d), f"Ctrl+{d}",
                                 f"Grad-CAM explains digit {d}") for d in range(10)]
        self.act_presentation = a("&Presentation mode", self.set_presentation, "F11",
                                  "Full screen, large text, high contrast", checkable=True)
        self.act_colorblind = a("Colour-blind-safe &palette", lambda on: self.set_palette(
            "colorblind" if on else "default"), None, "Colour-blind-safe colours for every map", checkable=True)
        self.act_reset_view = a("&Reset 3D view", lambda: self._scene_call("reset_view"), "R", "Reset the 3D camera",
                                single_key=True)
        self.act_front = a("Front view", lambda: self._scene_call("preset_view", "front"), "F5", "Look from the front")
        self.act_side = a("Side view", lambda: self._scene_call("preset_view", "side"), "F6", "Look from the side")
        self.act_top = a("Top view", lambda: self._scene_call("preset_view", "top"), "F7", "Look from above")
        self.act_rotate = a("&Auto-rotate", lambda on: self._scene_call("set_auto_rotate", on), "A",
                            "Rotate the 3D view slowly", checkable=True, single_key=True)
        self.connection_group = QActionGroup(self)
        self.connection_actions = {}
        for mode, text in (("significant", "Significant connections"), ("all", "All connections"),
                           ("none", "No connections")):
            act = QAction(text, self, checkable=True)
            act.triggered.connect(lambda _=False, m=mode: self.set_connection_mode(m))
            self.connection_group.addAction(act)
            self.connection_actions[mode] = act
        self.connection_actions["significant"].setChecked(True)
        self.act_cycle_connections = a("Cycle connections", self._cycle_connections, "L",
                                       "Connections: significant / all / none", single_key=True)
        self.act_shortcuts = a("&Keyboard shortcuts", lambda: self.overlay.toggle(), ["F1", "?"],
                               "Show all keyboard shortcuts", single_key=True)
        self.act_help = a("&How to use", self._toggle_help, "Shift+F1", "Open the How to use panel")
        self.act_about = a("&About CNNViz", self._about, None, "About")
        self.act_card = a("Model &card...", self.show_model_card, None, "Training data, accuracy and checksum")
        self.act_open_weights = a("Open &weights file...", self._open_weights, None, "Load a .safetensors file")
        self.act_next_model = a("Next model", self._next_model, "Ctrl+M", "Switch to the next shipped model")
        self.model_group = QActionGroup(self)
        self.model_actions = {}
        for name in ARCHITECTURES:
            act = QAction(f"{name}", self, checkable=True)
            act.setStatusTip(f"Switch to the shipped '{name}' network")
            act.triggered.connect(lambda _=False, n=name: self.model_requested.emit(n))
            self.model_group.addAction(act)
            self.model_actions[name] = act
        self._update_undo_actions()

    def _build_menus_and_toolbar(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for act in (self.act_open, self.act_save):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        for act in (self.act_undo, self.act_redo, self.act_clear):
            edit.addAction(act)
        edit.addSeparator()
        edit.addAction(self.act_brush_down)
        edit.addAction(self.act_brush_up)
        view = bar.addMenu("&View")
        view.addAction(self.act_overlay)
        view.addAction(self.act_map)
        channels = view.addMenu("Grad-CAM &channel")
        channels.addAction(self.act_both)
        self._channel_menu = channels
        view.addAction(self.act_predicted)
        view.addSeparator()
        for act in self.connection_actions.values():
            view.addAction(act)
        view.addSeparator()
        for act in (self.act_reset_view, self.act_front, self.act_side, self.act_top, self.act_rotate):
            view.addAction(act)
        view.addSeparator()
        view.addAction(self.act_colorblind)
        view.addAction(self.act_presentation)
        view.addSeparator()
        view.addAction(self.canvas_dock.toggleViewAction())
        view.addAction(self.prob_dock.toggleViewAction())
        model = bar.addMenu("&Model")
        for act in self.model_actions.values():
            model.addAction(act)
        model.addAction(self.act_next_model)
        model.addSeparator()
        model.addAction(self.act_open_weights)
        model.addAction(self.act_card)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_help)
        help_menu.addAction(self.act_shortcuts)
        help_menu.addAction(self.act_about)

        tools = QToolBar("Main", self)
        tools.setObjectName("MainToolbar")
        tools.setIconSize(QSize(20, 20))
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for act in (self.act_clear, self.act_undo, self.act_redo):
            tools.addAction(act)
        tools.addSeparator()
        tools.addAction(self.act_overlay)
        tools.addWidget(QLabel("  Channel: "))
        tools.addAction(self.act_both)
        self._channel_toolbar_start = tools.addSeparator()
        self._channel_toolbar = tools
        tools.addSeparator()
        tools.addAction(self.act_map)
        self.act_map.setIconText("HiResCAM")
        tools.addSeparator()
        self.connection_button = QToolButton()
        self.connection_button.setText("Connections: significant")
        self.connection_button.setToolTip("Which connection lines to draw (L cycles)")
        self.connection_button.clicked.connect(self._cycle_connections)
        tools.addWidget(self.connection_button)
        tools.addAction(self.act_rotate)
        tools.addAction(self.act_reset_view)
        tools.addSeparator()
        tools.addAction(self.act_presentation)
        self.act_presentation.setIconText("Presentation")
        tools.addAction(self.act_shortcuts)
        self.act_shortcuts.setIconText("Shortcuts")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools)
        self.toolbar = tools
        self._channel_buttons: list[QAction] = []

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.prediction_label = QLabel("Nothing drawn")
        self.prediction_label.setToolTip("The network's answer and its confidence")
        self.analysis_label = QLabel("analysis: -")
        self.analysis_label.setToolTip("Time the worker thread took for the last analysis")
        self.fps_label = QLabel("- fps")
        self.fps_label.setToolTip("Frames drawn per second by the 3D view")
        self.scene_label = QLabel("")
        status.addWidget(self.prediction_label, 1)
        status.addPermanentWidget(self.scene_label)
        status.addPermanentWidget(self.analysis_label)
        status.addPermanentWidget(self.fps_label)

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        state = s.value("window/state")
        self._restored_state = isinstance(state, QByteArray) and not state.isEmpty()
        if self._restored_state:
            self.restoreState(state)
        self.opacity_slider.setValue(int(s.value("overlay/opacity", 75)))
        self.brush_slider.setValue(int(s.value("canvas/brush", int(self.canvas.model.radius * 10))))
        self.act_overlay.setChecked(s.value("overlay/visible", "true") in (True, "true"))
        self.act_colorblind.setChecked(s.value("view/palette", "default") == "colorblind")
        self.act_map.setChecked(s.value("overlay/map", "gradcam") == "hirescam")
        mode = s.value("view/connections", "significant")
        if mode in self.connection_actions:
            self.set_connection_mode(mode)

    def save_settings(self) -> None:
        s = self.settings
        if not self._presentation:
            s.setValue("window/geometry", self.saveGeometry())
            s.setValue("window/state", self.saveState())
        s.setValue("overlay/opacity", self.opacity_slider.value())
        s.setValue("canvas/brush", self.brush_slider.value())
        s.setValue("overlay/visible", "true" if self.act_overlay.isChecked() else "false")
        s.setValue("overlay/map", self._map_kind)
        s.setValue("view/palette", self._palette)
        s.setValue("view/connections", self._connection_mode)
        if self.loaded is not None:
            s.setValue("model/last", str(self.loaded.path) if self.loaded.arch.name not in ARCHITECTURES
                       else self.loaded.arch.name)
        s.sync()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        # Entering presentation mode: lay the docks out once the full-screen size has arrived.
        if getattr(self, "_layout_after_resize", False) and self._presentation:
            self._layout_after_resize = False
            QTimer.singleShot(0, self._default_dock_sizes)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_settings()
        super().closeEvent(event)

    # ------------------------------------------------------------------ model and scene
    def attach_model(self, loaded) -> None:
        """Show ``loaded`` (a LoadedModel): build the scene geometry once and re-analyse the drawing."""
        self.loaded = loaded
        name = loaded.arch.name
        for n, act in self.model_actions.items():
            act.setChecked(n == name and loaded.path.parent == _shipped_dir())
        self.setWindowTitle(f"CNNViz Desktop - {name}")
        self._channels = last_conv_layer(describe(loaded.arch)).shape[0]
        self._rebuild_channel_controls()
        if self._channel is not None and self._channel >= self._channels:
            self.set_channel(None)
        if self.scene is None:
            from .scene import ScenePanel

            self.scene = ScenePanel(gl=None if self._gl else False)
            self.scene.neuron_picked.connect(self._on_neuron_picked)
            self.scene.neuron_hovered.connect(self._on_neuron_hovered)
            self.scene.status_text_changed.connect(self.scene_label.setText)
            view = getattr(self.scene, "view", None)
            if view is not None and hasattr(view, "frameSwapped"):
                view.frameSwapped.connect(self._on_frame_swapped)
            self.setCentralWidget(self.scene)
            self._placeholder = None
            self.scene.setMinimumSize(360, 300)
            if not self._restored_state:
                QTimer.singleShot(0, self._default_dock_sizes)
            self.scene.set_connection_mode(self._connection_mode)
            self.scene.set_palette(self._palette)
            self.scene.set_presentation(self._presentation)
            self.scene.set_auto_rotate(self.act_rotate.isChecked() or self._presentation)
        self.scene.set_model(loaded)
        self._applied_id = -1
        self.submit()
        self.statusBar().showMessage(f"Model {name}: {loaded.model.parameter_count():,} parameters, "
                                     f"test accuracy {loaded.card.get('test_accuracy', '?')}", 6000)

    def _rebuild_channel_controls(self) -> None:
        for act in self._channel_buttons:
            self.toolbar.removeAction(act)
        self._channel_buttons = []
        shown = min(self._channels, 10)
        for k, act in enumerate(self.channel_actions):
            act.setVisible(k < shown)
            act.setEnabled(k < shown)
            if k < shown:
                self._channel_menu.addAction(act)
                self.toolbar.insertAction(self._channel_toolbar_start, act)
                self._channel_buttons.append(act)
        self.act_both.setText("Both" if self._channels == 2 else "All")

    def _scene_call(self, method: str, *args) -> None:
        if self.scene is not None:
            getattr(self.scene, method)(*args)

    # ------------------------------------------------------------------ requests and snapshots
    def submit(self) -> None:
        """Queue an analysis of the current drawing (the worker keeps only the newest)."""
        if self.loaded is None:
            return
        from ..core.analysis import AnalysisRequest

        self._next_id += 1
        request = AnalysisRequest(self._next_id, self.canvas.model.pixels.copy(), target=self._target,
                                  strokes=self.canvas.model.strokes)
        self._submitted_at = time.perf_counter()
        self.request_ready.emit(request)

    @property
    def last_request_id(self) -> int:
        return self._next_id

    def _on_canvas_changed(self) -> None:
        self._update_undo_actions()
        self.submit()

    def apply_snapshot(self, snapshot) -> None:
        """Show an analysis result; results older than the last one shown are dropped."""
        if snapshot.request_id <= self._applied_id:
            return
        self._applied_id = snapshot.request_id
        self.snapshot = snapshot
        if snapshot.empty:
            self.probabilities.set_probabilities(None, None, None)
            self.prediction_label.setText("Nothing drawn - draw a digit on the grid")
        else:
            p = snapshot.probabilities
            self.probabilities.set_probabilities(p, snapshot.predicted, snapshot.target)
            self.prediction_label.setText(f"Prediction: {snapshot.predicted}   confidence {p[snapshot.predicted]:.1%}")
        total = sum(snapshot.timings.values()) if snapshot.timings else 0.0
        self.analysis_label.setText(f"analysis: {total:.1f} ms")
        self._refresh_overlay()
        if self.scene is not None:
            self.scene.apply(snapshot)
        self.snapshot_applied.emit(snapshot)

    def show_error(self, request_id: int, message: str) -> None:
        self.statusBar().showMessage(f"Analysis failed: {message}", 8000)

    def overlay_values(self) -> np.ndarray | None:
        """The signed map currently shown on the grid (canvas shape), or None."""
        snap = self.snapshot
        if snap is None or snap.empty:
            return None
        if self._map_kind == "hirescam":
            return snap.canvas_hirescam
        if self._channel is None:
            return snap.canvas_cam
        return snap.canvas_cam_channels[self._channel]

    def _refresh_overlay(self) -> None:
        values = self.overlay_values() if self.act_overlay.isChecked() else None
        if values is None:
            self.canvas.set_overlay(None)
            return
        snap = self.snapshot
        # One scale for 'Both' and every channel, so a weak channel looks weak.
        scale = float(max(np.abs(snap.canvas_cam).max(), np.abs(snap.canvas_cam_channels).max()))
        if self._map_kind == "hirescam":
            scale = float(np.abs(values).max())
        self.canvas.set_overlay(colors.signed_overlay(values, scale, self._palette))

    # ------------------------------------------------------------------ controls
    def set_channel(self, channel: int | None) -> None:
        if channel is not None and channel >= getattr(self, "_channels", 2):
            self.statusBar().showMessage(f"This model's last convolution has {self._channels} channels "
                                         f"(0-{self._channels - 1}).", 4000)
            channel = self._channel
        self._channel = channel
        (self.act_both if channel is None else self.channel_actions[channel]).setChecked(True)
        self._refresh_overlay()

    @property
    def channel(self) -> int | None:
        return self._channel

    def _step_channel(self, step: int) -> None:
        order = [None, *range(min(getattr(self, "_channels", 2), 10))]
        self.set_channel(order[(order.index(self._channel) + step) % len(order)])

    def set_target(self, target: int | None) -> None:
        self._target = target
        self.target_label.setText("explains: the prediction" if target is None else f"explains: digit {target}")
        self.submit()

    def _on_class_clicked(self, digit: int) -> None:
        self.set_target(None if self._target == digit else digit)

    def _set_map_kind(self, kind: str) -> None:
        self._map_kind = kind
        self.map_combo.blockSignals(True)
        self.map_combo.setCurrentIndex(0 if kind == "gradcam" else 1)
        self.map_combo.blockSignals(False)
        self.act_map.blockSignals(True)
        self.act_map.setChecked(kind == "hirescam")
        self.act_map.blockSignals(False)
        self._refresh_overlay()

    def _set_overlay_visible(self, visible: bool) -> None:
        self._refresh_overlay()

    def _nudge_opacity(self, delta: int) -> None:
        self.opacity_slider.setValue(self.opacity_slider.value() + delta)

    def _nudge_brush(self, delta: int) -> None:
        self.brush_slider.setValue(self.brush_slider.value() + delta)

    _connection_mode = "significant"

    def set_connection_mode(self, mode: str) -> None:
        self._connection_mode = mode
        self.connection_actions[mode].setChecked(True)
        if hasattr(self, "connection_button"):
            self.connection_button.setText(f"Connections: {mode}")
        self._scene_call("set_connection_mode", mode)

    def _cycle_connections(self) -> None:
        modes = list(self.connection_actions)
        self.set_connection_mode(modes[(modes.index(self._connection_mode) + 1) % len(modes)])

    def set_palette(self, palette: str) -> None:
        self._palette = palette
        self.probabilities.set_colorblind(palette == "colorblind")
        self._scene_call("set_palette", palette)
        self._refresh_overlay()

    def set_presentation(self, on: bool) -> None:
        """Full screen, large fonts, high contrast, thicker lines, slow rotation; F11 again restores."""
        if on == self._presentation:
            return
        self._presentation = on
        app = QApplication.instance()
        if on:
            self._saved_geometry = self.saveGeometry()
            font = QFont(self._normal_font)
            font.setPointSizeF(self._normal_font.pointSizeF() * 1.6)
            app.setFont(font)  # dialogs
            self.setFont(font)  # this window and its children, at once
            self.setStyleSheet(PRESENTATION_STYLE)
            # The bars need the whole right column on a projector; the help text returns afterwards.
            self._help_was_visible = self.help_dock.isVisible()
            self.help_dock.hide()
            # Without a window manager showFullScreen() alone keeps the old size: set it explicitly.
            screen = self.screen() or QApplication.primaryScreen()
            if screen is not None:
                self.setGeometry(screen.geometry())
            self._layout_after_resize = True
            self.showFullScreen()
            QTimer.singleShot(0, self._default_dock_sizes)
        else:
            app.setFont(self._normal_font)
            self.setFont(self._normal_font)
            self.setStyleSheet("")
            self.showNormal()
            if getattr(self, "_saved_geometry", None) is not None:
                self.restoreGeometry(self._saved_geometry)
            self.help_dock.setVisible(getattr(self, "_help_was_visible", True))
        self.act_presentation.blockSignals(True)
        self.act_presentation.setChecked(on)
        self.act_presentation.blockSignals(False)
        self.canvas.set_large(on)
        self.probabilities.set_large(on)
        self.overlay.set_scale(1.0)
        self._scene_call("set_presentation", on)
        self._scene_call("set_auto_rotate", on or self.act_rotate.isChecked())

    @property
    def presentation(self) -> bool:
        return self._presentation

    # ------------------------------------------------------------------ drawing commands
    def clear_canvas(self) -> None:
        if self.canvas.model.clear():
            self.canvas.set_highlight(None)
            self.canvas.notify_changed()

    def undo(self) -> None:
        if self.canvas.model.undo():
            self.canvas.notify_changed()

    def redo(self) -> None:
        if self.canvas.model.redo():
            self.canvas.notify_changed()

    def _update_undo_actions(self) -> None:
        self.act_undo.setEnabled(self.canvas.model.can_undo)
        self.act_redo.setEnabled(self.canvas.model.can_redo)

    @contextlib.contextmanager
    def _typing_allowed(self):
        """Single-key shortcuts are application-wide; switch them off while a dialog takes typing."""
        for act in self._single_key_actions:
            act.setEnabled(False)
        try:
            yield
        finally:
            for act in self._single_key_actions:
                act.setEnabled(True)
            self._update_undo_actions()

    def open_image(self) -> None:
        with self._typing_allowed():
            name, _ = QFileDialog.getOpenFileName(self, "Open an image of a digit", str(Path.home()),
                                                  "Images (*.png *.jpg *.jpeg *.bmp)")
        if name:
            self.load_image(Path(name))

    def load_image(self, path: Path) -> bool:
        """Put a digit image on the grid (MNIST-style placement); the old drawing stays undoable."""
        from ..core.errors import CnnvizError
        from ..core.images import load_canvas
        from ..core.preprocess import preprocess

        try:
            prepared = preprocess(load_canvas(path))
        except CnnvizError as exc:
            QMessageBox.warning(self, "Cannot open the image", f"{exc}\n\nYour drawing was not changed.")
            return False
        if prepared is None:
            QMessageBox.information(self, "Empty image", f"{path.name} holds no digit; your drawing was not changed.")
            return False
        self.canvas.model.set_pixels(prepared.image)
        self.canvas.notify_changed()
        return True

    def save_drawing(self) -> None:
        with self._typing_allowed():
            name, _ = QFileDialog.getSaveFileName(self, "Save the drawing", str(Path.home() / "digit.png"),
                                                  "PNG image (*.png)")
        if not name:
            return
        from PIL import Image

        try:
            Image.fromarray((self.canvas.model.pixels * 255).astype(np.uint8)).save(name)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot save", f"Could not write {name}: {exc}")
        else:
            self.statusBar().showMessage(f"Saved {name}", 4000)

    def _open_weights(self) -> None:
        with self._typing_allowed():
            name, _ = QFileDialog.getOpenFileName(self, "Open a weight file", str(Path.home()),
                                                  "Weight files (*.safetensors)")
        if name:
            self.model_requested.emit(name)

    def _next_model(self) -> None:
        names = list(ARCHITECTURES)
        current = self.loaded.arch.name if self.loaded is not None else names[0]
        index = names.index(current) if current in names else -1
        self.model_requested.emit(names[(index + 1) % len(names)])

    def show_model_error(self, message: str) -> None:
        QMessageBox.warning(self, "Cannot load the model",
                            f"{message}\n\nThe current model stays loaded; your drawing is kept.")

    def show_model_card(self) -> None:
        if self.loaded is None:
            return
        import json

        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model card: {self.loaded.arch.name}")
        layout = QVBoxLayout(dialog)
        card = self.loaded.card
        summary = QLabel(
            f"<b>{self.loaded.arch.name}</b>: {self.loaded.model.parameter_count():,} parameters<br>"
            f"test accuracy: <b>{card.get('test_accuracy', 'unknown')}</b> on {card.get('test_n', '?')} images<br>"
            f"trained on {card.get('training_data', {}).get('images', '?')} images for {card.get('epochs', '?')} "
            f"epochs (seed {card.get('seed', '?')})<br>file: {self.loaded.path}")
        summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(summary)
        text = QPlainTextEdit(json.dumps(card, indent=2) if card else "This weight file has no model card.")
        text.setReadOnly(True)
        layout.addWidget(text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.resize(560, 520)
        with self._typing_allowed():
            dialog.exec()

    def _toggle_help(self) -> None:
        self.help_dock.setVisible(not self.help_dock.isVisible())
        if self.help_dock.isVisible():
            self.help_dock.raise_()

    def _about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About CNNViz Desktop",
                          f"<b>CNNViz Desktop</b> {__version__}<br>Draw a digit and watch a small convolutional "
                          f"network read it, live, in 3D.")

    # ------------------------------------------------------------------ picking and frames
    def _on_neuron_picked(self, layer: str, index: tuple, value: float) -> None:
        self.statusBar().showMessage(f"{layer} {tuple(index)}: {value:.3f}", 6000)
        if self.loaded is None or self.snapshot is None or self.snapshot.empty:
            self.canvas.set_highlight(None)
            return
        box = receptive_field(describe(self.loaded.arch), layer, tuple(index))
        placement = getattr(self.snapshot, "placement", None)
        if box is None or placement is None:
            self.canvas.set_highlight(None)
            return
        self.canvas.set_highlight(placement.box_to_canvas(box))

    def _on_neuron_hovered(self, layer: str, index: tuple, value: float) -> None:
        if layer:
            self.statusBar().showMessage(f"{layer} {tuple(index)}: {value:.3f}  (click to trace it)", 3000)

    def _on_frame_swapped(self) -> None:
        self._frames.append(time.perf_counter())

    def _update_fps(self) -> None:
        now = time.perf_counter()
        self._frames = [t for t in self._frames if now - t <= 1.0]
        self.fps_label.setText(f"{len(self._frames)} fps" if self.scene is not None else "- fps")


def _shipped_dir() -> Path:
    from ..core.paths import weights_dir

    return weights_dir()
