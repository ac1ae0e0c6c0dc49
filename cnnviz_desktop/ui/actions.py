"""The one table of user actions: menus, toolbars, tooltips, the shortcut overlay, the help and the README's
key table are all generated from :data:`ACTIONS`.

Each :class:`ActionSpec` says what the action is called, where it appears, which keys trigger it, and what
it does to the window's controller (``run(window, checked)``); checkable actions also say how to read their
state from the session (``state(session)``), so a toggle always shows the true state.

Single keys (no Ctrl/Alt, not an F-key) are not registered as Qt shortcuts: the window dispatches them
itself only while no menu, dialog or text field has the keyboard, so that a menu's mnemonics (Alt+H, then
A for About) always win. Keys with modifiers and F-keys are ordinary application shortcuts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MENUS = ("&File", "&Edit", "E&xplain", "&View", "&Model", "&Help")
TOOLBARS = ("Drawing", "Explain", "Scene", "Window")
HELP_GROUPS = ("Drawing", "Explain", "3D view", "Window")


@dataclass(frozen=True)
class ActionSpec:
    """One user action.

    id: unique name; text: menu text with its '&' mnemonic; keys: key sequences (the first is shown);
    tip: one sentence for tooltips and the status bar; menu: one of MENUS (None: not in a menu);
    submenu: a submenu title inside it; toolbar: one of TOOLBARS (None: not on a toolbar); icon_text:
    the toolbar button's short text; group: the shortcut overlay's section; help: what the overlay
    says (default: tip); run(window, checked): what it does; state(session) -> bool for checkable ones;
    visible(session) -> bool to hide actions that do not apply (e.g. channel 7 of a 2-channel layer).
    """

    id: str
    text: str
    keys: tuple[str, ...] = ()
    tip: str = ""
    menu: str | None = None
    submenu: str | None = None
    toolbar: str | None = None
    icon_text: str = ""
    group: str | None = None
    help: str = ""
    run: Callable[[Any, bool], None] = field(default=lambda w, on: None, compare=False)
    state: Callable[[Any], bool] | None = field(default=None, compare=False)
    visible: Callable[[Any], bool] | None = field(default=None, compare=False)
    separator_before: bool = False

    @property
    def checkable(self) -> bool:
        return self.state is not None

    @property
    def label(self) -> str:
        """The text without its mnemonic '&'."""
        return self.text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def is_single_key(key: str) -> bool:
    """True for keys typed without Ctrl/Alt/Meta that are not F-keys ('A', '0', '[', 'Delete', 'Shift+C')."""
    parts = key.split("+") if key != "+" else ["+"]
    mods = {p for p in parts[:-1]}
    last = parts[-1]
    if mods - {"Shift"}:
        return False
    return not (len(last) >= 2 and last[0] == "F" and last[1:].isdigit())


def _channel(k: int) -> ActionSpec:
    return ActionSpec(
        f"channel_{k}", f"Channel &{k}", (str(k),), f"Grad-CAM of channel {k} alone", menu="E&xplain",
        submenu="Grad-CAM &channel", group="Explain" if k == 0 else None,
        help="isolate channel k" if k == 0 else "",
        run=lambda w, on, k=k: w.session.set_channel(k),
        state=lambda s, k=k: s.channel == k,
        visible=lambda s, k=k: k < max(s.channels, 2))


def _target(d: int) -> ActionSpec:
    return ActionSpec(
        f"explain_{d}", f"Explain digit &{d}", (f"Ctrl+{d}",), f"Grad-CAM explains digit {d}", menu="E&xplain",
        submenu="Explain &digit", group="Explain" if d == 0 else None,
        help="explain digit k" if d == 0 else "",
        run=lambda w, on, d=d: w.session.set_target(d),
        state=lambda s, d=d: s.target == d and s.contrast is None)


def _connections(mode: str, text: str) -> ActionSpec:
    return ActionSpec(
        f"connections_{mode}", text, (), f"Draw {mode} connections", menu="&View", submenu="&Connections",
        run=lambda w, on, m=mode: w.session.set_connection_mode(m),
        state=lambda s, m=mode: s.connection_mode == m)


ACTIONS: tuple[ActionSpec, ...] = (
    # ---- File
    ActionSpec("open_image", "&Open image...", ("Ctrl+O",), "Load a PNG or JPEG of a digit as the drawing",
               menu="&File", group="Window", help="open an image", run=lambda w, on: w.open_image()),
    ActionSpec("open_model", "Open mode&l...", ("Ctrl+Shift+O",),
               "Open a network's weight file (.safetensors): trained with cnnviz-train fit --arch, imported with "
               "cnnviz-train import, or saved from the Training view", menu="&File", group="Window",
               help="open a model (weight file)", run=lambda w, on: w.open_weights()),
    ActionSpec("save_drawing", "&Save drawing", ("Ctrl+S",),
               "Save the drawing and its analysis in your saved drawings (Alt+5 shows them)",
               menu="&File", group="Window", help="save the drawing into the history",
               run=lambda w, on: w.save_to_history()),
    ActionSpec("report", "Report &misclassification...", ("X",),
               "Save the drawing as misclassified, with the true digit and a reason", menu="&File",
               toolbar="Drawing", icon_text="Report", group="Window", help="report a misclassification",
               run=lambda w, on: w.report_misclassification()),
    ActionSpec("export_png", "&Export drawing as PNG...", ("Ctrl+Shift+S",), "Save the drawing as a PNG image",
               menu="&File", run=lambda w, on: w.save_drawing()),
    ActionSpec("export_drawings", "Export &drawings...", (),
               "Write your saved drawings (the dashboard's selection, else all) to a drawings JSON file",
               menu="&File", run=lambda w, on: w.export_drawings(), separator_before=True),
    ActionSpec("import_drawings", "&Import drawings...", (),
               "Add the drawings of a drawings JSON file to your saved drawings (all or nothing)",
               menu="&File", run=lambda w, on: w.import_drawings()),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), "Quit CNNViz", menu="&File", group="Window",
               run=lambda w, on: w.close(), separator_before=True),
    # ---- Edit / drawing
    ActionSpec("undo", "&Undo stroke", ("Ctrl+Z",), "Undo the last stroke", menu="&Edit", toolbar="Drawing",
               icon_text="Undo", group="Drawing", run=lambda w, on: w.session.undo()),
    ActionSpec("redo", "&Redo stroke", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo the stroke", menu="&Edit",
               toolbar="Drawing", icon_text="Redo", group="Drawing", run=lambda w, on: w.session.redo()),
    ActionSpec("clear", "&Clear", ("Delete", "Backspace"), "Clear the drawing", menu="&Edit", toolbar="Drawing",
               icon_text="Clear", group="Drawing", run=lambda w, on: w.session.clear()),
    ActionSpec("replay", "Re&play drawing", (),
               "Clear the grid and redraw your strokes at their original pace, so the prediction can be "
               "watched as the digit forms (Esc stops)", menu="&Edit", run=lambda w, on: w.replay_drawing()),
    ActionSpec("brush_down", "S&maller brush", ("[",), "Thinner brush", menu="&Edit", group="Drawing",
               help="brush smaller", run=lambda w, on: w.session.set_brush(w.session.brush - 0.2),
               separator_before=True),
    ActionSpec("brush_up", "&Larger brush", ("]",), "Thicker brush", menu="&Edit", group="Drawing",
               help="brush larger", run=lambda w, on: w.session.set_brush(w.session.brush + 0.2)),
    # ---- Explain
    ActionSpec("overlay", "Grad-CAM &overlay", ("H",), "Show or hide the Grad-CAM overlay on the drawing",
               menu="E&xplain", toolbar="Explain", icon_text="Overlay", group="Explain",
               run=lambda w, on: w.session.set_overlay_visible(on), state=lambda s: s.overlay_visible),
    ActionSpec("hirescam", "&HiResCAM instead of Grad-CAM", ("M",),
               "HiResCAM: exact gradient x activation per cell, instead of Grad-CAM's channel averages",
               menu="E&xplain", toolbar="Explain", icon_text="HiResCAM", group="Explain", help="Grad-CAM / HiResCAM",
               run=lambda w, on: w.session.set_map_kind("hirescam" if on else "gradcam"),
               state=lambda s: s.map_kind == "hirescam"),
    ActionSpec("cycle_map", "Cycle explanation &map", ("N",),
               "Overlay map: Grad-CAM / HiResCAM / saliency / gradient x input", menu="E&xplain", group="Explain",
               help="overlay map: Grad-CAM / HiResCAM / saliency / gradient x input",
               run=lambda w, on: w.session.cycle_map_kind()),
    ActionSpec("both", "&Both channels", ("B",), "Grad-CAM of all channels summed (the tug-of-war)",
               menu="E&xplain", submenu="Grad-CAM &channel", toolbar="Explain", icon_text="Both",
               group="Explain", help="both channels summed", run=lambda w, on: w.session.set_channel(None),
               state=lambda s: s.channel is None),
    *(_channel(k) for k in range(10)),
    ActionSpec("next_channel", "&Next channel", ("C",), "Step to the next Grad-CAM channel", menu="E&xplain",
               submenu="Grad-CAM &channel", group="Explain", run=lambda w, on: w.session.step_channel(1),
               separator_before=True),
    ActionSpec("previous_channel", "&Previous channel", ("Shift+C",), "Step to the previous Grad-CAM channel",
               menu="E&xplain", submenu="Grad-CAM &channel", group="Explain",
               run=lambda w, on: w.session.step_channel(-1)),
    ActionSpec("explain_prediction", "Explain the &prediction", ("P",), "Grad-CAM explains the predicted digit",
               menu="E&xplain", toolbar="Explain", icon_text="Prediction", group="Explain",
               run=lambda w, on: w.session.set_target(None),
               state=lambda s: s.target is None and s.contrast is None),
    *(_target(d) for d in range(10)),
    ActionSpec("opacity_up", "More opa&que overlay", ("Ctrl+Up",), "Overlay opacity up", menu="E&xplain",
               group="Explain", help="overlay opacity up / down",
               run=lambda w, on: w.session.set_overlay_opacity(w.session.overlay_opacity + 0.1),
               separator_before=True),
    ActionSpec("opacity_down", "More &transparent overlay", ("Ctrl+Down",), "Overlay opacity down",
               menu="E&xplain", run=lambda w, on: w.session.set_overlay_opacity(w.session.overlay_opacity - 0.1)),
    # ---- View: the 3D scene and the window
    ActionSpec("reset_view", "&Reset 3D view", ("R",), "Reset the 3D camera", menu="&View", toolbar="Scene",
               icon_text="Reset view", group="3D view", run=lambda w, on: w.scene_command("reset_view")),
    ActionSpec("front_view", "&Front view", ("F5",), "Look at the network from the front", menu="&View",
               group="3D view", help="front / side / top view",
               run=lambda w, on: w.scene_command("preset_view", "front")),
    ActionSpec("side_view", "&Side view", ("F6",), "Look at the network from the side", menu="&View",
               run=lambda w, on: w.scene_command("preset_view", "side")),
    ActionSpec("top_view", "&Top view", ("F7",), "Look at the network from above", menu="&View",
               run=lambda w, on: w.scene_command("preset_view", "top")),
    ActionSpec("auto_rotate", "&Auto-rotate", ("A",), "Rotate the 3D view slowly", menu="&View",
               toolbar="Scene", icon_text="Rotate", group="3D view",
               run=lambda w, on: w.session.set_auto_rotate(on), state=lambda s: s.auto_rotate),
    ActionSpec("cycle_connections", "C&ycle connections", ("L",),
               "Connections drawn: significant / all / none", menu="&View", submenu="&Connections",
               toolbar="Scene", icon_text="Lines", group="3D view",
               help="connections: significant / all / none", run=lambda w, on: w.session.cycle_connection_mode()),
    _connections("significant", "&Significant connections"),
    _connections("all", "&All connections"),
    _connections("none", "&No connections"),
    ActionSpec("surfaces", "Acti&vation surfaces", ("U",),
               "Draw every feature map as a height surface: height and colour = activation, the layer's "
               "largest the tallest; connections end at each map's zero level", menu="&View", group="3D view",
               help="feature maps as activation surfaces (height = activation)",
               run=lambda w, on: w.session.set_surfaces(on), state=lambda s: s.surfaces),
    ActionSpec("palette", "Colour-blind-safe &palette", (), "Colour-blind-safe colours for every map",
               menu="&View", run=lambda w, on: w.session.set_palette("colorblind" if on else "default"),
               state=lambda s: s.palette == "colorblind", separator_before=True),
    ActionSpec("presentation", "Presentation &mode", ("F11",), "Full screen, large text, high contrast",
               menu="&View", toolbar="Window", icon_text="Present", group="Window",
               help="presentation mode", run=lambda w, on: w.session.set_presentation(on),
               state=lambda s: s.presentation),
    # ---- Model
    ActionSpec("next_model", "&Next model", ("Ctrl+M",), "Switch to the next shipped model", menu="&Model",
               group="Window", help="next model", run=lambda w, on: w.next_model(), separator_before=True),
    ActionSpec("open_weights", "&Open weights file...", (), "Load a .safetensors weight file", menu="&Model",
               run=lambda w, on: w.open_weights()),
    ActionSpec("model_card", "Model &card...", (), "Training data, accuracy and checksum of the model",
               menu="&Model", run=lambda w, on: w.show_model_card()),
    # ---- Help
    ActionSpec("how_to_use", "&How to use", ("Shift+F1",), "Open the How to use panel", menu="&Help",
               group="Window", help="how to use", run=lambda w, on: w.toggle_help()),
    ActionSpec("shortcuts", "&Keyboard shortcuts", ("F1", "?"), "Show every keyboard shortcut", menu="&Help",
               toolbar="Window", icon_text="Keys", group="Window", help="this overlay",
               run=lambda w, on: w.toggle_shortcuts()),
    ActionSpec("about", "&About CNNViz", (), "About CNNViz Desktop", menu="&Help", run=lambda w, on: w.about()),
)

BY_ID = {spec.id: spec for spec in ACTIONS}
assert len(BY_ID) == len(ACTIONS), "duplicate action id"

# Pointer gestures: not actions, but listed with them in the overlay and the README.
GESTURES: tuple[tuple[str, str, str], ...] = (
    ("Drawing", "Left / right button", "draw / erase"),
    ("Explain", "Click a bar", "explain that digit (again: the prediction)"),
    ("Explain", "Shift+click a bar", "why the explained digit rather than that one"),
    ("3D view", "Left drag", "rotate"),
    ("3D view", "Right or middle drag", "pan"),
    ("3D view", "Wheel", "zoom"),
    ("3D view", "Click a neuron", "trace it: value, inputs, receptive field"),
)


def key_text(spec: ActionSpec) -> str:
    """The keys of an action as people read them ('Ctrl+Shift+Z, Ctrl+Y')."""
    return ", ".join(spec.keys)


def help_rows(view_rows: list[tuple[str, str, str]] | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(keys, what), ...]) for the shortcut overlay and the README, in HELP_GROUPS order.
    ``view_rows``: extra (group, keys, what) rows, e.g. the view registry's toggles."""
    rows: dict[str, list[tuple[str, str]]] = {g: [] for g in HELP_GROUPS}
    for group, keys, what in GESTURES:
        rows[group].append((keys, what))
    for spec in ACTIONS:
        if spec.group and spec.keys:
            keys = key_text(spec)
            if spec.id.startswith("channel_"):
                keys = "0 - 9"
            elif spec.id.startswith("explain_") and spec.id != "explain_prediction":
                keys = "Ctrl+0 - Ctrl+9"
            elif spec.id == "front_view":
                keys = "F5 / F6 / F7"
            elif spec.id == "opacity_up":
                keys = "Ctrl+Up / Ctrl+Down"
            rows[spec.group].append((keys, (spec.help or spec.tip).rstrip(".")))
    for group, keys, what in view_rows or []:
        rows[group].append((keys, what))
    return [(g, rows[g]) for g in HELP_GROUPS]

