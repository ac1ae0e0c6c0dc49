"""Saliency and gradient x input against captum, the engine's extra maps, the session's need/release."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz_desktop.core import attribution
from cnnviz_desktop.core.analysis import AnalysisOptions, AnalysisRequest, Analyzer
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.session import DictStore, Session, WorkerResult


def _canvas(kind: str) -> np.ndarray:
    """A few hand-drawn-like digits on a 28x28 canvas."""
    pixels = np.zeros((28, 28), np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    if kind == "one":
        pixels[4:24, 13:16] = 1.0
    elif kind == "ring":
        r = np.hypot((yy - 14) / 8.5, (xx - 14) / 6.0)
        pixels[(r > 0.8) & (r < 1.15)] = 1.0
    elif kind == "seven":
        pixels[5:8, 6:22] = 1.0
        for y in range(8, 24):
            x = int(21 - (y - 8) * 0.55)
            pixels[y, x - 1:x + 2] = 1.0
    elif kind == "blob":
        pixels[10:18, 8:20] = 0.6
        pixels[12:16, 12:16] = 1.0
    return pixels


DRAWINGS = ("one", "ring", "seven", "blob")


@pytest.fixture(scope="module", params=["tiny", "wide"])
def loaded(request):
    from cnnviz_desktop.core import weights

    return weights.load(request.param)


@pytest.fixture(scope="module")
def analyzer(loaded):
    return Analyzer(loaded)


def _image01(analyzer, kind):
    snap = analyzer.analyse(AnalysisRequest(1, _canvas(kind)))
    return np.asarray(snap.activations["input"][0]), snap


def _captum_input(image01):
    x = torch.from_numpy(((image01 - 0.1307) / 0.3081).astype(np.float32))[None, None]
    return x.clone().requires_grad_(True)


@pytest.mark.parametrize("kind", DRAWINGS)
def test_saliency_and_input_x_gradient_match_captum(loaded, analyzer, kind):
    from captum.attr import InputXGradient, Saliency

    image01, snap = _image01(analyzer, kind)
    for target in sorted({snap.predicted, 0, 3, 8}):
        expected_s = Saliency(loaded.model).attribute(_captum_input(image01), target=target, abs=True)
        expected_g = InputXGradient(loaded.model).attribute(_captum_input(image01), target=target)
        got_s = attribution.saliency(loaded, image01, target)
        got_g = attribution.input_x_gradient(loaded.model, image01, target)  # the bare module works too
        assert got_s.shape == (28, 28) and got_s.dtype == np.float32 and got_g.shape == (28, 28)
        assert np.abs(got_s - expected_s[0, 0].detach().numpy()).max() <= 1e-5
        assert np.abs(got_g - expected_g[0, 0].detach().numpy()).max() <= 1e-5
        assert float(np.abs(got_s).max()) > 0  # a real gradient, not an all-zero map that matches trivially


def test_gradient_x_input_is_not_zero_off_the_ink_and_parameters_keep_no_grad(loaded, analyzer):
    image01, snap = _image01(analyzer, "ring")
    with torch.no_grad():  # the caller's no_grad does not switch the gradient off
        sal, ixg = attribution.gradient_maps(loaded, image01, snap.predicted)
    background = image01 == 0
    # x = -0.4242 there: gradient x input = -0.4242 * gradient, exactly.
    grad, x = attribution.input_gradient(loaded, image01, snap.predicted)
    assert np.allclose(x[background], (0 - 0.1307) / 0.3081, atol=1e-6)
    np.testing.assert_allclose(ixg[background], -0.42421 * grad[background], rtol=1e-3, atol=1e-7)
    assert np.abs(ixg[background]).max() > 0
    assert np.array_equal(sal, np.abs(grad))
    assert all(p.grad is None for p in loaded.model.parameters())


def test_bad_inputs_give_clear_errors(loaded):
    with pytest.raises(CnnvizError, match="28x28"):
        attribution.saliency(loaded, np.zeros((20, 20), np.float32), 1)
    with pytest.raises(CnnvizError, match="class 0-9"):
        attribution.saliency(loaded, np.zeros((28, 28), np.float32), 10)
    with pytest.raises(CnnvizError, match="NaN"):
        attribution.input_x_gradient(loaded, np.full((28, 28), np.nan, np.float32), 1)


def test_the_snapshot_maps_equal_the_direct_functions(loaded, analyzer):
    pixels = np.zeros((40, 56), np.float32)  # a canvas larger than 28x28: the canvas maps are resampled
    pixels[6:34, 24:30] = 1.0
    request = AnalysisRequest(3, pixels, target=7, options=AnalysisOptions(extras=frozenset(attribution.EXTRAS)))
    snap = analyzer.analyse(request)
    image01 = np.asarray(snap.activations["input"][0])
    np.testing.assert_array_equal(snap.saliency, attribution.saliency(loaded, image01, 7))
    np.testing.assert_array_equal(snap.input_x_gradient, attribution.input_x_gradient(loaded, image01, 7))
    # Resampled onto the canvas exactly as canvas_cam is: the placement's to_canvas of the input map.
    for small, big in ((snap.saliency, snap.canvas_saliency), (snap.input_x_gradient, snap.canvas_input_x_gradient)):
        assert big.shape == pixels.shape and not big.flags.writeable
        np.testing.assert_allclose(big, snap.placement.to_canvas(small.copy()), atol=1e-5)
    np.testing.assert_allclose(snap.canvas_cam, snap.placement.to_canvas(snap.cam.copy()), atol=1e-5)
    assert "extras" in snap.timings
    # Only what is asked for; a contrast makes the score logit[7] - logit[1].
    only = analyzer.analyse(AnalysisRequest(4, pixels, target=7, contrast=1,
                                            options=AnalysisOptions(extras=frozenset({"saliency"}))))
    assert only.input_x_gradient is None and only.canvas_input_x_gradient is None
    np.testing.assert_array_equal(only.saliency, attribution.saliency(loaded, image01, 7, contrast=1))
    with pytest.raises(CnnvizError, match="unknown extra"):
        analyzer.analyse(AnalysisRequest(5, pixels, options=AnalysisOptions(extras=frozenset({"occlusion"}))))


def test_without_extras_the_fields_are_none(analyzer):
    snap = analyzer.analyse(AnalysisRequest(1, _canvas("one")))
    assert snap.saliency is None and snap.input_x_gradient is None
    assert snap.canvas_saliency is None and snap.canvas_input_x_gradient is None
    assert "extras" not in snap.timings
    empty = analyzer.analyse(AnalysisRequest(2, np.zeros((28, 28), np.float32),
                                             options=AnalysisOptions(extras=frozenset({"saliency"}))))
    assert empty.empty and empty.saliency is None


def test_session_need_and_release_change_the_requests_extras(loaded, analyzer):
    session = Session(DictStore())
    requests = []
    session.request_made.connect(requests.append)
    session.set_model(loaded)
    assert requests[-1].options.extras == frozenset()
    session.canvas.set_pixels(_canvas("seven"))
    session.canvas_edited()
    count = len(requests)
    session.need("saliency", {"saliency", "inputxgrad"})
    assert len(requests) == count + 1  # the union changed: the drawing is re-requested once
    assert requests[-1].options.extras == {"saliency", "inputxgrad"}
    session.need("compare", {"saliency"})  # already in the union: no new request
    assert len(requests) == count + 1
    session.release("saliency")
    assert requests[-1].options.extras == {"saliency"} and len(requests) == count + 2
    session.release("compare")
    assert requests[-1].options.extras == frozenset() and session.extras() == frozenset()
    with pytest.raises(ValueError, match="unknown extra"):
        session.need("x", {"nonsense"})
    # The overlay's map kind adds its own extra, and its map comes back through session.overlay().
    session.set_map_kind("saliency")
    assert requests[-1].options.extras == {"saliency"}
    snap = analyzer.analyse(requests[-1])
    assert session.accept(WorkerResult(session.generation, requests[-1].request_id, snap))
    overlay = session.overlay()
    assert overlay.kind == "saliency" and overlay.values is snap.canvas_saliency
    assert overlay.scale == pytest.approx(float(snap.canvas_saliency.max())) and overlay.values.min() >= 0
    session.cycle_map_kind()
    assert session.map_kind == "inputxgrad" and requests[-1].options.extras == {"inputxgrad"}
    assert session.overlay() is None  # not analysed yet: nothing stale is shown
    snap = analyzer.analyse(requests[-1])
    session.accept(WorkerResult(session.generation, requests[-1].request_id, snap))
    assert session.overlay().values is snap.canvas_input_x_gradient
    session.cycle_map_kind()
    assert session.map_kind == "gradcam" and requests[-1].options.extras == frozenset()


def test_agreement_and_rank_correlation():
    rng = np.random.default_rng(1)
    a = rng.random((28, 28))
    assert attribution.agreement(a, a) == 1.0
    assert attribution.agreement(a, -a) == 1.0  # magnitude, not sign
    assert attribution.rank_correlation(a, a) == pytest.approx(1.0)
    b = rng.random((28, 28))
    assert attribution.agreement(a, b) < 0.2
    assert abs(attribution.rank_correlation(a, b)) < 0.2
    # The top 10% of 784 cells is 78: a map with 10 non-zero cells marks only those.
    sparse = np.zeros((28, 28))
    sparse[0, :10] = 1.0
    assert attribution.top_cells(sparse).sum() == 10 and attribution.top_cells(a).sum() == 78
    assert attribution.agreement(sparse, np.zeros((28, 28))) == 0.0
    half = a.copy()
    half[a < np.quantile(a, 0.95)] = 0  # keeps the top 5%: half of a's top 10%
    assert attribution.agreement(a, half) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(CnnvizError, match="same shape"):
        attribution.agreement(a, np.zeros((5, 5)))
