"""Drawn strokes as polylines, and their size-normalised rasterisation for the network.

Why: the canvas brush is fixed in grid cells, so a digit drawn small has strokes that are thick
relative to its size once preprocessing scales it up to MNIST's 20 px box: the loops of 6, 8 and 9
fill in. MNIST's sources were written large and reduced, so their pen is a roughly fixed fraction
of the digit's size. :func:`rasterise` therefore redraws the strokes straight into the 28x28 input
with a pen whose width is a fixed fraction of the 20 px box (pressure scaling it), whatever size the
digit was drawn at; erase strokes keep their own geometric width (the brush radius they were drawn
with, in the same transform), applied in order. Then the usual centre-of-mass placement.

Coordinates are canvas cell units (x = column, y = row, continuous; the centre of cell (r, c) is
(c + 0.5, r + 0.5)), times are seconds, pressure is in [0, 1].

Also here: :func:`thin` (Zhang-Suen thinning) and :func:`trace` (skeleton pixels -> polylines), used
to build a drawn-digit test set from MNIST images (benchmarks/bench_drawn.py, tests).

Qt-free and torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .preprocess import Preprocessed

# The same constants as preprocess (which imports torch; this module must not, the canvas uses it).
SIZE, BOX, CENTRE = 28, 20, 14.0

# Pen radius for ink strokes in 28x28 input pixels at full pressure (the half-coverage distance from
# the centreline). MNIST digits' ink mass divided by their skeleton length gives a mean stroke width
# of about 2.6 px on the t10k set; see benchmarks/bench_drawn.py for the choice of this value.
PEN_RADIUS = 1.25
# Width of the anti-aliased edge (input pixels): coverage falls linearly from 1 to 0 across it.
EDGE = 1.5
# The smallest digit side (cell units) the pen is scaled against: a dot or a tiny dash stays a dot
# of pen size instead of being blown up to fill the box.
MIN_SIDE = 3.0
# Centrelines are resampled to about this spacing (input pixels) before rasterising: mouse
# events come far denser than that, and rasterising costs one distance per segment and pixel.
SPACING = 1.0
# Coordinates beyond this many cells are clamped (only hostile input gets there; keeps arithmetic finite).
FAR = 1.0e6
# The working window (input pixels) the digit is rasterised in before its centre of mass is placed.
WINDOW = 24


def _pressure_factor(pressure: np.ndarray) -> np.ndarray:
    """The canvas brush's pressure law: radius * (0.5 + 0.5 * p), p clipped to [0, 1]."""
    return 0.5 + 0.5 * np.clip(pressure, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Stroke:
    """One drawn stroke.

    points: (N, 4) float32, read-only: columns x, y (cell units), t (seconds, time.monotonic()
    unless given), pressure (in [0, 1]). erase: True for an eraser stroke. radius: the brush radius
    (cells) it was drawn with (NaN counts as the default 1.3; clamped to [0, FAR]).
    """

    points: np.ndarray
    erase: bool = False
    radius: float = 1.3

    def __post_init__(self) -> None:
        points = np.array(self.points, dtype=np.float32).reshape(-1, 4)
        points.setflags(write=False)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "erase", bool(self.erase))
        radius = float(self.radius)
        # A broken radius (NaN) is the default brush's; an absurd one is bounded.
        radius = 1.3 if math.isnan(radius) else min(max(radius, 0.0), FAR)
        object.__setattr__(self, "radius", radius)

    @property
    def x(self) -> np.ndarray:
        return self.points[:, 0]

    @property
    def y(self) -> np.ndarray:
        return self.points[:, 1]

    @property
    def t(self) -> np.ndarray:
        return self.points[:, 2]

    @property
    def pressure(self) -> np.ndarray:
        return self.points[:, 3]

    def __len__(self) -> int:
        return int(self.points.shape[0])


def _clean(stroke: Stroke) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float64 finite positions (clamped to +-FAR) and (N,) pressure of a stroke; points with
    a non-finite position are dropped, a non-finite pressure counts as full pressure."""
    pts = stroke.points.astype(np.float64)
    keep = np.isfinite(pts[:, 0]) & np.isfinite(pts[:, 1])
    pts = pts[keep]
    xy = np.clip(pts[:, :2], -FAR, FAR)
    pressure = np.where(np.isfinite(pts[:, 3]), pts[:, 3], 1.0)
    return xy, pressure


def _segments(xy: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """Polyline -> (S, 5) segments x0, y0, x1, y1, pressure (of the end point, like the canvas);
    a single point is one zero-length segment."""
    if len(xy) == 1:
        return np.array([[xy[0, 0], xy[0, 1], xy[0, 0], xy[0, 1], pressure[0]]])
    return np.column_stack([xy[:-1], xy[1:], pressure[1:]])


def _clip_segments(seg: np.ndarray, w: float, h: float) -> np.ndarray:
    """Liang-Barsky: the parts of segments (S, 5) inside [0, w] x [0, h] (segments wholly outside
    are dropped), so ink dragged off the canvas does not count."""
    xs, ys = seg[:, [0, 2]], seg[:, [1, 3]]
    if xs.min() >= 0.0 and ys.min() >= 0.0 and xs.max() <= w and ys.max() <= h:
        return seg  # the usual case: all on the canvas
    x0, y0, dx, dy = seg[:, 0], seg[:, 1], seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    lo = np.zeros(len(seg))
    hi = np.ones(len(seg))
    ok = np.ones(len(seg), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in ((-dx, x0), (dx, w - x0), (-dy, y0), (dy, h - y0)):
            parallel = p == 0
            ok &= ~(parallel & (q < 0))
            r = q / np.where(parallel, 1.0, p)
            lo = np.where(~parallel & (p < 0), np.maximum(lo, r), lo)
            hi = np.where(~parallel & (p > 0), np.minimum(hi, r), hi)
    ok &= lo <= hi
    out = seg[ok].copy()
    lo, hi = lo[ok], hi[ok]
    out[:, 0], out[:, 1] = x0[ok] + lo * dx[ok], y0[ok] + lo * dy[ok]
    out[:, 2], out[:, 3] = x0[ok] + hi * dx[ok], y0[ok] + hi * dy[ok]
    return out


def _resample(seg: np.ndarray, spacing: float) -> np.ndarray:
    """Split segments (S, 5) so none is longer than ``spacing`` (same units): points along them,
    for testing which parts of the ink an eraser removed."""
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    counts = np.clip(np.ceil(length / spacing), 1, 10_000).astype(np.int64)
    idx = np.repeat(np.arange(len(seg)), counts + 1)
    starts = np.repeat(np.cumsum(counts + 1) - (counts + 1), counts + 1)
    frac = (np.arange(idx.size) - starts) / np.repeat(counts, counts + 1)
    s = seg[idx]
    return np.column_stack([s[:, 0] + frac * (s[:, 2] - s[:, 0]), s[:, 1] + frac * (s[:, 3] - s[:, 1])])


def _segment_distance2(px: np.ndarray, py: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """(S, P) float32 squared distance of points (px, py) (P,) to segments (S, >=4)."""
    seg = seg.astype(np.float32)
    x0, y0 = seg[:, 0:1], seg[:, 1:2]
    dx, dy = seg[:, 2:3] - x0, seg[:, 3:4] - y0
    length2 = dx * dx + dy * dy
    inv = np.float32(1.0) / np.where(length2 > 0, length2, np.float32(1.0))
    rx = px[None, :] - x0
    ry = py[None, :] - y0
    t = (rx * dx + ry * dy) * inv
    np.clip(t, 0.0, 1.0, out=t)
    rx -= t * dx
    ry -= t * dy
    rx *= rx
    ry *= ry
    rx += ry
    return rx


def _segment_distance(px: np.ndarray, py: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """(S, P) float32 distance of points (px, py) (P,) to segments (S, >=4)."""
    return np.sqrt(_segment_distance2(px, py, seg))


def _coverage(px: np.ndarray, py: np.ndarray, seg: np.ndarray, radius: np.ndarray,
              edge: float = EDGE) -> np.ndarray:
    """(P,) float32 coverage in [0, 1] of a union of capsules (segments (S, >=4), radii (S,)) with an
    ``edge``-wide linear anti-aliased rim centred on each radius."""
    inv = np.float32(1.0 / edge)
    rad = radius.astype(np.float32) * inv + np.float32(0.5)
    uniform = bool(np.all(rad == rad[0]))
    out = np.full(px.shape, -np.inf, dtype=np.float32)
    for start in range(0, len(seg), 256):  # bounded memory for very long strokes
        d2 = _segment_distance2(px, py, seg[start:start + 256])
        if uniform:  # one radius (a mouse has no pressure): the nearest segment decides
            cov = rad[0] - np.sqrt(d2.min(axis=0)) * inv
        else:
            cov = (rad[start:start + 256, None] - np.sqrt(d2) * inv).max(axis=0)
        np.maximum(out, cov, out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out


@lru_cache(maxsize=4096)
def _pixel_centres(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """(P,) float32 x and y of the centres of window pixels [r0, r1) x [c0, c1), row-major; cached."""
    ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float32) + np.float32(0.5)
    xs, ys = xs.ravel(), ys.ravel()
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _decimate(xy: np.ndarray, pressure: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first point, then one point per ``spacing`` of arc length, and the last point."""
    if len(xy) <= 2:
        return xy, pressure
    step = np.hypot(*np.diff(xy, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    bucket = np.floor(arc / spacing)
    keep = np.concatenate([[True], bucket[1:] != bucket[:-1]])
    keep[-1] = True
    return xy[keep], pressure[keep]


def rasterise(strokes, canvas_shape: tuple[int, int]) -> Preprocessed | None:
    """Strokes drawn on a canvas of ``canvas_shape`` (rows, cols) -> the network's 28x28 input.

    The centreline of the ink that is visible (inside the canvas, not erased) is fitted into the
    20x20 box keeping its aspect ratio, with the pen (PEN_RADIUS at full pressure) counted inside
    the box, so stroke width is a fixed fraction of the digit's size; ink and erase strokes are
    rasterised anti-aliased in order (erasers with their own radius in the same transform); the
    result is placed with its centre of mass at (14, 14) like :func:`preprocess.preprocess`.
    Returns a :class:`Preprocessed` whose placement maps the input back onto the canvas, or None
    when no ink is left (the caller then falls back to the pixels).
    """
    from .preprocess import Preprocessed

    h, w = int(canvas_shape[0]), int(canvas_shape[1])
    if h < 1 or w < 1:
        return None
    items = []  # (erase, segments (S, 5) in cells, radius (cells, erasers only))
    for stroke in strokes:
        xy, pressure = _clean(stroke)
        if len(xy) == 0:
            continue
        seg = _clip_segments(_segments(xy, pressure), float(w), float(h))
        if len(seg):
            items.append((stroke.erase, seg, stroke.radius))
    # The visible centreline: ink points not covered by a later eraser.
    extent = []
    for i, (erase, seg, _) in enumerate(items):
        if erase:
            continue
        later = [(s, r) for e, s, r in items[i + 1:] if e]
        pts = seg[:, :4].reshape(-1, 2) if not later else _resample(seg, 0.25)
        for eseg, radius in later:
            if not len(pts):
                break
            dist = _segment_distance(pts[:, 0].astype(np.float32), pts[:, 1].astype(np.float32), eseg)
            erased = (dist < (radius * _pressure_factor(eseg[:, 4]))[:, None]).any(axis=0)
            pts = pts[~erased]
        if len(pts):
            extent.append((pts.min(axis=0), pts.max(axis=0)))
    if not extent:
        return None
    lo = np.min([e[0] for e in extent], axis=0)
    hi = np.max([e[1] for e in extent], axis=0)
    side = max(float(np.max(hi - lo)), MIN_SIDE)
    scale = (BOX - 2.0 * PEN_RADIUS) / side
    centre = (lo + hi) / 2.0
    # Window pixel (i, j) has its centre at window coordinate (j + 0.5, i + 0.5); the digit's box
    # centre goes to the window's centre.
    half = WINDOW / 2.0
    window = np.zeros((WINDOW, WINDOW), dtype=np.float32)
    for erase, seg, radius in items:
        cells = seg.copy()
        cells[:, [0, 2]] = (cells[:, [0, 2]] - centre[0]) * scale + half
        cells[:, [1, 3]] = (cells[:, [1, 3]] - centre[1]) * scale + half
        if erase:
            # The canvas eraser's own geometry, scaled: full within radius - 0.5 cells, a rim one cell wide.
            radii = radius * scale * _pressure_factor(cells[:, 4])
            edge = scale
        else:
            cells = _decimated_segments(cells, SPACING)
            radii = PEN_RADIUS * _pressure_factor(cells[:, 4])
            edge = EDGE
        # Only the window pixels the stroke can reach (its box grown by the radius and the rim).
        reach = float(radii.max()) + edge / 2.0 + 0.5
        xs, ys = cells[:, [0, 2]], cells[:, [1, 3]]
        c0, c1 = (int(np.clip(v, 0, WINDOW)) for v in (np.floor(xs.min() - reach), np.ceil(xs.max() + reach)))
        r0, r1 = (int(np.clip(v, 0, WINDOW)) for v in (np.floor(ys.min() - reach), np.ceil(ys.max() + reach)))
        if r0 >= r1 or c0 >= c1:
            continue
        px, py = _pixel_centres(r0, r1, c0, c1)
        cov = _coverage(px, py, cells, radii, edge).reshape(r1 - r0, c1 - c0)
        block = window[r0:r1, c0:c1]
        if erase:
            np.minimum(block, 1.0 - cov, out=block)
        else:
            np.maximum(block, cov, out=block)
    mass = float(window.sum())
    if not mass > 0.0:
        return None
    out, oy, ox = paste_centred(window)
    # Input coordinate (pixel centres at k + 0.5) of canvas position c: (c - centre) * scale + half
    # + o = (c - top) * scale + offset with an integer top on the canvas.
    top = int(np.clip(np.floor(lo[1]), 0, h - 1))
    left = int(np.clip(np.floor(lo[0]), 0, w - 1))
    return Preprocessed(
        image=out,
        canvas_shape=(h, w),
        top=top, left=left,
        scale_y=float(scale), scale_x=float(scale),
        offset_y=float((top - centre[1]) * scale + half + oy),
        offset_x=float((left - centre[0]) * scale + half + ox),
    )


def _decimated_segments(seg: np.ndarray, spacing: float) -> np.ndarray:
    """Segments (S, 5) of one clipped stroke (possibly several runs where it left the canvas) with
    their polyline thinned to ``spacing``; zero-length segments (dots) are kept."""
    if len(seg) <= 1:
        return seg
    # Runs of connected segments: a break where a segment does not start at the previous end.
    breaks = np.flatnonzero((seg[1:, 0] != seg[:-1, 2]) | (seg[1:, 1] != seg[:-1, 3])) + 1
    if not breaks.size:  # the usual case: one run
        xy, pressure = _decimate(np.vstack([seg[:1, 0:2], seg[:, 2:4]]), np.concatenate([seg[:1, 4], seg[:, 4]]),
                                 spacing)
        return _segments(xy, pressure)
    out = []
    for run in np.split(seg, breaks):
        xy = np.vstack([run[:1, 0:2], run[:, 2:4]])
        pressure = np.concatenate([run[:1, 4], run[:, 4]])
        xy, pressure = _decimate(xy, pressure, spacing)
        out.append(_segments(xy, pressure))
    return np.vstack(out)


# ----------------------------------------------------------------------------------------------
# Building drawn digits from images: thinning and tracing


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning (Zhang & Suen 1984): (H, W) bool -> (H, W) bool one-pixel-wide skeleton."""
    img = np.pad(np.asarray(binary, dtype=bool), 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = img
            # Neighbours P2..P9 clockwise from north.
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            count = sum(x.astype(np.int32) for x in n)
            trans = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
            centre = p[1:-1, 1:-1] == 1
            if step == 0:
                c1 = (n[0] * n[2] * n[4]) == 0
                c2 = (n[2] * n[4] * n[6]) == 0
            else:
                c1 = (n[0] * n[2] * n[6]) == 0
                c2 = (n[0] * n[4] * n[6]) == 0
            remove = centre & (count >= 2) & (count <= 6) & (trans == 1) & c1 & c2
            if remove.any():
                img = img.copy()
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


_NEIGHBOURS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


def trace(skeleton: np.ndarray) -> list[np.ndarray]:
    """Skeleton pixels (H, W) bool -> polylines, each (N, 2) float64 (x, y) at pixel centres
    (column + 0.5, row + 0.5), in drawing order: from end points first (top-most first), then the
    loops that are left. A polyline that starts next to one already drawn begins at that pixel, so
    the drawing stays connected."""
    sk = np.asarray(skeleton, dtype=bool)
    on = {(int(r), int(c)) for r, c in zip(*np.nonzero(sk))}

    def neighbours(p):
        r, c = p
        return [(r + dr, c + dc) for dr, dc in _NEIGHBOURS if (r + dr, c + dc) in on]

    visited: set = set()
    lines = []
    while len(visited) < len(on):
        left = sorted(on - visited)
        ends = [p for p in left if len(neighbours(p)) <= 1]
        start = ends[0] if ends else left[0]
        line = []
        touching = [q for q in neighbours(start) if q in visited]
        if touching:
            line.append(touching[0])
        p = start
        while p is not None:
            line.append(p)
            visited.add(p)
            nxt = [q for q in neighbours(p) if q not in visited]
            if not nxt:
                # Close a loop or join a junction already drawn (not the pixel we came from).
                back = [q for q in neighbours(p) if q in visited and q not in line[-3:]]
                if back:
                    line.append(back[0])
                p = None
            else:
                p = nxt[0]  # 4-neighbours come first in _NEIGHBOURS
        lines.append(np.array([(c + 0.5, r + 0.5) for r, c in line], dtype=np.float64))
    return lines


def _upsampling(size: int, factor: int) -> np.ndarray:
    """(size * factor, size) bilinear upsampling matrix (align_corners=False, edges clamped)."""
    u = np.clip((np.arange(size * factor) + 0.5) / factor - 0.5, 0.0, size - 1)
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    m = np.zeros((size * factor, size))
    rows = np.arange(size * factor)
    np.add.at(m, (rows, i0), 1.0 - (u - i0))
    np.add.at(m, (rows, i1), u - i0)
    return m


def drawn_digit(image: np.ndarray, threshold: float = 0.5, factor: int = 3) -> list[np.ndarray]:
    """An MNIST-style image (H, W) in [0, 1] -> polylines (x, y in its pixel units) tracing its
    skeleton: upsampled ``factor`` times (bilinear) before thresholding and Zhang-Suen thinning, so
    that small loops survive; spurs of 2 source pixels or fewer dropped."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape
    big = _upsampling(h, factor) @ image @ _upsampling(w, factor).T
    lines = trace(thin(big > threshold))
    longest = max((len(line) for line in lines), default=0)
    return [line / factor for line in lines if len(line) > 2 * factor or len(line) == longest]


def fit_to_canvas(lines: list[np.ndarray], height_fraction: float, grid: int = 28) -> list[np.ndarray]:
    """Scale and centre polylines so that their larger side spans ``height_fraction`` of a square
    canvas of ``grid`` cells, centred on the canvas (cell units)."""
    pts = np.vstack(lines)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = max(float(np.max(hi - lo)), 1.0)
    scale = height_fraction * grid / side
    centre = (lo + hi) / 2.0
    return [(line - centre) * scale + grid / 2.0 for line in lines]


def paste_centred(block: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Place a (h, w) block of ink (non-zero mass) in a 28x28 image with its centre of mass at (14, 14),
    rounded to whole pixels, clipped at the border (a lopsided digit can poke past it). Returns the
    image and the block's top-left (oy, ox) in it."""
    h, w = block.shape
    mass = float(block.sum())
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    cy = float(block.sum(axis=1) @ ys) / mass
    cx = float(block.sum(axis=0) @ xs) / mass
    oy, ox = int(round(CENTRE - cy)), int(round(CENTRE - cx))
    image = np.zeros((SIZE, SIZE), dtype=np.float32)
    y0, x0 = max(oy, 0), max(ox, 0)
    y1, x1 = min(oy + h, SIZE), min(ox + w, SIZE)
    image[y0:y1, x0:x1] = block[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return image, oy, ox
