"""The canonical enumeration of every drawable connection (edge) of a network.

One order, used by both the analysis (which computes a contribution per edge) and the 3D layout
(which draws a line per edge), so that arrays line up without lookups:

- edges into layer L are grouped by destination neuron (row-major flat index in L's shape),
  and every destination has the same fan-in, so per-layer arrays reshape to (n_dst, fan_in);
- within one destination, sources are ordered as the weights are: conv (in_channel, ky, kx),
  pool (dy, dx) over the window, dense (input unit), an output 'gap' (y, x) over its channel.

Flat indices are row-major positions within a layer's own ``shape`` (C, H, W) or (N,).

Padded convolutions: a window tap that falls on the zero padding has no source neuron. To keep every
destination's fan-in the same, such a tap still has an edge slot, marked False in ``Wiring.valid``;
its ``src`` is the nearest real source cell (clamped into the map, so indices are always in range),
its contribution is always 0 (so it is never significant), and it must never be drawn as a line.
``valid`` is None when a layer has no padded taps (every unpadded network, the whole family).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .architecture import Architecture, LayerSpec, describe


@dataclass(frozen=True)
class Wiring:
    """Edges into one layer. src, dst: (E,) int32 flat indices; E = dst_count * fan_in.

    valid: (E,) bool, False for the taps of a padded conv that read the zero padding (their src is a
    clamped stand-in: never draw them), or None when every edge is real.
    """

    layer: str
    source: str
    src: np.ndarray
    dst: np.ndarray
    fan_in: int
    valid: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.src.shape[0])

    @property
    def real_count(self) -> int:
        """Edges that connect two neurons (padded taps excluded)."""
        return self.count if self.valid is None else int(np.count_nonzero(self.valid))


def _window_edges(source: LayerSpec, target: LayerSpec, channel_mixing: bool
                  ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    c_out, h, w = target.shape
    c_in, h_in, w_in = source.shape
    k, s, p = int(target.kernel), int(target.stride), int(target.padding or 0)
    o, y, x = np.meshgrid(np.arange(c_out), np.arange(h), np.arange(w), indexing="ij")
    dst_flat = (o * h + y) * w + x  # (c_out, h, w)
    ky, kx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    # Broadcast to (c_out, h, w, [c_in,] k, k)
    yy = (y * s - p)[..., None, None] + ky
    xx = (x * s - p)[..., None, None] + kx
    inside = (yy >= 0) & (yy < h_in) & (xx >= 0) & (xx < w_in)
    yy = np.clip(yy, 0, h_in - 1)
    xx = np.clip(xx, 0, w_in - 1)
    if channel_mixing:
        ci = np.arange(c_in)[:, None, None]
        yy = yy[..., None, :, :]
        xx = xx[..., None, :, :]
        inside = inside[..., None, :, :]
        src = (ci * h_in + yy) * w_in + xx
        fan_in = c_in * k * k
    else:
        src = (o[..., None, None] * h_in + yy) * w_in + xx
        fan_in = k * k
    shape = dst_flat.shape + src.shape[3:]
    src = np.broadcast_to(src, shape).reshape(-1)
    valid = None
    if p and not inside.all():
        valid = np.ascontiguousarray(np.broadcast_to(inside, shape).reshape(-1))
        valid.setflags(write=False)
    dst = np.repeat(dst_flat.reshape(-1), fan_in)
    return src.astype(np.int32), dst.astype(np.int32), fan_in, valid


def edges(target: LayerSpec, source: LayerSpec) -> Wiring:
    """All edges from ``source`` into ``target`` in the canonical order.

    conv: every tap of every window (stride and padding as the layer's; padded taps flagged in
    ``valid``); pool (max, avg, overlapping windows, gap): every cell of each window of the same channel;
    dense / fc output: every source unit (a map source is read flattened, row-major (C, H, W), as
    torch's Flatten does); output 'gap': every cell of channel c into output c.
    """
    valid = None
    if target.kind == "conv":
        src, dst, fan_in, valid = _window_edges(source, target, channel_mixing=True)
    elif target.kind == "pool":
        src, dst, fan_in, valid = _window_edges(source, target, channel_mixing=False)
    elif target.kind == "output" and target.op == "gap":
        if len(source.shape) != 3 or source.shape[0] != target.size:
            raise ValueError(f"layer {target.name!r}: a global average pooling output needs "
                             f"{target.size} channels before it, got shape {source.shape}")
        cells = source.shape[1] * source.shape[2]
        src = np.arange(target.size * cells, dtype=np.int32)
        dst = np.repeat(np.arange(target.size, dtype=np.int32), cells)
        fan_in = cells
    elif target.kind in ("dense", "output"):
        n_in, n_out = source.size, target.size
        src = np.tile(np.arange(n_in, dtype=np.int32), n_out)
        dst = np.repeat(np.arange(n_out, dtype=np.int32), n_in)
        fan_in = n_in
    else:
        raise ValueError(f"layer {target.name!r} of kind {target.kind!r} has no incoming edges")
    return Wiring(target.name, source.name, src, dst, fan_in, valid)


@lru_cache(maxsize=8)
def network_wiring(arch: Architecture) -> dict[str, Wiring]:
    """Edges into every non-input layer, keyed by the target layer's name (computed once per model)."""
    specs = {s.name: s for s in describe(arch)}
    return {s.name: edges(s, specs[s.source]) for s in specs.values() if s.source is not None}
