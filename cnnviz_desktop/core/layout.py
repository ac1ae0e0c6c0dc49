"""3D layout of a network: one cube per neuron, filter-weight grids, label anchors, line endpoints.

Computed once per model from the layer description (:func:`architecture.describe`) and the canonical
wiring (:func:`wiring.network_wiring`); a snapshot then only changes colours. Pure numpy, no Qt.

World coordinates (pyqtgraph's: z up). Data flows along +y (the depth axis): the input sits at
y = 0 and every later layer is a vertical x-z plane further back. In a plane, a map cell (c, row, col)
is placed with col -> +x and row -> -z (row 0 at the top, as on the drawing grid), channels side by
side in a near-square grid (wider than tall), each channel topped by the small 3x3 grids of its
filters (conv layers). Vectors (dense, output) are a row, or a grid when long. Units: the pitch
between neighbouring input cubes is 1; a map's pitch is its cumulative stride (capped so that it is
no wider than the widest map before it), so a pooled cell sits over the cells it pooled.

Scale: a map layer with more than MAP_CUBE_BUDGET neurons is drawn aggregated (see
:func:`aggregation_block`): each channel as a coarser grid whose cube stands for a square block of
neurons (down to one slab per channel), in the same plane and extent as the full map. The layout keeps
the neuron -> drawn cube mapping (:class:`Aggregation`), so colouring an aggregated layer is one
vectorised reduction and edges into or out of it end at the cube of their neuron.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .architecture import Architecture, LayerSpec, describe
from .wiring import network_wiring

CUBE_SIZE = 0.78  # edge of a cube per unit of pitch: a visible gap between neighbours
DENSE_PITCH, DENSE_SIZE = 2.0, 1.3  # vectors are few: larger, spread cubes so each unit reads as one
OUTPUT_PITCH, OUTPUT_SIZE = 8.0, 3.2  # output units carry a digit label underneath: room for a 12 px digit
FILTER_GAP = 1.2  # between a filter block and the map it produces
CHANNEL_GAP_MIN = 2.0
MAX_PITCH_SIZE = 4.0  # cubes stop growing beyond this pitch (a 1x1 map would otherwise be a boulder)
LAYER_GAP_MIN = 30.0  # depth between consecutive layer planes ...
# ... or 0.8 of the larger plane's extent: in the default oblique view no map hides behind the next layer
LAYER_GAP_FACTOR = 0.8
VECTOR_GAP_FACTOR = 1.0
# Scale (issue 14): at most this many cubes per map layer; a wider layer is shown aggregated. Our
# shipped 'wide' has 5,408 cells in conv1: 6,000 keeps every shipped map exact, and 'big'-sized models
# (conv1 32x26x26 = 21,632 cells) fall to a few thousand cubes per layer.
MAP_CUBE_BUDGET = 6000
# Filter-weight cells per conv layer: beyond this, one cell per (out, in) filter (see filter_kernels).
FILTER_CELL_BUDGET = 6000
# 'all connections' draws at most this many lines (the grey base layer): the shipped 'wide' (221k
# edges) stays complete; a 2M-edge model shows an even sample per layer, and the status says so.
ALL_LINES_CAP = 250_000


def aggregation_block(spec: LayerSpec, budget: int | None = None) -> int:
    """Side (in neurons) of the square blocks one drawn cube of map layer ``spec`` stands for.

    1: the layer is drawn exactly (vectors, and maps of at most ``budget`` neurons). Otherwise the
    smallest block b >= 2 with C * ceil(H / b) * ceil(W / b) <= budget; max(H, W) (one slab per
    channel) when even that does not fit. budget: cubes per layer (default: MAP_CUBE_BUDGET). A pure
    function of the spec's shape, so layout, labels and tests agree on it without sharing state.
    """
    budget = MAP_CUBE_BUDGET if budget is None else budget
    if len(spec.shape) != 3 or spec.size <= budget:
        return 1
    c, h, w = spec.shape
    for block in range(2, max(h, w)):
        if c * math.ceil(h / block) * math.ceil(w / block) <= budget:
            return block
    return max(h, w)


def filter_cells_per_side(spec: LayerSpec, source_channels: int) -> int:
    """Cells per side of each drawn filter of conv layer ``spec``: its kernel size, or 1 (one cell per
    filter) when its Cout x Cin x k x k weights exceed FILTER_CELL_BUDGET."""
    k = spec.kernel or 1
    return k if spec.shape[0] * source_channels * k * k <= FILTER_CELL_BUDGET else 1


@dataclass(frozen=True)
class Aggregation:
    """How the neurons of one aggregated map layer map to its drawn cubes.

    block: side of the square neuron block of one cube; grid: (C, gh, gw) drawn cubes per channel.
    members: (n_neurons,) int32 local drawn cube of every neuron (row-major over the layer's shape).
    order: (n_neurons,) int64 neurons sorted by their cube; starts: (n_cubes,) int64 first position
    of each cube's run in ``order`` (for np.maximum.reduceat / np.add.reduceat); counts: (n_cubes,)
    neurons per cube (edge blocks of a map that the block does not divide are smaller).
    """

    block: int
    grid: tuple[int, int, int]
    members: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @property
    def cube_count(self) -> int:
        return int(self.counts.shape[0])

    def reduce(self, values: np.ndarray, how: str = "max") -> np.ndarray:
        """(n_cubes,) float32 per-cube 'max' or 'mean' of a layer's (n_neurons,) values (one vectorised pass)."""
        v = np.asarray(values, np.float32).reshape(-1)[self.order]
        if how == "max":
            return np.maximum.reduceat(v, self.starts)
        if how == "mean":
            return (np.add.reduceat(v, self.starts, dtype=np.float64) / self.counts).astype(np.float32)
        raise ValueError(f"aggregation must be 'max' or 'mean', got {how!r}")

    def neurons(self, cube: int) -> tuple[int, int, int, int, int]:
        """(channel, row0, row1, col0, col1) (ends exclusive) of the neurons local cube ``cube`` stands for."""
        c, gh, gw = self.grid
        ch, rest = divmod(int(cube), gh * gw)
        by, bx = divmod(rest, gw)
        b = self.block
        return ch, by * b, by * b + b, bx * b, bx * b + b


def _aggregation(spec: LayerSpec, block: int) -> Aggregation:
    c, h, w = spec.shape
    gh, gw = math.ceil(h / block), math.ceil(w / block)
    ch, y, x = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    members = ((ch * gh + y // block) * gw + x // block).reshape(-1).astype(np.int32)
    order = np.argsort(members, kind="stable")
    counts = np.bincount(members, minlength=c * gh * gw)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    for a in (members, order, counts, starts):
        a.setflags(write=False)
    return Aggregation(block, (c, gh, gw), members, order, starts, counts)


@dataclass(frozen=True)
class LayerBox:
    """Where one layer sits: its cube slice, plane depth, extent and label anchor (all world units).

    shape: the layer's neuron shape; size: its neuron count; cubes: its slice of drawn cubes (as many
    as neurons unless the layer is aggregated, see SceneLayout.aggregation); neurons: its slice of the
    network's neurons (in ``specs`` order, row-major within a layer).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    cubes: slice
    depth: float
    x_range: tuple[float, float]
    z_range: tuple[float, float]
    label_anchor: tuple[float, float, float]
    neurons: slice = field(default_factory=lambda: slice(0, 0))

    @property
    def label_align(self) -> str:
        """'left' when the label starts at its anchor (vectors), 'center' when centred on it."""
        return "left" if len(self.shape) == 1 else "center"

    @property
    def size(self) -> int:
        """Neurons of the layer (not drawn cubes)."""
        return self.neurons.stop - self.neurons.start


@dataclass(frozen=True)
class SceneLayout:
    """Geometry of one network, computed once per model.

    centers: (N, 3) float32 centre of every neuron cube, layers in data-flow order, each layer's
        neurons in row-major order of its shape (so layer L's activation.reshape(-1) lines up with
        centers[layers[L].cubes]).
    sizes: (N,) float32 edge length of every cube (maps grow with their pitch, vectors are larger).
    cube_size: edge length of the smallest cubes (the input's).
    layer_index: (N,) int16, the position in ``specs`` of each cube's layer.
    layers: name -> LayerBox.
    edge_src, edge_dst: (E,) int32 global cube indices of every connection, concatenated per target
        layer in ``specs`` order and, within a layer, in the canonical wiring order (so a snapshot's
        contributions[L] lines up with edge_src[edge_slices[L]]).
    edge_slices: target layer name -> slice into the edge arrays.
    filter_centers: (F, 3) float32 centre of every filter-weight cell; filter_sizes: (F,) their
        edge lengths; filter_slices: conv layer name -> slice, cells in the row-major order of the
        layer's weight (Cout, Cin, k, k), so weight.reshape(-1) lines up (see filter_kernels and
        scene_style.filter_values for layers drawn one cell per filter).
    filter_anchors: conv layer name -> (Cout, 3) float32 centre of each output channel's filter block.
    unit_labels: (text, (x, y, z)) for labels of single neurons (the output digits).
    bounds: (2, 3) float32 min / max corner of everything drawn.
    aggregation: layer name -> :class:`Aggregation` for every layer drawn aggregated (empty for
        the shipped models). Edge endpoints of such a layer are the cube of their neuron, so several
        edges can share one drawn line; ``locate`` gives a cube's first neuron.
    filter_kernels: conv layer name -> cells per side of each drawn filter: the kernel size, or 1 when
        the layer has more than FILTER_CELL_BUDGET weights (one cell per filter, its mean weight).
    base_lines: (M, 2) int32 (src cube, dst cube) of the lines 'all connections' draws: every
        distinct drawn pair (edges into or out of an aggregated layer share lines), at most
        ALL_LINES_CAP in all (beyond that an even sample per target layer, in proportion to the
        layer's distinct lines); base_distinct: the number of distinct pairs before that cap.
    """

    arch: Architecture
    specs: tuple[LayerSpec, ...]
    centers: np.ndarray
    sizes: np.ndarray
    cube_size: float
    layer_index: np.ndarray
    layers: dict[str, LayerBox]
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_slices: dict[str, slice]
    filter_centers: np.ndarray
    filter_sizes: np.ndarray
    filter_slices: dict[str, slice]
    filter_anchors: dict[str, np.ndarray]
    unit_labels: tuple[tuple[str, tuple[float, float, float]], ...]
    bounds: np.ndarray
    aggregation: dict[str, Aggregation] = field(default_factory=dict)
    base_lines: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    base_distinct: int = 0
    filter_kernels: dict[str, int] = field(default_factory=dict)

    @property
    def cube_count(self) -> int:
        return int(self.centers.shape[0])

    @property
    def neuron_count(self) -> int:
        """Neurons of the network (>= cube_count: aggregated layers draw fewer cubes)."""
        return sum(box.size for box in self.layers.values())

    @property
    def edge_count(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def center(self) -> np.ndarray:
        """(3,) middle of the bounding box."""
        return (self.bounds[0] + self.bounds[1]) / 2.0

    def locate(self, cube: int) -> tuple[str, tuple[int, ...]]:
        """(layer name, index within its shape) of the neuron global cube ``cube`` shows; for a cube of
        an aggregated layer, the first (top-left) neuron of its block (see :meth:`block`)."""
        spec = self.specs[int(self.layer_index[cube])]
        local = int(cube) - self.layers[spec.name].cubes.start
        agg = self.aggregation.get(spec.name)
        if agg is not None:
            ch, y0, _, x0, _ = agg.neurons(local)
            return spec.name, (ch, y0, x0)
        return spec.name, tuple(int(i) for i in np.unravel_index(local, spec.shape))

    def block(self, cube: int) -> tuple[int, int, int, int, int] | None:
        """(channel, row0, row1, col0, col1) of the neurons an aggregated cube stands for (ends exclusive,
        clipped to the map); None for a cube that shows one neuron."""
        spec = self.specs[int(self.layer_index[cube])]
        agg = self.aggregation.get(spec.name)
        if agg is None:
            return None
        ch, y0, y1, x0, x1 = agg.neurons(int(cube) - self.layers[spec.name].cubes.start)
        return ch, y0, min(y1, spec.shape[1]), x0, min(x1, spec.shape[2])

    def cube_of(self, layer: str, index: tuple[int, ...]) -> int:
        """Global cube index showing neuron ``index`` (within the layer's shape) of ``layer``."""
        box = self.layers[layer]
        local = int(np.ravel_multi_index(tuple(index), box.shape))
        agg = self.aggregation.get(layer)
        return box.cubes.start + (int(agg.members[local]) if agg is not None else local)

    def incoming(self, cube: int) -> np.ndarray:
        """(fan_in,) int positions in the edge arrays of the connections into the neuron global cube
        ``cube`` shows (for an aggregated cube: into its first neuron, see :meth:`locate`)."""
        name, index = self.locate(cube)
        edges = self.edge_slices.get(name)
        if edges is None:
            return np.zeros(0, dtype=np.int64)
        local = int(np.ravel_multi_index(index, self.layers[name].shape))
        fan_in = self.fan_in(name)
        start = edges.start + local * fan_in
        return np.arange(start, start + fan_in)

    def fan_in(self, name: str) -> int:
        """Connections into each neuron of layer ``name`` (0 for the input)."""
        edges = self.edge_slices.get(name)
        if edges is None:
            return 0
        return (edges.stop - edges.start) // self.layers[name].size


def _channel_grid(channels: int) -> tuple[int, int]:
    """(rows, cols) for ``channels`` maps: wider than tall, rows dividing the count when possible."""
    limit = max(1, math.ceil(math.sqrt(channels / 2.0)))
    rows = max(d for d in range(1, limit + 1) if channels % d == 0)
    return rows, math.ceil(channels / rows)


def _vector_grid(units: int) -> tuple[int, int]:
    """(rows, cols) for a vector of ``units``: one row up to 32, then a grid about 4:1 wide."""
    if units <= 32:
        return 1, units
    cols = math.ceil(math.sqrt(units * 4.0))
    return math.ceil(units / cols), cols


def _filter_block(cin: int, k: int, width: float) -> tuple[int, int, float]:
    """(rows, cols, pitch) of the Cin filters of one output channel, fitting in ``width``."""
    limit = max(1, math.ceil(math.sqrt(cin / 3.0)))
    rows = max(d for d in range(1, limit + 1) if cin % d == 0)
    cols = math.ceil(cin / rows)
    span = cols * (k + 1) - 1  # in cell pitches: k cells per filter, one-cell gap between filters
    pitch = min(1.0, width / span)
    return rows, cols, max(pitch, 0.3)


def _plane_points(rows: int, cols: int, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """x, z offsets (row-major, centred on 0) of a rows x cols grid with the given pitch."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    x = (c.reshape(-1) - (cols - 1) / 2.0) * pitch
    z = ((rows - 1) / 2.0 - r.reshape(-1)) * pitch
    return x, z


def build_layout(arch: Architecture) -> SceneLayout:
    """The scene geometry of ``arch`` (see :class:`SceneLayout`). Use :func:`layout` for the cached one."""
    specs = tuple(describe(arch))

    # Pass 1: each layer's cubes (and filter cells) in a plane centred on x = z = 0. A map's pitch is
    # its cumulative stride (a pool1 cell sits over the 2x2 conv1 cells it pools), capped so no layer
    # is wider than the widest map before it; cubes grow with the pitch, so every map reads as a panel.
    planes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    filters: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    aggregations: dict[str, Aggregation] = {}
    filter_kernels: dict[str, int] = {}
    by_name = {s.name: s for s in specs}
    stride, widest = 1, 0.0
    for spec in specs:
        if len(spec.shape) == 3:
            c, h, w = spec.shape
            if spec.kind in ("conv", "pool"):
                stride *= spec.stride
            rows, cols = _channel_grid(c)
            gap1 = max(CHANNEL_GAP_MIN, 0.15 * max(h, w))
            natural = cols * w + (cols - 1) * gap1
            pitch = float(stride) if widest == 0.0 else max(1.0, min(float(stride), widest / natural))
            widest = max(widest, natural * pitch)
            gap = gap1 * pitch
            header = 0.0
            if spec.kind == "conv":
                cin = by_name[spec.source].shape[0]
                # Beyond the budget each filter is one cell (its mean weight): 64x32 3x3 grids in the
                # width of an 11x11 map are noise, and 18k cells cost more to draw than the maps.
                fk = filter_kernels[spec.name] = filter_cells_per_side(spec, cin)
                frows, fcols, fpitch = _filter_block(cin, fk, float(w) * pitch)
                block_h = (frows * (fk + 1) - 1) * fpitch
                header = block_h + FILTER_GAP
            cell_w, cell_h = w * pitch + gap, h * pitch + gap + header
            chan = np.arange(c)
            ch_col = chan % cols
            ch_row = chan // cols
            # Channel map centres in the channel grid; header space above each map for its filters.
            cx = (ch_col - (cols - 1) / 2.0) * cell_w
            cz = ((rows - 1) / 2.0 - ch_row) * cell_h - header / 2.0
            px, pz = _plane_points(h, w, pitch)
            x = (cx[:, None] + px[None, :]).reshape(-1)
            z = (cz[:, None] + pz[None, :]).reshape(-1)
            size = np.full(x.size, CUBE_SIZE * min(pitch, MAX_PITCH_SIZE))
            block = aggregation_block(spec)
            if block > 1:
                # One cube per block, at the centre of the neurons it stands for and as wide as the
                # block's shorter side (a clipped block at the map's edge draws smaller): same extent.
                agg = aggregations[spec.name] = _aggregation(spec, block)
                counts = agg.counts.astype(np.float64)
                x = np.bincount(agg.members, weights=x) / counts
                z = np.bincount(agg.members, weights=z) / counts
                block_rows = np.minimum(block, h - (np.arange(agg.grid[1]) * block))
                block_cols = np.minimum(block, w - (np.arange(agg.grid[2]) * block))
                side = np.minimum(block_rows[:, None], block_cols[None, :]).reshape(-1)
                size = np.tile(CUBE_SIZE * min(pitch, MAX_PITCH_SIZE) * side, c).astype(np.float64)
            planes.append((x, z, size))
            if spec.kind == "conv":
                # Filter cells in weight order (Cout, Cin, fk, fk): above the map they produce.
                top = cz + h * pitch / 2.0 + FILTER_GAP + block_h / 2.0  # (Cout,) centre of each block
                fi = np.arange(cin)
                f_col, f_row = fi % fcols, fi // fcols
                fx = (f_col - (fcols - 1) / 2.0) * (fk + 1) * fpitch  # (Cin,) filter centres
                fz = ((frows - 1) / 2.0 - f_row) * (fk + 1) * fpitch
                kx, kz = _plane_points(fk, fk, fpitch)  # (fk*fk,)
                x_cells = cx[:, None, None] + fx[None, :, None] + kx[None, None, :]
                z_cells = top[:, None, None] + fz[None, :, None] + kz[None, None, :]
                filters[spec.name] = (x_cells.reshape(-1), z_cells.reshape(-1),
                                      np.full(x_cells.size, fpitch * CUBE_SIZE), np.stack([cx, top], axis=1))
        else:
            n = spec.shape[0]
            rows, cols = _vector_grid(n)
            pitch, size = (OUTPUT_PITCH, OUTPUT_SIZE) if spec.kind == "output" else (DENSE_PITCH, DENSE_SIZE)
            x, z = _plane_points(rows, cols, pitch)
            planes.append((x[:n], z[:n], np.full(n, size)))

    # Pass 2: depths. The gap between two planes grows with their size so lines do not flatten.
    extents = [max(np.ptp(x) if x.size > 1 else 1.0, np.ptp(z) if z.size > 1 else 1.0) for x, z, _ in planes]
    depths = [0.0]
    for i in range(1, len(specs)):
        gap = max(LAYER_GAP_MIN, LAYER_GAP_FACTOR * max(extents[i - 1], extents[i]))
        if len(specs[i].shape) == 1:  # vectors: dense all-to-all fans need room to open up
            gap = max(gap, VECTOR_GAP_FACTOR * max(extents[i - 1], extents[i]))
        depths.append(depths[-1] + gap)

    centers, sizes, layer_index, boxes = [], [], [], {}
    start = n_start = 0
    for i, (spec, (x, z, size)) in enumerate(zip(specs, planes)):
        n = x.size
        y = np.full(n, depths[i])
        centers.append(np.stack([x, y, z], axis=1))
        sizes.append(size)
        layer_index.append(np.full(n, i, dtype=np.int16))
        top = float(z.max()) + float(size.max())
        if spec.name in filters:
            top = max(top, float(filters[spec.name][1].max()) + 1.0)
        # Pool labels go under their plane: consecutive labels alternate, so they do not collide on screen.
        # Vector labels sit right of their row (left-aligned there: see label_align), clear of the fans.
        if spec.kind == "pool":
            label = (0.0, depths[i], float(z.min()) - float(size.max()) - 2.5)
        elif len(spec.shape) == 1:
            label = (float(x.max()) + float(size.max()) + 1.5, depths[i], float(z.max()))
        else:
            label = (0.0, depths[i], top + 2.5)
        boxes[spec.name] = LayerBox(spec.name, spec.kind, spec.shape, slice(start, start + n), depths[i],
                                    (float(x.min()), float(x.max())), (float(z.min()), float(z.max())), label,
                                    slice(n_start, n_start + spec.size))
        start += n
        n_start += spec.size
    centers_arr = np.ascontiguousarray(np.concatenate(centers).astype(np.float32))
    sizes_arr = np.ascontiguousarray(np.concatenate(sizes).astype(np.float32))

    f_centers, f_sizes, f_slices, f_anchors = [], [], {}, {}
    f_start = 0
    for i, spec in enumerate(specs):
        if spec.name not in filters:
            continue
        fx, fz, fs, anchor = filters[spec.name]
        # A hair in front of the layer's plane so the grids read as belonging to it.
        fy = np.full(fx.size, depths[i] - 0.5)
        f_centers.append(np.stack([fx, fy, fz], axis=1))
        f_sizes.append(fs)
        f_slices[spec.name] = slice(f_start, f_start + fx.size)
        f_anchors[spec.name] = np.column_stack([anchor[:, 0], np.full(len(anchor), depths[i] - 0.5),
                                                anchor[:, 1]]).astype(np.float32)
        f_start += fx.size
    filter_centers = (np.concatenate(f_centers) if f_centers else np.zeros((0, 3))).astype(np.float32)
    filter_sizes = (np.concatenate(f_sizes) if f_sizes else np.zeros(0)).astype(np.float32)

    wiring = network_wiring(arch)
    src_parts, dst_parts, edge_slices = [], [], {}
    valid: dict[str, np.ndarray] = {}  # layers with padded taps: which edges have a real source
    e_start = 0

    def to_cubes(layer: str, local: np.ndarray) -> np.ndarray:
        agg = aggregations.get(layer)
        cubes = local if agg is None else agg.members[local]
        return cubes.astype(np.int32) + np.int32(boxes[layer].cubes.start)

    for spec in specs:
        wire = wiring.get(spec.name)
        if wire is None:
            continue
        src_parts.append(to_cubes(wire.source, wire.src))
        dst_parts.append(to_cubes(spec.name, wire.dst))
        edge_slices[spec.name] = slice(e_start, e_start + wire.count)
        if getattr(wire, "valid", None) is not None:
            valid[spec.name] = wire.valid
        e_start += wire.count
    edge_src = np.ascontiguousarray(np.concatenate(src_parts), dtype=np.int32)
    edge_dst = np.ascontiguousarray(np.concatenate(dst_parts), dtype=np.int32)
    base_lines, base_distinct = _base_lines(edge_src, edge_dst, edge_slices, specs, aggregations, boxes, valid)

    out_box = boxes[specs[-1].name]
    out_centers = centers_arr[out_box.cubes]
    drop = OUTPUT_SIZE + 1.2
    unit_labels = tuple((str(d), (float(p[0]), float(p[1]), float(p[2]) - drop)) for d, p in enumerate(out_centers))

    lo = (centers_arr - sizes_arr[:, None] / 2).min(axis=0)
    hi = (centers_arr + sizes_arr[:, None] / 2).max(axis=0)
    if filter_centers.size:
        lo = np.minimum(lo, (filter_centers - filter_sizes[:, None] / 2).min(axis=0))
        hi = np.maximum(hi, (filter_centers + filter_sizes[:, None] / 2).max(axis=0))
    anchors = np.array([b.label_anchor for b in boxes.values()], np.float64)
    hi = np.maximum(hi, anchors.max(axis=0))
    lo = np.minimum(lo, anchors.min(axis=0))
    hi[2] = max(hi[2], float(anchors[:, 2].max()) + 1.0)
    lo[2] = min(lo[2], min(p[2] for _, p in unit_labels) - 1.0)
    bounds = np.stack([lo, hi]).astype(np.float32)

    for a in (centers_arr, sizes_arr, filter_centers, filter_sizes, edge_src, edge_dst, bounds, base_lines):
        a.setflags(write=False)
    layer_index_arr = np.concatenate(layer_index)
    layer_index_arr.setflags(write=False)
    return SceneLayout(arch=arch, specs=specs, centers=centers_arr, sizes=sizes_arr, cube_size=CUBE_SIZE,
                       layer_index=layer_index_arr, layers=boxes, edge_src=edge_src, edge_dst=edge_dst,
                       edge_slices=edge_slices, filter_centers=filter_centers, filter_sizes=filter_sizes,
                       filter_slices=f_slices, filter_anchors=f_anchors, unit_labels=unit_labels, bounds=bounds,
                       aggregation=aggregations, base_lines=base_lines, base_distinct=base_distinct,
                       filter_kernels=filter_kernels)


def _base_lines(edge_src: np.ndarray, edge_dst: np.ndarray, edge_slices: dict[str, slice], specs,
                aggregations: dict[str, Aggregation], boxes: dict[str, LayerBox],
                valid: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """(the lines 'all connections' draws, distinct drawn lines in the network): see SceneLayout.base_lines.

    valid: per layer with padded convolution taps, (E,) bool of the edges with a real source (wiring.valid);
    a padded tap has no source neuron and is never drawn.

    Only layers touching an aggregated one can repeat a (src cube, dst cube) pair; their distinct pairs
    come from a bitmap over (source cubes x target cubes) -- at most ~6,000 x 6,000 bits by the cube
    budget -- which is ~10x faster than sorting 2M keys.
    """
    by_name = {s.name: s for s in specs}
    parts = []
    for name, sl in edge_slices.items():
        source = by_name[name].source
        src, dst = edge_src[sl], edge_dst[sl]
        if valid and name in valid:
            src, dst = src[valid[name]], dst[valid[name]]
        if name in aggregations or source in aggregations:
            s0, d0 = boxes[source].cubes.start, boxes[name].cubes.start
            n_src, n_dst = boxes[source].cubes.stop - s0, boxes[name].cubes.stop - d0
            key = (src - s0).astype(np.int64) * n_dst + (dst - d0)
            if n_src * n_dst <= 1 << 26:
                seen = np.zeros(n_src * n_dst, dtype=bool)
                seen[key] = True
                key = np.flatnonzero(seen)
            else:
                key = np.unique(key)
            parts.append(np.stack([key // n_dst + s0, key % n_dst + d0], axis=1).astype(np.int32))
        else:
            parts.append(np.stack([src, dst], axis=1))
    distinct = sum(len(p) for p in parts)
    if distinct > ALL_LINES_CAP:
        # An even sample of each layer, in proportion to its distinct lines: every gap keeps its texture.
        parts = [p[np.linspace(0, len(p) - 1, max(1, len(p) * ALL_LINES_CAP // distinct)).astype(np.int64)]
                 if len(p) else p for p in parts]
    out = np.concatenate(parts) if parts else np.zeros((0, 2), np.int32)
    return np.ascontiguousarray(out, dtype=np.int32), int(distinct)


@lru_cache(maxsize=8)
def layout(arch: Architecture) -> SceneLayout:
    """Cached :func:`build_layout` (Architecture is frozen and hashable): computed once per model."""
    return build_layout(arch)
