"""The 3D network view (the window's stage): the scene panel bound to the session.

The panel (ui/scene) renders; this adapter forwards the session's model, snapshots and view state to it,
and picks back into the session.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStackedLayout

from .base import Host, Style, View


class SceneView(View):
    def __init__(self, parent=None, gl: bool = True) -> None:
        super().__init__(parent)
        self._gl = gl
        self.panel = None
        self._stack = QStackedLayout(self)
        self.placeholder = QLabel("Loading the network ...")
        self.placeholder.setStyleSheet("color: #9aa3b2; background: #0d0f13;")
        from PySide6.QtCore import Qt

        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._stack.addWidget(self.placeholder)
        self.setMinimumSize(360, 300)

    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        session.model_changed.connect(self._on_model_changed)
        session.snapshot_changed.connect(self._on_snapshot)
        session.changed.connect(self._on_changed)
        session.picked_changed.connect(self._on_picked_changed)

    # ------------------------------------------------------------------ session -> panel
    def _ensure_panel(self):
        if self.panel is None:
            from ..scene import ScenePanel

            panel = self.panel = ScenePanel(gl=None if self._gl else False)
            panel.neuron_picked.connect(self._on_neuron_picked)
            panel.neuron_hovered.connect(self._on_neuron_hovered)
            self._stack.addWidget(panel)
            self._stack.setCurrentWidget(panel)
            session = self.session
            panel.set_connection_mode(session.connection_mode)
            panel.set_palette(session.palette)
            panel.set_presentation(session.presentation)
            panel.set_auto_rotate(session.auto_rotate)
            panel.set_surface_mode(session.surfaces)
            signal = getattr(panel, "auto_rotate_changed", None)
            if signal is not None:  # the panel stops rotating by itself when the user grabs the camera
                signal.connect(session.set_auto_rotate)
        return self.panel

    def _on_model_changed(self, model) -> None:
        self._ensure_panel().set_model(model)

    def _on_snapshot(self, snapshot) -> None:
        if self.panel is not None:
            self.panel.apply(snapshot)

    def _on_changed(self, name: str, value) -> None:
        panel = self.panel
        if panel is None:
            return
        if name == "connection_mode":
            panel.set_connection_mode(value)
        elif name == "palette":
            panel.set_palette(value)
        elif name == "presentation":
            panel.set_presentation(value)
        elif name == "surfaces":
            panel.set_surface_mode(value)
        elif name == "auto_rotate":
            if bool(panel.auto_rotating) != bool(value):
                panel.set_auto_rotate(value)

    def _on_picked_changed(self, picked) -> None:
        panel = self.panel
        if panel is None or panel.picked == picked:
            return
        if picked is None:
            panel.select_neuron(None)
        else:
            panel.select_neuron(*picked)

    # ------------------------------------------------------------------ panel -> session
    def _on_neuron_picked(self, layer: str, index: tuple, value: float) -> None:
        self.session.set_picked(layer, index)
        self.host.show_status(f"{layer} {tuple(index)}: {value:.3f}", 6000)

    def _on_neuron_hovered(self, layer: str, index: tuple, value: float) -> None:
        if layer:
            self.host.show_status(f"{layer} {tuple(index)}: {value:.3f}  (click to trace it)", 3000)

    def command(self, name: str, *args) -> None:
        """A camera command from the action table (reset_view, preset_view)."""
        if self.panel is not None:
            getattr(self.panel, name)(*args)

    def apply_style(self, style: Style) -> None:
        if self.panel is not None:
            self.panel.set_presentation(style.presentation)
