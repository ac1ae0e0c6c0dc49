"""Scale in the real window (issue 14 item 3): a random-weight model of 37k neurons and 2.7M connections,
saved to a file and opened with --model, is drawn on; the scene notes what it aggregates, applies the
snapshot, caps 'all connections', and picking an aggregated cube gives its channel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt

from cnnviz_desktop.core import colors, networks, scene_style, weights
from cnnviz_desktop.core.architecture import Architecture
from cnnviz_desktop.core.labels import rects_intersect
from cnnviz_desktop.core.layout import ALL_LINES_CAP
from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle

pytestmark = pytest.mark.gl

BIG = Architecture.family("big", conv_channels=(32, 64), dense_units=(128,))


@pytest.fixture
def big_file(tmp_path):
    torch.manual_seed(0)
    return weights.save(networks.build(BIG).eval(), tmp_path / "big.safetensors")


def _frame(qtbot, panel) -> None:
    panel.view.update()
    with qtbot.waitSignal(panel.view.frameSwapped, timeout=30_000):
        pass


def test_a_big_model_is_shown_aggregated_and_stays_usable(start_app, qtbot, big_file):
    window = start_app(model=str(big_file)).window
    panel = window.scene
    if not panel.has_gl:
        pytest.skip(f"no OpenGL here: {panel.fallback_reason}")
    lay = panel.layout_
    assert lay.arch == BIG and lay.neuron_count == 37_306 and lay.edge_count > 2_000_000
    assert set(lay.aggregation) == {"conv1", "conv2"}

    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    assert not snap.empty
    _frame(qtbot, panel)
    # The snapshot was applied: the aggregated cubes show the max of their blocks of this drawing.
    box = lay.layers["conv1"]
    expected = lay.aggregation["conv1"].reduce(np.asarray(snap.activations["conv1"]))
    assert expected.max() > 0
    conv1 = np.asarray(snap.activations["conv1"])
    want = colors.activation_colors(expected, float(conv1.max()), window.session.palette)
    np.testing.assert_array_equal(panel.cubes.colors()[box.cubes], want)
    # The note: the status line and the layer titles say what is aggregated and how.
    assert "conv1, conv2 aggregated" in panel.status_text
    texts = [t for t, _ in panel.label_rects()]
    assert any("conv1" in t and "2\u00d72" in t for t in texts), texts
    rects = panel.label_rects()
    for (ta, a), (tb, b) in itertools.combinations(rects, 2):
        assert not rects_intersect(a, b), f"{ta!r} {a} overlaps {tb!r} {b}"
    shown = panel.lines.segment_count("shown")
    assert 0 < shown <= panel.line_budget * len(lay.edge_slices)

    # 'All connections' draws a capped sample and says so.
    window.session.set_connection_mode("all")
    qtbot.waitUntil(lambda: panel.connection_mode == "all", timeout=5_000)
    assert panel.lines.segment_count("base") == len(lay.base_lines) <= ALL_LINES_CAP
    assert f"showing {len(lay.base_lines):,} of {lay.edge_count:,}" in panel.status_text
    _frame(qtbot, panel)
    window.session.set_connection_mode("significant")
    qtbot.waitUntil(lambda: panel.connection_mode == "significant", timeout=5_000)

    # Hover and click an aggregated cube of conv2: the channel (and its block) is what gets picked.
    x, y = panel.screen_position("conv2", (5, 4, 6))
    cube = lay.cube_of("conv2", (5, 4, 6))
    ch, y0, y1, x0, x1 = lay.block(cube)
    with qtbot.waitSignal(panel.neuron_hovered, timeout=10_000,
                          check_params_cb=lambda layer, index, value: layer == "conv2") as hovered:
        qtbot.mouseMove(panel.view, QPoint(round(x), round(y)))
    assert hovered.args[1][0] == 5
    assert "aggregated" in scene_style.describe_neuron(lay, cube, hovered.args[2], None)
    with qtbot.waitSignal(panel.neuron_picked, timeout=10_000) as picked:
        qtbot.mouseClick(panel.view, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    layer, index, value = picked.args
    assert layer == "conv2" and index == (5, y0, x0)
    assert value == pytest.approx(float(np.asarray(snap.activations["conv2"])[5, y0:y1, x0:x1].max()))
    qtbot.waitUntil(lambda: window.session.picked == ("conv2", (5, y0, x0)), timeout=5_000)
    # The receptive field of the picked (first) neuron of the block is drawn on the canvas; no crash.
    assert window.session.picked_box() is not None
    assert panel.lines.segment_count("highlight") >= lay.fan_in("conv2")
    _frame(qtbot, panel)


@pytest.fixture
def panel(qtbot):
    from cnnviz_desktop.ui.scene import ScenePanel

    p = ScenePanel()
    if not p.has_gl:
        pytest.skip(f"no OpenGL here: {p.fallback_reason}")
    qtbot.addWidget(p)
    p.resize(800, 500)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_the_big_model_hides_no_map_behind_another(qtbot, panel):
    """tests/ui/test_scene.py's check (tiny, wide) on the big model: at the default framing every
    sampled cube, aggregated ones included, is the one picked at its own centre."""
    from tests.ui.test_scene import _resize_view

    panel.set_model(BIG)
    _resize_view(qtbot, panel, 1366, 768)
    panel.reset_view()
    lay = panel.layout_
    for layer, box in lay.layers.items():
        cubes = range(box.cubes.start, box.cubes.stop, 7)
        hits = 0
        for cube in cubes:
            x, y = panel.screen_position(*lay.locate(cube))
            picked = panel.pick(x, y)
            hits += picked is not None and lay.locate(picked)[0] == layer
        # 0.96, not tiny/wide's 0.98: the bottom rows of the lowest channels of pool1 and conv2 sit
        # behind the top row of the maps in front (measured 97.0-97.9% in front; 98.3% when drawn
        # neuron by neuron: a 2x2 block's cube is twice a neuron's, so it covers a little more).
        assert hits / len(cubes) > 0.96, f"{layer}: only {hits / len(cubes):.0%} of its cubes are in front"


def test_labels_of_the_big_model_never_overlap_or_leave_the_view(qtbot, panel):
    """tests/ui/test_scene.py's label test (tiny, wide) extended to the big model."""
    from tests.ui.test_scene import VIEW_SIZES, _assert_labels_clean, _resize_view, synthetic_snapshot

    panel.set_model(BIG)
    assert panel.apply(synthetic_snapshot(BIG, seed=9))
    for w, h in VIEW_SIZES:
        _resize_view(qtbot, panel, w, h)
        for view in ("default", "front", "side", "top"):
            panel.preset_view(view)
            _frame(qtbot, panel)
            rects = _assert_labels_clean(panel, f"big {w}x{h} {view}")
            if view == "default":
                texts = [t for t, _ in rects]
                assert all(str(d) in texts for d in range(10)), texts
                named = {t.split(":")[0].split(" ")[0] for t in texts}
                missing = {s.name for s in panel.layout_.specs} - named
                # 800x600 has room for all but one title of this 7-layer, 37k-neuron scene (a title
                # hides rather than overlap); from 1366x768 on every layer is named.
                assert len(missing) <= (1 if w < 1366 else 0), (missing, texts)
                assert any("blocks, max" in t or "max)" in t for t in texts), texts
    panel.set_presentation(True)
    for view in ("default", "front", "side", "top"):
        panel.preset_view(view)
        _frame(qtbot, panel)
        _assert_labels_clean(panel, f"big presentation {view}")
