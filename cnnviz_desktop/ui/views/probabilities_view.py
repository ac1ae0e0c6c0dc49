"""The probabilities view: the headline answer and ten live bars; a click explains a digit, Shift+click
explains 'the target rather than this one'."""

from __future__ import annotations


from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout

from ..probabilities import ProbabilityPanel
from .base import Host, Style, View


class ProbabilitiesView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.setSpacing(2)
        self.headline = QLabel("Nothing drawn")
        self.headline.setAccessibleName("Prediction")
        self.headline.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.headline.setToolTip("The network's answer, its confidence, and what the overlay explains")
        self.panel = ProbabilityPanel()
        layout.addWidget(self.headline)
        layout.addWidget(self.panel, 1)
        self._base_font = QFont(self.headline.font())

    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        self.panel.class_clicked.connect(lambda digit, shift: session.click_class(digit, contrast=shift))
        session.snapshot_changed.connect(lambda _snap: self.render())
        session.changed.connect(self._on_changed)
        self.render()

    def _on_changed(self, name: str, value) -> None:
        if name == "palette":
            self.panel.set_colorblind(value == "colorblind")
        if name in ("target", "contrast", "palette"):
            self.render()

    def apply_style(self, style: Style) -> None:
        self.panel.set_large(style.presentation)
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.headline.setFont(font)

    def render(self) -> None:
        session = self.session
        snap = session.snapshot
        if snap is None or snap.empty:
            self.panel.set_probabilities(None, None, None)
            self.headline.setText("Nothing drawn yet" if session.model is not None
                                  else "Loading the network ...")
            return
        p = snap.probabilities
        self.panel.set_probabilities(p, snap.predicted, snap.target, snap.contrast)
        self.headline.setText(f"Prediction: {snap.predicted}  ({p[snap.predicted]:.0%})")
        self.headline.setToolTip(f"{self.headline.text()}; the overlay explains {session.explains_text()}")



