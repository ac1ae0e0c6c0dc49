"""3D layout: one cube per neuron for any network of the family, no overlaps, edges in wiring order."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz_desktop.core.architecture import ARCHITECTURES, Architecture, describe
from cnnviz_desktop.core.layout import build_layout, layout
from cnnviz_desktop.core.wiring import network_wiring

THIRD = Architecture.family("t3", conv_channels=(4, 3, 2), dense_units=(16, 12))
ARCHS = [ARCHITECTURES["tiny"], ARCHITECTURES["wide"], THIRD]


@pytest.fixture(params=ARCHS, ids=lambda a: a.name, scope="module")
def lay(request):
    return build_layout(request.param)


def test_cube_counts_follow_the_layer_shapes(lay):
    specs = describe(lay.arch)
    assert [s.name for s in lay.specs] == [s.name for s in specs]
    start = 0
    for spec in specs:
        box = lay.layers[spec.name]
        assert box.cubes == slice(start, start + spec.size)
        assert box.shape == spec.shape
        start += spec.size
    assert lay.cube_count == start == lay.centers.shape[0] == lay.sizes.shape[0] == lay.layer_index.shape[0]
    assert lay.centers.dtype == np.float32 and lay.centers.flags.c_contiguous
    assert np.isfinite(lay.centers).all() and (lay.sizes > 0).all()


def test_known_counts():
    assert layout(ARCHITECTURES["tiny"]).cube_count == 784 + 8 * 26 * 26 + 8 * 13 * 13 + 2 * 11 * 11 + 2 * 25 + 22 + 10
    wiring = network_wiring(ARCHITECTURES["tiny"])
    assert layout(ARCHITECTURES["tiny"]).edge_count == sum(w.count for w in wiring.values())
    assert layout(ARCHITECTURES["tiny"]) is layout(ARCHITECTURES["tiny"])  # computed once per model


def _overlaps(centers: np.ndarray, sizes: np.ndarray) -> int:
    """Pairs of axis-aligned cubes that intersect (sweep along x, exact test on the candidates)."""
    order = np.argsort(centers[:, 0] - sizes / 2)
    c, s = centers[order].astype(np.float64), sizes[order].astype(np.float64)
    lo, hi = c - s[:, None] / 2, c + s[:, None] / 2
    count = 0
    reach = np.searchsorted(lo[:, 0], hi[:, 0], side="left")  # cubes starting before i ends
    for i in range(len(c)):
        j = np.arange(i + 1, reach[i])
        if j.size:
            inter = np.all((lo[j] < hi[i] - 1e-6) & (hi[j] > lo[i] + 1e-6), axis=1)
            count += int(inter.sum())
    return count


def test_no_two_cubes_overlap(lay):
    assert _overlaps(lay.centers, lay.sizes) == 0
    everything = np.concatenate([lay.centers, lay.filter_centers])
    sizes = np.concatenate([lay.sizes, lay.filter_sizes])
    assert _overlaps(everything, sizes) == 0


def test_layers_are_planes_along_the_depth_axis(lay):
    depths = [lay.layers[s.name].depth for s in lay.specs]
    assert all(b > a for a, b in zip(depths, depths[1:]))
    for spec in lay.specs:
        ys = lay.centers[lay.layers[spec.name].cubes, 1]
        assert np.all(ys == ys[0])


def test_input_is_an_upright_image(lay):
    box = lay.layers["input"]
    pts = lay.centers[box.cubes].reshape(28, 28, 3)
    assert np.all(np.diff(pts[:, :, 0], axis=1) > 0)  # columns go right
    assert np.all(np.diff(pts[:, :, 2], axis=0) < 0)  # rows go down


def test_edges_follow_the_wiring(lay):
    wiring = network_wiring(lay.arch)
    assert list(lay.edge_slices) == [s.name for s in lay.specs[1:]]
    assert lay.edge_src.dtype == np.int32 and lay.edge_dst.dtype == np.int32
    assert lay.edge_src.min() >= 0 and lay.edge_src.max() < lay.cube_count
    assert lay.edge_dst.min() >= 0 and lay.edge_dst.max() < lay.cube_count
    for name, sl in lay.edge_slices.items():
        wire = wiring[name]
        src_box, dst_box = lay.layers[wire.source], lay.layers[name]
        np.testing.assert_array_equal(lay.edge_src[sl] - src_box.cubes.start, wire.src)
        np.testing.assert_array_equal(lay.edge_dst[sl] - dst_box.cubes.start, wire.dst)
        assert lay.fan_in(name) == wire.fan_in


def test_locate_and_incoming_round_trip(lay):
    for spec in lay.specs:
        index = tuple(n - 1 for n in spec.shape)
        cube = lay.cube_of(spec.name, index)
        assert lay.locate(cube) == (spec.name, index)
        edges = lay.incoming(cube)
        assert edges.size == lay.fan_in(spec.name)
        assert np.all(lay.edge_dst[edges] == cube)


def test_filter_cells_follow_the_weight_order(lay):
    total = 0
    for spec in lay.specs:
        if spec.kind != "conv":
            continue
        cin = lay.layers[spec.source].shape[0]
        sl = lay.filter_slices[spec.name]
        assert sl.stop - sl.start == spec.shape[0] * cin * spec.kernel ** 2
        cells = lay.filter_centers[sl].reshape(spec.shape[0], cin, spec.kernel, spec.kernel, 3)
        # Within one filter: kx goes right, ky goes down; filters sit in front of / above their layer.
        assert np.all(np.diff(cells[..., 0], axis=3) > 0)
        assert np.all(np.diff(cells[..., 2], axis=2) < 0)
        box = lay.layers[spec.name]
        assert np.all(cells[..., 2].min(axis=(1, 2, 3)) > box.z_range[0])
        assert lay.filter_anchors[spec.name].shape == (spec.shape[0], 3)
        total += sl.stop - sl.start
    assert total == lay.filter_centers.shape[0] == lay.filter_sizes.shape[0]


def test_labels_and_bounds(lay):
    assert [t for t, _ in lay.unit_labels] == [str(d) for d in range(10)]
    lo, hi = lay.bounds
    assert np.all(lay.centers >= lo) and np.all(lay.centers <= hi)
    for box in lay.layers.values():
        assert np.all(np.asarray(box.label_anchor) >= lo - 1) and np.all(np.asarray(box.label_anchor) <= hi + 1)
