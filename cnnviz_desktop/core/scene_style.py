"""Colouring policy of the 3D scene: what colour each cube and line gets for a snapshot, which lines are
drawn, how many, and the texts that describe them. Pure numpy (no Qt); the ScenePanel only uploads
what these functions return.

Lines: a snapshot marks the significant connections (see core.analysis). Per target layer the
contributions are normalised by the layer's largest |contribution| (their magnitudes differ by orders
between layers); at most ``budget`` of the strongest significant lines per layer are drawn, each with
opacity growing with |contribution| (weak lines nearly vanish), and a layer whose drawn lines are
dense fades as a whole. Lines are drawn beneath the maps (see ui/gl/lines.py), so they never hide a
cube; this policy keeps the space between the planes readable.
"""

from __future__ import annotations

import math

import numpy as np

from . import colors
from .layout import SceneLayout

CONNECTION_MODES = ("significant", "all", "none")
# What one cube of an aggregated layer shows: the max of its block. A ReLU map is sparse (a stroke
# lights a few cells): the mean of a block would dim a strong, local response below a weak, wide one,
# while the max keeps what a max-pool would pass on, and stays on the layer's colour scale.
AGGREGATE = "max"
# Significant lines drawn per layer at most (the strongest) in a view of BUDGET_REFERENCE_VIEW. Each
# long line costs ~5 us on a software renderer (input -> conv1 alone has ~16k significant ones).
DEFAULT_LINE_BUDGET = 600
BUDGET_REFERENCE_VIEW = (1600, 1000)  # 'auto' scales the budget with the view's diagonal (auto_budget)
BUDGET_LIMITS = (200, 2000)
FADE_ABOVE = 500  # drawn lines per layer (at the reference size) above which the layer's lines fade
MIN_ALPHA, ALPHA_GAMMA = 0.05, 1.5  # line opacity = layer alpha * (MIN + (1 - MIN) * |c|^GAMMA)


def density_scale(view: tuple[int, int]) -> float:
    """View diagonal / reference diagonal: how many more lines the view holds at the same density."""
    ref_w, ref_h = BUDGET_REFERENCE_VIEW
    return math.hypot(*view) / math.hypot(ref_w, ref_h)


def auto_budget(view: tuple[int, int]) -> int:
    """DEFAULT_LINE_BUDGET at the reference view size, proportional to the view's diagonal otherwise.

    A line covers pixels in proportion to the view's linear size and the view has area for (linear
    size)^2 of them, so lines in proportion to the diagonal keep the picture equally dense at every
    size. Rounded to 50 so resizing rarely changes it; clamped to BUDGET_LIMITS.
    """
    budget = int(round(DEFAULT_LINE_BUDGET * density_scale(view) / 50.0) * 50)
    return max(BUDGET_LIMITS[0], min(BUDGET_LIMITS[1], budget))


def layer_values(kind: str, name: str, snapshot, count: int) -> tuple[np.ndarray, float | None]:
    """(values (count,) float32, colour scale) a layer's cubes show: probabilities for the output,
    pixels (scale 1) for the input, activations (scale: the layer's max) otherwise; zeros when empty."""
    if snapshot is None or snapshot.empty:
        return np.zeros(count, np.float32), 1.0
    if kind == "output" and snapshot.probabilities is not None:
        return np.asarray(snapshot.probabilities, np.float32).reshape(-1), 1.0
    values = np.asarray(snapshot.activations[name], np.float32).reshape(-1)
    return values, (1.0 if kind == "input" else None)


def cube_colors(lay: SceneLayout, snapshot, palette: str, rgba_out: np.ndarray, values_out: np.ndarray) -> None:
    """Fill rgba_out (N, 4) uint8 and values_out (N,) float32 for every cube of ``lay`` from a snapshot.

    A cube of an aggregated layer shows the AGGREGATE ('max') of its block's activations, on the colour
    scale of the whole layer (its largest activation), so the brightest cube is as bright as the
    brightest neuron would be.
    """
    for name, box in lay.layers.items():
        values, scale = layer_values(box.kind, name, snapshot, box.size)
        agg = lay.aggregation.get(name)
        if agg is not None:
            if scale is None and values.size:
                scale = float(values.max()) or None  # the layer's own scale: aggregating does not rescale colours
            values = agg.reduce(values, AGGREGATE)
        values_out[box.cubes] = values
        colors.activation_colors(values, scale, palette, out=rgba_out[box.cubes])


def edge_state(lay: SceneLayout, snapshot, budget: int, view: tuple[int, int], contrib_out: np.ndarray,
               norm_out: np.ndarray, significant_out: np.ndarray, layer_alpha_out: np.ndarray) -> None:
    """Per edge: contribution, contribution / the target layer's max |contribution| (in -1..1), the
    significant mask, and the layer's opacity (0..255, lower when many lines are drawn)."""
    if snapshot is None or snapshot.empty:
        contrib_out[:] = 0.0
        norm_out[:] = 0.0
        significant_out[:] = False
        layer_alpha_out[:] = 255.0
        return
    scale = density_scale(view)
    for name, sl in lay.edge_slices.items():
        c = np.asarray(snapshot.contributions[name], np.float32)
        contrib_out[sl] = c
        significant_out[sl] = snapshot.significant[name]
        m = max(float(c.max()), -float(c.min())) if c.size else 0.0  # max |c| without a 2M-element temporary
        drawn = int(np.count_nonzero(snapshot.significant[name]))
        if budget:
            drawn = min(drawn, layer_budget(lay, name, budget))
        density = math.sqrt(FADE_ABOVE * scale / max(1, drawn))
        layer_alpha_out[sl] = 255.0 * min(1.0, max(0.1, density))
        np.multiply(c, np.float32(1.0 / m) if m > 0 else np.float32(0.0), out=norm_out[sl])


def drawn_edges(lay: SceneLayout, significant: np.ndarray, norm: np.ndarray, budget: int) -> np.ndarray:
    """Sorted positions (int64) of the significant edges to draw: all of them, or per target layer the
    strongest ``layer_budget`` by |contribution| when it has more (0 or None: no limit). Into or out of
    an aggregated layer, edges sharing one drawn line are drawn once (the strongest)."""
    parts = []
    for name, sl in lay.edge_slices.items():
        idx = np.flatnonzero(significant[sl])
        limit = layer_budget(lay, name, budget) if budget else 0
        if limit and idx.size > limit:
            strength = np.abs(norm[sl][idx])
            idx = np.sort(idx[np.argpartition(strength, idx.size - limit)[idx.size - limit:]])
        idx = idx + sl.start
        if idx.size > 1 and _block(lay, name) > 1:
            idx = _distinct_lines(lay, idx, norm)
        parts.append(idx)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _block(lay: SceneLayout, name: str) -> int:
    """The larger aggregation block of the two layers edge layer ``name`` joins (1: both exact)."""
    source = next(s.source for s in lay.specs if s.name == name)
    return max((lay.aggregation[n].block for n in (name, source) if n in lay.aggregation), default=1)


def layer_budget(lay: SceneLayout, name: str, budget: int) -> int:
    """Lines drawn at most into layer ``name``: ``budget``, divided by the aggregation block of either
    end (a cube standing for b x b neurons gathers the lines of all of them: fewer lines draw the same
    fan, and a 2M-edge network's fans no longer bury its maps)."""
    return max(1, budget // _block(lay, name)) if budget else budget


def _distinct_lines(lay: SceneLayout, idx: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Of edges sharing one drawn (src cube, dst cube) line (an aggregated end), the strongest: sorted."""
    by_strength = idx[np.argsort(-np.abs(norm[idx]), kind="stable")]
    key = lay.edge_src[by_strength].astype(np.int64) * lay.cube_count + lay.edge_dst[by_strength]
    _, first = np.unique(key, return_index=True)
    return np.sort(by_strength[first])


def line_colors(norm: np.ndarray, layer_alpha: np.ndarray, palette: str) -> np.ndarray:
    """(M, 4) uint8 RGBA of M drawn lines: hue from the signed map, opacity from |contribution|."""
    rgba = colors.signed_colors(norm, 1.0, palette)
    strength = np.abs(norm).astype(np.float32) ** np.float32(ALPHA_GAMMA)
    rgba[:, 3] = (layer_alpha * (MIN_ALPHA + (1.0 - MIN_ALPHA) * strength)).astype(np.uint8)
    return rgba


def status_text(mode: str, shown: int, total: int, significant: int, lay: SceneLayout | None = None) -> str:
    """The scene's one-line connection summary; with ``lay``, also what is capped or aggregated.

    In 'all' mode ``shown`` is ignored: the grey lines are lay.base_lines (every edge unless the
    network has more distinct lines than layout.ALL_LINES_CAP).
    """
    note = aggregation_note(lay) if lay is not None else ""
    if mode == "none":
        return f"Connections hidden ({total:,} in the network){note}"
    if mode == "all":
        drawn = len(lay.base_lines) if lay is not None else total
        if drawn < total:
            return (f"All connections: showing {drawn:,} of {total:,} (an even sample; "
                    f"{significant:,} significant in colour){note}")
        return f"All {total:,} connections shown ({significant:,} significant in colour){note}"
    if shown < significant:
        return f"{shown:,} of {total:,} connections shown (the strongest of {significant:,} significant){note}"
    return f"{shown:,} of {total:,} connections shown (significant only){note}"


def aggregation_note(lay: SceneLayout) -> str:
    """'' for a network drawn neuron by neuron, else e.g. '  ·  conv1, conv2 aggregated: one cube per
    2×2 block, max' (appended to the status line: the layer titles say it per layer)."""
    if not lay.aggregation:
        return ""
    names = ", ".join(lay.aggregation)
    blocks = sorted({a.block for a in lay.aggregation.values()})
    sizes = "/".join(f"{b}\u00d7{b}" for b in blocks)
    return f"  \u00b7  {names} aggregated: one cube per {sizes} block, {AGGREGATE}"


def describe_neuron(lay: SceneLayout, cube: int, value: float, significant_inputs: int | None) -> str:
    """'conv1 channel 3, row 5, col 7: activation 0.412  ·  4 of 9 inputs significant' for a cube."""
    name, idx = lay.locate(cube)
    box = lay.layers[name]
    block = lay.block(cube)
    if block is not None:
        ch, y0, y1, x0, x1 = block
        where = f"channel {ch}, rows {y0}-{y1 - 1}, cols {x0}-{x1 - 1}"
        count = (y1 - y0) * (x1 - x0)
        # The highlighted lines are those of the block's first neuron: say so rather than count them.
        return (f"{name} {where}: {AGGREGATE} activation {value:.3f} of {count} neurons (aggregated)"
                f"  \u00b7  lines into row {y0}, col {x0}")
    if len(idx) == 3:
        where = f"channel {idx[0]}, row {idx[1]}, col {idx[2]}" if box.shape[0] > 1 else f"row {idx[1]}, col {idx[2]}"
    else:
        where = f"digit {idx[0]}" if box.kind == "output" else f"unit {idx[0]}"
    what = "probability" if box.kind == "output" else ("pixel" if box.kind == "input" else "activation")
    text = f"{name} {where}: {what} {value:.3f}"
    fan_in = lay.fan_in(name)
    if fan_in and significant_inputs is not None:
        text += f"  \u00b7  {significant_inputs} of {fan_in} inputs significant"
    return text


def filter_values(lay: SceneLayout, name: str, weight: np.ndarray | None) -> np.ndarray | None:
    """(cells,) float32 values of conv layer ``name``'s filter cells for its (Cout, Cin, k, k) weight:
    every weight, or each filter's mean weight where the layout draws one cell per filter (its response
    to a flat patch, up to scale); None when the weight does not fit the layout."""
    sl = lay.filter_slices.get(name)
    if weight is None or sl is None:
        return None
    w = np.asarray(weight, np.float32)
    if w.ndim == 4 and lay.filter_kernels.get(name, w.shape[-1]) == 1 and w.shape[-1] > 1:
        w = w.mean(axis=(2, 3))
    return w.reshape(-1) if w.size == sl.stop - sl.start else None


def conv_filters(model, specs) -> dict[str, np.ndarray]:
    """conv layer name -> (Cout, Cin, k, k) float32 weights of a torch model (empty if unavailable).

    Does not assume the model's module layout: the model's 4-D weights (its conv layers, in module
    order) are matched to the conv LayerSpecs in order, and kept only when their shapes agree.
    """
    if model is None or not hasattr(model, "modules"):
        return {}
    kernels = []
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if weight is not None and getattr(weight, "ndim", 0) == 4 and not list(module.children()):
            kernels.append(weight)
    convs = [s for s in specs if s.kind == "conv"]
    out: dict[str, np.ndarray] = {}
    for spec, weight in zip(convs, kernels):
        w = weight.detach().cpu().numpy().astype(np.float32)
        if w.shape[0] == spec.shape[0] and w.shape[2] == w.shape[3] == spec.kernel:
            out[spec.name] = w
    return out
