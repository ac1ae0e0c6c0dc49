"""The 'How to use' view: what every part of the window shows and how it is computed."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout

from ..help import how_to_use_widget
from .base import Host, View


class HelpView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.browser = how_to_use_widget(self)
        layout.addWidget(self.browser)

    def attach(self, host: Host) -> None:
        self.host = host
