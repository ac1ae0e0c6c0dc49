"""The layout report of the window (for --self-test, tests and the screenshot tool), from public Qt state."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication, QLabel, QWidget


def layout_report(window) -> dict:
    """What a layout check needs, from public Qt state: window and screen sizes, the 3D view's share,
    toolbar actions hidden behind an overflow chevron, visible buttons and labels narrower than their
    size hint (clipped text), the text scale, the drawing grid's size."""
    from PySide6.QtWidgets import QAbstractButton

    screen = window.screen() or QApplication.primaryScreen()
    area = screen.availableGeometry() if screen is not None else QRect()
    hidden = []
    for bar in window.toolbars.values():
        for act in bar.actions():
            if act.isVisible() and not act.isSeparator():
                widget = bar.widgetForAction(act)
                if widget is None or not widget.isVisible():
                    hidden.append(act.objectName() or act.text())
    clipped = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or not isinstance(widget, (QAbstractButton, QLabel)):
            continue
        if isinstance(widget, QLabel) and (widget.wordWrap() or widget.pixmap() is not None and
                                           not widget.pixmap().isNull() or not widget.text()):
            continue
        if widget.sizePolicy().horizontalPolicy() == widget.sizePolicy().Policy.Ignored:
            continue  # elided on purpose, full text in the tooltip
        if widget.width() + 1 < widget.sizeHint().width():
            clipped.append(f"{type(widget).__name__}:{getattr(widget, 'text', lambda: '')()}")
    grid = window.canvas.grid_rect() if window.canvas is not None else None
    return {
        "window": [window.width(), window.height()],
        "screen": [area.width(), area.height()],
        "fits": bool(screen is None or window.frameGeometry().width() <= screen.geometry().width()
                     and window.frameGeometry().height() <= screen.geometry().height()),
        "scene_share": round(window.scene_share(), 4),
        "toolbar_hidden": hidden,
        "clipped": clipped,
        "font_pt": window.font().pointSizeF(),
        "normal_font_pt": window.normal_font.pointSizeF(),
        "grid_px": [round(grid.width()), round(grid.height())] if grid is not None else None,
    }
