"""The session: the one owner of what the user is looking at (Qt-free).

It holds the drawing (a :class:`~cnnviz_desktop.core.canvas.CanvasModel`), the loaded model and its
generation, the view state (explained target and contrast class, Grad-CAM channel, map kind, overlay
visibility and opacity, palette, connection mode, presentation, auto-rotation, brush), the picked neuron,
the request counter and the current snapshot. It makes analysis requests, filters stale results (once,
here), computes what views need from a snapshot (the overlay map and its scale, a picked neuron's
receptive field on the grid, which channel answers to blank paper) and round-trips its settings through a
small key/value store.

Views subscribe to its events and render; none of them keeps a copy of this state. The model to follow is
mnelab's ``model.py`` (a plain model that a MainWindow only renders) and napari's ``ViewerModel``.

Events (each an :class:`~cnnviz_desktop.core.events.Event`):
- ``changed(name, value)``: a view-state field changed (names: see :data:`FIELDS`).
- ``model_changed(model)``: a new model is current (generation already increased).
- ``request_made(request)``: an AnalysisRequest for the worker.
- ``snapshot_changed(snapshot)``: a new, current analysis result is shown.
- ``analysis_failed(message)``: the newest request could not be analysed.
- ``picked_changed(picked)``: the picked neuron, ``(layer, index)`` or None.
- ``canvas_changed()``: the drawing changed (after a stroke step, clear, undo, load).

Extra maps: the engine computes saliency / gradient x input only when asked (AnalysisOptions.extras).
A view that shows them calls ``need(owner, kinds)`` when it is shown and ``release(owner)`` when it is
hidden; the overlay's map kind adds its own. :meth:`extras` is the union; a change of it re-requests the
drawing once, so the open views get their maps without waiting for the next stroke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .architecture import NUM_CLASSES, describe, last_conv_layer, receptive_field
from .canvas import CanvasModel
from .events import Event

MAP_KINDS = ("gradcam", "hirescam", "saliency", "inputxgrad")
# Overlay map kinds that need an extra map from the engine (AnalysisOptions.extras).
MAP_EXTRAS = {"saliency": "saliency", "inputxgrad": "inputxgrad"}
EXTRA_KINDS = ("saliency", "inputxgrad")
PALETTES = ("default", "colorblind")
CONNECTION_MODES = ("significant", "all", "none")
OPACITY_RANGE = (0.0, 1.0)
# A channel whose (absolute) Grad-CAM mass lies mostly off the ink answers to blank paper.
BLANK_PAPER_INK_SHARE = 0.3
# ... judged only on Grad-CAM grids whose cells are at most this many input pixels apart (tiny/wide: 4).
# A coarser cell (bn3's 3x3 grid: 8 px) spreads over far more paper than ink around any stroke, so
# nearly every channel would look like a blank-paper channel.
BLANK_PAPER_MAX_CELL = 4
INK_LEVEL = 0.1


class SettingsStore(Protocol):
    """Where settings persist: ``value(key, default)`` and ``set_value(key, value)`` (one key at a time,
    so that two instances of the app never overwrite each other's other settings)."""

    def value(self, key: str, default: Any = None) -> Any: ...

    def set_value(self, key: str, value: Any) -> None: ...


class DictStore:
    """An in-memory SettingsStore (tests, and when no settings file can be used)."""

    def __init__(self, data: dict | None = None) -> None:
        self.data = dict(data or {})

    def value(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set_value(self, key: str, value: Any) -> None:
        self.data[key] = value


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class Field:
    """One persisted view-state field: settings key, parser, default."""

    key: str
    parse: Callable[[Any], Any]
    default: Any


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value)
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {text!r}")
        return text

    return parse


def _finite(value: Any) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _opacity(value: Any) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError("not a finite number")
    return float(np.clip(number, *OPACITY_RANGE))


FIELDS: dict[str, Field] = {
    "map_kind": Field("overlay/map", _choice(MAP_KINDS), "gradcam"),
    "overlay_visible": Field("overlay/visible", _as_bool, True),
    "overlay_opacity": Field("overlay/opacity", _opacity, 0.75),
    "palette": Field("view/palette", _choice(PALETTES), "default"),
    "connection_mode": Field("view/connections", _choice(CONNECTION_MODES), "significant"),
    "auto_rotate": Field("view/auto_rotate", _as_bool, False),
    "brush": Field("canvas/brush", _finite, 1.3),
}
# Not persisted: they describe this drawing or this sitting, not a preference.
TRANSIENT = {"target": None, "contrast": None, "channel": None, "presentation": False}
MODEL_KEY = "model/last"


@dataclass(frozen=True)
class WorkerResult:
    """What the worker hands back: the generation of the model that ran, the request id, and either a
    snapshot or an error message."""

    generation: int
    request_id: int
    snapshot: Any = None
    error: str | None = None


@dataclass(frozen=True)
class OverlayMap:
    """The signed map the drawing grid shows. values: (H, W) float32 on the canvas grid; scale: the
    magnitude that maps to full colour (one scale for 'Both' and every channel, so a weak channel looks
    weak; for saliency, which is unsigned, its max); kind, channel: what it is."""

    values: np.ndarray
    scale: float
    kind: str
    channel: int | None


class Session:
    """See the module docstring. ``store``: a SettingsStore (DictStore() if None)."""

    def __init__(self, store: SettingsStore | None = None, canvas: CanvasModel | None = None) -> None:
        self.store: SettingsStore = store if store is not None else DictStore()
        self.canvas = canvas if canvas is not None else CanvasModel()
        self.changed = Event("changed")
        self.model_changed = Event("model_changed")
        self.request_made = Event("request_made")
        self.snapshot_changed = Event("snapshot_changed")
        self.analysis_failed = Event("analysis_failed")
        self.picked_changed = Event("picked_changed")
        self.canvas_changed = Event("canvas_changed")
        self._state: dict[str, Any] = {name: f.default for name, f in FIELDS.items()}
        self._state.update(TRANSIENT)
        self.model: Any = None
        self.specs: tuple = ()
        self.generation = 0
        self.snapshot: Any = None
        self.picked: tuple[str, tuple[int, ...]] | None = None
        self.last_request_id = 0
        self._accepted_id = -1
        self.dropped = 0
        self._rotate_before_presentation = False
        self._needs: dict[str, frozenset[str]] = {}
        self._extras: frozenset[str] = frozenset()
        self.canvas.set_radius(self._state["brush"])

    # ------------------------------------------------------------------ settings
    def load_settings(self) -> list[str]:
        """Read every persisted field from the store (bad values keep their default). Returns the
        problems found, one sentence each (the caller may show them; nothing is raised)."""
        problems = []
        for name, spec in FIELDS.items():
            raw = self.store.value(spec.key, None)
            if raw is None:
                continue
            try:
                self._state[name] = spec.parse(raw)
            except (TypeError, ValueError) as exc:
                problems.append(f"setting {spec.key} ignored ({exc})")
        self._state["brush"] = self.canvas.set_radius(self._state["brush"])
        self._update_extras()
        return problems

    def last_model(self, default: str = "tiny") -> str:
        """The model (shipped name or path) used last, from the store."""
        value = self.store.value(MODEL_KEY, None)
        return str(value) if value else default

    # ------------------------------------------------------------------ state
    def __getattr__(self, name: str) -> Any:
        # Read access to view-state fields as attributes: session.palette, session.channel, ...
        state = self.__dict__.get("_state")
        if state is not None and name in state:
            return state[name]
        raise AttributeError(name)

    def state(self) -> dict[str, Any]:
        """A copy of every view-state field."""
        return dict(self._state)

    def _set(self, name: str, value: Any) -> bool:
        if self._state[name] == value:
            return False
        self._state[name] = value
        spec = FIELDS.get(name)
        if spec is not None:
            self.store.set_value(spec.key, value if not isinstance(value, bool) else ("true" if value else "false"))
        self.changed.emit(name, value)
        return True

    @property
    def channels(self) -> int:
        """Channels of the Grad-CAM layer of the current model (0 without a model)."""
        if not self.specs:
            return 0
        return int(last_conv_layer(list(self.specs)).shape[0])

    def set_channel(self, channel: int | None) -> bool:
        """None = all channels summed ('Both'); k = channel k. False (unchanged) if out of range."""
        if channel is not None and not 0 <= int(channel) < max(self.channels, 1):
            return False
        return self._set("channel", None if channel is None else int(channel)) or True

    def step_channel(self, step: int) -> None:
        order = [None, *range(self.channels)]
        current = order.index(self.channel) if self.channel in order else 0
        self.set_channel(order[(current + step) % len(order)])

    def set_map_kind(self, kind: str) -> None:
        """The overlay's map: 'gradcam', 'hirescam', 'saliency' or 'inputxgrad' (the last two ask the
        engine for their extra map)."""
        if self._set("map_kind", _choice(MAP_KINDS)(kind)):
            self._update_extras()

    def cycle_map_kind(self, step: int = 1) -> None:
        """Step the overlay through MAP_KINDS (Grad-CAM, HiResCAM, saliency, gradient x input)."""
        self.set_map_kind(MAP_KINDS[(MAP_KINDS.index(self.map_kind) + step) % len(MAP_KINDS)])

    # ------------------------------------------------------------------ extra maps
    def need(self, owner: str, kinds) -> None:
        """``owner`` (a view id) needs the extra maps ``kinds`` (subset of EXTRA_KINDS) from now on;
        replaces what it needed before. Raises ValueError for an unknown kind."""
        kinds = frozenset(kinds)
        unknown = kinds - set(EXTRA_KINDS)
        if unknown:
            raise ValueError(f"unknown extra maps {sorted(unknown)}; choose from {', '.join(EXTRA_KINDS)}")
        if kinds:
            self._needs[str(owner)] = kinds
        else:
            self._needs.pop(str(owner), None)
        self._update_extras()

    def release(self, owner: str) -> None:
        """``owner`` no longer needs any extra map (its view was hidden)."""
        self._needs.pop(str(owner), None)
        self._update_extras()

    def extras(self) -> frozenset[str]:
        """The extra maps every request asks for: the union of the owners' needs and the overlay's kind."""
        return self._extras

    def _update_extras(self) -> None:
        union = set().union(*self._needs.values()) if self._needs else set()
        if self.map_kind in MAP_EXTRAS:
            union.add(MAP_EXTRAS[self.map_kind])
        union = frozenset(union)
        if union != self._extras:
            self._extras = union
            self.request()

    def set_overlay_visible(self, visible: bool) -> None:
        self._set("overlay_visible", bool(visible))

    def set_overlay_opacity(self, opacity: float) -> None:
        self._set("overlay_opacity", _opacity(opacity))

    def set_palette(self, palette: str) -> None:
        self._set("palette", _choice(PALETTES)(palette))

    def set_connection_mode(self, mode: str) -> None:
        self._set("connection_mode", _choice(CONNECTION_MODES)(mode))

    def cycle_connection_mode(self) -> None:
        modes = CONNECTION_MODES
        self.set_connection_mode(modes[(modes.index(self.connection_mode) + 1) % len(modes)])

    def set_auto_rotate(self, on: bool) -> None:
        self._set("auto_rotate", bool(on))

    def set_brush(self, radius: float) -> None:
        self._set("brush", self.canvas.set_radius(_finite(radius)))

    def set_presentation(self, on: bool) -> None:
        """Presentation mode; it turns auto-rotation on (visibly: the toggle shows it) and restores the
        previous choice when it ends."""
        on = bool(on)
        if on == self.presentation:
            return
        if on:
            self._rotate_before_presentation = self.auto_rotate
        self._set("presentation", on)
        self._set("auto_rotate", True if on else self._rotate_before_presentation)

    def set_target(self, target: int | None, contrast: int | None = None) -> None:
        """Explain class ``target`` (None: the prediction), optionally 'rather than ``contrast``'."""
        for label, value in (("target", target), ("contrast", contrast)):
            if value is not None and not (isinstance(value, (int, np.integer)) and 0 <= int(value) < NUM_CLASSES):
                raise ValueError(f"{label} must be a digit 0-9 or None, got {value!r}")
        if contrast is not None and contrast == target:
            contrast = None
        changed = self._set("target", None if target is None else int(target))
        changed = self._set("contrast", None if contrast is None else int(contrast)) or changed
        if changed:
            self.request()

    def click_class(self, digit: int, contrast: bool = False) -> None:
        """A click on a probability bar: explain that digit (again: back to the prediction); with
        ``contrast`` (Shift+click), explain the current target rather than ``digit``."""
        if contrast:
            base = self.target if self.target is not None else self.predicted
            if base is None or base == digit:
                return
            self.set_target(base, None if self.contrast == digit else digit)
        else:
            self.set_target(None if self.target == digit and self.contrast is None else digit)

    @property
    def predicted(self) -> int | None:
        snap = self.snapshot
        return None if snap is None or snap.empty else snap.predicted

    def explains_text(self) -> str:
        """What the overlay explains, in words ('the prediction (7)', 'digit 3', 'why 3 rather than 5')."""
        snap = self.snapshot
        target = self.target
        if self.contrast is not None:
            shown = target if target is not None else self.predicted
            return f"why {shown} rather than {self.contrast}"
        if target is None:
            return "the prediction" + (f" ({snap.predicted})" if snap is not None and not snap.empty else "")
        return f"digit {target}"

    # ------------------------------------------------------------------ model
    def set_model(self, model: Any, *, remember: bool = True) -> None:
        """Make ``model`` (a weights.LoadedModel or anything with ``.arch``) current: a new generation,
        so results of the previous model are never shown; the channel is kept if the new model has it;
        the drawing is analysed again. ``remember``: store it as the model to open next time (False for
        live training weights, which exist in no file)."""
        self.model = model
        self.specs = tuple(describe(model.arch))
        self.generation += 1
        self._accepted_id = -1
        self.snapshot = None
        if self.channel is not None and self.channel >= self.channels:
            self._set("channel", None)
        self.set_picked(None)
        path = getattr(model, "path", None)
        from .architecture import ARCHITECTURES

        shipped = model.arch.name in ARCHITECTURES and path is not None and path.stem == model.arch.name
        if remember:
            self.store.set_value(MODEL_KEY, model.arch.name if shipped else str(path))
        self.model_changed.emit(model)
        self.request()

    # ------------------------------------------------------------------ requests and results
    def canvas_edited(self) -> None:
        """Call after the drawing changed (a stroke step, clear, undo, a loaded image)."""
        self.canvas_changed.emit()
        self.request()

    def request(self):
        """Make an AnalysisRequest of the current drawing (the worker keeps only the newest). None
        (and nothing emitted) while no model is loaded."""
        if self.model is None:
            return None
        from .analysis import AnalysisOptions, AnalysisRequest

        self.last_request_id += 1
        # The strokes (polylines) let preprocessing draw the digit at a pen width relative to its size.
        options = AnalysisOptions(extras=self._extras) if self._extras else AnalysisOptions()
        request = AnalysisRequest(self.last_request_id, self.canvas.pixels.copy(), target=self.target,
                                  contrast=self.contrast, strokes=self.canvas.strokes, options=options)
        self.request_made.emit(request)
        return request

    def accept(self, result: WorkerResult) -> bool:
        """Take a worker result: shown if it comes from the current model's generation and answers a
        newer request than the one shown; otherwise dropped (counted in ``dropped``)."""
        if result.generation != self.generation:
            self.dropped += 1
            return False
        if result.request_id < 0:  # the model itself could not be analysed (no request involved)
            self.analysis_failed.emit(result.error or "the model cannot be analysed")
            return True
        if result.request_id <= self._accepted_id:
            self.dropped += 1
            return False
        self._accepted_id = result.request_id
        if result.snapshot is None:
            self.analysis_failed.emit(result.error or "analysis failed")
            return True
        self.snapshot = result.snapshot
        if self.picked is not None and result.snapshot.empty:
            self.set_picked(None)
        self.snapshot_changed.emit(result.snapshot)
        return True

    @property
    def settled(self) -> bool:
        """True when the newest request's answer is shown."""
        return self.snapshot is not None and self.snapshot.request_id == self.last_request_id

    @property
    def analysis_ms(self) -> float | None:
        """The worker's time for the shown analysis (its 'total' stage), or None."""
        snap = self.snapshot
        if snap is None or not snap.timings:
            return None
        total = snap.timings.get("total")
        return float(total) if total is not None else float(sum(snap.timings.values()))

    # ------------------------------------------------------------------ derived for views
    def overlay(self) -> OverlayMap | None:
        """The signed map to draw on the grid, or None (hidden, nothing drawn, no result yet)."""
        snap = self.snapshot
        if not self.overlay_visible or snap is None or snap.empty:
            return None
        if self.map_kind == "hirescam":
            values = snap.canvas_hirescam
            return OverlayMap(values, float(np.abs(values).max()), "hirescam", None)
        if self.map_kind in MAP_EXTRAS:
            values = snap.canvas_saliency if self.map_kind == "saliency" else snap.canvas_input_x_gradient
            if values is None:  # the request that asks for it is still being analysed
                return None
            return OverlayMap(values, float(np.abs(values).max()), self.map_kind, None)
        scale = float(max(np.abs(snap.canvas_cam).max(), np.abs(snap.canvas_cam_channels).max()))
        channel = self.channel if self.channel is not None and self.channel < len(snap.canvas_cam_channels) else None
        values = snap.canvas_cam if channel is None else snap.canvas_cam_channels[channel]
        return OverlayMap(values, scale, "gradcam", channel)

    def channel_maps(self) -> list[tuple[str, np.ndarray]]:
        """(label, (H, W) signed canvas map) for 'Both' and each channel (at most 10 channels), for
        thumbnails; empty without a result."""
        snap = self.snapshot
        if snap is None or snap.empty:
            return []
        maps = [("Both" if self.channels == 2 else "All", snap.canvas_cam)]
        for k in range(min(self.channels, 10)):
            maps.append((f"Ch {k}", snap.canvas_cam_channels[k]))
        return maps

    def blank_paper_channels(self) -> list[int]:
        """Channels of the Grad-CAM layer whose map lies mostly off the ink (they answer to blank paper:
        'no ink here' is their evidence). Measured on the shown drawing: share of |map| on ink cells
        below BLANK_PAPER_INK_SHARE. Empty (not judged) when the Grad-CAM cells are more than
        BLANK_PAPER_MAX_CELL input pixels apart."""
        snap = self.snapshot
        if snap is None or snap.empty:
            return []
        from .analysis import receptive_field as cell_geometry

        if cell_geometry(self.specs, last_conv_layer(list(self.specs)).name)[0] > BLANK_PAPER_MAX_CELL:
            return []
        ink = np.asarray(snap.activations["input"]).reshape(snap.cam_channels.shape[-2:]) > INK_LEVEL
        out = []
        for k, cam in enumerate(np.abs(np.asarray(snap.cam_channels))):
            total = float(cam.sum())
            if total > 0 and float(cam[ink].sum()) / total < BLANK_PAPER_INK_SHARE:
                out.append(k)
        return out

    def set_picked(self, layer: str | None, index: tuple[int, ...] = ()) -> None:
        """Pick a neuron (None clears)."""
        picked = None if layer is None else (str(layer), tuple(int(i) for i in index))
        if picked == self.picked:
            return
        self.picked = picked
        self.picked_changed.emit(picked)

    def picked_box(self) -> tuple[int, int, int, int] | None:
        """The picked neuron's receptive field as canvas cells (row0, col0, row1, col1; end exclusive),
        or None (nothing picked, nothing drawn)."""
        snap = self.snapshot
        if self.picked is None or not self.specs or snap is None or snap.empty or snap.placement is None:
            return None
        box = receptive_field(list(self.specs), *self.picked)
        return None if box is None else snap.placement.box_to_canvas(box)

    # ------------------------------------------------------------------ drawing commands
    def clear(self) -> bool:
        if self.canvas.clear():
            self.set_picked(None)
            self.canvas_edited()
            return True
        return False

    def undo(self) -> bool:
        if self.canvas.undo():
            self.canvas_edited()
            return True
        return False

    def redo(self) -> bool:
        if self.canvas.redo():
            self.canvas_edited()
            return True
        return False

    def load_pixels(self, pixels: np.ndarray) -> None:
        """Put an image (canvas shape, [0, 1]) on the grid as one undoable step."""
        self.canvas.set_pixels(pixels)
        self.canvas_edited()
