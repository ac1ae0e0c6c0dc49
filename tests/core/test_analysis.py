"""The analysis engine: Grad-CAM parity with captum, contributions, geometry, empty canvas, immutability."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnviz_desktop.core.analysis import (
    AnalysisOptions,
    AnalysisRequest,
    Analyzer,
    kth_largest,
    receptive_field,
    significant_mask,
    upsampling_matrix,
)
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.networks import describe, last_conv_layer
from cnnviz_desktop.core.preprocess import preprocess

ATOL = 1e-5


def stroke_canvas(points, shape=(28, 28), width=2.0) -> np.ndarray:
    """An anti-aliased polyline (points in pixel coordinates (x, y)) on a dark canvas, values in [0, 1]."""
    h, w = shape
    ys, xs = np.mgrid[:h, :w].astype(np.float32) + 0.5
    dist = np.full(shape, np.inf, np.float32)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        dist = np.minimum(dist, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0).astype(np.float32)


SEVEN = [(8, 6), (20, 6), (13, 23)]
FOUR = [(17, 23), (17, 5), (7, 17), (21, 17)]


def canvases(seed: int = 0, count: int = 3):
    """Synthetic digits plus random scribbles of different sizes."""
    rng = np.random.default_rng(seed)
    out = [stroke_canvas(SEVEN), stroke_canvas(FOUR, shape=(40, 34))]
    for _ in range(count):
        h, w = rng.integers(20, 60, size=2)
        pts = list(zip(rng.uniform(2, w - 2, 5), rng.uniform(2, h - 2, 5)))
        out.append(stroke_canvas(pts, shape=(int(h), int(w)), width=float(rng.uniform(1.5, 4))))
    return out


@pytest.fixture(scope="module", params=["tiny", "wide"])
def model(request):
    from cnnviz_desktop.core import weights

    loaded = weights.load(request.param)
    return loaded, Analyzer(loaded)


def torch_layers(loaded, tensor):
    """Every module's output of the real torch model, in body order."""
    outs, a = [], tensor
    with torch.no_grad():
        for module in loaded.model.body:
            a = module(a)
            outs.append(a[0].numpy())
    return outs


def test_gradcam_matches_captum(model):
    from captum.attr import LayerGradCam

    loaded, analyzer = model
    spec = last_conv_layer(describe(loaded.arch))
    gradcam = LayerGradCam(loaded.model, loaded.model.body[spec.module])
    for canvas in canvases():
        prep = preprocess(canvas)
        for target in (None, 0, 3, 8):
            snap = analyzer.analyse(AnalysisRequest(1, canvas, target=target))
            expected_target = snap.predicted if target is None else target
            assert snap.target == expected_target
            ref = gradcam.attribute(prep.tensor, target=expected_target, relu_attributions=False,
                                    attr_dim_summation=False)[0].detach().numpy()
            assert snap.cam_lowres.shape == ref.shape == spec.shape
            assert np.abs(snap.cam_lowres - ref).max() <= ATOL
            assert np.abs(snap.cam_lowres.sum(0) - ref.sum(0)).max() <= ATOL
            # The 28x28 'Both' map is the upsampled sum of the channel maps.
            assert np.abs(snap.cam - snap.cam_channels.sum(0)).max() <= ATOL


def test_hirescam_gradients_and_contrast_match_autograd(model):
    loaded, analyzer = model
    spec = last_conv_layer(describe(loaded.arch))
    body = loaded.model.body
    canvas = stroke_canvas(FOUR)
    prep = preprocess(canvas)
    with torch.no_grad():
        act = body[: spec.module + 1](prep.tensor)
    act = act.clone().requires_grad_(True)
    logits = body[spec.module + 1:](act)[0]
    for target, contrast in ((4, 9), (1, 7), (3, None)):
        score = logits[target] - (logits[contrast] if contrast is not None else 0)
        score_value = float(score.detach())
        (grad,) = torch.autograd.grad(score, act, retain_graph=True)
        grad, a = grad[0].numpy(), act[0].detach().numpy()
        snap = analyzer.analyse(AnalysisRequest(2, canvas, target=target, contrast=contrast))
        assert snap.contrast == contrast and snap.target == target
        assert abs(snap.score - score_value) <= 1e-4
        assert np.abs(snap.gradients - grad).max() <= ATOL
        assert np.abs(snap.cam_lowres - grad.mean(axis=(1, 2), keepdims=True) * a).max() <= ATOL
        up = upsample_reference(torch.from_numpy((grad * a).sum(0)), loaded.arch)
        assert np.abs(snap.hirescam - up).max() <= ATOL


def test_contrastive_map_is_the_difference_of_two_maps(model):
    _, analyzer = model
    canvas = stroke_canvas(SEVEN)
    both = analyzer.analyse(AnalysisRequest(1, canvas, target=7, contrast=1))
    seven = analyzer.analyse(AnalysisRequest(2, canvas, target=7))
    one = analyzer.analyse(AnalysisRequest(3, canvas, target=1))
    assert np.abs(both.cam_channels - (seven.cam_channels - one.cam_channels)).max() <= ATOL
    assert np.abs(both.canvas_cam - (seven.canvas_cam - one.canvas_cam)).max() <= ATOL
    # 'target rather than itself' explains nothing: all zeros, no NaN.
    same = analyzer.analyse(AnalysisRequest(4, canvas, target=7, contrast=7))
    assert not same.cam.any() and np.isfinite(same.cam).all() and same.score == 0.0


def test_contributions_reproduce_every_neuron(model):
    loaded, analyzer = model
    wiring = analyzer.wiring
    body = loaded.model.body
    for canvas in canvases(seed=1, count=2):
        prep = preprocess(canvas)
        outs = torch_layers(loaded, prep.tensor)
        snap = analyzer.analyse(AnalysisRequest(1, canvas))
        for spec in describe(loaded.arch)[1:]:
            c = snap.contributions[spec.name]
            assert c.shape == (wiring[spec.name].count,) and c.dtype == np.float32
            rows = c.reshape(-1, wiring[spec.name].fan_in)
            # The activation the snapshot shows is the torch model's.
            assert np.abs(snap.activations[spec.name] - outs[spec.module].reshape(spec.shape)).max() <= ATOL
            if spec.kind == "pool":
                # Pool edges carry the window's max: exactly the shown activation (= torch's within rounding).
                assert np.array_equal(rows.max(1), snap.activations[spec.name].reshape(-1))
                assert np.abs(rows.max(1) - outs[spec.module].reshape(-1)).max() <= ATOL
                continue
            pre = outs[spec.weight_module].reshape(-1)
            bias = body[spec.weight_module].bias.numpy()
            if spec.kind == "conv":
                bias = np.repeat(bias, spec.shape[1] * spec.shape[2])
            assert np.abs(rows.sum(1) + bias - pre).max() <= ATOL, spec.name
        assert np.array_equal(snap.logits, snap.activations["output"])
        assert abs(float(snap.probabilities.sum()) - 1.0) < 1e-5


def upsample_reference(low: torch.Tensor, arch) -> np.ndarray:
    """'Scale by the stride (bilinear, align_corners=False), pad (before, after)' done with torch."""
    specs = describe(arch)
    cam = last_conv_layer(specs)
    stride, offset = receptive_field(specs, cam.name)
    before = offset - (stride - 1) / 2
    assert before == int(before)
    n = cam.shape[-1]
    after = 28 - n * stride - int(before)
    up = F.interpolate(low.reshape(1, -1, n, n).float(), scale_factor=stride, mode="bilinear", align_corners=False)
    return F.pad(up, (int(before), after, int(before), after))[0].squeeze(0).numpy()


@pytest.mark.parametrize("name", ["tiny", "wide"])
def test_upsampling_geometry(name):
    from cnnviz_desktop.core.networks import ARCHITECTURES

    specs = describe(ARCHITECTURES[name])
    cam = last_conv_layer(specs)
    n = cam.shape[-1]
    stride, offset = receptive_field(specs, cam.name)
    # For these unpadded 3x3 conv / 2x2 pool nets: a 5x5 cell i sits on pixel 4i+4.5, an 11x11 cell p on 2p+3.5.
    assert (n, stride, offset) == (5, 4, 4.5)
    assert receptive_field(specs, "conv2") == (2, 3.5)
    for layer in ("conv1", "pool1", "conv2", cam.name):
        s, o = receptive_field(specs, layer)
        cells = [sp for sp in specs if sp.name == layer][0].shape[-1]
        matrix = upsampling_matrix(cells, s, o)
        # The documented recipe: scale by the stride, then pad ((3, 5) for 5x5 maps, 3 each side for 11x11).
        eye = torch.eye(cells)
        before = int(o - (s - 1) / 2)
        ref = F.pad(F.interpolate(eye.reshape(1, cells, 1, cells), size=(1, cells * s), mode="bilinear",
                                  align_corners=False), (before, 28 - cells * s - before))[0, :, 0, :].numpy().T
        assert np.abs(matrix - ref).max() < 1e-6, layer
    assert int(4.5 - 1.5) == 3 and 28 - 20 - 3 == 5
    # A single hot cell lands on its receptive field, peaking at its centre 4i + 4.5 (pixels 4i+4, 4i+5).
    matrix = upsampling_matrix(n, stride, offset)
    for i in range(n):
        column = matrix[:, i]
        support = np.flatnonzero(column > 0)
        assert support.min() >= 4 * i and support.max() <= 4 * i + 9  # receptive field: pixels 4i..4i+9
        if 0 < i < n - 1:
            assert set(np.flatnonzero(column == column.max())) == {4 * i + 4, 4 * i + 5}


@pytest.mark.parametrize("name", ["tiny", "wide"])
def test_hot_cell_lands_on_its_receptive_field_empirically(name):
    """Derive the receptive field of each CAM cell with autograd and compare with the upsampled cell."""
    from cnnviz_desktop.core import weights

    loaded = weights.load(name)
    analyzer = Analyzer(loaded)
    spec = analyzer.cam_spec
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    act = loaded.model.body[: spec.module + 1](x)
    n = spec.shape[-1]
    for i in range(n):
        (g,) = torch.autograd.grad(act[0, :, i, i].sum(), x, retain_graph=True)
        # Pixels the cell's value depends on (at this input) lie in its receptive field 4i..4i+9.
        influence = np.flatnonzero(np.abs(g[0, 0].numpy()).sum(1) > 0)
        lo, hi = 4 * i, 4 * i + 9
        assert influence.min() >= lo and influence.max() <= hi
        low = np.zeros(spec.shape, np.float32)
        low[0, i, i] = 1.0
        up = np.einsum("yi,cij,xj->cyx", analyzer._up_y, low, analyzer._up_x_t.T)[0]
        rows = np.flatnonzero(up.sum(1) > 0)
        assert rows.min() >= lo and rows.max() <= hi
        centre = (lo + hi) / 2  # 4i + 4.5
        peak = np.flatnonzero(up.max(1) == up.max())
        if 0 < i < n - 1:
            assert peak.mean() == centre


def test_canvas_maps_match_preprocessed_to_canvas(model):
    _, analyzer = model
    for canvas in canvases(seed=2):
        snap = analyzer.analyse(AnalysisRequest(1, canvas))
        prep = preprocess(canvas)
        assert snap.canvas_cam.shape == canvas.shape
        assert snap.canvas_cam_channels.shape == (analyzer.cam_spec.shape[0], *canvas.shape)
        ref = prep.to_canvas(np.concatenate([snap.cam_channels, snap.cam[None], snap.hirescam[None]]))
        c = analyzer.cam_spec.shape[0]
        assert np.abs(snap.canvas_cam_channels - ref[:c]).max() <= ATOL
        assert np.abs(snap.canvas_cam - ref[c]).max() <= ATOL
        assert np.abs(snap.canvas_hirescam - ref[c + 1]).max() <= ATOL


def test_significant_mask_rules():
    rng = np.random.default_rng(3)
    values = rng.integers(-5, 6, size=(200, 9)).astype(np.float32)  # many ties and zeros
    for top_k in (1, 2, 3, 4, 9):
        for fan_in, vals in ((9, values), (72, rng.standard_normal((30, 72)).astype(np.float32))):
            mag = np.abs(vals)
            kth = np.sort(mag, axis=1)[:, fan_in - top_k]
            assert np.array_equal(kth_largest(mag, top_k), kth)
            mask = significant_mask(vals.reshape(-1), fan_in, top_k, 0.3).reshape(vals.shape)
            expected = (mag >= kth[:, None]) & (mag >= 0.3 * mag.max()) & (mag > 0)
            assert np.array_equal(mask, expected)
    assert not significant_mask(np.zeros(18, np.float32), 9, 3, 0.0).any()
    assert not significant_mask(values.reshape(-1), 9, 0, 0.0).any()


def test_significant_edges_in_a_snapshot(model):
    _, analyzer = model
    options = AnalysisOptions(top_k=2, floor=0.1)
    snap = analyzer.analyse(AnalysisRequest(1, stroke_canvas(SEVEN), options=options))
    for name, mask in snap.significant.items():
        c = snap.contributions[name]
        assert mask.dtype == bool and mask.shape == c.shape
        assert mask.any()
        assert (np.abs(c[mask]) >= 0.1 * np.abs(c).max()).all() and (c[mask] != 0).all()
        rows = mask.reshape(-1, analyzer.wiring[name].fan_in)
        if not name.startswith("pool"):
            # Ties aside, at most top_k per destination.
            assert (rows.sum(1) <= 2).mean() > 0.95


@pytest.mark.parametrize("shape", [(28, 28), (50, 40)])
def test_empty_canvas_gives_a_defined_zero_snapshot(model, shape):
    loaded, analyzer = model
    pixels = np.zeros(shape, np.float32)
    pixels[0, 0] = np.nan  # NaN is not ink
    snap = analyzer.analyse(AnalysisRequest(7, pixels, target=3))
    assert snap.empty and snap.request_id == 7
    assert snap.logits is None and snap.probabilities is None and snap.predicted is None and snap.target is None
    c = analyzer.cam_spec.shape[0]
    assert snap.cam_channels.shape == (c, 28, 28) and snap.cam.shape == snap.hirescam.shape == (28, 28)
    assert snap.canvas_cam_channels.shape == (c, *shape) and snap.canvas_cam.shape == shape
    arrays = [snap.cam_channels, snap.cam, snap.hirescam, snap.canvas_cam_channels, snap.canvas_cam,
              snap.canvas_hirescam, snap.cam_lowres, snap.gradients]
    arrays += list(snap.activations.values()) + list(snap.contributions.values())
    for a in arrays:
        assert np.isfinite(a).all() and not a.any()
    for spec in describe(loaded.arch):
        assert snap.activations[spec.name].shape == spec.shape
    for name, wire in analyzer.wiring.items():
        assert snap.contributions[name].shape == snap.significant[name].shape == (wire.count,)
    assert all(not m.any() for m in snap.significant.values())
    assert analyzer.empty(8).request_id == 8 and analyzer.empty(8).canvas_cam.shape == (28, 28)


def test_snapshots_are_immutable(model):
    _, analyzer = model
    for snap in (analyzer.analyse(AnalysisRequest(1, stroke_canvas(SEVEN))), analyzer.empty(2)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.cam = None
        with pytest.raises(TypeError):
            snap.activations["input"] = np.zeros(1)
        with pytest.raises(TypeError):
            snap.timings["x"] = 1.0
        arrays = [getattr(snap, f.name) for f in dataclasses.fields(snap)
                  if isinstance(getattr(snap, f.name), np.ndarray)]
        for mapping in (snap.activations, snap.contributions, snap.significant):
            arrays += list(mapping.values())
        assert len(arrays) > 10
        for a in arrays:
            assert not a.flags.writeable
            with pytest.raises(ValueError):
                a.flat[0] = 1


def test_every_snapshot_is_independent(model):
    _, analyzer = model
    first = analyzer.analyse(AnalysisRequest(1, stroke_canvas(SEVEN)))
    kept = {k: v.copy() for k, v in first.contributions.items()}
    analyzer.analyse(AnalysisRequest(2, stroke_canvas(FOUR)))
    for k, v in kept.items():
        assert np.array_equal(first.contributions[k], v)


def test_timings_and_metadata(model):
    loaded, analyzer = model
    snap = analyzer.analyse(AnalysisRequest(1, stroke_canvas(SEVEN)))
    assert {"preprocess", "forward", "gradcam", "canvas", "contributions", "significant", "total"} <= set(snap.timings)
    assert all(v >= 0 for v in snap.timings.values())
    assert snap.model_name == loaded.arch.name and snap.cam_layer == analyzer.cam_spec.name


def test_bad_requests_raise_a_user_error(model):
    _, analyzer = model
    with pytest.raises(CnnvizError):
        analyzer.analyse(AnalysisRequest(1, stroke_canvas(SEVEN), target=10))
    with pytest.raises(CnnvizError):
        analyzer.analyse(AnalysisRequest(1, stroke_canvas(SEVEN), contrast=-1))
    with pytest.raises(CnnvizError):
        analyzer.analyse(AnalysisRequest(1, np.zeros((3, 28, 28), np.float32)))


def test_analyzer_refuses_a_model_it_does_not_reproduce(tiny):
    from cnnviz_desktop.core.networks import build

    model = build("tiny")
    model.body[3] = torch.nn.Identity()  # not the described conv
    with pytest.raises(CnnvizError):
        Analyzer(model, tiny.arch)


def test_public_api(tmp_path, tiny):
    from PIL import Image

    from cnnviz_desktop import api

    canvas = stroke_canvas(SEVEN, shape=(64, 48), width=5)
    by_array = api.analyse(canvas, model=tiny, target=7)
    assert by_array.target == 7 and by_array.canvas_cam.shape == (64, 48)
    # A dark-on-light PNG file of a different size.
    path = tmp_path / "seven.png"
    Image.fromarray(((1.0 - canvas) * 255).astype(np.uint8)).save(path)
    by_file = api.analyse(path, model="tiny")
    assert by_file.predicted == api.analyse((canvas * 255).astype(np.uint8)).predicted
    assert by_file.canvas_cam.shape == (64, 48)
    assert api.analyzer("tiny") is api.analyzer("tiny")
    assert api.analyse(np.zeros((10, 10))).empty
    with pytest.raises(CnnvizError):
        api.analyse(canvas * 255.0)
    with pytest.raises(CnnvizError):
        api.analyse(np.zeros((3, 8, 8)))


def test_core_imports_no_qt_and_analysis_no_torch():
    code = (
        "import importlib, pkgutil, sys\n"
        "import cnnviz_desktop.core.analysis\n"
        "assert 'torch' not in sys.modules, 'core.analysis must not import torch at import time'\n"
        "import cnnviz_desktop.core as core, cnnviz_desktop.api\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('cnnviz_desktop.core.' + m.name)\n"
        "from cnnviz_desktop import api\n"
        "api.analyse(__import__('numpy').ones((5, 5)))\n"
        "bad = [m for m in ('PySide6', 'pyqtgraph') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def reference_significant(values: np.ndarray, fan_in: int, top_k: int, floor: float) -> np.ndarray:
    """The contract spelled out with a full sort, one destination at a time."""
    mag = np.abs(values.astype(np.float64)).reshape(-1, fan_in)
    largest = mag.max() if mag.size else 0.0
    out = np.zeros(mag.shape, bool)
    if top_k <= 0 or largest <= 0:
        return out.reshape(-1)
    for r, row in enumerate(mag):
        kth = np.sort(row)[::-1][min(top_k, fan_in) - 1]
        out[r] = (row >= kth) & (row >= floor * largest) & (row != 0)
    return out.reshape(-1)


@pytest.mark.parametrize("fan_in,rows", [(4, 1352), (9, 5408), (9, 60), (22, 10), (50, 22), (72, 242), (400, 64)])
def test_significant_mask_matches_a_reference(fan_in, rows):
    rng = np.random.default_rng(fan_in * 1000 + rows)
    for trial in range(3):
        if trial == 0:
            values = rng.integers(-4, 5, size=rows * fan_in).astype(np.float32)  # ties and zeros everywhere
        elif trial == 1:
            values = (rng.standard_normal(rows * fan_in) * (rng.random(rows * fan_in) > 0.5)).astype(np.float32)
        else:
            values = np.repeat(rng.standard_normal(rows).astype(np.float32), fan_in)  # whole rows tied
        for top_k in (1, 2, 3, 4, fan_in):
            for floor in (0.0, 0.05, 0.5):
                got = significant_mask(values, fan_in, top_k, floor)
                assert got.dtype == bool and got.shape == values.shape
                assert np.array_equal(got, reference_significant(values, fan_in, top_k, floor)), (trial, top_k, floor)
