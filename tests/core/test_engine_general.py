"""The analysis engine and the other core consumers for every network of the spec language (issue 14).

Parametrised over tests/core/test_spec.SPECS (padding, stride, 5x5 kernels with avg pools, gap + fc, batch
norm, a fully convolutional gap output, overlapping pools with LeakyReLU / GELU / dropout / a batch-normed
sigmoid fc), each with seeded random weights AND random batch-norm running statistics, on a few real test
digits from CNNVIZ_MNIST_DIR when it is set (synthetic strokes otherwise). References: torch's own forward
(hooks), captum's LayerGradCam and Saliency, torch's unfold for the wiring.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnviz_desktop.core.analysis import AnalysisOptions, AnalysisRequest, Analyzer, receptive_field, upsampling_matrix
from cnnviz_desktop.core.architecture import describe, last_conv_layer, parse_spec
from cnnviz_desktop.core.architecture import receptive_field as pixel_box
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.networks import ConvNet
from cnnviz_desktop.core.preprocess import preprocess
from cnnviz_desktop.core.weights import LoadedModel
from cnnviz_desktop.core.wiring import network_wiring

from .test_spec import SPECS

KEYS = sorted(SPECS)
ATOL = 1e-5


def randomised(key: str, seed: int = 0) -> LoadedModel:
    """SPECS[key] with seeded random weights and random batch-norm statistics, in eval mode."""
    arch = parse_spec(SPECS[key], key)
    torch.manual_seed(seed)
    model = ConvNet(arch)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(0.3 + 2.0 * torch.rand(n, generator=gen))
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(0.4 * torch.rand(n, generator=gen) - 0.2)
    model.eval()
    return LoadedModel(model=model, arch=arch, path=Path(f"{key}.safetensors"), card={})


def _stroke(points, shape=(28, 28), width=2.2) -> np.ndarray:
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float32) + 0.5
    dist = np.full(shape, np.inf, np.float32)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        dist = np.minimum(dist, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0).astype(np.float32)


def _digits() -> list[np.ndarray]:
    """Three real MNIST test digits (as canvases in [0, 1]) when CNNVIZ_MNIST_DIR has them, else strokes."""
    folder = os.environ.get("CNNVIZ_MNIST_DIR", "").strip()
    if folder:
        try:
            from cnnviz_desktop.core import mnist

            data = mnist.load(folder, "test")
            return [data.images[i].astype(np.float32) / 255.0 for i in (0, 1, 2)]
        except Exception:  # noqa: BLE001 - no data: fall back to synthetic digits
            pass
    return [_stroke([(8, 6), (20, 6), (13, 23)]), _stroke([(17, 23), (17, 5), (7, 17), (21, 17)]),
            _stroke([(14, 4), (9, 8), (8, 15), (11, 22), (17, 22), (20, 14), (18, 6), (14, 4)])]


DIGITS = _digits()


@pytest.fixture(scope="module", params=KEYS)
def net(request):
    loaded = randomised(request.param)
    return loaded, Analyzer(loaded)


def _outputs(model: ConvNet, x: torch.Tensor) -> list[np.ndarray]:
    """Every body module's output for one input (batch 1), in body order."""
    outs, a = [], x
    with torch.no_grad():
        for module in model.body:
            a = module(a)
            outs.append(a[0].numpy().copy())
    return outs


def _op_module(arch, spec) -> int:
    """Index of a shown layer's op module (conv / pool / gap / linear)."""
    ops = [i for i, layer in enumerate(arch.layers) if layer.op in ("conv", "max", "avg", "gap", "fc")]
    return ops[[s.name for s in describe(arch)[1:]].index(spec.name)]


# ---------------------------------------------------------------------------------------------- forward


def test_numpy_forward_is_the_torch_model_layer_by_layer(net):
    loaded, analyzer = net
    for canvas in DIGITS:
        prep = preprocess(canvas)
        outs = _outputs(loaded.model, prep.tensor)
        snap = analyzer.analyse(AnalysisRequest(1, canvas))
        with torch.no_grad():
            logits = loaded.model(prep.tensor)[0].numpy()
        scale = max(1.0, float(np.abs(logits).max()))
        assert np.abs(snap.logits - logits).max() <= 1e-4 * scale
        assert snap.predicted == int(np.argmax(logits))
        for spec in analyzer.specs[1:]:
            if spec.kind == "output":
                continue
            expected = outs[spec.module].reshape(spec.shape)
            got = snap.activations[spec.name]
            assert got.shape == spec.shape
            assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max())), spec.name


# ---------------------------------------------------------------------------------------------- Grad-CAM


def test_gradcam_matches_captum_and_is_upsampled_with_the_engines_geometry(net):
    from captum.attr import LayerGradCam

    loaded, analyzer = net
    cam = last_conv_layer(describe(loaded.arch))
    assert analyzer.cam_spec == cam
    gradcam = LayerGradCam(loaded.model, loaded.model.body[cam.module])
    stride, offset = receptive_field(analyzer.specs, cam.name)
    up_y = upsampling_matrix(cam.shape[1], stride, offset)
    up_x = upsampling_matrix(cam.shape[2], stride, offset)
    for canvas in DIGITS:
        prep = preprocess(canvas)
        for target in (None, 2, 7):
            snap = analyzer.analyse(AnalysisRequest(1, canvas, target=target))
            ref = gradcam.attribute(prep.tensor, target=snap.target, relu_attributions=False,
                                    attr_dim_summation=False)[0].detach().numpy()
            assert snap.cam_layer == cam.name and snap.cam_lowres.shape == ref.shape == cam.shape
            tol = ATOL * max(1.0, float(np.abs(ref).max()))
            assert np.abs(snap.cam_lowres - ref).max() <= tol
            expected_up = np.einsum("yi,cij,xj->cyx", up_y, ref, up_x)
            assert np.abs(snap.cam_channels - expected_up).max() <= tol
            assert np.abs(snap.cam - expected_up.sum(0)).max() <= tol * cam.shape[0]


def test_gradients_and_contrast_match_autograd_through_the_head(net):
    loaded, analyzer = net
    cam = analyzer.cam_spec
    body = loaded.model.body
    canvas = DIGITS[0]
    prep = preprocess(canvas)
    with torch.no_grad():
        act = body[: cam.module + 1](prep.tensor)
    act = act.clone().requires_grad_(True)
    logits = body[cam.module + 1:](act)[0]
    for target, contrast in ((3, 5), (8, None)):
        score = logits[target] - (logits[contrast] if contrast is not None else 0)
        (grad,) = torch.autograd.grad(score, act, retain_graph=True)
        grad = grad[0].numpy()
        snap = analyzer.analyse(AnalysisRequest(2, canvas, target=target, contrast=contrast))
        tol = ATOL * max(1.0, float(np.abs(grad).max()))
        assert np.abs(snap.gradients - grad).max() <= tol
        assert abs(snap.score - float(score.detach())) <= 1e-4 * max(1.0, abs(float(score.detach())))
        hires = np.einsum("yi,ij,xj->yx", analyzer._up_y, (grad * act[0].detach().numpy()).sum(0),
                          analyzer._up_x_t.T)
        assert np.abs(snap.hirescam - hires).max() <= 10 * tol


# ---------------------------------------------------------------------------------------------- contributions


def _folded_bias(model: ConvNet, spec) -> np.ndarray:
    bias = model.body[spec.weight_module].bias.detach().numpy().astype(np.float64)
    if spec.norm_module is not None:
        bn = model.body[spec.norm_module]
        scale = bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
        bias = (bias - bn.running_mean.numpy()) * scale + bn.bias.detach().numpy()
    return bias


def test_contributions_plus_bias_are_every_neurons_pre_activation(net):
    loaded, analyzer = net
    model = loaded.model
    pre: dict[int, np.ndarray] = {}
    hooks = []
    for spec in analyzer.specs[1:]:
        if spec.weight_module is not None:
            index = spec.norm_module if spec.norm_module is not None else spec.weight_module

            def hook(_module, _inputs, output, index=index):
                pre[index] = output[0].detach().numpy().copy()

            hooks.append(model.body[index].register_forward_hook(hook))
    try:
        for canvas in DIGITS[:2]:
            prep = preprocess(canvas)
            outs = _outputs(model, prep.tensor)
            snap = analyzer.analyse(AnalysisRequest(1, canvas))
            for spec in analyzer.specs[1:]:
                wire = analyzer.wiring[spec.name]
                c = snap.contributions[spec.name]
                assert c.shape == (wire.count,) and c.dtype == np.float32
                rows = c.reshape(-1, wire.fan_in)
                if wire.valid is not None:
                    assert not c[~wire.valid].any()  # padded taps read zeros
                if spec.weight_module is not None:  # conv / dense / fc output: sum + folded bias = pre-activation
                    expected = pre[spec.norm_module if spec.norm_module is not None else spec.weight_module]
                    bias = _folded_bias(model, spec)
                    if spec.kind == "conv":
                        bias = np.repeat(bias, spec.shape[1] * spec.shape[2])
                    got = rows.astype(np.float64).sum(1) + bias
                    assert np.abs(got - expected.reshape(-1)).max() <= 1e-4 * max(1.0, np.abs(expected).max()), \
                        spec.name
                    continue
                pooled = outs[_op_module(loaded.arch, spec)].reshape(-1)
                if spec.op == "max":  # the window's max on its edges (ties all carry it), 0 elsewhere
                    carried = np.abs(rows - pooled[:, None]) <= ATOL
                    assert (carried | (rows == 0)).all() and (carried.any(1) | (pooled == 0)).all(), spec.name
                else:  # avg / gap pools and a gap output: the edges sum to the average
                    tol = ATOL * max(1.0, float(np.abs(pooled).max()))
                    assert np.abs(rows.sum(1) - pooled).max() <= tol, spec.name
                    if spec.kind == "output":
                        assert np.abs(rows.sum(1) - snap.logits).max() <= tol
            significant = snap.significant
            assert set(significant) == set(snap.contributions)
            assert all(m.shape == snap.contributions[k].shape for k, m in significant.items())
            for name, mask in significant.items():
                assert not (mask & (snap.contributions[name] == 0)).any()
    finally:
        for h in hooks:
            h.remove()


# ---------------------------------------------------------------------------------------------- wiring


@pytest.mark.parametrize("key", KEYS)
def test_wiring_is_torchs_unfold(key):
    """Every conv / pool window of the wiring is exactly what torch's unfold reads (padding as zeros)."""
    arch = parse_spec(SPECS[key], key)
    specs = {s.name: s for s in describe(arch)}
    for name, wire in network_wiring(arch).items():
        spec, source = specs[name], specs[wire.source]
        assert wire.src.shape == wire.dst.shape == (wire.count,)
        assert wire.count == spec.size * wire.fan_in
        assert (wire.src >= 0).all() and (wire.src < source.size).all()
        assert np.array_equal(wire.dst, np.repeat(np.arange(spec.size), wire.fan_in))
        valid = wire.valid if wire.valid is not None else np.ones(wire.count, bool)
        ids = np.where(valid, wire.src + 1, 0).reshape(spec.size, wire.fan_in)  # 0 marks a padded tap
        assert wire.real_count == int(valid.sum())
        if spec.kind == "conv":
            assert (wire.valid is not None) == (spec.padding > 0)
            numbered = torch.arange(1, source.size + 1, dtype=torch.float64).reshape(1, *source.shape)
            cols = F.unfold(numbered, spec.kernel, padding=spec.padding, stride=spec.stride)[0]  # (Cin*k*k, HW)
            expected = np.tile(cols.T.numpy().astype(np.int64), (spec.shape[0], 1))
            assert np.array_equal(ids, expected), name
        elif spec.kind == "pool":
            assert wire.valid is None
            c, h, w = source.shape
            numbered = torch.arange(1, source.size + 1, dtype=torch.float64).reshape(c, 1, h, w)
            cols = F.unfold(numbered, spec.kernel, stride=spec.stride)  # (C, k*k, L)
            expected = cols.permute(0, 2, 1).reshape(-1, spec.kernel ** 2).numpy().astype(np.int64)
            assert np.array_equal(ids, expected), name
        elif spec.op == "gap":  # an output that averages each map: every cell of channel c into output c
            assert np.array_equal(ids - 1, np.arange(source.size).reshape(spec.size, -1))
        else:  # dense / fc output: every unit of the (flattened) source
            assert np.array_equal(ids - 1, np.tile(np.arange(source.size), (spec.size, 1)))


# ---------------------------------------------------------------------------------------------- geometry


def _probe_neurons(spec) -> list[tuple[int, ...]]:
    c, h, w = spec.shape
    return sorted({(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, w // 2), (0, 0, w - 1)})


def _window(specs, name: str, i: int) -> tuple[int, int]:
    """First and last input pixel (unclipped: padding counts) of cell i's window along one axis."""
    by_name = {s.name: s for s in specs}
    spec, first, last = by_name[name], i, i
    while spec.source is not None:
        first = first * spec.stride - spec.padding
        last = last * spec.stride - spec.padding + spec.kernel - 1
        spec = by_name[spec.source]
    return first, last


@pytest.mark.parametrize("key", KEYS)
def test_receptive_field_is_what_a_neuron_sees(key):
    """Pixels outside a neuron's receptive field never change it; the field is tight (every pixel in it
    reaches the neuron's pre-activation for some input); its centre is the engine's (S, O) geometry."""
    loaded = randomised(key, seed=3)
    model, arch = loaded.model, loaded.arch
    specs = describe(arch)
    gen = torch.Generator().manual_seed(5)
    base = torch.randn(1, 1, 28, 28, generator=gen)
    # A positive copy: every path from a pixel in the field carries gradient for some of many inputs.
    positive = ConvNet(arch)
    positive.load_state_dict(model.state_dict())
    positive.eval()
    with torch.no_grad():
        for p in positive.parameters():
            p.abs_()
    probes = 0.1 + torch.rand(512, 1, 28, 28, generator=gen)
    for spec in specs[1:]:
        if len(spec.shape) != 3:
            continue
        op = _op_module(arch, spec)
        s, o = receptive_field(specs, spec.name)
        for index in _probe_neurons(spec):
            y0, x0, y1, x1 = pixel_box(specs, spec.name, index)
            inside = torch.zeros(28, 28, dtype=torch.bool)
            inside[y0:y1, x0:x1] = True
            perturbed = torch.where(inside, base, base + 3.0 * torch.randn(1, 1, 28, 28, generator=gen))
            with torch.no_grad():
                a = model.body[: spec.module + 1](base)[(0, *index)]
                b = model.body[: spec.module + 1](perturbed)[(0, *index)]
            assert torch.allclose(a, b, atol=1e-5), (spec.name, index)
            x = probes.clone().requires_grad_(True)
            value = positive.body[: op + 1](x)[(slice(None), *index)].sum()
            (grad,) = torch.autograd.grad(value, x)
            support = (grad.abs().sum(0)[0] > 0).numpy()
            assert np.array_equal(support, inside.numpy()), (spec.name, index)
            # The window (padding included) is centred on O + S * i: the upsampling geometry.
            for i in (index[1], index[2]):
                first, last = _window(specs, spec.name, i)
                assert (first + last) / 2 == o + s * i, (spec.name, index)


# ---------------------------------------------------------------------------------------------- the other views


def test_saliency_and_input_x_gradient_match_captum(net):
    from captum.attr import InputXGradient, Saliency

    from cnnviz_desktop.core import attribution

    loaded, analyzer = net
    canvas = DIGITS[1]
    snap = analyzer.analyse(AnalysisRequest(1, canvas, target=4,
                                            options=AnalysisOptions(extras=frozenset({"saliency", "inputxgrad"}))))
    image = snap.activations["input"][0]
    x = torch.from_numpy(attribution.normalise(image))[None, None]
    ref = Saliency(loaded.model).attribute(x.clone().requires_grad_(True), target=4, abs=True)[0, 0].numpy()
    ixg = InputXGradient(loaded.model).attribute(x.clone().requires_grad_(True), target=4)[0, 0].detach().numpy()
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    assert np.abs(attribution.saliency(loaded, image, 4) - ref).max() <= tol
    assert np.abs(snap.saliency - ref).max() <= tol
    assert np.abs(snap.input_x_gradient - ixg).max() <= tol


@pytest.mark.parametrize("key", KEYS)
def test_input_maximisation_runs_for_every_kind_of_layer(key):
    from cnnviz_desktop.core.maximize import MaxSettings, Objective, evaluate, maximise

    loaded = randomised(key)
    specs = describe(loaded.arch)
    settings = MaxSettings(steps=10, seed=1)
    result = maximise(loaded, Objective.for_class(3), settings)
    assert result.done and result.step == 10 and result.image01.shape == (28, 28)
    assert np.isfinite(result.scores).all() and np.isfinite(result.image01).all()
    assert abs(result.score - evaluate(loaded, Objective.for_class(3), result.image01).score) < 1e-4
    for spec in specs[1:]:
        if spec.kind in ("conv", "pool"):
            objective = Objective.for_channel(spec.name, spec.shape[0] - 1)
        else:
            objective = Objective.for_neuron(spec.name, (spec.size - 1,))
        result = maximise(loaded, objective, MaxSettings(steps=3, seed=2))
        assert np.isfinite(result.scores).all() and np.isfinite(result.activation), spec.name
        # The activation is read where the scene shows the layer: its activations in a snapshot.
        analyzer_value = evaluate(loaded, objective, result.image01).activation
        assert abs(analyzer_value - result.activation) < 1e-5


@pytest.mark.parametrize("key", KEYS)
def test_maximised_score_is_the_pre_activation(key):
    """A hidden layer is scored before its activation: the input of the activation module."""
    from cnnviz_desktop.core.maximize import Objective, evaluate

    loaded = randomised(key)
    model = loaded.model
    image = DIGITS[0]
    x = torch.from_numpy((image - 0.1307) / 0.3081)[None, None]
    outs = _outputs(model, x)
    for spec in describe(loaded.arch)[1:-1]:
        index = (0, 0, 0) if len(spec.shape) == 3 else (0,)
        result = evaluate(loaded, Objective.for_neuron(spec.name, index), image)
        assert abs(result.activation - float(outs[spec.module][index])) < 1e-5
        if spec.activation is not None and spec.kind != "pool":
            assert abs(result.score - float(outs[spec.module - 1][index])) < 1e-5, spec.name


@pytest.mark.parametrize("key", KEYS)
def test_embedding_features_are_the_penultimate_layer(key):
    from cnnviz_desktop.core.embedding import dense_features, penultimate_layer

    loaded = randomised(key)
    layer = penultimate_layer(describe(loaded.arch))
    images = np.stack(DIGITS)
    features = dense_features(loaded, images, batch=2)
    assert features.shape == (len(images), layer.size) and features.dtype == np.float32
    for i, image in enumerate(images):
        x = torch.from_numpy((image - 0.1307) / 0.3081)[None, None]
        expected = _outputs(loaded.model, x)[layer.module].reshape(-1)
        assert np.abs(features[i] - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_an_embedding_of_a_too_wide_layer_is_refused_clearly():
    from cnnviz_desktop.core.embedding import penultimate_layer

    specs = describe(parse_spec("c8k3p1-relu-fc10", "wide-map"))  # 8 x 28 x 28 = 6,272 features
    with pytest.raises(CnnvizError, match="conv1 .* cannot be embedded"):
        penultimate_layer(specs)


@pytest.mark.parametrize("key", KEYS)
def test_filters_and_occlusion(key):
    from cnnviz_desktop.core.filters import conv_filters
    from cnnviz_desktop.core.occlusion import occlusion_map

    loaded = randomised(key)
    specs = describe(loaded.arch)
    filters = conv_filters(loaded)
    convs = [s for s in specs if s.kind == "conv"]
    assert list(filters) == [s.name for s in convs]
    channels = 1
    for spec in convs:
        assert filters[spec.name].shape == (spec.shape[0], channels, spec.kernel, spec.kernel)
        channels = spec.shape[0]
    image = preprocess(DIGITS[0]).image
    heat = occlusion_map(loaded.model, image, 3, size=6, stride=3)
    assert heat.shape == (28, 28) and np.isfinite(heat).all()


# ---------------------------------------------------------------------------------------------- refusals


def test_batch_norm_statistics_are_folded_not_ignored():
    """Changing a batch norm's running statistics changes the engine's numbers exactly as torch's."""
    loaded = randomised("bn3")
    with torch.no_grad():
        loaded.model.body[1].running_var.mul_(4.0)
        loaded.model.body[1].running_mean.add_(0.3)
    analyzer = Analyzer(loaded)  # the construction-time check against torch passes
    snap = analyzer.analyse(AnalysisRequest(1, DIGITS[0]))
    with torch.no_grad():
        logits = loaded.model(preprocess(DIGITS[0]).tensor)[0].numpy()
    assert np.abs(snap.logits - logits).max() <= 1e-4 * max(1.0, np.abs(logits).max())


def _swap(key: str, index: int, module: nn.Module) -> LoadedModel:
    loaded = randomised(key)
    loaded.model.body[index] = module
    return loaded


@pytest.mark.parametrize("key, index, module, words", [
    ("pad1", 0, nn.Conv2d(1, 8, 3, padding=1, dilation=2), "module 0 ('c8k3p1'): a Conv2d with"),
    ("pad1", 1, nn.Identity(), "module 1 ('relu'): the architecture says 'relu' but the model has Identity"),
    ("bn3", 1, nn.BatchNorm2d(8, track_running_stats=False), "without running statistics"),
    ("mixed", 4, nn.GELU(approximate="tanh"), "GELU(approximate='tanh')"),
    ("mixed", 5, nn.GELU(), "the architecture says 'drop0.25' but the model has GELU"),
    ("mixed", 2, nn.MaxPool2d(3, 2, ceil_mode=True), "is not the described unpadded 3x3 stride 2 pool"),
    ("k5avg", 2, nn.AvgPool2d(2, divisor_override=3), "described unpadded 2x2 stride 2 pool"),
    ("mixed", 1, nn.LeakyReLU(0.3), "LeakyReLU slope 0.3 is not the described 0.1"),
])
def test_a_model_the_engine_cannot_reproduce_is_named_layer_and_reason(key, index, module, words):
    loaded = _swap(key, index, module.eval())
    with pytest.raises(CnnvizError) as info:
        Analyzer(loaded)
    assert words in str(info.value)
    assert f"model {key!r}" in str(info.value)


def test_two_activations_in_a_row_are_refused_with_the_reason():
    arch = parse_spec("c8k3-relu-tanh-max2-fc10", "twice")
    with pytest.raises(CnnvizError, match="module 2 .'tanh'.: a second activation after layer 'c8k3'"):
        Analyzer(ConvNet(arch).eval(), arch)


def test_a_batch_norm_in_training_mode_is_refused():
    loaded = randomised("bn3")
    loaded.model.body[1].train()
    with pytest.raises(CnnvizError, match="training mode"):
        Analyzer(loaded)


@pytest.mark.parametrize("key", KEYS)
def test_the_session_shows_any_network(key):
    from cnnviz_desktop.core.session import DictStore, Session, WorkerResult

    loaded = randomised(key)
    analyzer = Analyzer(loaded)
    session = Session(DictStore())
    requests = []
    session.request_made.connect(requests.append)
    session.set_model(loaded, remember=False)
    session.canvas.begin_stroke(14.0, 4.0)
    for x, y in ((9.0, 12.0), (14.5, 24.0), (19.0, 12.0)):
        session.canvas.extend_stroke(x, y)
    session.canvas.end_stroke()
    session.canvas_edited()
    assert session.accept(WorkerResult(session.generation, requests[-1].request_id, analyzer.analyse(requests[-1])))
    cam = last_conv_layer(describe(loaded.arch))
    assert session.channels == cam.shape[0]
    labels = [label for label, _ in session.channel_maps()]
    assert labels == ["Both" if cam.shape[0] == 2 else "All"] + [f"Ch {k}" for k in range(min(cam.shape[0], 10))]
    assert session.overlay().values.shape == session.snapshot.canvas_cam.shape
    assert all(0 <= k < session.channels for k in session.blank_paper_channels())
    for spec in describe(loaded.arch)[1:]:
        index = tuple(n - 1 for n in spec.shape)
        session.set_picked(spec.name, index)
        r0, c0, r1, c1 = session.picked_box()
        assert r0 < r1 and c0 < c1, spec.name


def test_blank_paper_channels_are_not_judged_on_a_coarse_grad_cam_grid():
    from cnnviz_desktop.core.session import BLANK_PAPER_MAX_CELL, DictStore, Session, WorkerResult

    loaded = randomised("bn3")  # Grad-CAM on pool3: 3x3 cells 8 input pixels apart
    assert receptive_field(describe(loaded.arch), "pool3")[0] > BLANK_PAPER_MAX_CELL
    session = Session(DictStore())
    requests = []
    session.request_made.connect(requests.append)
    session.set_model(loaded, remember=False)
    session.load_pixels(DIGITS[0])
    session.accept(WorkerResult(session.generation, requests[-1].request_id, Analyzer(loaded).analyse(requests[-1])))
    assert session.snapshot is not None and not session.snapshot.empty
    assert session.blank_paper_channels() == []


# Corners of the language the SPECS do not cover: a conv or fc without activation, an activation after a pool,
# a conv after a global pooling (the CAM layer is then 1x1), an explicit flatten with dropout, batch norm then
# dropout then ReLU, a 28x28 kernel, a 1x1 conv, a padding larger than the stride.
EDGE_SPECS = ["c8k3-c8k3-relu-fc10", "c8k3-max2-relu-fc10", "c8k3-relu-max2-fc16-fc10",
              "c8k5s3p2-sigmoid-gap-fc16-tanh-fc10", "c8k3-relu-gap-c10k1-gap", "c8k3-relu-max2-flat-drop-fc10",
              "c8k3-bn-drop-relu-avg3s1-fc10", "c10k28-gap", "c4k1-relu-c10k3s2p2-lrelu-gap",
              "c8k3-relu-max2-fc20-bn-fc10", "c8k3-relu-avg2-gelu-fc10"]


@pytest.mark.parametrize("spec", EDGE_SPECS)
def test_corners_of_the_spec_language(spec):
    arch = parse_spec(spec, "edge")
    torch.manual_seed(7)
    model = ConvNet(arch).eval()
    analyzer = Analyzer(model, arch)
    canvas = DIGITS[2]
    prep = preprocess(canvas)
    outs = _outputs(model, prep.tensor)
    snap = analyzer.analyse(AnalysisRequest(1, canvas, target=6))
    for s in analyzer.specs[1:-1]:
        assert np.abs(snap.activations[s.name] - outs[s.module].reshape(s.shape)).max() <= 1e-5, s.name
    assert np.abs(snap.logits - outs[-1]).max() <= 1e-5
    cam = analyzer.cam_spec
    with torch.no_grad():
        act = model.body[: cam.module + 1](prep.tensor)
    act = act.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.body[cam.module + 1:](act)[0, 6], act)
    assert np.abs(snap.gradients - grad[0].numpy()).max() <= 1e-6
    for s in analyzer.specs[1:]:
        if s.weight_module is not None:
            rows = snap.contributions[s.name].reshape(-1, analyzer.wiring[s.name].fan_in)
            pre = outs[s.norm_module if s.norm_module is not None else s.weight_module].reshape(-1)
            bias = _folded_bias(model, s)
            if s.kind == "conv":
                bias = np.repeat(bias, s.shape[1] * s.shape[2])
            assert np.abs(rows.astype(np.float64).sum(1) + bias - pre).max() <= 1e-5, s.name
