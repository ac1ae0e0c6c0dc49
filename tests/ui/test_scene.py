"""The 3D scene under Xvfb: it renders, recolours on a new snapshot, picks neurons, falls back without GL."""

from __future__ import annotations

import itertools
from types import MappingProxyType

import numpy as np
import pytest

from cnnviz_desktop.core.analysis import Snapshot
from cnnviz_desktop.core.architecture import ARCHITECTURES, Architecture, describe
from cnnviz_desktop.core.wiring import network_wiring

pytestmark = pytest.mark.gl

TINY = ARCHITECTURES["tiny"]


def synthetic_snapshot(arch: Architecture, seed: int = 0, request_id: int = 1, empty: bool = False) -> Snapshot:
    """A Snapshot with every field of the contract filled with arrays of the right shapes."""
    rng = np.random.default_rng(seed)
    specs = describe(arch)
    wiring = network_wiring(arch)
    acts = {}
    for spec in specs:
        a = np.zeros(spec.shape, np.float32) if empty else rng.random(spec.shape, dtype=np.float32)
        if not empty and spec.kind in ("conv", "dense"):
            a[a < 0.4] = 0.0  # ReLU off
        acts[spec.name] = a
    contributions = {n: (np.zeros(w.count, np.float32) if empty else rng.standard_normal(w.count).astype(np.float32))
                     for n, w in wiring.items()}
    significant = {n: (np.zeros(w.count, bool) if empty else rng.random(w.count) < 0.05) for n, w in wiring.items()}
    cam_c = [s for s in specs if s.kind == "pool"][-1].shape
    logits = None if empty else rng.standard_normal(10).astype(np.float32)
    probs = None if empty else np.exp(logits) / np.exp(logits).sum()
    z28 = np.zeros((28, 28), np.float32)
    return Snapshot(
        request_id=request_id, empty=empty, logits=logits, probabilities=probs,
        predicted=None if empty else int(np.argmax(logits)), target=None if empty else int(np.argmax(logits)),
        contrast=None, activations=MappingProxyType(acts),
        cam_channels=np.zeros((cam_c[0], 28, 28), np.float32), cam=z28, hirescam=z28,
        canvas_cam_channels=np.zeros((cam_c[0], 28, 28), np.float32), canvas_cam=z28, canvas_hirescam=z28,
        contributions=MappingProxyType(contributions), significant=MappingProxyType(significant),
        model_name=arch.name,
    )


def _frame(qtbot, panel) -> np.ndarray:
    panel.view.update()
    with qtbot.waitSignal(panel.view.frameSwapped, timeout=10000):
        pass
    image = panel.view.grabFramebuffer()
    ptr = image.convertToFormat(image.Format.Format_RGBA8888)
    arr = np.frombuffer(ptr.constBits(), np.uint8).reshape(ptr.height(), ptr.bytesPerLine() // 4, 4)
    return arr[:, : ptr.width(), :3].copy()


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


def test_renders_and_recolours(qtbot, panel):
    panel.set_model(TINY)
    with qtbot.waitSignal(panel.status_text_changed, timeout=5000) as blocker:
        panel.apply(synthetic_snapshot(TINY, seed=1))
    assert "of 73,024 connections shown" in blocker.args[0]
    first = _frame(qtbot, panel)
    assert first.std() > 5  # not empty or uniform
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 50
    instances = panel.cubes.instances

    assert panel.apply(synthetic_snapshot(TINY, seed=2, request_id=2))
    second = _frame(qtbot, panel)
    assert np.abs(first.astype(int) - second.astype(int)).sum() > 0
    np.testing.assert_array_equal(panel.cubes.instances, instances)  # colours only, no geometry rebuild


def test_apply_rejects_a_snapshot_of_another_network(panel):
    panel.set_model(TINY)
    assert not panel.apply(synthetic_snapshot(ARCHITECTURES["wide"]))
    assert panel.apply(synthetic_snapshot(TINY, empty=True))
    assert panel.status_text.startswith("0 of")


def test_connection_modes_and_palette(qtbot, panel):
    panel.set_model(TINY)
    snap = synthetic_snapshot(TINY, seed=3)
    panel.apply(snap)
    sig = sum(int(np.count_nonzero(m)) for m in snap.significant.values())
    capped = sum(min(100, int(np.count_nonzero(m))) for m in snap.significant.values())
    panel.set_line_budget(None)
    assert panel.lines.segment_count("shown") == sig
    panel.set_line_budget(100)  # the strongest 100 significant lines per layer
    assert panel.lines.segment_count("shown") == capped
    assert f"{capped:,} of 73,024" in panel.status_text
    panel.set_connection_mode("all")
    assert panel.lines.segment_count("base") == 73024 and "All 73,024" in panel.status_text
    panel.set_connection_mode("none")
    assert panel.lines.segment_count("shown") == 0 and panel.lines.segment_count("base") == 0
    before = panel.cubes.colors().copy()
    panel.set_palette("colorblind")
    assert not np.array_equal(before, panel.cubes.colors())
    panel.set_presentation(True)
    for name in ("front", "side", "top", "default"):
        panel.preset_view(name)
    panel.set_auto_rotate(True)
    assert panel.auto_rotating
    panel.set_auto_rotate(False)
    with pytest.raises(ValueError):
        panel.set_connection_mode("some")
    assert _frame(qtbot, panel).std() > 5


def test_click_picks_a_neuron_and_highlights_its_inputs(qtbot, panel):
    from PySide6 import QtCore

    panel.set_model(TINY)
    panel.apply(synthetic_snapshot(TINY, seed=4))
    panel.preset_view("front")
    _frame(qtbot, panel)
    x, y = panel.screen_position("input", (0, 14, 14))
    with qtbot.waitSignal(panel.neuron_picked, timeout=5000) as blocker:
        qtbot.mouseClick(panel.view, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(round(x), round(y)))
    layer, index, value = blocker.args
    assert layer == "input" and index == (0, 14, 14)

    # A dense unit: its 50 incoming lines (plus a 12-edge outline) are highlighted.
    panel.reset_view()
    _frame(qtbot, panel)
    x, y = panel.screen_position("dense1", (5,))
    with qtbot.waitSignal(panel.neuron_picked, timeout=5000) as blocker:
        qtbot.mouseClick(panel.view, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(round(x), round(y)))
    assert blocker.args[0] == "dense1" and blocker.args[1] == (5,)
    assert panel.lines.segment_count("highlight") == 50 + 12
    assert panel.picked == ("dense1", (5,))


def test_analyzer_snapshot_when_available(qtbot, panel, tiny):
    analysis = pytest.importorskip("cnnviz_desktop.core.analysis")
    if not hasattr(analysis, "Analyzer"):
        pytest.skip("analysis engine not merged yet")
    from cnnviz_desktop.devtools.scene_shot import snapshot_for

    panel.set_model(tiny)
    assert panel.apply(snapshot_for(tiny, "seven"))
    assert _frame(qtbot, panel).std() > 5
    # The filter grids are coloured by the real weights (not the grey of a model without weights).
    assert len(np.unique(panel.filter_cells.colors(), axis=0)) > 20


def test_fallback_without_gl(qtbot):
    from cnnviz_desktop.ui.scene import ScenePanel

    p = ScenePanel(gl=False)
    qtbot.addWidget(p)
    assert not p.has_gl and p.view is None
    assert "unavailable" in p.fallback.text()
    with qtbot.waitSignal(p.status_text_changed, timeout=1000) as blocker:
        p.set_model(TINY)
    assert "3D view unavailable" in blocker.args[0]
    p.apply(synthetic_snapshot(TINY))
    p.set_connection_mode("all")
    p.set_palette("colorblind")
    p.set_presentation(True)
    p.reset_view()
    p.preset_view("top")
    p.set_auto_rotate(True)
    assert not p.auto_rotating  # nothing to rotate: the toggle must not claim otherwise
    # No '0 of 73,024 connections shown' for a view that does not exist.
    assert "3D view unavailable" in p.status_text and "connections" not in p.status_text
    assert p.label_rects() == []


def test_line_budget_follows_the_view_size(qtbot, panel):
    from cnnviz_desktop.ui.scene import DEFAULT_LINE_BUDGET

    panel.set_model(TINY)
    snap = synthetic_snapshot(TINY, seed=5)
    panel.apply(snap)
    large = panel.line_budget
    assert 0 < large <= DEFAULT_LINE_BUDGET  # 800x500 < the reference view
    panel.resize(400, 250)
    qtbot.waitUntil(lambda: panel.view.width() <= 400)
    assert panel.line_budget < large
    capped = sum(min(panel.line_budget, int(np.count_nonzero(m))) for m in snap.significant.values())
    assert panel.lines.segment_count("shown") == capped
    panel.set_line_budget(100)
    panel.resize(800, 500)
    qtbot.waitUntil(lambda: panel.view.width() >= 800)
    assert panel.line_budget == 100  # a fixed budget does not follow the size
    panel.set_line_budget("auto")
    assert panel.line_budget == large


def test_all_mode_reuses_the_rendered_base_layer(qtbot, panel):
    panel.set_model(TINY)
    panel.set_connection_mode("all")
    panel.apply(synthetic_snapshot(TINY, seed=6))
    cached = _frame(qtbot, panel)
    renders = panel.lines.base_renders
    assert renders >= 1
    panel.apply(synthetic_snapshot(TINY, seed=7, request_id=2))
    _frame(qtbot, panel)
    assert panel.lines.base_renders == renders  # a new snapshot does not redraw 73k grey lines
    panel.view.orbit(5.0, 0.0)
    _frame(qtbot, panel)
    assert panel.lines.base_renders > renders  # a camera move does
    panel.view.orbit(-5.0, 0.0)
    panel.apply(synthetic_snapshot(TINY, seed=6))
    panel.lines.cache_base = False
    direct = _frame(qtbot, panel)
    # The same picture as drawing every line directly (up to 8-bit rounding of the blending).
    assert np.abs(cached.astype(int) - direct.astype(int)).max() <= 8


def test_overlay_text_is_drawn_and_follows_the_status(qtbot, panel):
    panel.set_model(TINY)
    panel.apply(synthetic_snapshot(TINY, seed=8))
    frame = _frame(qtbot, panel)
    assert set(panel.overlay.panel_names()) >= {"status", "legend"}
    status = frame[4:30, 4:300]  # the status line, top left (light grey text on the dark background)
    assert (status.max(axis=-1) > 150).sum() > 50
    legend = frame[-90:, :200]
    assert (legend.max(axis=-1) > 150).sum() > 100
    panel.set_connection_mode("none")
    after = _frame(qtbot, panel)[4:30, 4:300]
    assert not np.array_equal(status, after), "the status line is re-rendered when its text changes"
    assert len(panel.overlay.labels) > 5


# ---------------------------------------------------------------- labels, camera, lines (issue 10)
VIEW_SIZES = [(800, 600), (1366, 768), (1920, 1080)]


def _resize_view(qtbot, panel, w, h):
    panel.resize(w, h)
    qtbot.waitUntil(lambda: (panel.view.width(), panel.view.height()) == (w, h), timeout=5000)


def _assert_labels_clean(panel, where):
    from cnnviz_desktop.core.labels import rects_intersect

    rects = panel.label_rects()
    w, h = panel.view.width(), panel.view.height()
    assert rects, f"{where}: no labels drawn"
    for (ta, a), (tb, b) in itertools.combinations(rects, 2):
        assert not rects_intersect(a, b), f"{where}: {ta!r} {a} overlaps {tb!r} {b}"
    for text, (x, y, rw, rh) in rects:
        assert x >= 0 and y >= 0 and x + rw <= w and y + rh <= h, f"{where}: {text!r} cut by the edge"
    return rects


@pytest.mark.parametrize("name", ["tiny", "wide"])
def test_labels_never_overlap_or_leave_the_view(qtbot, panel, name):
    arch = ARCHITECTURES[name]
    panel.set_model(arch)
    panel.apply(synthetic_snapshot(arch, seed=9))
    for w, h in VIEW_SIZES:
        _resize_view(qtbot, panel, w, h)
        for view in ("default", "front", "side", "top"):
            panel.preset_view(view)
            _frame(qtbot, panel)
            rects = _assert_labels_clean(panel, f"{name} {w}x{h} {view}")
            if view == "default":
                texts = [t for t, _ in rects]
                # At the default framing every layer is named (in some form) and every digit is shown.
                assert all(str(d) in texts for d in range(10)), texts
                assert sum(t.split(":")[0].split(" ")[0] in arch_names(arch) for t in texts) == len(describe(arch))
        panel.reset_view()
        for _ in range(4):  # auto-rotate steps
            panel.view.orbit(25.0, 0.0)
            _frame(qtbot, panel)
            _assert_labels_clean(panel, f"{name} {w}x{h} rotated")
    panel.set_presentation(True)  # larger labels
    for view in ("default", "front", "side", "top"):
        panel.preset_view(view)
        _frame(qtbot, panel)
        _assert_labels_clean(panel, f"{name} presentation {view}")


def arch_names(arch):
    return {s.name for s in describe(arch)}


def test_output_digits_are_at_least_12_px_tall(qtbot, panel):
    from PySide6 import QtGui

    from cnnviz_desktop.ui.gl.overlay import label_font

    panel.set_model(TINY)
    for presentation, minimum in ((False, 12.0), (True, 15.0)):
        panel.set_presentation(presentation)
        digits = [lb for lb in panel.overlay.labels if lb.text.isdigit()]
        assert len(digits) == 10
        font = label_font(digits[0], panel.view.font(), panel.overlay.scale)
        ink = QtGui.QFontMetricsF(font).tightBoundingRect("0123456789").height()
        assert ink >= minimum


def test_connections_do_not_hide_the_maps(qtbot, panel):
    """Every feature-map cube shows its own colour with the significant lines on, exactly as with
    connections off: the digit's shape stays visible in every map (lines are drawn beneath them)."""
    panel.set_model(TINY)
    snap = synthetic_snapshot(TINY, seed=10)
    panel.apply(snap)
    panel.set_line_budget(None)  # every significant line: the worst case
    _resize_view(qtbot, panel, 1366, 768)
    panel.reset_view()
    panel.set_connection_mode("none")
    bare = _frame(qtbot, panel)
    panel.set_connection_mode("significant")
    lined = _frame(qtbot, panel)
    assert panel.lines.segment_count("shown") > 3000
    assert np.abs(bare.astype(int) - lined.astype(int)).max() > 50  # the lines are drawn somewhere
    h, w = bare.shape[:2]
    for layer in ("conv1", "pool1", "conv2", "pool2"):
        shape = panel.layout_.layers[layer].shape
        same = total = 0
        for idx in np.ndindex(*shape):
            x, y = panel.screen_position(layer, idx)
            x, y = round(x), round(y)
            if not (0 <= x < w and 40 <= y < h) or (x < 340 and y > h - 110):  # status line, legend
                continue
            total += 1
            same += int(np.abs(bare[y, x].astype(int) - lined[y, x].astype(int)).max() <= 2)
        assert total > 0.5 * np.prod(shape)
        assert same / total > 0.97, f"{layer}: lines change {1 - same / total:.0%} of the map's cubes"


def test_core_camera_matches_what_pyqtgraph_draws(qtbot, panel):
    from cnnviz_desktop.core import camera as cam

    panel.set_model(TINY)
    for view in ("default", "front", "top"):
        panel.preset_view(view)
        o = panel.view.opts
        center = o["center"]
        c = cam.Camera((center.x(), center.y(), center.z()), o["distance"], o["azimuth"], o["elevation"], o["fov"])
        mvp, w, h = panel.mvp()
        np.testing.assert_allclose(cam.mvp_matrix(c, w, h), mvp, rtol=1e-6, atol=1e-9)
        # The framing the panel computes is the camera it set.
        want = panel.framing(view)
        assert o["distance"] == pytest.approx(want.distance) and o["azimuth"] == want.azimuth


def test_auto_rotate_state_is_observable(qtbot, panel):
    from PySide6 import QtCore, QtGui, QtWidgets

    panel.set_model(TINY)
    with qtbot.waitSignal(panel.auto_rotate_changed, timeout=1000) as blocker:
        panel.set_auto_rotate(True)
    assert blocker.args == [True] and panel.auto_rotating
    az = panel.view.opts["azimuth"]
    qtbot.waitUntil(lambda: panel.view.opts["azimuth"] != az, timeout=5000)
    with qtbot.assertNotEmitted(panel.auto_rotate_changed):
        panel.set_auto_rotate(True)  # no change, no signal
    # The user zooms: rotation stops and says so.
    pos = QtCore.QPointF(200, 200)
    wheel = QtGui.QWheelEvent(pos, panel.view.mapToGlobal(pos), QtCore.QPoint(), QtCore.QPoint(0, 120),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    with qtbot.waitSignal(panel.auto_rotate_changed, timeout=1000) as blocker:
        QtWidgets.QApplication.sendEvent(panel.view, wheel)
    assert blocker.args == [False] and not panel.auto_rotating


@pytest.mark.parametrize("name", ["tiny", "wide"])
def test_default_view_hides_no_map_behind_another(qtbot, panel, name):
    """At the default framing every sampled cube of every layer is the one picked at its own centre:
    no map sits behind another layer on screen (the old edge-on camera hid half of conv2)."""
    panel.set_model(ARCHITECTURES[name])
    _resize_view(qtbot, panel, 1366, 768)
    panel.reset_view()
    lay = panel.layout_
    for layer, box in lay.layers.items():
        cubes = range(box.cubes.start, box.cubes.stop, 5)
        hits = 0
        for cube in cubes:
            x, y = panel.screen_position(*lay.locate(cube))
            picked = panel.pick(x, y)
            hits += picked is not None and lay.locate(picked)[0] == layer
        assert hits / len(cubes) > 0.98, f"{layer}: only {hits / len(cubes):.0%} of its cubes are in front"
