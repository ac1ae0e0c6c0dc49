"""The protocol every view implements (see ui/views/__init__.py for the registry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class Style:
    """How views should look: presentation (large, high contrast), text scale (1.0 normal, 1.6 in
    presentation), palette ('default' or 'colorblind')."""

    presentation: bool = False
    scale: float = 1.0
    palette: str = "default"


class Host(Protocol):
    """What a view may ask of the window: the session, and a line in the status bar."""

    session: Any

    def show_status(self, text: str, ms: int = 4000) -> None: ...


def scrolled(view: QWidget, content: QWidget) -> QWidget:
    """Put ``content`` in a vertically scrolling area filling ``view`` (views that paint long sheets)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QScrollArea, QVBoxLayout

    layout = QVBoxLayout(view)
    layout.setContentsMargins(0, 0, 0, 0)
    scroll = QScrollArea()
    scroll.setWidget(content)
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    layout.addWidget(scroll)
    return content


def explanation_label(summary: str, details: str):
    """A word-wrapped rich-text QLabel with a one-line ``summary`` and a 'More…' link that shows ``details``
    below it (and 'Less' hides them again), so a narrow dock keeps room for the view itself. The whole text
    is also the tooltip."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QSizePolicy

    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setToolTip(f"<p>{details}</p>")
    label.setProperty("expanded", False)

    def render() -> None:
        if label.property("expanded"):
            label.setText(f"{summary}<br>{details}  <a href='#less'>Less</a>")
        else:
            label.setText(f"{summary}  <a href='#more'>More\u2026</a>")

    def toggle(_link: str) -> None:
        label.setProperty("expanded", not label.property("expanded"))
        render()

    label.linkActivated.connect(toggle)
    render()
    return label


class View(QWidget):
    """A view: a widget that renders the session. ``attach(host)`` is called once, after construction;
    the view then subscribes to the session's events and renders on each. ``apply_style(style)`` is called
    whenever presentation mode or the palette changes. A view keeps no state that the session holds."""

    def attach(self, host: Host) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def apply_style(self, style: Style) -> None:
        """Default: nothing to restyle (fonts follow the window)."""
