"""Activation surfaces: every feature map of a conv or pool layer drawn as a height field (Qt-free).

In the scene's surface mode each channel map of a conv / pool layer becomes a triangle mesh whose vertex
grid sits where the layer's cubes are (core.layout positions): one vertex per map cell, at the cell's cube
centre, displaced along the layer's height direction (towards the input side, -y, where the default camera
is) by the cell's activation. One :class:`SurfaceGrid` per layer holds every channel of that layer, so the
GL item draws a layer in one call.

Geometry (:func:`surface_grids`: zero-height vertex positions, the vertex -> cell map, the triangle
indices) is built once per model. Per snapshot only :func:`surface_heights` and :func:`surface_colors`
run: one gather and one colour-table lookup per layer, into preallocated arrays.

Height scale: per layer and per snapshot, the cell with the largest |activation| of the layer reaches
:attr:`SurfaceGrid.height` (world units, a fixed share of the map's side), and every other cell is in
proportion. It is the same scale the cubes' colours use (core.scene_style: a layer's max), so height and
colour say the same thing, and a layer with small activations (conv2 against conv1) is as readable as a
large one. The price: absolute sizes are not comparable between layers or between drawings (the cube
colours have the same property); the info panel still gives every cell's value.

A map one cell wide or tall (e.g. a 1x1 pool output) has no quad between cell centres: its vertex row is
doubled at +-half a pitch, both copies showing the same cell, so every map shows as a (flat-topped) strip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import colors
from .layout import SceneLayout

SURFACE_KINDS = ("conv", "pool")
HEIGHT_FACTOR = 0.45  # the tallest cell rises this share of the map's (smaller) side, in world units
MIN_HEIGHT = 3.0  # world units: tiny maps (2x2) still show relief
HEIGHT_DIRECTION = (0.0, -1.0, 0.0)  # towards the input side (the default camera looks from there)
EPSILON = 1e-12


@dataclass(frozen=True)
class SurfaceGrid:
    """The mesh of one layer's surfaces, computed once per model.

    name: the layer; shape: its activation shape (C, H, W).
    base: (V, 3) float32 vertex positions at zero activation (world units), channel after channel, each
        channel's vertices in row-major order of its (rows, cols) vertex grid.
    cell: (V,) int32, for every vertex the index into the layer's flattened activation
        (``activation.reshape(-1)``) whose value lifts it.
    faces: (F, 3) uint32 vertex indices of the triangles (two per quad of neighbouring vertices).
    height: world units the largest |activation| of the layer reaches.
    direction: (3,) float32 unit vector along which heights are applied.
    """

    name: str
    shape: tuple[int, int, int]
    base: np.ndarray
    cell: np.ndarray
    faces: np.ndarray
    height: float
    direction: np.ndarray

    @property
    def vertex_count(self) -> int:
        return int(self.base.shape[0])

    @property
    def face_count(self) -> int:
        return int(self.faces.shape[0])


def _axis(centres: np.ndarray, count: int, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions, cell index) along one map axis: the cell centres, or a doubled row for one cell."""
    if count >= 2:
        return centres, np.arange(count)
    return np.array([centres[0] - pitch / 2.0, centres[0] + pitch / 2.0]), np.zeros(2, dtype=np.int64)


def surface_grid(lay: SceneLayout, name: str) -> SurfaceGrid:
    """The :class:`SurfaceGrid` of map layer ``name`` of ``lay`` (shape (C, H, W)), vertices at its cubes.

    Raises ValueError for a layer that is not a (C, H, W) map.
    """
    box = lay.layers[name]
    if len(box.shape) != 3:
        raise ValueError(f"layer {name} is not a feature map (shape {box.shape})")
    c, h, w = box.shape
    centres = np.asarray(lay.centers[box.cubes], np.float64).reshape(c, h, w, 3)
    sizes = np.asarray(lay.sizes[box.cubes], np.float64)
    # The pitch between neighbouring cells (for a one-cell axis: the cube size).
    pitch_x = float(centres[0, 0, 1, 0] - centres[0, 0, 0, 0]) if w > 1 else float(sizes[0])
    pitch_z = float(centres[0, 0, 0, 2] - centres[0, 1, 0, 2]) if h > 1 else float(sizes[0])
    bases, cells, faces = [], [], []
    start = 0
    for ch in range(c):
        xs, col = _axis(centres[ch, 0, :, 0], w, pitch_x)
        zs, row = _axis(centres[ch, :, 0, 2], h, -pitch_z)
        rows, cols = zs.size, xs.size
        gx, gz = np.meshgrid(xs, zs)  # (rows, cols)
        gy = np.full(gx.shape, float(centres[ch, 0, 0, 1]))
        bases.append(np.stack([gx, gy, gz], axis=-1).reshape(-1, 3))
        rr, cc = np.meshgrid(row, col, indexing="ij")
        cells.append((ch * h * w + rr * w + cc).reshape(-1))
        # Two triangles per quad (r, q) .. (r + 1, q + 1), counter-clockwise seen from the -y side.
        r, q = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
        v00 = (start + r * cols + q).reshape(-1)
        v01, v10 = v00 + 1, v00 + cols
        v11 = v10 + 1
        faces.append(np.stack([np.stack([v00, v10, v11], 1), np.stack([v00, v11, v01], 1)], 1).reshape(-1, 3))
        start += rows * cols
    extent = min(w * abs(pitch_x), h * abs(pitch_z)) if min(w, h) > 1 else max(w, h) * abs(pitch_x or pitch_z)
    base = np.ascontiguousarray(np.concatenate(bases), dtype=np.float32)
    cell = np.ascontiguousarray(np.concatenate(cells), dtype=np.int32)
    face = np.ascontiguousarray(np.concatenate(faces), dtype=np.uint32)
    direction = np.asarray(HEIGHT_DIRECTION, np.float32)
    for a in (base, cell, face, direction):
        a.setflags(write=False)
    return SurfaceGrid(name=name, shape=(c, h, w), base=base, cell=cell, faces=face,
                       height=max(MIN_HEIGHT, HEIGHT_FACTOR * extent), direction=direction)


def surface_grids(lay: SceneLayout) -> dict[str, SurfaceGrid]:
    """name -> :class:`SurfaceGrid` of every conv and pool layer of ``lay``, in data-flow order."""
    return {name: surface_grid(lay, name) for name, box in lay.layers.items()
            if box.kind in SURFACE_KINDS and len(box.shape) == 3}


def layer_scale(activation: np.ndarray) -> float:
    """The activation that reaches the full height: the layer's largest |value| (0.0 for an all-zero or
    non-finite layer, which then stays flat)."""
    a = np.asarray(activation, np.float32)
    if a.size == 0:
        return 0.0
    m = float(np.max(np.abs(a)))
    return m if np.isfinite(m) and m > EPSILON else 0.0


def surface_heights(grid: SurfaceGrid, activation: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """(V,) float32 height of every vertex of ``grid`` in world units: activation / layer_scale * height.

    activation: the layer's (C, H, W) values (any array of C*H*W values; None: all flat). Signed values
    give signed heights (post-ReLU maps are >= 0). out: optional preallocated (V,) float32 array.
    """
    if out is None:
        out = np.empty(grid.vertex_count, np.float32)
    if activation is None:
        out[:] = 0.0
        return out
    flat = np.asarray(activation, np.float32).reshape(-1)
    if flat.size != grid.shape[0] * grid.shape[1] * grid.shape[2]:
        raise ValueError(f"layer {grid.name}: expected {grid.shape} activations, got {flat.size} values")
    scale = layer_scale(flat)
    np.take(flat, grid.cell, out=out)
    if scale == 0.0:
        out[:] = 0.0
    else:
        out *= np.float32(grid.height / scale)
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def cell_heights(grid: SurfaceGrid, activation: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """(C*H*W,) float32 height of every map cell (world units, as :func:`surface_heights` lifts its vertices),
    in the layer's row-major cell order: where a click on the raised surface finds its cell."""
    n = grid.shape[0] * grid.shape[1] * grid.shape[2]
    if out is None:
        out = np.empty(n, np.float32)
    scale = 0.0 if activation is None else layer_scale(activation)
    if scale == 0.0:
        out[:] = 0.0
        return out
    np.multiply(np.asarray(activation, np.float32).reshape(-1), np.float32(grid.height / scale), out=out)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def surface_colors(grid: SurfaceGrid, activation: np.ndarray | None, palette: str = "default",
                   out: np.ndarray | None = None) -> np.ndarray:
    """(V, 4) uint8 RGBA of every vertex: the scene's activation colour map (core.colors) of its cell's
    value, the layer's max at the top colour as for the cubes. None: the colour of zero everywhere.
    out: optional preallocated (V, 4) uint8 array."""
    values = np.zeros(grid.vertex_count, np.float32)
    scale = 1.0
    if activation is not None:
        flat = np.asarray(activation, np.float32).reshape(-1)
        np.take(flat, grid.cell, out=values)
        scale = layer_scale(flat) or 1.0
    return colors.activation_colors(values, scale, palette, out=out)


def vertex_positions(grid: SurfaceGrid, heights: np.ndarray) -> np.ndarray:
    """(V, 3) float32 world positions of the vertices at ``heights`` (V,): base + height * direction
    (what the GL item's vertex shader computes; for tests and picking)."""
    return (grid.base + np.asarray(heights, np.float32)[:, None] * grid.direction[None, :]).astype(np.float32)
