"""core.surfaces: the activation-surface grid of every map layer, heights and colours from a snapshot."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz_desktop.core import colors, surfaces
from cnnviz_desktop.core.architecture import ARCHITECTURES
from cnnviz_desktop.core.layout import layout


@pytest.fixture(scope="module")
def lay():
    return layout(ARCHITECTURES["tiny"])


def _activation(shape, seed=0):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(size=shape), 0.0).astype(np.float32)


def test_one_grid_per_conv_and_pool_layer(lay):
    grids = surfaces.surface_grids(lay)
    assert list(grids) == [n for n, b in lay.layers.items() if b.kind in ("conv", "pool")]
    assert list(grids) == ["conv1", "pool1", "conv2", "pool2"]
    for name, grid in grids.items():
        c, h, w = lay.layers[name].shape
        assert grid.shape == (c, h, w)
        assert grid.vertex_count == c * h * w  # one vertex per cell (maps of >= 2x2)
        assert grid.face_count == c * (h - 1) * (w - 1) * 2
        assert grid.faces.dtype == np.uint32 and grid.faces.max() < grid.vertex_count


def test_vertices_sit_on_the_layers_cubes(lay):
    grid = surfaces.surface_grid(lay, "conv1")
    box = lay.layers["conv1"]
    # Vertex v sits at the cube of the cell it shows: the grid is laid out where the cubes are.
    np.testing.assert_allclose(grid.base, lay.centers[box.cubes][grid.cell], atol=1e-5)
    np.testing.assert_array_equal(grid.cell, np.arange(grid.vertex_count))


def test_heights_equal_the_scaled_activations(lay):
    grid = surfaces.surface_grid(lay, "pool1")
    act = _activation(grid.shape)
    heights = surfaces.surface_heights(grid, act)
    expected = act.reshape(-1)[grid.cell] / act.max() * grid.height
    np.testing.assert_allclose(heights, expected, rtol=1e-6)
    # The tallest cell of the layer reaches exactly the layer's fixed height.
    assert heights.max() == pytest.approx(grid.height)
    positions = surfaces.vertex_positions(grid, heights)
    np.testing.assert_allclose(positions[:, 1], grid.base[:, 1] - heights, rtol=1e-6)  # towards the input (-y)
    np.testing.assert_allclose(positions[:, [0, 2]], grid.base[:, [0, 2]])


def test_cell_heights_lift_each_cell_as_its_vertices(lay):
    grid = surfaces.surface_grid(lay, "conv1")
    act = _activation(grid.shape, 5)
    cells = surfaces.cell_heights(grid, act)
    np.testing.assert_allclose(cells[grid.cell], surfaces.surface_heights(grid, act), rtol=1e-6)
    assert not surfaces.cell_heights(grid, None).any()


def test_heights_fill_a_preallocated_buffer_and_flat_for_blank(lay):
    grid = surfaces.surface_grid(lay, "conv2")
    out = np.full(grid.vertex_count, 7.0, np.float32)
    assert surfaces.surface_heights(grid, np.zeros(grid.shape, np.float32), out=out) is out
    assert not out.any()
    surfaces.surface_heights(grid, None, out=out)
    assert not out.any()
    with pytest.raises(ValueError, match="conv2"):
        surfaces.surface_heights(grid, np.zeros(3, np.float32))


def test_faces_built_once_per_model_and_independent_of_activations(lay):
    grid = surfaces.surface_grid(lay, "conv1")
    faces = grid.faces
    for seed in range(3):
        surfaces.surface_heights(grid, _activation(grid.shape, seed))
        surfaces.surface_colors(grid, _activation(grid.shape, seed))
    assert grid.faces is faces and not grid.faces.flags.writeable
    # Every quad of neighbouring cells is two triangles of distinct vertices.
    assert all(len(set(tri)) == 3 for tri in grid.faces[:50].tolist())


@pytest.mark.parametrize("palette", colors.PALETTES)
def test_colours_follow_the_colour_map(lay, palette):
    grid = surfaces.surface_grid(lay, "pool2")
    act = _activation(grid.shape, 3)
    rgba = surfaces.surface_colors(grid, act, palette)
    expected = colors.activation_colors(act.reshape(-1)[grid.cell], float(act.max()), palette)
    np.testing.assert_array_equal(rgba, expected)
    # The brightest colour of the map goes to the tallest vertex.
    top = int(np.argmax(surfaces.surface_heights(grid, act)))
    np.testing.assert_array_equal(rgba[top], colors.activation_lut(palette)[255])


def test_a_one_cell_axis_is_doubled_into_a_strip():
    # A 1-wide map has no quad between cell centres: its vertex row is doubled at +-half a pitch.
    xs, cell = surfaces._axis(np.array([3.0]), 1, 2.0)
    np.testing.assert_allclose(xs, [2.0, 4.0])
    np.testing.assert_array_equal(cell, [0, 0])


def test_not_a_map_is_refused(lay):
    with pytest.raises(ValueError, match="dense1"):
        surfaces.surface_grid(lay, "dense1")
