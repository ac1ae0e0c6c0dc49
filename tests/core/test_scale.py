"""Scale (issue 14 item 3): wide map layers drawn aggregated, per-layer budgets, capped 'all' lines,
aggregation notes, labels without overlap for a model of ~37k neurons and 2.7M connections. No Qt."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from cnnviz_desktop.core import camera as cam
from cnnviz_desktop.core import colors, scene_style
from cnnviz_desktop.core.architecture import ARCHITECTURES, Architecture, describe
from cnnviz_desktop.core.labels import LabelRequest, layer_titles, place_labels, rects_intersect
from cnnviz_desktop.core.layout import ALL_LINES_CAP, MAP_CUBE_BUDGET, aggregation_block, build_layout, layout
from cnnviz_desktop.core.wiring import network_wiring

BIG = Architecture.family("big", conv_channels=(32, 64), dense_units=(128,))
HUGE = Architecture.family("huge", conv_channels=(48, 64), dense_units=(256,))
SLABS = Architecture.family("slabs", conv_channels=(512,), dense_units=(16,))  # 512 channels of 26x26 and 13x13


def _snapshot(arch: Architecture, seed: int = 0, significant: float = 0.05):
    """Snapshot-like object with the fields scene_style reads (sparse ReLU-like activations)."""
    rng = np.random.default_rng(seed)
    acts = {}
    for spec in describe(arch):
        a = rng.random(spec.shape, dtype=np.float32)
        if spec.kind in ("conv", "dense"):
            a[a < 0.6] = 0.0
        acts[spec.name] = a
    wiring = network_wiring(arch)
    contrib = {n: rng.standard_normal(w.count).astype(np.float32) for n, w in wiring.items()}
    sig = {n: rng.random(w.count) < significant for n, w in wiring.items()}
    probs = rng.random(10).astype(np.float32)
    return SimpleNamespace(empty=False, activations=acts, contributions=contrib, significant=sig,
                           probabilities=probs / probs.sum())


def _block_reduce(a: np.ndarray, block: int, how: str) -> np.ndarray:
    """Reference: per channel, per block (row-major), with explicit loops."""
    c, h, w = a.shape
    out = []
    for ch in range(c):
        for y in range(0, h, block):
            for x in range(0, w, block):
                cell = a[ch, y:y + block, x:x + block]
                out.append(cell.max() if how == "max" else cell.mean())
    return np.array(out, np.float32)


@pytest.fixture(scope="module")
def big():
    return layout(BIG)


def test_the_big_model_is_the_scale_target(big):
    assert big.neuron_count == 37_306
    assert big.edge_count == sum(w.count for w in network_wiring(BIG).values()) > 2_000_000


def test_shipped_models_are_drawn_neuron_by_neuron():
    for arch in ARCHITECTURES.values():
        lay = layout(arch)
        assert lay.aggregation == {}
        assert lay.cube_count == lay.neuron_count
        assert len(lay.base_lines) == lay.edge_count  # 'all' still draws every line
        assert scene_style.aggregation_note(lay) == ""


@pytest.mark.parametrize("arch", [BIG, HUGE, SLABS], ids=lambda a: a.name)
def test_every_map_layer_stays_within_its_cube_budget(arch):
    lay = build_layout(arch)
    assert lay.aggregation, "a model this wide must aggregate something"
    for spec in lay.specs:
        box = lay.layers[spec.name]
        cubes = box.cubes.stop - box.cubes.start
        if len(spec.shape) == 3:
            assert cubes <= max(MAP_CUBE_BUDGET, spec.shape[0]), spec.name
            assert (spec.name in lay.aggregation) == (spec.size > MAP_CUBE_BUDGET)
        assert box.size == spec.size
    assert lay.cube_count < lay.neuron_count
    assert len(lay.base_lines) <= ALL_LINES_CAP < lay.base_distinct
    # Every grey line joins the cubes of a real edge, and none is drawn twice.
    keys = lay.base_lines[:, 0].astype(np.int64) * lay.cube_count + lay.base_lines[:, 1]
    assert np.unique(keys).size == keys.size
    assert np.isin(keys, lay.edge_src.astype(np.int64) * lay.cube_count + lay.edge_dst).all()
    assert len(lay.centers) == len(lay.sizes) == len(lay.layer_index) == lay.cube_count


def test_one_slab_per_channel_when_no_grid_fits(monkeypatch):
    from cnnviz_desktop.core import layout as layout_module

    monkeypatch.setattr(layout_module, "MAP_CUBE_BUDGET", 1000)
    lay = build_layout(SLABS)
    agg = lay.aggregation["conv1"]
    assert agg.grid == (512, 1, 1) and agg.cube_count == 512
    assert aggregation_block(lay.specs[1]) == 26
    # A slab is as wide as its map and coloured by the map's max.
    box = lay.layers["conv1"]
    np.testing.assert_allclose(lay.sizes[box.cubes], lay.sizes[box.cubes][0])
    a = np.random.default_rng(2).random((512, 26, 26), dtype=np.float32)
    np.testing.assert_allclose(agg.reduce(a), a.reshape(512, -1).max(axis=1))
    np.testing.assert_allclose(agg.reduce(a, "mean"), a.reshape(512, -1).mean(axis=1), rtol=1e-5)
    titles = layer_titles(lay.specs[1], 1)
    assert "one slab per map, max" in titles[0] and "slab" in titles[1]
    assert len(lay.base_lines) <= ALL_LINES_CAP


@pytest.mark.parametrize("how", ["max", "mean"])
def test_aggregated_cubes_show_the_reduction_of_their_block(big, how):
    snap = _snapshot(BIG, seed=3)
    for name, agg in big.aggregation.items():
        a = snap.activations[name]
        np.testing.assert_allclose(agg.reduce(a.reshape(-1), how), _block_reduce(a, agg.block, how), rtol=1e-6)


def test_cube_colours_of_an_aggregated_layer_are_the_block_max_on_the_layer_scale(big):
    snap = _snapshot(BIG, seed=5)
    rgba = np.empty((big.cube_count, 4), np.uint8)
    values = np.empty(big.cube_count, np.float32)
    scene_style.cube_colors(big, snap, "default", rgba, values)
    for name, box in big.layers.items():
        a = snap.activations[name]
        agg = big.aggregation.get(name)
        if agg is None:
            expected = (snap.probabilities if box.kind == "output" else a).reshape(-1)
        else:
            expected = _block_reduce(a, agg.block, scene_style.AGGREGATE)
        np.testing.assert_allclose(values[box.cubes], expected, rtol=1e-6)
        if agg is not None:
            want = colors.activation_colors(expected, float(a.max()), "default")
            np.testing.assert_array_equal(rgba[box.cubes], want)


def test_a_known_pattern_lights_exactly_its_block(big):
    """One hot neuron in conv1 channel 7 at (9, 20): only the cube of its block is on."""
    snap = _snapshot(BIG)
    for name in snap.activations:
        snap.activations[name] = np.zeros_like(snap.activations[name])
    snap.activations["conv1"][7, 9, 20] = 2.0
    rgba = np.empty((big.cube_count, 4), np.uint8)
    values = np.empty(big.cube_count, np.float32)
    scene_style.cube_colors(big, snap, "default", rgba, values)
    box = big.layers["conv1"]
    lit = np.flatnonzero(values[box.cubes]) + box.cubes.start
    cube = big.cube_of("conv1", (7, 9, 20))
    assert lit.tolist() == [cube]
    ch, y0, y1, x0, x1 = big.block(cube)
    assert ch == 7 and y0 <= 9 < y1 and x0 <= 20 < x1
    assert big.locate(cube) == ("conv1", (7, y0, x0))
    # The cube sits at the centre of the neurons it stands for, in the full map's plane.
    text = scene_style.describe_neuron(big, cube, 2.0, None)
    assert "conv1 channel 7" in text and "aggregated" in text and f"of {(y1 - y0) * (x1 - x0)} neurons" in text


def test_edges_of_an_aggregated_layer_end_at_the_cube_of_their_neuron(big):
    wiring = network_wiring(BIG)
    rng = np.random.default_rng(0)
    for name, sl in big.edge_slices.items():
        wire = wiring[name]
        pick = rng.integers(0, wire.count, 200)
        src_shape, dst_shape = big.layers[wire.source].shape, big.layers[name].shape
        for e in pick:
            s = tuple(int(i) for i in np.unravel_index(wire.src[e], src_shape))
            d = tuple(int(i) for i in np.unravel_index(wire.dst[e], dst_shape))
            assert big.edge_src[sl.start + e] == big.cube_of(wire.source, s)
            assert big.edge_dst[sl.start + e] == big.cube_of(name, d)
    # Picking an aggregated cube: its incoming edges are those of its first neuron (nothing crashes).
    cube = big.cube_of("conv2", (5, 10, 10))
    edges = big.incoming(cube)
    assert edges.size == big.fan_in("conv2") == 32 * 9
    assert np.all(big.edge_dst[edges] == cube)


def test_drawn_lines_are_bounded_per_layer_and_distinct(big):
    snap = _snapshot(BIG, seed=1, significant=0.3)
    e = big.edge_count
    contrib, norm = np.empty(e, np.float32), np.empty(e, np.float32)
    sig, alpha = np.empty(e, bool), np.empty(e, np.float32)
    scene_style.edge_state(big, snap, 500, (1366, 768), contrib, norm, sig, alpha)
    shown = scene_style.drawn_edges(big, sig, norm, 500)
    assert shown.size <= 500 * len(big.edge_slices)
    assert sig[shown].all()
    pairs = big.edge_src[shown].astype(np.int64) * big.cube_count + big.edge_dst[shown]
    assert np.unique(pairs).size == pairs.size, "no line drawn twice over an aggregated cube"
    for name, sl in big.edge_slices.items():
        inside = shown[(shown >= sl.start) & (shown < sl.stop)]
        source = {sp.name: sp.source for sp in big.specs}[name]
        block = max(big.aggregation[n].block if n in big.aggregation else 1 for n in (name, source))
        assert scene_style.layer_budget(big, name, 500) == 500 // block
        assert 0 < inside.size <= 500 // block


def test_status_says_what_is_capped_and_aggregated(big):
    text = scene_style.status_text("all", 0, big.edge_count, 12_345, big)
    assert f"showing {len(big.base_lines):,} of {big.edge_count:,}" in text
    assert "conv1" in text and "aggregated" in text
    text = scene_style.status_text("significant", 3000, big.edge_count, 40_000, big)
    assert "3,000 of" in text and "aggregated" in text
    tiny = layout(ARCHITECTURES["tiny"])
    text = scene_style.status_text("all", 0, tiny.edge_count, 5, tiny)
    assert text == "All 73,024 connections shown (5 significant in colour)"


def test_layer_titles_name_the_aggregation_in_every_variant(big):
    by_name = {s.name: s for s in big.specs}
    for spec in big.specs:
        source = by_name[spec.source].shape[0] if spec.source else None
        titles = layer_titles(spec, source)
        if spec.name in big.aggregation:
            block = big.aggregation[spec.name].block
            assert all(f"{block}\u00d7{block}" in t for t in titles), titles
            assert "blocks, max" in titles[0]
        else:
            assert "block" not in " ".join(titles)


@pytest.mark.parametrize("view", ["default", "front", "side", "top"])
@pytest.mark.parametrize("size", [(800, 600), (1366, 768)])
def test_labels_of_the_big_model_never_overlap(big, view, size):
    """The layer titles (text extent estimated at 7 x 15 px per character) placed on the projected anchors."""
    width, height = size
    points = np.concatenate([big.centers, np.array([b.label_anchor for b in big.layers.values()])])
    camera = cam.frame(points, *cam.PRESET_VIEWS[view], width, height, margin=10.0, fov=cam.FOV, start=big.center)
    mvp = cam.mvp_matrix(camera, width, height)
    by_name = {s.name: s for s in big.specs}
    requests = []
    for spec in big.specs:
        box = big.layers[spec.name]
        titles = layer_titles(spec, by_name[spec.source].shape[0] if spec.source else None)
        xy = cam.project(np.array([box.label_anchor]), mvp, width, height).xy[0]
        requests.append(LabelRequest((float(xy[0]), float(xy[1])), tuple((7.0 * len(t), 15.0) for t in titles),
                                     align=box.label_align))
    placed = place_labels(requests, (width, height))
    rects = [p.rect for p in placed if p is not None]
    assert len(rects) >= len(big.specs) - 2, "nearly every layer is named"
    for a, b in itertools.combinations(rects, 2):
        assert not rects_intersect(a, b)
    for x, y, w, h in rects:
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height


def test_a_conv_layer_with_too_many_weights_draws_one_cell_per_filter(big):
    from cnnviz_desktop.core.layout import FILTER_CELL_BUDGET

    assert big.filter_kernels == {"conv1": 3, "conv2": 1}
    sl = big.filter_slices["conv2"]
    assert sl.stop - sl.start == 64 * 32 <= FILTER_CELL_BUDGET
    w = np.random.default_rng(4).standard_normal((64, 32, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(scene_style.filter_values(big, "conv2", w), w.mean(axis=(2, 3)).reshape(-1), rtol=1e-6)
    w1 = np.random.default_rng(5).standard_normal((32, 1, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(scene_style.filter_values(big, "conv1", w1), w1.reshape(-1))
    assert scene_style.filter_values(big, "conv1", w) is None  # another network's weights: not drawn
    assert "mean weight" in layer_titles(big.specs[3], 32)[0]
    wide = layout(ARCHITECTURES["wide"])
    assert set(wide.filter_kernels.values()) == {3}


def test_all_connections_never_draws_a_padded_tap():
    from cnnviz_desktop.core.architecture import parse_spec
    from cnnviz_desktop.core.wiring import network_wiring

    arch = parse_spec("c4k3p1-relu-max2-c4k3p1-relu-fc10", "padded")
    lay = build_layout(arch)
    wiring = network_wiring(arch)
    assert lay.base_distinct == sum(w.real_count for w in wiring.values())
    assert lay.base_distinct < lay.edge_count  # the padded taps are in the edge arrays, not in the drawn lines
