"""Drawings files: recorded strokes as JSON, validated as untrusted input, and their replay schedule.

The format (``.json``, UTF-8)::

    {"drawings": [{"label": 7, "strokes": [[[x, y, t, pressure], ...], ...]}, ...]}

- ``x``, ``y``: grid cells from 0 to 28 (x = column, y = row, continuous; the centre of cell (r, c) is
  (c + 0.5, r + 0.5)), the canvas's own coordinates (core.canvas, core.strokes);
- ``t``: seconds (any origin; only differences matter), optional (``[x, y]`` or ``[x, y, null, p]``), never
  decreasing within a stroke; points without ``t`` get a default pace (POINT_INTERVAL_S apart, STROKE_GAP_S
  between strokes);
- ``pressure``: 0-1, optional (1);
- ``label``: the true digit 0-9 or null, optional; ``note``: text, optional;
- a stroke may also be an object ``{"points": [...], "erase": bool, "radius": cells}`` (what the history's
  export writes for eraser strokes or another brush); other keys are ignored.

Every problem raises one CnnvizError naming where it is, counting from 1:
``drawing 3, stroke 2, point 7: x is -5, must be 0-28``. Size limits (file bytes, drawings, strokes, points)
are those of the history database (core.history).

Replay: :func:`replay_schedule` turns a drawing into press/move/release events in grid cells with their
times, at the original pace or faster; ui/replay.py sends them to the canvas as mouse events.

Qt-free and torch-free.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .canvas import DEFAULT_RADIUS, MAX_RADIUS, MIN_RADIUS
from .errors import CnnvizError
# The limits of the history database, so that whatever a file holds can be imported into it.
from .history import MAX_DRAWINGS, MAX_JSON_BYTES, MAX_NOTE, MAX_POINTS, MAX_STROKES, MAX_TOTAL_POINTS
from .strokes import Stroke

GRID = 28

# Default pace for points without a time: a brisk mouse drag (100 events per second) and a short pen lift.
POINT_INTERVAL_S = 0.01
STROKE_GAP_S = 0.25
# Times beyond a day are not a drawing's (and keep float arithmetic exact enough).
MAX_T = 86_400.0
# Replays shorten pauses longer than this (a pupil thinking for half a minute between strokes).
MAX_GAP_S = 2.0


@dataclass(frozen=True, eq=False)
class DrawnStroke:
    """One stroke of a drawings file.

    points: (N, 4) float64 read-only: x, y (grid cells), t (seconds, NaN where the file gave none), pressure
    (0-1). erase: an eraser stroke; radius: its brush (cells), or None for the current brush.
    """

    points: np.ndarray
    erase: bool = False
    radius: float | None = None

    def __post_init__(self) -> None:
        pts = np.array(self.points, dtype=np.float64).reshape(-1, 4)
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)

    def __len__(self) -> int:
        return int(self.points.shape[0])


@dataclass(frozen=True, eq=False)
class Drawing:
    """One drawing of a file: label (0-9 or None), strokes (DrawnStroke, drawing order), note."""

    strokes: tuple[DrawnStroke, ...]
    label: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "strokes", tuple(self.strokes))

    @property
    def point_count(self) -> int:
        return sum(len(s) for s in self.strokes)

    def times(self) -> list[np.ndarray]:
        """Per stroke, (N,) float64 seconds from the first point, missing times filled at the default pace
        (POINT_INTERVAL_S after the previous point, STROKE_GAP_S after the end of the previous stroke)."""
        out, clock, t0 = [], None, None
        for s in self.strokes:
            t = s.points[:, 2].copy()
            for k in range(len(t)):
                if math.isnan(t[k]):
                    if clock is None:
                        t[k] = 0.0
                    else:
                        t[k] = clock + (STROKE_GAP_S if k == 0 else POINT_INTERVAL_S)
                clock = float(t[k])
            if t0 is None and len(t):
                t0 = float(t[0])
            out.append(t)
        return [t - (t0 or 0.0) for t in out]

    def to_strokes(self, radius: float = DEFAULT_RADIUS) -> tuple[Stroke, ...]:
        """As core.strokes.Stroke objects (times filled in, seconds from the first point); strokes without a
        brush of their own get ``radius`` (cells)."""
        return tuple(Stroke(np.column_stack([s.points[:, :2], t, s.points[:, 3]]).astype(np.float32),
                            erase=s.erase, radius=radius if s.radius is None else s.radius)
                     for s, t in zip(self.strokes, self.times()))

    @classmethod
    def from_strokes(cls, strokes: Sequence[Stroke], label: int | None = None, note: str = "") -> Drawing:
        """From core.strokes.Stroke objects (e.g. CanvasModel.strokes or a saved drawing's): times become
        seconds from the first point; the default brush is left implicit (replayed at the current brush).
        Raises CnnvizError when there is nothing to draw."""
        kept = [s for s in strokes if len(s)]
        if not kept:
            raise CnnvizError("the drawing has no strokes to replay (an empty grid, or a loaded image)")
        t0 = min(float(np.nanmin(s.t)) if np.isfinite(s.t).any() else 0.0 for s in kept)
        out = []
        for s in kept:
            pts = s.points.astype(np.float64).copy()
            pts[:, 2] -= t0
            custom = abs(s.radius - DEFAULT_RADIUS) > 1e-6
            out.append(DrawnStroke(pts, erase=s.erase, radius=s.radius if (custom or s.erase) else None))
        return cls(tuple(out), label=label, note=note)


# ---------------------------------------------------------------------------------------------------------
# Reading


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, at: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CnnvizError(f"{at}: {name} is {_show(value)}, must be a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise CnnvizError(f"{at}: {name} is {_show(value)}, must be a finite number")
    return number


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _parse_stroke(raw: Any, at: str, clock: float) -> tuple[DrawnStroke, float]:
    erase, radius = False, None
    if isinstance(raw, dict):
        erase = raw.get("erase", False)
        if not isinstance(erase, bool):
            raise CnnvizError(f"{at}: 'erase' is {_show(erase)}, must be true or false")
        if raw.get("radius") is not None:
            radius = _number(raw["radius"], at, "'radius'")
            if not MIN_RADIUS <= radius <= MAX_RADIUS:
                raise CnnvizError(f"{at}: 'radius' is {_fmt(radius)}, must be {MIN_RADIUS}-{MAX_RADIUS} cells")
        raw = raw.get("points")
    if not isinstance(raw, list) or not raw:
        raise CnnvizError(f"{at}: a stroke must be a non-empty list of points [x, y, t, pressure]")
    if len(raw) > MAX_POINTS:
        raise CnnvizError(f"{at}: {len(raw)} points, the limit is {MAX_POINTS} per stroke")
    points = np.empty((len(raw), 4), dtype=np.float64)
    # Times never go back within a stroke; a stroke may start before the previous one ended (files whose
    # strokes each count from 0): strokes are replayed in file order, the replay schedule takes no gap.
    previous = 0.0
    for k, p in enumerate(raw):
        pat = f"{at}, point {k + 1}"
        if not isinstance(p, list) or not 2 <= len(p) <= 4:
            raise CnnvizError(f"{pat} is {_show(p)}, must be [x, y], [x, y, t] or [x, y, t, pressure]")
        x, y = _number(p[0], pat, "x"), _number(p[1], pat, "y")
        for name, v in (("x", x), ("y", y)):
            if not 0.0 <= v <= GRID:
                raise CnnvizError(f"{pat}: {name} is {_fmt(v)}, must be 0-{GRID} (grid cells)")
        t = math.nan
        if len(p) >= 3 and p[2] is not None:
            t = _number(p[2], pat, "t")
            if not 0.0 <= t <= MAX_T:
                raise CnnvizError(f"{pat}: t is {_fmt(t)}, must be 0-{_fmt(MAX_T)} seconds")
            if t < previous:
                raise CnnvizError(f"{pat}: t is {_fmt(t)}, earlier than the point before it ({_fmt(previous)} s); "
                                  "times must never decrease within a stroke")
            previous = t
            clock = max(clock, t)
        pressure = 1.0
        if len(p) == 4:
            pressure = _number(p[3], pat, "pressure")
            if not 0.0 <= pressure <= 1.0:
                raise CnnvizError(f"{pat}: pressure is {_fmt(pressure)}, must be 0-1")
        points[k] = (x, y, t, pressure)
    return DrawnStroke(points, erase=erase, radius=radius), clock


def parse_drawings(doc: Any, origin: str = "") -> list[Drawing]:
    """Validate a parsed drawings document (see the module docstring) -> [Drawing].

    ``origin`` (e.g. the file name) prefixes every message. Raises CnnvizError at the first problem, naming
    drawing, stroke and point (from 1), the bad value and what it must be.
    """
    pre = f"{origin}: " if origin else ""
    if not isinstance(doc, dict) or "drawings" not in doc:
        raise CnnvizError(f'{pre}not a drawings file: expected a JSON object {{"drawings": [...]}}')
    drawings = doc["drawings"]
    if not isinstance(drawings, list):
        raise CnnvizError(f"{pre}'drawings' is {_show(drawings)}, must be a list of drawings")
    if len(drawings) > MAX_DRAWINGS:
        raise CnnvizError(f"{pre}{len(drawings)} drawings, the limit is {MAX_DRAWINGS} per file: split it")
    out, total = [], 0
    for i, d in enumerate(drawings):
        at = f"{pre}drawing {i + 1}"
        if not isinstance(d, dict):
            raise CnnvizError(f"{at} is {_show(d)}, must be an object with 'strokes' (and optionally 'label')")
        label = d.get("label")
        if label is not None and (isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9):
            raise CnnvizError(f"{at}: label is {_show(label)}, must be a digit 0-9 or null")
        note = d.get("note", "")
        if note is None:
            note = ""
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise CnnvizError(f"{at}: note must be text of at most {MAX_NOTE} characters")
        raw = d.get("strokes")
        if not isinstance(raw, list) or not raw:
            raise CnnvizError(f"{at}: 'strokes' is {_show(raw)}, must be a non-empty list of strokes")
        if len(raw) > MAX_STROKES:
            raise CnnvizError(f"{at}: {len(raw)} strokes, the limit is {MAX_STROKES} per drawing")
        strokes, clock = [], 0.0
        for j, s in enumerate(raw):
            # Bound the work before parsing a stroke's points.
            size = len(s.get("points") or []) if isinstance(s, dict) and isinstance(s.get("points"), list) \
                else len(s) if isinstance(s, list) else 0
            if total + size > MAX_TOTAL_POINTS:
                raise CnnvizError(f"{pre}more than {MAX_TOTAL_POINTS} points in the file, the limit: split it")
            stroke, clock = _parse_stroke(s, f"{at}, stroke {j + 1}", clock)
            total += len(stroke)
            strokes.append(stroke)
        out.append(Drawing(tuple(strokes), label=label, note=note))
    return out


def loads(data: bytes | str, origin: str = "") -> list[Drawing]:
    """Parse the bytes (or text) of a drawings file -> [Drawing]; CnnvizError for anything malformed."""
    pre = f"{origin}: " if origin else ""
    if len(data) > MAX_JSON_BYTES:
        raise CnnvizError(f"{pre}{len(data) / 1e6:.0f} MB, a drawings file may be at most {MAX_JSON_BYTES >> 20} MB: "
                          "split it")
    try:
        text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else data
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise CnnvizError(f"{pre}not a drawings file: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise CnnvizError(f"{pre}not a drawings file: not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") \
            from exc
    except (ValueError, RecursionError) as exc:  # absurdly long integers, absurdly deep nesting
        raise CnnvizError(f"{pre}not a drawings file: not readable JSON ({type(exc).__name__}: {exc})"[:300]) \
            from exc
    return parse_drawings(doc, origin)


def read_drawings(path: str | os.PathLike) -> list[Drawing]:
    """Read and validate the drawings file at ``path`` -> [Drawing] (possibly empty).

    Refuses (CnnvizError) a missing or unreadable file, one over MAX_JSON_BYTES (without reading it all),
    and any malformed content, naming the drawing, stroke and point.
    """
    path = Path(path)
    name = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)  # a device or a growing file cannot make us read forever
    except FileNotFoundError as exc:
        raise CnnvizError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise CnnvizError(f"{name} is a folder, not a drawings file") from exc
    except OSError as exc:
        raise CnnvizError(f"cannot read {name}: {exc.strerror or exc}") from exc
    if len(data) > MAX_JSON_BYTES:
        raise CnnvizError(f"{name}: larger than {MAX_JSON_BYTES >> 20} MB, the limit for a drawings file: split it")
    return loads(data, name)


# ---------------------------------------------------------------------------------------------------------
# Writing


def _round(v: float, digits: int) -> float | int:
    r = round(float(v), digits)
    return int(r) if r.is_integer() else r


def document(drawings: Iterable[Drawing]) -> dict:
    """The JSON document of ``drawings``: points as [x, y, t, pressure] (t in seconds from the drawing's
    first point, 3 decimals; x, y 4 decimals); eraser strokes or ones with their own brush as objects."""
    out = []
    for d in drawings:
        strokes = []
        for s, t in zip(d.strokes, d.times()):
            points = [[_round(x, 4), _round(y, 4), _round(tt, 3), _round(p, 3)]
                      for (x, y, _, p), tt in zip(s.points, t)]
            if s.erase or s.radius is not None:
                item: dict[str, Any] = {"points": points, "erase": s.erase}
                if s.radius is not None:
                    item["radius"] = _round(s.radius, 4)
                strokes.append(item)
            else:
                strokes.append(points)
        entry: dict[str, Any] = {"label": d.label, "strokes": strokes}
        if d.note:
            entry["note"] = d.note
        out.append(entry)
    return {"drawings": out}


def dumps(drawings: Iterable[Drawing]) -> str:
    """The drawings file's text (compact JSON, one drawing per line for readable diffs)."""
    doc = document(drawings)
    lines = [json.dumps(d, separators=(",", ":")) for d in doc["drawings"]]
    return '{"drawings": [\n' + ",\n".join(lines) + "\n]}\n" if lines else '{"drawings": []}\n'


def write_drawings(path: str | os.PathLike, drawings: Iterable[Drawing]) -> int:
    """Write a drawings file atomically (a temporary file renamed over ``path``); returns how many drawings.
    CnnvizError if it cannot be written (the old file, if any, is kept)."""
    path = Path(path)
    drawings = list(drawings)
    text = dumps(drawings).encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise CnnvizError(f"could not write the drawings file {path}: {exc.strerror or exc}") from exc
    return len(drawings)


# ---------------------------------------------------------------------------------------------------------
# History records


def drawing_from_record(record) -> Drawing:
    """A saved drawing (core.history.DrawingRecord with strokes) -> Drawing; CnnvizError if it has none."""
    if record.strokes is None:
        raise CnnvizError(f"drawing #{record.id} was a loaded image, not strokes: it cannot be replayed")
    return Drawing.from_strokes(record.strokes, label=record.label, note=record.note)


def drawing_to_record(drawing: Drawing, source: str = "import", radius: float = DEFAULT_RADIUS):
    """A Drawing -> an unsaved core.history.DrawingRecord: the canvas painted through the canvas model (as
    the mouse would), its strokes kept, no prediction yet (core.history.analyse_record adds one)."""
    from .history import DrawingRecord, render_strokes

    pixels, kept = render_strokes(drawing.to_strokes(radius))
    return DrawingRecord(canvas=pixels, strokes=kept, label=drawing.label, note=drawing.note, source=source)


# ---------------------------------------------------------------------------------------------------------
# Replay


@dataclass(frozen=True)
class ReplayEvent:
    """One pointer event of a replay: kind 'press', 'move' or 'release'; x, y in grid cells; erase: the
    right (eraser) button; stroke: its stroke's index (from 0); pressure 0-1 (a mouse replay ignores it)."""

    kind: str
    x: float
    y: float
    erase: bool = False
    stroke: int = 0
    pressure: float = 1.0


@dataclass(frozen=True)
class Schedule:
    """A replay schedule: ``items`` [(at_s, ReplayEvent)] sorted by time; ``duration_s`` the last time."""

    items: tuple[tuple[float, ReplayEvent], ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        return self.items[-1][0] if self.items else 0.0

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]


def replay_schedule(drawing: Drawing, speed: float = 1.0, max_gap: float | None = MAX_GAP_S) -> Schedule:
    """The pointer events that redraw ``drawing``, with when to send each.

    Returns a Schedule of (delay_s, ReplayEvent): delay_s is seconds from the start of the replay (not from
    the previous event, so a timer-driven player does not drift), non-decreasing, first 0. Each stroke is a
    press at its first point, a move per further point and a release at its last point, at the times of
    the file (missing ones at the default pace, see Drawing.times) divided by ``speed`` (2: twice as fast;
    ``math.inf``: every delay 0, as fast as the receiver takes them). Pauses between points longer than
    ``max_gap`` seconds (original time; None: keep them) are shortened to it.
    """
    speed = float(speed)
    if not speed > 0 or math.isnan(speed):
        raise CnnvizError(f"the replay speed must be a positive number, got {speed}")
    items: list[tuple[float, ReplayEvent]] = []
    clock, last = 0.0, None
    for j, (s, times) in enumerate(zip(drawing.strokes, drawing.times())):
        n = len(s)
        for k in range(n):
            t = float(times[k])
            if last is not None:
                gap = max(t - last, 0.0)
                clock += min(gap, max_gap) if max_gap is not None else gap
            last = t
            at = 0.0 if math.isinf(speed) else clock / speed
            x, y, _, p = (float(v) for v in s.points[k])
            kind = "press" if k == 0 else "move"
            items.append((at, ReplayEvent(kind, x, y, s.erase, j, p)))
            if k == n - 1:
                items.append((at, ReplayEvent("release", x, y, s.erase, j, p)))
    return Schedule(tuple(items))


__all__ = ["Drawing", "DrawnStroke", "ReplayEvent", "Schedule", "document", "drawing_from_record",
           "drawing_to_record", "dumps", "loads", "parse_drawings", "read_drawings", "replay_schedule",
           "write_drawings"]
