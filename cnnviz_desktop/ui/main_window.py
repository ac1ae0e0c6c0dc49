"""The main window: a thin shell that renders the session.

It builds the central view and the docks from the view registry (ui/views), the menus, toolbars, tooltips
and the shortcut overlay from the action table (ui/actions), and lays them out by one rule of the window's
size. All state lives in the session (core/session.py); the window only keeps Qt objects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QFont, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QAbstractSpinBox, QApplication, QComboBox, QDialog, QDockWidget,
    QFileDialog, QLabel, QLineEdit, QMainWindow, QMenu, QMessageBox, QPlainTextEdit, QTextEdit, QToolBar,
    QWidget,
)

from ..core.architecture import ARCHITECTURES
from . import actions as action_table
from .help import ShortcutOverlay
from .views import VIEWS
from .views.base import Style

PRESENTATION_SCALE = 1.6
PRESENTATION_STYLE = """
QWidget { background: #000000; color: #ffffff; font-size: %(pt).1fpt; }
QToolBar { background: #101010; border: none; spacing: 6px; }
QToolButton { padding: 2px 7px; border: 2px solid #444; border-radius: 4px; color: #ffffff; }
QToolButton:checked { background: #ffb000; color: #000000; border-color: #ffb000; }
QStatusBar QLabel { color: #ffffff; }
QDockWidget { color: #ffffff; }
QDockWidget::title { background: #181818; padding: 4px; }
QMenuBar, QMenu { background: #101010; color: #ffffff; }
QMenu::item:selected, QMenuBar::item:selected { background: #ffb000; color: #000000; }
"""
TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


class MainWindow(QMainWindow):
    """Signals: model_requested(str): the user asked for another model (shipped name or path)."""

    model_requested = Signal(str)
    snapshot_applied = Signal(object)  # after the views rendered a new snapshot (tools and benchmarks)

    def __init__(self, session, gl: bool = True, settings=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.settings = settings  # a QtSettingsStore or None: only window geometry is written here
        self.setWindowTitle("CNNViz Desktop")
        self.setObjectName("MainWindow")
        self._normal_font = QFont(QApplication.font())
        self._normal_geometry: QByteArray | None = None
        self._layout_pending = False
        self._model_unshown = False  # a model was just set and has not been analysed yet
        self._frames: list[float] = []
        self.views: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.actions_by_id: dict[str, QAction] = {}
        self.toolbars: dict[str, QToolBar] = {}
        self._single_keys: dict[str, QAction] = {}
        self._build_views(gl)
        self._build_actions()
        self._build_menus()
        self._build_toolbars()
        self._build_status_bar()
        self.overlay = ShortcutOverlay(self)
        for view in self.views.values():
            view.attach(self)
        session.changed.connect(self._on_changed)
        session.model_changed.connect(self._on_model_changed)
        session.snapshot_changed.connect(self._on_snapshot)
        session.analysis_failed.connect(self._on_analysis_failed)
        session.canvas_changed.connect(self._sync_enabled)
        self._sync_actions()
        self._apply_style()
        QApplication.instance().installEventFilter(self)

    # ------------------------------------------------------------------ views (from the registry)
    def _build_views(self, gl: bool) -> None:
        areas = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
                 "bottom": Qt.DockWidgetArea.BottomDockWidgetArea}
        previous: dict[str, QDockWidget] = {}
        for spec in VIEWS:
            cls = spec.load()
            view = cls(gl=gl) if spec.id == "scene" else cls()
            view.setObjectName(f"{spec.id}View")
            self.views[spec.id] = view
            if spec.area == "central":
                self.setCentralWidget(view)
                continue
            dock = QDockWidget(spec.label, self)
            dock.setObjectName(f"{spec.id.title()}Dock")
            dock.setWidget(view)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable)
            area = areas[spec.area]
            self.addDockWidget(area, dock)
            if spec.area == "left" and spec.area in previous:
                # The drawing and its probabilities stand one above the other.
                self.splitDockWidget(previous[spec.area], dock, Qt.Orientation.Vertical)
            elif spec.area in previous:
                # Explanation views share one column as tabs (the user may drag a tab out to split).
                self.tabifyDockWidget(previous[spec.area], dock)
            previous[spec.area] = dock
            dock.setVisible(spec.visible)
            self.docks[spec.id] = dock

    def toggle_view(self, view_id: str) -> None:
        dock = self.docks[view_id]
        dock.setVisible(not dock.isVisible())
        if dock.isVisible():
            dock.raise_()
        self.schedule_layout()

    # ------------------------------------------------------------------ actions (from the table)
    def _build_actions(self) -> None:
        groups: dict[str, QActionGroup] = {}
        for spec in action_table.ACTIONS:
            action = QAction(spec.text, self)
            action.setObjectName(spec.id)
            action.setIconText(spec.icon_text or spec.label)
            shortcut_keys = [k for k in spec.keys if not action_table.is_single_key(k)]
            single = [k for k in spec.keys if action_table.is_single_key(k)]
            if shortcut_keys:
                action.setShortcuts([QKeySequence(k) for k in shortcut_keys])
                action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            if single and not shortcut_keys:
                # Shown in menus, dispatched by eventFilter (never while a menu or dialog is open).
                action.setText(f"{spec.text}\t{spec.keys[0]}")
            if single:
                for key in single:
                    self._single_keys[_normalise(key)] = action
            keys = action_table.key_text(spec)
            action.setToolTip(f"{spec.tip} ({keys})" if keys else spec.tip)
            action.setStatusTip(spec.tip)
            if spec.checkable:
                action.setCheckable(True)
                group_name = spec.submenu if spec.id.startswith(("channel_", "both", "connections_")) else None
                if group_name:
                    groups.setdefault(group_name, QActionGroup(self)).addAction(action)
                action.triggered.connect(lambda checked, s=spec: self._run(s, checked))
            else:
                action.triggered.connect(lambda _=False, s=spec: self._run(s, False))
            self.addAction(action)
            self.actions_by_id[spec.id] = action
        # Model choices and view toggles are generated too: from the shipped models and the registry.
        self.model_group = QActionGroup(self)
        self.model_actions: dict[str, QAction] = {}
        self.user_model_actions: dict[str, QAction] = {}  # opened weight files, by path
        for name in ARCHITECTURES:
            act = QAction(f"&{name}", self, checkable=True)
            act.setStatusTip(f"Switch to the shipped '{name}' network")
            act.triggered.connect(lambda _=False, n=name: self.model_requested.emit(n))
            self.model_group.addAction(act)
            self.model_actions[name] = act
        self.view_actions: dict[str, QAction] = {}
        for spec in VIEWS:
            if spec.id in self.docks:
                act = self.docks[spec.id].toggleViewAction()
                act.setText(spec.title)
                if spec.key:
                    act.setShortcut(QKeySequence(spec.key))
                    act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
                act.setStatusTip(spec.summary)
                act.setToolTip(f"Show or hide: {spec.summary}")
                self.view_actions[spec.id] = act

    def _run(self, spec, checked: bool) -> None:
        spec.run(self, checked)
        self._sync_actions()

    def action(self, action_id: str) -> QAction:
        """The QAction of an action-table entry (tests and tools)."""
        return self.actions_by_id[action_id]

    def _build_menus(self) -> None:
        bar = self.menuBar()
        menus: dict[str, QMenu] = {title: bar.addMenu(title) for title in action_table.MENUS}
        submenus: dict[tuple[str, str], QMenu] = {}
        for spec in action_table.ACTIONS:
            if spec.menu is None:
                continue
            menu = menus[spec.menu]
            if spec.submenu:
                key = (spec.menu, spec.submenu)
                if key not in submenus:
                    submenus[key] = menu.addMenu(spec.submenu)
                menu = submenus[key]
            if spec.separator_before:
                menu.addSeparator()
            menu.addAction(self.actions_by_id[spec.id])
            if spec.id == "presentation":
                menus["&View"].addSeparator()
                for act in self.view_actions.values():
                    menus["&View"].addAction(act)
        model_menu = menus["&Model"]
        first = model_menu.actions()[0] if model_menu.actions() else None
        for act in self.model_actions.values():
            model_menu.insertAction(first, act)
        self.menus = menus

    def _build_toolbars(self) -> None:
        for name in action_table.TOOLBARS:
            bar = QToolBar(name, self)
            bar.setObjectName(f"{name}Toolbar")
            bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            bar.setMovable(False)
            self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
            self.toolbars[name] = bar
        for spec in action_table.ACTIONS:
            if spec.toolbar:
                self.toolbars[spec.toolbar].addAction(self.actions_by_id[spec.id])

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setSizeGripEnabled(False)
        self.analysis_label = QLabel("analysis: -")
        self.analysis_label.setToolTip("Time the worker thread took for the last analysis")
        self.fps_label = QLabel("- fps")
        self.fps_label.setToolTip("Frames drawn per second by the 3D view")
        self.model_label = QLabel("model: -")
        self.model_label.setObjectName("modelLabel")
        self.model_label.setToolTip("The network shown (its layer spec in this tooltip once loaded)")
        for label in (self.model_label, self.analysis_label, self.fps_label):
            label.setContentsMargins(12, 0, 0, 0)  # a gap between them and after the (clipped) status message
            status.addPermanentWidget(label)
        self._fps_timer = QTimer(self, interval=1000, timeout=self._update_fps)
        self._fps_timer.start()

    # ------------------------------------------------------------------ session -> window
    def _on_changed(self, name: str, value) -> None:
        if name == "presentation":
            self._apply_presentation(value)
        elif name == "palette":
            self._apply_style()
        self._sync_actions()

    def _on_model_changed(self, model) -> None:
        name = model.arch.name
        path = getattr(model, "path", None)
        shipped = path is not None and path.stem == name and name in ARCHITECTURES
        # A weight file of the user's gets a Model-menu entry; live training weights (no file) do not.
        own_file = path is not None and not shipped and path.is_file()
        own = self._user_model_action(model) if own_file else None
        for n, act in self.model_actions.items():
            act.setChecked(shipped and n == name)
        for act in self.user_model_actions.values():
            act.setChecked(act is own)
        self._model_unshown = True  # until its first analysis arrives (see _on_analysis_failed)
        self.setWindowTitle(f"CNNViz Desktop - {name} ({path.name})" if own_file else f"CNNViz Desktop - {name}")
        self._show_model_label(model)
        self._sync_actions()
        panel = self.scene
        if panel is not None:
            view = panel.view
            if view is not None:
                view.frameSwapped.connect(self._on_frame_swapped, Qt.ConnectionType.UniqueConnection)
        card = getattr(model, "card", {}) or {}
        self.show_status(f"Model {name}: {model.model.parameter_count():,} parameters, "
                         f"test accuracy {card.get('test_accuracy', '?')}", 6000)
        self.schedule_layout()

    def _show_model_label(self, model) -> None:
        """The status bar names the model; its tooltip gives the spec, size and file."""
        arch = model.arch
        spec = arch.spec
        text = f"{arch.name}" if arch.is_family else f"{arch.name}: {spec}"
        self._model_label_text = text
        self._elide_model_label()
        path = getattr(model, "path", None)
        source = (getattr(model, "card", {}) or {}).get("source")
        lines = [f"Model {arch.name}", f"spec: {spec}", f"{model.model.parameter_count():,} parameters, "
                 f"{sum(s.size for s in self.session.specs):,} neurons"]
        if path is not None:
            lines.append(f"file: {path}")
        if source:
            lines.append(str(source))
        self.model_label.setToolTip("\n".join(lines))

    def _elide_model_label(self) -> None:
        """Fit the model label to a fifth of the window (its full text is in the tooltip), so the status
        messages beside it keep their room at 1024 px and in presentation mode's larger font."""
        text = getattr(self, "_model_label_text", "")
        width = max(90, min(320, self.width() // 5))
        self.model_label.setText(self.model_label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, width))

    def _user_model_action(self, model) -> QAction:
        """The Model-menu entry of an opened weight file (added the first time it is shown)."""
        key = str(model.path)
        act = self.user_model_actions.get(key)
        if act is None:
            act = QAction(model.arch.name.replace("&", "&&"), self, checkable=True)
            act.setStatusTip(f"Switch to {model.arch.name} ({model.path})")
            act.setToolTip(f"{model.arch.spec}\n{model.path}")
            act.triggered.connect(lambda _=False, k=key: self.model_requested.emit(k))
            self.model_group.addAction(act)
            menu = self.menus["&Model"]
            entries = menu.actions()
            place = entries.index(list(self.model_actions.values())[-1]) + 1 + len(self.user_model_actions)
            menu.insertAction(entries[place] if place < len(entries) else None, act)
            self.user_model_actions[key] = act
        return act

    def _on_analysis_failed(self, message: str) -> None:
        model = self.session.model
        if getattr(self, "_model_unshown", False) and model is not None:
            # The new model itself cannot be analysed: say so where it cannot be missed (not modal).
            self._model_unshown = False
            box = QMessageBox(QMessageBox.Icon.Warning, "Cannot show this model",
                              f"CNNViz cannot analyse the network {model.arch.name!r} ({model.arch.spec}):\n\n"
                              f"{message}\n\nOpen another model from the Model menu; your drawing is kept.",
                              QMessageBox.StandardButton.Close, self)
            box.setModal(False)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()
        self.show_status(f"Analysis failed: {message}", 8000)

    def _on_snapshot(self, snapshot) -> None:
        self._model_unshown = False
        ms = self.session.analysis_ms
        self.analysis_label.setText(f"analysis: {ms:.1f} ms" if ms is not None else "analysis: -")
        # Connected after the views (they attached first), so they have rendered it by now.
        self.snapshot_applied.emit(snapshot)

    def _sync_actions(self) -> None:
        """Every toggle shows the session's true state; actions that do not apply are hidden."""
        session = self.session
        for spec in action_table.ACTIONS:
            action = self.actions_by_id[spec.id]
            if spec.state is not None:
                checked = bool(spec.state(session))
                if action.isChecked() != checked:
                    action.blockSignals(True)
                    action.setChecked(checked)
                    action.blockSignals(False)
            if spec.visible is not None:
                action.setVisible(bool(spec.visible(session)))
        self.actions_by_id["both"].setIconText("Both" if session.channels in (0, 2) else "All")
        mode = session.connection_mode
        self.actions_by_id["cycle_connections"].setIconText(f"Lines: {mode}")
        self._sync_enabled()

    def _sync_enabled(self) -> None:
        canvas = self.session.canvas
        self.actions_by_id["undo"].setEnabled(canvas.can_undo)
        self.actions_by_id["redo"].setEnabled(canvas.can_redo)

    def show_status(self, text: str, ms: int = 4000) -> None:
        self.statusBar().showMessage(text, ms)

    # ------------------------------------------------------------------ single keys
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.KeyPress or not self._single_keys:
            return False
        if not isinstance(obj, QWidget) or obj.window() is not self:
            return False
        app = QApplication.instance()
        if app.activePopupWidget() is not None or app.activeModalWidget() is not None:
            return False  # a menu (its mnemonics) or a dialog has the keyboard
        if self.overlay.isVisible():
            return False
        focus = app.focusWidget()
        if isinstance(focus, TEXT_INPUTS) or (isinstance(focus, QComboBox) and focus.isEditable()) \
                or isinstance(focus, QAbstractItemView):  # a table or list keeps its own keys (Delete, Enter)
            return False
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods & ~Qt.KeyboardModifier.ShiftModifier:
            return False
        text = QKeySequence(event.keyCombination()).toString()
        action = self._single_keys.get(_normalise(text))
        if action is None and event.text():
            action = self._single_keys.get(_normalise(event.text()))
        if action is None or not action.isEnabled() or not action.isVisible():
            return False
        action.trigger()
        return True

    # ------------------------------------------------------------------ layout: one rule of the size
    def schedule_layout(self) -> None:
        if not self._layout_pending:
            self._layout_pending = True
            QTimer.singleShot(0, self.apply_layout)

    def apply_layout(self) -> None:
        """Dock sizes and toolbar rows as a function of the window's size alone, so the same size gives the
        same layout whatever order the window was resized in."""
        self._layout_pending = False
        width, height = self.width(), self.height()
        presentation = self.session.presentation
        self._arrange_toolbars(width)
        left = [self.docks[v] for v in ("drawing", "probabilities") if v in self.docks and self.docks[v].isVisible()]
        if left:
            share = 0.30 if presentation else 0.25
            column = int(min(max(width * share, 330 if presentation else 310), 520 if presentation else 460))
            self.resizeDocks(left, [column] * len(left), Qt.Orientation.Horizontal)
            if len(left) == 2:
                available = max(height - self.menuBar().height() - self._toolbar_height()
                                - self.statusBar().height(), 400)
                bars = int(min(max(available * 0.3, 180 if presentation else 170), 320))
                self.resizeDocks(left, [available - bars, bars], Qt.Orientation.Vertical)
        right = [d for d in self.docks.values() if d.isVisible() and self.dockWidgetArea(d)
                 == Qt.DockWidgetArea.RightDockWidgetArea]
        if right:
            self.resizeDocks(right, [int(min(max(width * 0.24, 280), 480))] * len(right), Qt.Orientation.Horizontal)

    def _toolbar_height(self) -> int:
        rows = {bar.y() for bar in self.toolbars.values() if bar.isVisible()}
        return sum(bar.sizeHint().height() for bar in self.toolbars.values()) if not rows else \
            max(bar.geometry().bottom() for bar in self.toolbars.values()) - min(rows) + 1

    def _arrange_toolbars(self, width: int) -> None:
        """Start a new toolbar row where the next toolbar would not fit: no action is ever hidden behind
        an overflow chevron."""
        bars = [self.toolbars[name] for name in action_table.TOOLBARS]
        for bar in bars:
            self.removeToolBarBreak(bar)
        used = 0
        for bar in bars:
            need = bar.sizeHint().width() + 4
            if used and used + need > width:
                self.insertToolBarBreak(bar)
                used = 0
            used += need

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide_model_label()
        self.schedule_layout()

    def fit_to_screen(self) -> None:
        """First launch (or a remembered geometry that no longer fits): fill most of the screen's
        available area, centred."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            self.resize(1280, 800)
            return
        area = screen.availableGeometry()
        w, h = int(area.width() * 0.96), int(area.height() * 0.94)
        self.setGeometry(QRect(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2, w, h))

    def restore_window(self) -> None:
        """Remembered geometry if it fits the current screen, else fit_to_screen."""
        geometry = self.settings.value("window/geometry") if self.settings is not None else None
        restored = isinstance(geometry, QByteArray) and not geometry.isEmpty() and self.restoreGeometry(geometry)
        screen = self.screen() or QApplication.primaryScreen()
        if restored and screen is not None and not screen.availableGeometry().contains(self.frameGeometry()):
            restored = False
        if not restored:
            self.fit_to_screen()
        visible = self.settings.value("window/docks") if self.settings is not None else None
        if isinstance(visible, str) and visible:
            try:
                shown = json.loads(visible)
            except ValueError:
                shown = {}
            for view_id, dock in self.docks.items():
                if isinstance(shown, dict) and view_id in shown:
                    dock.setVisible(bool(shown[view_id]))

    def save_window(self) -> None:
        """Only the window's own geometry and which views are open (the rest is saved on change)."""
        if self.settings is None:
            return
        if not self.session.presentation:
            self.settings.set_value("window/geometry", self.saveGeometry())
        self.settings.set_value("window/docks", json.dumps({k: d.isVisible() for k, d in self.docks.items()}))

    # ------------------------------------------------------------------ presentation and style
    def _apply_presentation(self, on: bool) -> None:
        app = QApplication.instance()
        if on:
            self._normal_geometry = self.saveGeometry()
            self._help_was_visible = self.docks["help"].isVisible() if "help" in self.docks else False
            if "help" in self.docks:
                self.docks["help"].hide()
            self._apply_style()
            screen = self.screen() or QApplication.primaryScreen()
            if screen is not None:
                self.setGeometry(screen.geometry())  # without a window manager showFullScreen keeps the size
            self.showFullScreen()
        else:
            app.setFont(self._normal_font)
            self._apply_style()
            self.showNormal()
            if self._normal_geometry is not None:
                self.restoreGeometry(self._normal_geometry)
            if "help" in self.docks and getattr(self, "_help_was_visible", False):
                self.docks["help"].show()
        self.schedule_layout()

    def _apply_style(self) -> None:
        presentation = self.session.presentation
        scale = PRESENTATION_SCALE if presentation else 1.0
        font = QFont(self._normal_font)
        font.setPointSizeF(self._normal_font.pointSizeF() * scale)
        QApplication.instance().setFont(font)  # dialogs too
        self.setFont(font)
        # The point size is in the style sheet too: style-sheet-styled children do not follow setFont reliably.
        self.setStyleSheet(PRESENTATION_STYLE % {"pt": font.pointSizeF()} if presentation else "")
        self.overlay.set_scale(1.0)
        for view in self.views.values():
            view.setFont(font)  # explicitly: a dock's widgets must never keep the previous size
        for dock in self.docks.values():
            # On a projector the docks' titles would cost a line each; their toggles stay in the View menu.
            dock.setTitleBarWidget(QWidget() if presentation else None)
        style = Style(presentation=presentation, scale=scale, palette=self.session.palette)
        for view in self.views.values():
            view.apply_style(style)
        metrics = self.analysis_label.fontMetrics()
        # Permanent status texts keep their room: a long temporary message is cut, never these.
        self.analysis_label.setMinimumWidth(metrics.horizontalAdvance("analysis: 000.0 ms") + 4)
        self.fps_label.setMinimumWidth(metrics.horizontalAdvance("000 fps") + 4)
        self.schedule_layout()

    @property
    def normal_font(self) -> QFont:
        """The font outside presentation mode."""
        return QFont(self._normal_font)

    @property
    def presentation(self) -> bool:
        return self.session.presentation

    # ------------------------------------------------------------------ commands (the action table runs these)
    def scene_command(self, name: str, *args) -> None:
        self.views["scene"].command(name, *args)

    def clear_canvas(self) -> None:
        self.session.clear()

    def toggle_help(self) -> None:
        self.toggle_view("help")

    def toggle_shortcuts(self) -> None:
        self.overlay.set_scale(1.0)
        self.overlay.toggle()

    def about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About CNNViz Desktop",
                          f"<b>CNNViz Desktop</b> {__version__}<br>Draw a digit and watch a small convolutional "
                          f"network read it, live, in 3D.")

    def next_model(self) -> None:
        names = list(ARCHITECTURES)
        model = self.session.model
        current = model.arch.name if model is not None else names[0]
        index = names.index(current) if current in names else -1
        self.model_requested.emit(names[(index + 1) % len(names)])

    def open_weights(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open a weight file", str(Path.home()),
                                              "Weight files (*.safetensors);;All files (*)")
        if name:
            self.model_requested.emit(name)

    def open_image(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open an image of a digit", str(Path.home()),
                                              "Images (*.png *.jpg *.jpeg *.bmp);;All files (*)")
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
            text = str(exc)
            if not text.lower().startswith("cannot open this image"):
                text = f"cannot open this image: {text}"
            QMessageBox.warning(self, "Cannot open the image", f"{text}\n\nYour drawing was not changed.")
            return False
        if prepared is None:
            QMessageBox.information(self, "Empty image", f"{path.name} holds no digit; your drawing was not changed.")
            return False
        self.session.load_pixels(prepared.image)
        return True

    def save_drawing(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save the drawing", str(Path.home() / "digit.png"),
                                              "PNG image (*.png)")
        if name:
            self.save_drawing_to(Path(name))

    def save_drawing_to(self, path: Path) -> bool:
        from PIL import Image

        try:
            Image.fromarray((self.session.canvas.pixels * 255).astype(np.uint8)).save(path, format="PNG")
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot save", f"Could not write {path}: {exc}\n\nYour drawing is kept.")
            return False
        self.show_status(f"Saved {path}", 4000)
        return True

    def save_to_history(self, label: int | None = None, reason: str | None = None, note: str = "") -> int | None:
        """Save the drawing with its analysis into the saved-drawings history (opened now if it is not yet);
        returns the new id, or None when nothing is drawn or the save failed (said in the status bar or a
        message box; the drawing stays on the grid either way)."""
        from ..core.errors import CnnvizError
        from ..core.history import record_from_snapshot
        from .history_models import HistoryAccess

        session = self.session
        if session.canvas.is_empty:
            self.show_status("Nothing drawn: nothing was saved. Draw a digit first.", 6000)
            return None
        if session.model is not None and not session.settled:
            from PySide6.QtCore import QDeadlineTimer, QEventLoop

            deadline = QDeadlineTimer(5000)  # the newest analysis is a few ms away: save it with the drawing
            while not session.settled and not deadline.hasExpired():
                QApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
        snapshot = session.snapshot if session.settled else None
        access = HistoryAccess.of(self)
        try:
            record = record_from_snapshot(session.canvas.pixels.copy(), session.canvas.strokes, snapshot,
                                          session.model, label=label, reason=reason, note=note)
            record_id = access.get().save(record)
        except CnnvizError as exc:
            QMessageBox.warning(self, "Cannot save the drawing",
                                f"{exc}\n\nYour drawing is still on the grid; nothing was saved.")
            return None
        access.changed.emit()
        what = "Reported" if reason is not None else "Saved"
        read = "" if record.predicted is None else f" (read as {record.predicted}, {record.confidence:.0%})"
        self.show_status(f"{what} drawing #{record_id}{read} in your saved drawings (Alt+5 shows them)", 6000)
        return record_id

    def report_misclassification(self) -> int | None:
        """Ask for the true digit and a reason (ReportDialog), then save the drawing with both."""
        from .report_dialog import ReportDialog

        if self.session.canvas.is_empty:
            self.show_status("Nothing drawn: nothing to report. Draw a digit first.", 6000)
            return None
        dialog = ReportDialog(self.session.predicted, self)
        self.report_dialog = dialog  # tests drive it while it is open
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                self.show_status("Report cancelled: nothing was saved.", 4000)
                return None
        finally:
            self.report_dialog = None
        return self.save_to_history(label=dialog.label, reason=dialog.reason, note=dialog.note)

    def export_drawings(self) -> None:
        from .drawings_io import export_drawings

        export_drawings(self)

    def import_drawings(self) -> None:
        from .drawings_io import import_drawings

        import_drawings(self)

    def replay_drawing(self) -> None:
        from .drawings_io import replay_current

        replay_current(self)

    def show_model_error(self, message: str) -> None:
        QMessageBox.warning(self, "Cannot load the model",
                            f"{message}\n\nThe current model stays loaded; your drawing is kept.")

    def show_model_card(self) -> None:
        from .dialogs import model_card_dialog

        if self.session.model is not None:
            model_card_dialog(self, self.session.model).exec()

    # ------------------------------------------------------------------ what tests and tools read
    @property
    def canvas(self):
        """The drawing grid widget."""
        return self.views["drawing"].canvas

    @property
    def scene(self):
        """The 3D scene panel (None until the first model is shown)."""
        return self.views["scene"].panel

    @property
    def snapshot(self):
        return self.session.snapshot

    @property
    def last_request_id(self) -> int:
        return self.session.last_request_id

    @property
    def loaded(self):
        return self.session.model

    @property
    def probabilities(self):
        return self.views["probabilities"].panel

    @property
    def prediction_label(self) -> QLabel:
        return self.views["probabilities"].headline

    def layout_report(self) -> dict:
        """What a layout check needs (see ui/layout_report.py)."""
        from .layout_report import layout_report

        return layout_report(self)

    def scene_share(self) -> float:
        """The 3D view's share of the window's area (0-1)."""
        central = self.centralWidget()
        area = max(self.width() * self.height(), 1)
        return central.width() * central.height() / area if central is not None and central.isVisible() else 0.0

    # ------------------------------------------------------------------ frames
    def _on_frame_swapped(self) -> None:
        import time

        self._frames.append(time.perf_counter())

    def _update_fps(self) -> None:
        import time

        now = time.perf_counter()
        self._frames = [t for t in self._frames if now - t <= 1.0]
        self.fps_label.setText(f"{len(self._frames)} fps" if self.scene is not None else "- fps")

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_window()
        QApplication.instance().removeEventFilter(self)
        super().closeEvent(event)


def _normalise(key: str) -> str:
    """'shift+c' / 'Shift+C' -> 'Shift+C'; '?' stays '?' (typed with or without Shift)."""
    text = QKeySequence(key).toString() or key
    if text.startswith("Shift+") and not text[6:].isalpha():
        text = text[6:]
    return text
