"""The drawing: a float32 grid painted with a soft round brush, with undo and redo by stroke.

Qt-free so it is tested without a display; the canvas widget feeds it positions in cell units
(x = column, y = row, continuous: the centre of cell (r, c) is (c + 0.5, r + 0.5)).
"""

from __future__ import annotations

import numpy as np

GRID = 28
DEFAULT_RADIUS = 1.3
MIN_RADIUS, MAX_RADIUS = 0.5, 4.0
UNDO_LIMIT = 200


class CanvasModel:
    """pixels: (rows, cols) float32 in [0, 1]; light ink on dark, like MNIST."""

    def __init__(self, rows: int = GRID, cols: int = GRID):
        self.pixels = np.zeros((rows, cols), dtype=np.float32)
        ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
        self._cy, self._cx = ys + 0.5, xs + 0.5
        self.radius = DEFAULT_RADIUS
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._last: tuple[float, float] | None = None
        self._erasing = False

    # --- strokes -------------------------------------------------------------------------------
    def begin_stroke(self, x: float, y: float, erase: bool = False, pressure: float = 1.0) -> None:
        """Start a stroke at (x, y); the state before it becomes one undo step."""
        self._undo.append(self.pixels.copy())
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self._erasing = erase
        self._last = (x, y)
        self._stamp(x, y, x, y, pressure)

    def extend_stroke(self, x: float, y: float, pressure: float = 1.0) -> None:
        """Paint the segment from the previous position to (x, y)."""
        if self._last is None:
            self.begin_stroke(x, y, pressure=pressure)
            return
        x0, y0 = self._last
        self._last = (x, y)
        self._stamp(x0, y0, x, y, pressure)

    def end_stroke(self) -> None:
        self._last = None
        # A stroke that changed nothing (e.g. erasing an empty area) is not worth an undo step.
        if self._undo and np.array_equal(self._undo[-1], self.pixels):
            self._undo.pop()

    @property
    def in_stroke(self) -> bool:
        return self._last is not None

    def _stamp(self, x0: float, y0: float, x1: float, y1: float, pressure: float) -> None:
        """Soft capsule from (x0, y0) to (x1, y1): distance of every cell centre to the segment."""
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
        self._undo.append(self.pixels.copy())
        self._redo.clear()
        self.pixels[...] = np.clip(np.nan_to_num(pixels), 0.0, 1.0)

    def clear(self) -> bool:
        """Erase everything (undoable). Returns False if it was already empty."""
        if not self.pixels.any():
            return False
        self.set_pixels(np.zeros_like(self.pixels))
        return True

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.pixels.copy())
        self.pixels[...] = self._undo.pop()
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.pixels.copy())
        self.pixels[...] = self._redo.pop()
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
