"""The drawing: a float32 grid painted with a soft round brush, with undo and redo by stroke.

Qt-free so it is tested without a display; the canvas widget feeds it positions in cell units
(x = column, y = row, continuous: the centre of cell (r, c) is (c + 0.5, r + 0.5)).

Alongside the pixels the model keeps every stroke as a polyline (core.strokes.Stroke), so the
analysis can redraw the digit with a pen scaled to its size (core.strokes.rasterise). Undo, redo
and clear keep the two consistent; a loaded image (set_pixels) is not made of strokes, so from
then on ``strokes`` is None and the analysis reads the pixels.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .strokes import Stroke

GRID = 28
DEFAULT_RADIUS = 1.3
MIN_RADIUS, MAX_RADIUS = 0.5, 4.0
UNDO_LIMIT = 200
# Positions further than this (cells) from the grid are clamped: nothing is painted out there, and
# squared distances must stay finite in float32.
FAR = 1.0e6


def _tame(v: float) -> float:
    """A position coordinate as a float clamped to +-FAR; NaN and +-inf (a broken event) become NaN,
    and such a point is skipped."""
    v = float(v)
    return min(max(v, -FAR), FAR) if math.isfinite(v) else math.nan


class CanvasModel:
    """pixels: (rows, cols) float32 in [0, 1]; light ink on dark, like MNIST."""

    def __init__(self, rows: int = GRID, cols: int = GRID):
        self.pixels = np.zeros((rows, cols), dtype=np.float32)
        ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
        self._cy, self._cx = ys + 0.5, xs + 0.5
        self.radius = DEFAULT_RADIUS
        # Undo/redo entries: (pixels, strokes) with strokes a tuple of Stroke, or None when the
        # pixels are not (only) made of strokes (a loaded image).
        self._undo: list[tuple[np.ndarray, tuple[Stroke, ...] | None]] = []
        self._redo: list[tuple[np.ndarray, tuple[Stroke, ...] | None]] = []
        self._strokes: tuple[Stroke, ...] | None = ()
        self._points: list[tuple[float, float, float, float]] = []  # the stroke being drawn
        self._last: tuple[float, float] | None = None
        self._erasing = False
        self._current: Stroke | None = None  # cached Stroke of self._points

    # --- strokes -------------------------------------------------------------------------------
    def begin_stroke(self, x: float, y: float, erase: bool = False, pressure: float = 1.0,
                     t: float | None = None) -> None:
        """Start a stroke at (x, y) (cells) at time t (seconds, time.monotonic() if None); the state
        before it becomes one undo step."""
        x, y = _tame(x), _tame(y)
        if self._last is not None:
            self.end_stroke()
        self._undo.append((self.pixels.copy(), self._strokes))
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self._erasing = bool(erase)
        self._points = []
        self._last = (x, y)
        self._record(x, y, pressure, t)
        self._stamp(x, y, x, y, pressure)

    def extend_stroke(self, x: float, y: float, pressure: float = 1.0, t: float | None = None) -> None:
        """Paint the segment from the previous position to (x, y)."""
        x, y = _tame(x), _tame(y)
        if self._last is None:
            self.begin_stroke(x, y, pressure=pressure, t=t)
            return
        if not (math.isfinite(x) and math.isfinite(y)):
            return  # a broken position is skipped; the stroke goes on from the last good one
        x0, y0 = self._last
        if not (math.isfinite(x0) and math.isfinite(y0)):
            x0, y0 = x, y  # the stroke began at a broken position: it starts here
        self._last = (x, y)
        self._record(x, y, pressure, t)
        self._stamp(x0, y0, x, y, pressure)

    def end_stroke(self) -> None:
        """Finish the stroke being drawn: it joins ``strokes`` (or is dropped with its undo step if
        it changed nothing, e.g. erasing an empty area)."""
        if self._last is None:
            return
        self._last = None
        stroke = self._current_stroke()
        self._points, self._current = [], None
        if self._undo and np.array_equal(self._undo[-1][0], self.pixels):
            self._undo.pop()
            return
        if not self.pixels.any():
            self._strokes = ()  # everything erased: an empty drawing, whatever it was made of
        elif self._strokes is not None and stroke is not None:
            self._strokes = self._strokes + (stroke,)

    @property
    def in_stroke(self) -> bool:
        return self._last is not None

    @property
    def strokes(self) -> tuple[Stroke, ...] | None:
        """The drawing as immutable strokes in drawing order (the one being drawn last), or None when
        the pixels came (partly) from a loaded image."""
        if self._strokes is None:
            return None
        current = self._current_stroke() if self._last is not None else None
        return self._strokes if current is None else self._strokes + (current,)

    def _record(self, x: float, y: float, pressure: float, t: float | None) -> None:
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        p = float(pressure)
        p = min(max(p, 0.0), 1.0) if math.isfinite(p) else 1.0
        self._points.append((x, y, time.monotonic() if t is None else float(t), p))
        self._current = None

    def _current_stroke(self) -> Stroke | None:
        if not self._points:
            return None
        if self._current is None:
            self._current = Stroke(np.array(self._points, dtype=np.float32), erase=self._erasing,
                                   radius=self.radius)
        return self._current

    def _stamp(self, x0: float, y0: float, x1: float, y1: float, pressure: float) -> None:
        """Soft capsule from (x0, y0) to (x1, y1): distance of every cell centre to the segment."""
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return
        if not math.isfinite(pressure):
            pressure = 1.0
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        if length2 > 0:
            t = ((self._cx - x0) * dx + (self._cy - y0) * dy) / length2
            np.clip(t, 0.0, 1.0, out=t)
            px, py = x0 + t * dx, y0 + t * dy
        else:
            px, py = x0, y0
        dist = np.hypot(self._cx - px, self._cy - py)
        # Full ink inside radius - 0.5, linear anti-aliased edge one cell wide.
        radius = self.radius * (0.5 + 0.5 * float(np.clip(pressure, 0.0, 1.0)))
        ink = np.clip(radius + 0.5 - dist, 0.0, 1.0)
        if self._erasing:
            np.minimum(self.pixels, 1.0 - ink, out=self.pixels)
        else:
            np.maximum(self.pixels, ink, out=self.pixels)

    # --- whole-canvas edits ---------------------------------------------------------------------
    def set_pixels(self, pixels: np.ndarray) -> None:
        """Replace the drawing (e.g. a loaded image) as one undoable step."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.shape != self.pixels.shape:
            raise ValueError(f"expected shape {self.pixels.shape}, got {pixels.shape}")
        self._undo.append((self.pixels.copy(), self._strokes))
        self._redo.clear()
        self.pixels[...] = np.clip(np.nan_to_num(pixels), 0.0, 1.0)
        # A blank image is an empty drawing; anything else is not made of strokes.
        self._strokes = None if self.pixels.any() else ()

    def clear(self) -> bool:
        """Erase everything (undoable). Returns False if it was already empty."""
        if not self.pixels.any():
            return False
        self.set_pixels(np.zeros_like(self.pixels))
        return True

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append((self.pixels.copy(), self._strokes))
        pixels, self._strokes = self._undo.pop()
        self.pixels[...] = pixels
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append((self.pixels.copy(), self._strokes))
        pixels, self._strokes = self._redo.pop()
        self.pixels[...] = pixels
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def is_empty(self) -> bool:
        return not bool(self.pixels.any())

    def set_radius(self, radius: float) -> float:
        self.radius = float(np.clip(radius, MIN_RADIUS, MAX_RADIUS))
        return self.radius


def builtin_digit(name: str = "seven") -> list[list[tuple[float, float]]]:
    """Strokes (lists of (x, y) cell positions) of a built-in digit, used by --self-test and the demo."""
    digits = {
        "seven": [[(7.0, 6.0), (20.0, 6.0), (17.0, 12.0), (14.0, 18.0), (12.0, 23.0)]],
        "one": [[(14.0, 4.0), (14.0, 24.0)]],
        "zero": [[(14 + 6 * np.sin(a), 14 - 9 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)]],
    }
    return [[(float(x), float(y)) for x, y in stroke] for stroke in digits[name]]
