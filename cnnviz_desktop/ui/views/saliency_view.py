"""The saliency view: |d score / d pixel| and gradient x input of the current drawing, side by side, for the
explained class (the prediction or a chosen digit), live per stroke.

The maps come from the snapshot (the engine computes them only while this view is shown: it calls
``session.need`` in showEvent and ``session.release`` in hideEvent); the view only paints them.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout

from ..map_pane import MapPane
from .base import explanation_label, Host, Style, View

OWNER = "saliency"
KINDS = frozenset({"saliency", "inputxgrad"})
SUMMARY = (
    "<b>Saliency</b> (left): where a small change of ink would change the class score most. "
    "<b>Gradient \u00d7 input</b> (right): each pixel's signed share of the score."
)
EXPLANATION = (
    "<b>Saliency</b> (left) is |d score / d pixel|: where a small change of ink would change the class score "
    "most. It is unsigned and pixel-sharp but noisy, and it shows sensitivity, not evidence. "
    "<b>Gradient \u00d7 input</b> (right) multiplies each pixel's value by that gradient: red pushes towards "
    "the class, blue against. The network sees normalised pixels, and blank paper is \u22120.42 there, not 0, "
    "so gradient \u00d7 input is <i>not</i> zero off the ink: it scores blank paper against uniform grey. "
    "Both are one backward pass of the class logit (captum's Saliency and InputXGradient give the same numbers), "
    "on the 28\u00d728 image the network sees; the outline is your digit."
)


class SaliencyView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.host = None
        self._palette = "default"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        self.explanation = explanation_label(SUMMARY, EXPLANATION)
        layout.addWidget(self.explanation)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.class_label = QLabel("Explain")
        self.class_selector = QComboBox()
        self.class_selector.setAccessibleName("Explained class")
        self.class_selector.setToolTip("Which class's score the maps explain: the prediction, or any digit "
                                       "(the same choice as clicking a probability bar)")
        self.class_selector.addItem("Prediction", None)
        for digit in range(10):
            self.class_selector.addItem(str(digit), digit)
        self.class_selector.activated.connect(self._on_class_chosen)
        self.status = QLabel()
        self.status.setStyleSheet("color: #555d6b;")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row.addWidget(self.class_label)
        row.addWidget(self.class_selector)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        panes = QHBoxLayout()
        panes.setSpacing(6)
        self.saliency_pane = MapPane()
        self.saliency_pane.setToolTip("Saliency |d score / d pixel|: yellow/red = sensitive, grey = no effect")
        self.gradient_pane = MapPane()
        self.gradient_pane.setToolTip("Gradient x input: red pushes towards the class, blue against "
                                      "(blank paper counts too: it is -0.42 to the network)")
        panes.addWidget(self.saliency_pane)
        panes.addWidget(self.gradient_pane)
        layout.addLayout(panes, 1)

    # ------------------------------------------------------------------ protocol
    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        self._palette = session.palette
        session.snapshot_changed.connect(lambda _snap: self.render() if self.isVisible() else None)
        session.changed.connect(self._on_changed)
        if self.isVisible():
            session.need(OWNER, KINDS)
        self.render()

    def apply_style(self, style: Style) -> None:
        self._palette = style.palette
        self.render()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.session is not None:
            self.session.need(OWNER, KINDS)  # re-requests the drawing once if the maps were not computed
            self.render()

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        if self.session is not None:
            self.session.release(OWNER)

    # ------------------------------------------------------------------ session -> widgets
    def _on_changed(self, name: str, value) -> None:
        if name == "palette":
            self._palette = value
        if name in ("target", "contrast", "palette") and self.isVisible():
            self.render()
        if name == "target":
            self._sync_selector()

    def _on_class_chosen(self, index: int) -> None:
        self.session.set_target(self.class_selector.itemData(index))

    def _sync_selector(self) -> None:
        index = self.class_selector.findData(self.session.target) if self.session.target is not None else 0
        if index >= 0 and index != self.class_selector.currentIndex():
            self.class_selector.blockSignals(True)
            self.class_selector.setCurrentIndex(index)
            self.class_selector.blockSignals(False)

    def maps(self) -> dict:
        """What the view shows: {'target': explained class or None, 'saliency': (28, 28) or None,
        'inputxgrad': (28, 28) or None} (None until the current drawing's maps have arrived)."""
        return {"target": self.saliency_pane.target if self.saliency_pane.values is not None else None,
                "saliency": self.saliency_pane.values, "inputxgrad": self.gradient_pane.values}

    def render(self) -> None:
        session = self.session
        if session is None:
            return
        self._sync_selector()
        snap = session.snapshot
        palette = self._palette
        if snap is None or snap.empty or snap.saliency is None or snap.input_x_gradient is None:
            message = "Draw a digit" if snap is None or snap.empty else "Computing\u2026"
            for pane, title in ((self.saliency_pane, "Saliency |gradient|"),
                                (self.gradient_pane, "Gradient \u00d7 input")):
                pane.target = None
                pane.set_map(None, signed=pane is self.gradient_pane, title=title, message=message, palette=palette)
            self.status.setText("")
            return
        ink = np.asarray(snap.activations["input"][0])
        what = f"digit {snap.target}" if snap.contrast is None else f"{snap.target} rather than {snap.contrast}"
        self.saliency_pane.target = snap.target
        self.gradient_pane.target = snap.target
        self.saliency_pane.set_map(snap.saliency, signed=False, title=f"Saliency |gradient|, {what}", ink=ink,
                                   palette=palette, legend="logit / unit")
        self.gradient_pane.set_map(snap.input_x_gradient, signed=True, title=f"Gradient \u00d7 input, {what}",
                                   ink=ink, palette=palette, legend="logits")
        ixg = np.asarray(snap.input_x_gradient)
        off_ink = float(np.abs(ixg[ink <= 0.05]).sum()) / max(float(np.abs(ixg).sum()), 1e-12)
        self.status.setText(f"explains {session.explains_text()}  \u00b7  {off_ink:.0%} of |gradient \u00d7 input| "
                            f"lies off the ink")
