"""Screen-space label placement with collision avoidance, and the texts of the scene's labels.

Pure Python (no Qt). Every frame the scene projects each label's 3D anchor to pixels and calls
:func:`place_labels` with the sizes of the label's text variants (longest first, e.g. the full title,
then 'conv1 · 8×26×26', then 'conv1'). The result is, per label, one rectangle and the variant drawn
there, or None (hidden). Guarantees, for every result:

- no two placed rectangles intersect, and none intersects an obstacle (e.g. the legend panel);
- every placed rectangle lies inside the view (minus ``margin``);
- a label's rectangle is never further than its ``max_shift`` from its anchor (so it still names what
  is next to it); one that cannot be placed in any variant is hidden, never drawn over another.

Greedy by priority (higher first; ties in the given order): for each variant the candidate positions
around the anchor are tried, and the one closest to the preferred position that is free wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .layout import aggregation_block, filter_cells_per_side
from .scene_style import AGGREGATE

Rect = tuple[float, float, float, float]  # x, y, w, h in pixels, (x, y) the top-left corner

# Where the label sits relative to its anchor: the rectangle's reference point is the anchor.
ALIGNMENTS = ("center", "above", "below", "left")  # 'left': the text starts at the anchor (runs right)


@dataclass(frozen=True)
class LabelRequest:
    """One label to place.

    anchor: (x, y) pixel position of its 3D anchor (see :func:`cnnviz_desktop.core.camera.project`).
    sizes: (w, h) pixels of each text variant, preferred (longest) first.
    priority: higher is placed first (wins a contested spot).
    align: how the preferred rectangle relates to the anchor (see ALIGNMENTS).
    max_shift: pixels the rectangle may lie away from the anchor (0: the anchor is inside or on its
        edge); None: 2.5 heights of the variant (a long title that would drift away from its layer
        gives way to its shorter form instead).
    max_dx: optional limit of the horizontal move of the rectangle from its preferred place (e.g. the
        output digits never slide sideways under the neighbouring cube).
    visible: False hides it (e.g. the anchor is behind the camera).
    """

    anchor: tuple[float, float]
    sizes: tuple[tuple[float, float], ...]
    priority: float = 0.0
    align: str = "center"
    max_shift: float | None = None
    max_dx: float | None = None
    visible: bool = True


@dataclass(frozen=True)
class PlacedLabel:
    """Where label ``index`` (into the requests) is drawn: text variant ``variant`` in ``rect``."""

    index: int
    variant: int
    rect: Rect


# Candidate offsets of the rectangle from its preferred place, in units of (its width, its height):
# the spot itself, then nudges up/down, then sideways, then both; sorted by distance at run time.
_STEPS_X = (0.0, -0.25, 0.25, -0.5, 0.5, -0.75, 0.75, -1.0, 1.0)
_STEPS_Y = (0.0, -1.1, 1.1, -2.2, 2.2, -3.3, 3.3)
_OFFSETS = tuple((dx, dy) for dy in _STEPS_Y for dx in _STEPS_X)


def _preferred(anchor: tuple[float, float], w: float, h: float, align: str) -> tuple[float, float]:
    """Top-left corner of the preferred rectangle."""
    x, y = anchor
    if align == "above":
        return x - w / 2.0, y - h
    if align == "below":
        return x - w / 2.0, y
    if align == "left":
        return x, y - h / 2.0
    return x - w / 2.0, y - h / 2.0


def _reach(ax: float, ay: float, x0: float, y0: float, w: float, h: float) -> float:
    """Pixels from the anchor (ax, ay) to the rectangle (0 when the anchor is inside or on its edge)."""
    dx = max(x0 - ax, 0.0, ax - (x0 + w))
    dy = max(y0 - ay, 0.0, ay - (y0 + h))
    return math.hypot(dx, dy)


def place_labels(requests: list[LabelRequest], view: tuple[float, float], obstacles: list[Rect] = (),
                 margin: float = 2.0, gap: float = 1.0, max_width: float = 0.4) -> list[PlacedLabel | None]:
    """Place labels without overlaps inside a view of ``view`` = (width, height) pixels.

    obstacles: rectangles (x, y, w, h) no label may cover (screen panels).
    margin: pixels kept free at the view's edges; gap: pixels kept between two labels.
    max_width: a variant wider than this fraction of the view is not used while a shorter one exists
        (in a narrow view the full titles would swamp the network they describe).
    Returns one entry per request, in the requests' order: a PlacedLabel or None (hidden).
    """
    vw, vh = float(view[0]), float(view[1])
    # Plain Python: about 17 labels a frame, most placed at their first candidate; numpy's per-call
    # overhead made this ~10x slower.
    placed = [(x - gap, y - gap, x + w + gap, y + h + gap) for x, y, w, h in obstacles]
    out: list[PlacedLabel | None] = [None] * len(requests)
    order = sorted(range(len(requests)), key=lambda i: -requests[i].priority)
    for i in order:
        req = requests[i]
        ax, ay = float(req.anchor[0]), float(req.anchor[1])
        if not req.visible or not (math.isfinite(ax) and math.isfinite(ay)):
            continue
        # An anchor well outside the view names nothing the user can see.
        if not (-0.05 * vw <= ax <= 1.05 * vw and -0.05 * vh <= ay <= 1.05 * vh):
            continue
        for variant, (w, h) in enumerate(req.sizes):
            w, h = float(w), float(h)
            if w + 2 * margin > vw or h + 2 * margin > vh:
                continue
            if w > max_width * vw and variant < len(req.sizes) - 1:
                continue
            px, py = _preferred((ax, ay), w, h, req.align)
            limit = (req.max_shift if req.max_shift is not None else 2.5 * h) + 1e-9
            max_dx = req.max_dx + 1e-9 if req.max_dx is not None else math.inf
            x_hi, y_hi = vw - margin - w, vh - margin - h
            # Fast path: most labels are free at their preferred place (slid inside the view).
            x0 = min(max(px, margin), x_hi)
            y0 = min(max(py, margin), y_hi)
            if (_reach(ax, ay, x0, y0, w, h) <= limit and abs(x0 - px) <= max_dx
                    and not any(x0 < q[2] and x0 + w > q[0] and y0 < q[3] and y0 + h > q[1] for q in placed)):
                out[i] = PlacedLabel(i, variant, (x0, y0, w, h))
                placed.append((x0 - gap, y0 - gap, x0 + w + gap, y0 + h + gap))
                break
            candidates = []
            for dx, dy in _OFFSETS:
                # Pushed inside the view: a label at the edge slides in rather than being cut.
                x0 = min(max(px + dx * w, margin), x_hi)
                y0 = min(max(py + dy * h, margin), y_hi)
                if _reach(ax, ay, x0, y0, w, h) <= limit and abs(x0 - px) <= max_dx:
                    candidates.append((math.hypot(x0 - px, y0 - py), x0, y0))
            candidates.sort()
            best = None
            for _, x0, y0 in candidates:
                x1, y1 = x0 + w, y0 + h
                if not any(x0 < q[2] and x1 > q[0] and y0 < q[3] and y1 > q[1] for q in placed):
                    best = (x0, y0)
                    break
            if best is None:
                continue
            bx, by = best
            out[i] = PlacedLabel(i, variant, (bx, by, w, h))
            placed.append((bx - gap, by - gap, bx + w + gap, by + h + gap))
            break
    return out


def rects_intersect(a: Rect, b: Rect) -> bool:
    """True when two (x, y, w, h) rectangles share interior area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def layer_titles(spec, source_channels: int | None = None) -> tuple[str, ...]:
    """A layer's label variants, longest first: the full title, the compact 'name · shape', the name.

    spec: an :class:`~cnnviz_desktop.core.architecture.LayerSpec`; source_channels: channels of the
    layer feeding a conv layer (its filter count is shape[0] x source_channels).
    """
    shape = spec.shape
    dims = "\u00d7".join(str(n) for n in shape)
    block = aggregation_block(spec)
    if block > 1:
        # Drawn aggregated (core.layout): every variant says so, down to the name-only one.
        how = (f"{block}\u00d7{block} blocks, {AGGREGATE}" if block < max(shape[1:])
               else f"one slab per map, {AGGREGATE}")
        full, compact, _ = _titles(spec, dims, source_channels)
        if spec.kind == "conv":
            full = full.replace(f"maps {shape[1]}\u00d7{shape[2]}", f"maps {shape[1]}\u00d7{shape[2]} (shown as {how})")
        else:
            full = f"{full} (shown as {how})"
        return (full, f"{compact} ({how})", f"{spec.name} ({block}\u00d7{block} {AGGREGATE})")
    return _titles(spec, dims, source_channels)


def _titles(spec, dims: str, source_channels: int | None) -> tuple[str, ...]:
    shape = spec.shape
    if spec.kind == "input":
        return (f"input {shape[1]}\u00d7{shape[2]}", "input")
    if spec.kind == "output":
        if spec.op == "gap":
            return ("output: digits 0-9 (map averages)", "output 0-9", "output")
        return ("output: digits 0-9", "output 0-9", "output")
    if spec.kind == "conv":
        full = (f"{spec.name}: {shape[0]} maps {shape[1]}\u00d7{shape[2]}  \u00b7  "
                f"{shape[0]}\u00d7{source_channels or '?'} filters {spec.kernel}\u00d7{spec.kernel}")
        if source_channels and spec.kernel and spec.kernel > 1 and filter_cells_per_side(spec, source_channels) == 1:
            full += " (a cell each: mean weight)"
        return (full, f"{spec.name} \u00b7 {dims}", spec.name)
    if spec.kind == "pool":
        if spec.op == "gap":
            full = f"{spec.name}: global average \u2192 {shape[0]} values"
        else:
            window = f"{spec.kernel}\u00d7{spec.kernel}"
            if spec.stride != spec.kernel:
                window += f" stride {spec.stride}"
            full = f"{spec.name}: {'average' if spec.op == 'avg' else 'max'} {window} \u2192 {dims}"
        return (full, f"{spec.name} \u00b7 {dims}", spec.name)
    return (f"{spec.name}: {shape[0]} units", f"{spec.name} \u00b7 {shape[0]}", spec.name)
