"""The canonical enumeration of every drawable connection (edge) of a network.

One order, used by both the analysis (which computes a contribution per edge) and the 3D layout
(which draws a line per edge), so that arrays line up without lookups:

- edges into layer L are grouped by destination neuron (row-major flat index in L's shape),
  and every destination has the same fan-in, so per-layer arrays reshape to (n_dst, fan_in);
- within one destination, sources are ordered as the weights are: conv (in_channel, ky, kx),
  pool (dy, dx) over the window, dense (input unit).

Flat indices are row-major positions within a layer's own ``shape`` (C, H, W) or (N,).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .architecture import Architecture, LayerSpec, describe


@dataclass(frozen=True)
class Wiring:
    """Edges into one layer. src, dst: (E,) int32 flat indices; E = dst_count * fan_in."""

    layer: str
    source: str
    src: np.ndarray
    dst: np.ndarray
    fan_in: int

    @property
    def count(self) -> int:
        return int(self.src.shape[0])


def _window_edges(source: LayerSpec, target: LayerSpec, channel_mixing: bool) -> tuple[np.ndarray, np.ndarray, int]:
    c_out, h, w = target.shape
    c_in, h_in, w_in = source.shape
    k, s = target.kernel, target.stride
    o, y, x = np.meshgrid(np.arange(c_out), np.arange(h), np.arange(w), indexing="ij")
    dst_flat = (o * h + y) * w + x  # (c_out, h, w)
    ky, kx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    if channel_mixing:
        ci = np.arange(c_in)[:, None, None]
    else:
        ci = None
    # Broadcast to (c_out, h, w, [c_in,] k, k)
    yy = (y * s)[..., None, None] + ky
    xx = (x * s)[..., None, None] + kx
    if channel_mixing:
        yy = yy[..., None, :, :]
        xx = xx[..., None, :, :]
        src = (ci * h_in + yy) * w_in + xx
        fan_in = c_in * k * k
    else:
        src = (o[..., None, None] * h_in + yy) * w_in + xx
        fan_in = k * k
    src = np.broadcast_to(src, dst_flat.shape + src.shape[3:]).reshape(-1)
    dst = np.repeat(dst_flat.reshape(-1), fan_in)
    return src.astype(np.int32), dst.astype(np.int32), fan_in


def edges(target: LayerSpec, source: LayerSpec) -> Wiring:
    """All edges from ``source`` into ``target`` in the canonical order."""
    if target.kind == "conv":
        src, dst, fan_in = _window_edges(source, target, channel_mixing=True)
    elif target.kind == "pool":
        src, dst, fan_in = _window_edges(source, target, channel_mixing=False)
    elif target.kind in ("dense", "output"):
        n_in, n_out = source.size, target.size
        src = np.tile(np.arange(n_in, dtype=np.int32), n_out)
        dst = np.repeat(np.arange(n_out, dtype=np.int32), n_in)
        fan_in = n_in
    else:
        raise ValueError(f"layer {target.name!r} of kind {target.kind!r} has no incoming edges")
    return Wiring(target.name, source.name, src, dst, fan_in)


@lru_cache(maxsize=8)
def network_wiring(arch: Architecture) -> dict[str, Wiring]:
    """Edges into every non-input layer, keyed by the target layer's name (computed once per model)."""
    specs = {s.name: s for s in describe(arch)}
    return {s.name: edges(s, specs[s.source]) for s in specs.values() if s.source is not None}
