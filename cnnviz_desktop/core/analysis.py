"""Per-stroke analysis: AnalysisRequest in, immutable Snapshot out (forward, Grad-CAM, contributions).

CONTRACT (shared by the worker, the scene and the window; do not change field meanings):

Snapshot fields, all numpy arrays float32 unless said otherwise, never mutated after creation:
- request_id: int, the id of the AnalysisRequest it answers.
- empty: True when nothing is drawn; then logits/probabilities/predicted/target are None and
  every activation, CAM and contribution array is all zeros (shapes as below), never NaN.
- logits, probabilities: (10,).
- predicted: int digit or None; target: the class Grad-CAM explains (int) or None;
  contrast: the class B of a contrastive map 'why target rather than B', or None.
- activations: dict layer name -> array of that LayerSpec's shape (see networks.describe):
  'input' is the preprocessed 28x28 image in [0, 1] with shape (1, 28, 28); conv layers are after
  ReLU; pool layers after pooling; dense after ReLU; 'output' holds the logits.
- cam_channels: (C, 28, 28) signed Grad-CAM per channel of the last pooled conv block
  (alpha_k * A_k, no ReLU), upsampled with the stride-correct geometry; cam: (28, 28) their sum
  ('Both'); hirescam: (28, 28) (gradient x activation summed over channels, same geometry).
  These are in network-input coordinates; canvas_cam* are the same resampled onto the canvas
  grid (canvas shape) for the drawing overlay.
- contributions: dict target layer name -> (E,) array aligned with wiring.network_wiring(arch)[name]
  (conv/dense: source activation x weight; pool: the source activation if it is its window's max,
  else 0); significant: same keys, (E,) bool (top-k per destination plus a floor relative to the
  largest |contribution| in that layer).
- timings: dict of stage -> milliseconds.

Fields added by the analysis engine (all with defaults, so older constructors keep working):
- model_name: str, the architecture name of the model that made the snapshot ('' if unknown).
- cam_layer: str, the layer Grad-CAM explains (networks.last_conv_layer, e.g. 'pool2').
- score: float or None, the explained score: logit[target], or logit[target] - logit[contrast].
- cam_lowres: (C, h, w) the per-channel Grad-CAM maps before upsampling (alpha_k * A_k on the
  cam_layer's own grid; captum's LayerGradCam(..., relu_attributions=False,
  attr_dim_summation=False) gives the same numbers).
- gradients: (C, h, w) d score / d A, A = the cam_layer's activation.
- placement: the Preprocessed digit (where the ink's box went in the 28x28 input), to map input
  pixels back onto the canvas (e.g. a neuron's receptive field); None when empty.

Extra maps, computed only when the request's ``options.extras`` names them (the views that show them
are open, or the drawing overlay shows them); None otherwise and on an empty canvas:
- saliency: (28, 28) |d score / d x| on the network input, x the normalised input ('saliency' in extras;
  captum's Saliency(model).attribute(x, target=c, abs=True) gives the same numbers).
- input_x_gradient: (28, 28) signed x * d score / d x ('inputxgrad'; captum's InputXGradient). Not zero
  off the ink: there x = -0.4242 (see core/attribution.py).
- canvas_saliency, canvas_input_x_gradient: the same resampled onto the canvas grid exactly as canvas_cam.
The score is the snapshot's: logit[target] (- logit[contrast]). One torch forward + backward after the
numpy pass, on the analysing thread; with no extras the per-stroke path is unchanged.

Units and conventions of the engine (Analyzer):
- The score is a LOGIT (or a logit difference), never a probability.
- Contributions into the first conv layer use the normalised input the network actually sees,
  (x - 0.1307) / 0.3081, so that for every conv/dense neuron sum(contributions) + bias equals its
  pre-activation; activations['input'] stays in [0, 1] for display.
- Significant edges: |c| among the top_k of its destination (ties at the k-th value are all
  kept), |c| >= floor * max|c| of the layer, and c != 0.
- Upsampling: a cell i of a layer with cumulative stride S and receptive-field centre O (input
  pixel index O + S*i, derived from the layer descriptions) is spread bilinearly over the input
  pixels it covers: for tiny/wide that is 'scale by 4 (bilinear, align_corners=False), pad (3, 5)'
  for the 5x5 grid. Pixels outside every cell's footprint get 0.
- Timings keys: 'preprocess', 'forward', 'gradcam', 'canvas', 'contributions', 'significant',
  'total' (milliseconds, measured in the thread that ran the analysis); 'extras' too when extra maps
  were computed (included in 'total').

The engine computes everything after preprocessing in numpy (float32) from views of the model's
weights: at this size torch's per-call overhead costs more than the arithmetic. Analyzer checks at
construction that its forward pass reproduces the torch model's logits.

This module imports neither Qt nor (at import time) torch: the GUI can build requests before torch
has loaded. The Analyzer imports torch lazily.
"""

from __future__ import annotations

import time
from functools import lru_cache
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .attribution import EXTRAS
from .architecture import NUM_CLASSES, Architecture, LayerSpec, describe, last_conv_layer
from .errors import CnnvizError
from .wiring import Wiring, network_wiring

if TYPE_CHECKING:  # pragma: no cover
    from .preprocess import Preprocessed

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
INPUT = 28


@dataclass(frozen=True)
class AnalysisOptions:
    """top_k: significant edges kept per destination neuron; floor: fraction of the layer's largest
    |contribution| below which an edge is never significant; extras: names of extra maps to compute
    (a subset of EXTRAS: 'saliency', 'inputxgrad'; see the module docstring)."""

    top_k: int = 3
    floor: float = 0.05
    extras: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AnalysisRequest:
    """request_id: increasing int; pixels: (H, W) float32 canvas in [0, 1] (a private copy);
    target: class to explain (None: the prediction); contrast: class B for 'target rather than B';
    strokes: the drawing as immutable strokes (CanvasModel.strokes: tuple of core.strokes.Stroke)
    or None; with strokes the network sees them redrawn with a pen scaled to the digit's size
    (core.strokes.rasterise), without them (a loaded image) the preprocessed pixels."""

    request_id: int
    pixels: np.ndarray
    target: int | None = None
    contrast: int | None = None
    options: AnalysisOptions = AnalysisOptions()
    strokes: tuple | None = None


@dataclass(frozen=True)
class Snapshot:
    request_id: int
    empty: bool
    logits: np.ndarray | None
    probabilities: np.ndarray | None
    predicted: int | None
    target: int | None
    contrast: int | None
    activations: Mapping[str, np.ndarray]
    cam_channels: np.ndarray
    cam: np.ndarray
    hirescam: np.ndarray
    canvas_cam_channels: np.ndarray
    canvas_cam: np.ndarray
    canvas_hirescam: np.ndarray
    contributions: Mapping[str, np.ndarray]
    significant: Mapping[str, np.ndarray]
    timings: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    model_name: str = ""
    cam_layer: str = ""
    score: float | None = None
    cam_lowres: np.ndarray | None = None
    gradients: np.ndarray | None = None
    placement: Preprocessed | None = None
    saliency: np.ndarray | None = None
    input_x_gradient: np.ndarray | None = None
    canvas_saliency: np.ndarray | None = None
    canvas_input_x_gradient: np.ndarray | None = None


def freeze(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only so a Snapshot cannot be changed after it is made."""
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


# ----------------------------------------------------------------------------------------------
# Geometry helpers (pure numpy, computed once per model or once per request)


def receptive_field(specs: list[LayerSpec] | tuple[LayerSpec, ...], name: str) -> tuple[int, float]:
    """(S, O) of layer ``name``: its cell i (along one axis) is centred on input pixel index O + S*i.

    Derived from the layers' kernels and strides: a window of k cells with stride s on a layer
    (S, O) gives (S * s, O + S * (k - 1) / 2). For tiny/wide: conv1 (1, 1), pool1 (2, 1.5),
    conv2 (2, 3.5), pool2 (4, 4.5).
    """
    by_name = {s.name: s for s in specs}
    chain = []
    spec = by_name[name]
    while spec.source is not None:
        chain.append(spec)
        spec = by_name[spec.source]
    stride, offset = 1, 0.0
    for spec in reversed(chain):
        if spec.kind not in ("conv", "pool"):
            raise ValueError(f"layer {name!r} is fed by the non-spatial layer {spec.name!r}")
        offset += stride * (spec.kernel - 1) / 2.0
        stride *= spec.stride
    return stride, offset


def upsampling_matrix(cells: int, stride: int, offset: float, size: int = INPUT) -> np.ndarray:
    """(size, cells) float32 matrix U with up = U @ m for a 1-D map m of ``cells`` values.

    Output pixel q reads the source coordinate u = (q - offset) / stride bilinearly (clamped to
    the edge cells, like ``F.interpolate(scale_factor=stride, mode='bilinear', align_corners=False)``)
    and gets 0 outside the cells' footprint -0.5 <= u < cells - 0.5 (the padding). With an integer
    pad this is exactly 'interpolate by the stride, then pad (offset - (stride - 1) / 2) before'.
    """
    q = np.arange(size, dtype=np.float64)
    u = (q - offset) / stride
    inside = (u >= -0.5) & (u < cells - 0.5)
    uc = np.clip(u, 0.0, cells - 1)
    i0 = np.floor(uc).astype(np.int64)
    i1 = np.minimum(i0 + 1, cells - 1)
    w1 = uc - i0
    matrix = np.zeros((size, cells), dtype=np.float64)
    rows = np.arange(size)
    np.add.at(matrix, (rows, i0), (1.0 - w1) * inside)
    np.add.at(matrix, (rows, i1), w1 * inside)
    return matrix.astype(np.float32)


def canvas_matrix(count: int, start: int, scale: float, offset: int, size: int = INPUT) -> np.ndarray:
    """(count, size) float32 matrix R with canvas = R @ m for one axis, equal to Preprocessed.to_canvas.

    Canvas cell j's centre maps to the continuous 28x28 coordinate (j + 0.5 - start) * scale + offset
    (pixel centres at k + 0.5); bilinear taps outside the 28x28 grid read 0 (grid_sample's zero
    padding, align_corners=False). Separable, so a whole map costs two small matrix products.
    """
    coord = (np.arange(count, dtype=np.float32) + np.float32(0.5) - np.float32(start)) * np.float32(scale)
    coord = coord + np.float32(offset)
    # The same float32 steps as to_canvas's normalised grid, then grid_sample's unnormalisation.
    g = coord / np.float32(size) * np.float32(2.0) - np.float32(1.0)
    ix = ((g + np.float32(1.0)) * np.float32(size) - np.float32(1.0)) / np.float32(2.0)
    i0 = np.floor(ix).astype(np.int64)
    w1 = (ix - i0).astype(np.float32)
    # Column t + 1 holds tap t; columns 0 and size + 1 collect the taps outside the grid (zeros padding).
    matrix = np.zeros((count, size + 2), dtype=np.float32)
    rows = np.arange(count)
    matrix[rows, np.clip(i0 + 1, 0, size + 1)] = np.float32(1.0) - w1
    matrix[rows, np.clip(i0 + 2, 0, size + 1)] = w1
    return matrix[:, 1:size + 1]


@lru_cache(maxsize=256)
def _canvas_matrix_cached(count: int, start: int, scale: float, offset: int, transpose: bool) -> np.ndarray:
    """canvas_matrix, read-only and cached: while a digit is drawn its placement repeats often."""
    matrix = canvas_matrix(count, start, scale, offset)
    return freeze(matrix.T if transpose else matrix)


def kth_largest(magnitude: np.ndarray, k: int) -> np.ndarray:
    """(n,) the k-th largest value of each row of ``magnitude`` (n, F), counting repeats; 1 <= k <= F.

    numpy's per-row routines (partition, reductions along a short last axis) cost ~50 ns per row
    here, so short rows (the first conv layer's 9 inputs) use a running top-k kept with elementwise
    max/min over the columns of a transposed copy instead; long rows use np.partition.
    """
    n, fan_in = magnitude.shape
    if fan_in > 16 or k > 4:
        return np.partition(magnitude, fan_in - k, axis=1)[:, fan_in - k]
    columns = np.ascontiguousarray(magnitude.T)  # (F, n)
    tops = [columns[i].copy() for i in range(k)]
    for i in range(1, k):  # sort the first k columns, largest first (a tiny insertion network)
        for j in range(i, 0, -1):
            high = np.maximum(tops[j - 1], tops[j])
            np.minimum(tops[j - 1], tops[j], out=tops[j])
            tops[j - 1] = high
    spare = np.empty(n, dtype=magnitude.dtype)
    incoming = np.empty(n, dtype=magnitude.dtype)
    for col in range(k, fan_in):
        np.copyto(incoming, columns[col])
        for i in range(k - 1):  # insert: the larger stays, the smaller moves down a place
            np.minimum(tops[i], incoming, out=spare)
            np.maximum(tops[i], incoming, out=tops[i])
            incoming, spare = spare, incoming
        np.maximum(tops[k - 1], incoming, out=tops[k - 1])
    return tops[k - 1]


def _at_least(magnitude: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """(n * F,) bool: magnitude (n, F) >= threshold (n,) of its row. With short rows numpy's
    broadcasting runs one inner loop per row (measured 2.5x slower at F = 9 than repeating the
    thresholds and comparing two flat arrays)."""
    n, fan_in = magnitude.shape
    if fan_in < 32:
        return magnitude.reshape(-1) >= np.repeat(threshold, fan_in)
    return (magnitude >= threshold[:, None]).reshape(-1)


def significant_mask(values: np.ndarray, fan_in: int, top_k: int, floor: float) -> np.ndarray:
    """(E,) bool: |c| within the top_k of its destination's fan_in edges (ties at the k-th value
    kept), |c| >= floor * max|c| over the whole array, and c != 0. values: (E,), E = n_dst * fan_in."""
    magnitude = np.abs(values).reshape(-1, fan_in)
    largest = float(magnitude.max()) if magnitude.size else 0.0
    if top_k <= 0 or largest <= 0.0:
        return np.zeros(values.shape, dtype=bool)
    # One threshold per destination: the floor (at least the smallest normal float, so c != 0) and
    # the k-th largest |c| of that destination.
    threshold = np.float32(max(max(floor, 0.0) * largest, float(np.finfo(np.float32).tiny)))
    if top_k >= fan_in:
        return (magnitude >= threshold).reshape(-1)
    kth = kth_largest(magnitude, top_k)
    return _at_least(magnitude, np.maximum(kth, threshold))


# ----------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class _Step:
    """One shown layer's computation: kind, gather indices / weights (views of the model's)."""

    spec: LayerSpec
    wiring: Wiring
    gather: np.ndarray | None = None  # conv: (H*W, fan_in); pool: (k*k, n_dst) flat source indices
    weight: np.ndarray | None = None  # conv: (Cout, Cin*k*k); dense: (out, in)
    bias: np.ndarray | None = None
    relu: bool = False


def _as_numpy(tensor) -> np.ndarray:
    """A float32 numpy VIEW of a CPU parameter (shares memory: the analyzer sees the model's weights)."""
    array = tensor.detach().cpu().numpy()
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


class Analyzer:
    """Forward pass, Grad-CAM and per-connection contributions for one model. Build once per model.

    ``Analyzer(loaded)`` with a weights.LoadedModel, or ``Analyzer(model, arch)``. Everything static
    (layer descriptions, wiring, gather indices, weight views, upsampling matrices) is prepared here;
    :meth:`analyse` then costs a preprocessing pass, a numpy forward pass and a handful of small
    vectorised operations. Not thread-safe to share between threads only in the sense that the model's
    weights must not change during a call; analyse itself keeps no state between calls.
    """

    def __init__(self, model: Any, arch: Architecture | None = None, *, check: bool = True):
        if arch is None:
            if not (hasattr(model, "model") and hasattr(model, "arch")):
                raise TypeError("Analyzer(model, arch) or Analyzer(loaded_model)")
            model, arch = model.model, model.arch
        self.model = model
        self.arch = arch
        self.name = arch.name
        self.specs: tuple[LayerSpec, ...] = tuple(describe(arch))
        self.spec_by_name = {s.name: s for s in self.specs}
        self.wiring: dict[str, Wiring] = network_wiring(arch)
        self.cam_spec = last_conv_layer(list(self.specs))
        self._steps = [self._plan(spec) for spec in self.specs[1:]]
        # The dense head between the CAM layer and the logits, walked backwards for the gradient.
        cam_at = [s.spec.name for s in self._steps].index(self.cam_spec.name)
        self._head = self._steps[cam_at + 1:]
        if any(step.spec.kind not in ("dense", "output") for step in self._head):
            raise CnnvizError(f"model {arch.name!r}: only dense layers may follow the Grad-CAM layer")
        c, h, w = self.cam_spec.shape
        stride, offset = receptive_field(self.specs, self.cam_spec.name)
        self.cam_stride, self.cam_offset = stride, offset
        self._up_y = upsampling_matrix(h, stride, offset)
        self._up_x_t = np.ascontiguousarray(upsampling_matrix(w, stride, offset).T)
        self._empty_cache: dict[str, MappingProxyType] = {}
        if check:
            self.check()

    # -- construction ------------------------------------------------------------------------

    def _plan(self, spec: LayerSpec) -> _Step:
        from torch import nn

        body = self.model.body
        wiring = self.wiring[spec.name]
        if spec.kind == "conv":
            conv = body[spec.weight_module]
            ok = (isinstance(conv, nn.Conv2d) and conv.stride == (1, 1) and conv.padding == (0, 0)
                  and conv.dilation == (1, 1) and conv.groups == 1
                  and conv.kernel_size == (spec.kernel, spec.kernel) and isinstance(body[spec.module], nn.ReLU))
            if not ok:
                raise CnnvizError(f"layer {spec.name}: expected an unpadded {spec.kernel}x{spec.kernel} Conv2d + ReLU")
            c_out, h, w = spec.shape
            gather = wiring.src.reshape(-1, wiring.fan_in)[: h * w].astype(np.intp)
            weight = _as_numpy(conv.weight).reshape(c_out, -1)
            return _Step(spec, wiring, gather=gather, weight=weight, bias=_as_numpy(conv.bias), relu=True)
        if spec.kind == "pool":
            pool = body[spec.module]
            if not isinstance(pool, nn.MaxPool2d) or pool.padding not in (0, (0, 0)):
                raise CnnvizError(f"layer {spec.name}: expected an unpadded MaxPool2d")
            # Window-major (k*k, n_dst): the max over a window is then an elementwise max of k*k rows,
            # far cheaper in numpy than a reduction along a short last axis.
            gather = np.ascontiguousarray(wiring.src.reshape(-1, wiring.fan_in).T).astype(np.intp)
            return _Step(spec, wiring, gather=gather)
        if spec.kind in ("dense", "output"):
            linear = body[spec.weight_module]
            if not isinstance(linear, nn.Linear):
                raise CnnvizError(f"layer {spec.name}: expected a Linear module")
            relu = spec.kind == "dense"
            if relu and not isinstance(body[spec.module], nn.ReLU):
                raise CnnvizError(f"layer {spec.name}: expected Linear + ReLU")
            return _Step(spec, wiring, weight=_as_numpy(linear.weight), bias=_as_numpy(linear.bias), relu=relu)
        raise CnnvizError(f"layer {spec.name}: unsupported kind {spec.kind!r}")

    def check(self, atol: float = 1e-4) -> None:
        """Raise CnnvizError unless the numpy forward pass reproduces the torch model's logits."""
        import torch

        rng = np.random.default_rng(0)
        image = rng.random((INPUT, INPUT), dtype=np.float32)
        normalised = (image - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
        with torch.no_grad():
            expected = self.model(torch.from_numpy(normalised)[None, None])[0].numpy()
        flat, _, _ = self._forward(normalised)
        got = flat["output"]
        if not np.allclose(got, expected, atol=atol, rtol=1e-4):
            raise CnnvizError(f"model {self.name!r}: the analysis engine does not reproduce the network "
                              f"(max difference {np.abs(got - expected).max():.3g})")

    # -- the per-request work ----------------------------------------------------------------

    def _forward(self, normalised: np.ndarray):
        """Every layer's flat activation, the conv layers' unfolded inputs, the dense ReLU masks."""
        flat: dict[str, np.ndarray] = {"input": normalised.reshape(-1)}
        cols: dict[str, np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        for step in self._steps:
            spec = step.spec
            source = flat[spec.source]
            if spec.kind == "conv":
                unfolded = source[step.gather]  # (H*W, Cin*k*k)
                cols[spec.name] = unfolded
                pre = step.weight @ unfolded.T  # (Cout, H*W)
                pre += step.bias[:, None]
                out = np.maximum(pre, 0.0, out=pre)
            elif spec.kind == "pool":
                windows = source[step.gather]  # (k*k, n_dst)
                cols[spec.name] = windows
                out = windows.max(axis=0)
            else:
                out = step.weight @ source + step.bias
                if step.relu:
                    masks[spec.name] = out > 0.0
                    out = np.maximum(out, 0.0)
            flat[spec.name] = out.reshape(-1)
        return flat, cols, masks

    def _score_gradient(self, masks: dict[str, np.ndarray], target: int, contrast: int | None) -> np.ndarray:
        """d score / d (flattened CAM-layer activation), score = logit[target] (- logit[contrast])."""
        grad = np.zeros(NUM_CLASSES, dtype=np.float32)
        grad[target] = 1.0
        if contrast is not None:
            grad[contrast] -= 1.0
        for step in reversed(self._head):
            if step.relu:
                grad = grad * masks[step.spec.name]
            grad = step.weight.T @ grad
        return grad

    def _contributions(self, flat, cols) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for step in self._steps:
            spec = step.spec
            if spec.kind == "conv":
                c = step.weight[:, None, :] * cols[spec.name][None, :, :]  # (Cout, H*W, Cin*k*k)
            elif spec.kind == "pool":
                windows = cols[spec.name]  # (k*k, n_dst)
                c = np.where(windows == flat[spec.name], windows, np.float32(0.0)).T  # (n_dst, k*k)
            else:
                c = flat[spec.source][None, :] * step.weight  # (out, in)
            out[spec.name] = c.reshape(-1)
        return out

    def _check_request(self, request: AnalysisRequest) -> None:
        if request.strokes is not None:
            from .strokes import Stroke

            if not isinstance(request.strokes, (tuple, list)) or not all(
                    isinstance(s, Stroke) for s in request.strokes):
                raise CnnvizError("strokes must be a tuple of core.strokes.Stroke (CanvasModel.strokes) or None")
        for label, value in (("target", request.target), ("contrast", request.contrast)):
            if value is not None and (not isinstance(value, (int, np.integer)) or not 0 <= int(value) < NUM_CLASSES):
                raise CnnvizError(f"{label} must be a class 0-{NUM_CLASSES - 1} or None, got {value!r}")
        unknown = set(request.options.extras) - set(EXTRAS)
        if unknown:
            raise CnnvizError(f"unknown extra maps {sorted(unknown)}; choose from {', '.join(EXTRAS)}")

    def analyse(self, request: AnalysisRequest) -> Snapshot:
        """Analyse one canvas: preprocess, forward, Grad-CAM / HiResCAM, contributions, significance.

        Returns an immutable Snapshot (see the module docstring); an empty canvas gives
        :meth:`empty`. Raises CnnvizError for a bad request (not a 2-D canvas, target out of range).
        """
        from .preprocess import preprocess

        self._check_request(request)
        clock = time.perf_counter
        t0 = clock()
        prep = None
        if request.strokes:
            # The pixels decide whether anything is drawn; the strokes, how the network sees it.
            from .preprocess import INK_THRESHOLD
            from .strokes import rasterise

            pixels = np.asarray(request.pixels)
            if pixels.ndim == 2 and min(pixels.shape) >= 1 and bool((pixels > INK_THRESHOLD).any()):
                prep = rasterise(request.strokes, pixels.shape)
        if prep is None:
            prep = preprocess(request.pixels)
        t1 = clock()
        if prep is None:
            return self.empty(request.request_id, np.shape(request.pixels),
                              timings={"preprocess": (t1 - t0) * 1e3, "total": (t1 - t0) * 1e3})
        image = prep.image
        normalised = (image - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
        flat, cols, masks = self._forward(normalised)
        logits = flat["output"]
        shifted = np.exp(logits - logits.max())
        probabilities = shifted / shifted.sum()
        predicted = int(np.argmax(logits))
        target = predicted if request.target is None else int(request.target)
        contrast = None if request.contrast is None else int(request.contrast)
        t2 = clock()

        # Grad-CAM on the last pooled conv block: alpha_k = spatial mean of dScore/dA_k.
        c, h, w = self.cam_spec.shape
        act = flat[self.cam_spec.name].reshape(c, h, w)
        grad = self._score_gradient(masks, target, contrast).reshape(c, h, w)
        alpha = grad.mean(axis=(1, 2))
        lowres = alpha[:, None, None] * act
        maps = np.empty((c + 2, h, w), dtype=np.float32)
        maps[:c] = lowres
        maps[c] = lowres.sum(axis=0)
        np.sum(grad * act, axis=0, out=maps[c + 1])
        up = np.matmul(np.matmul(self._up_y, maps), self._up_x_t)  # (C + 2, 28, 28)
        t3 = clock()

        ry = _canvas_matrix_cached(prep.canvas_shape[0], prep.top, prep.scale_y, prep.offset_y, False)
        rx_t = _canvas_matrix_cached(prep.canvas_shape[1], prep.left, prep.scale_x, prep.offset_x, True)
        on_canvas = np.matmul(np.matmul(ry, up), rx_t)
        t4 = clock()

        contributions = self._contributions(flat, cols)
        t5 = clock()
        options = request.options
        significant = {}
        for step in self._steps:
            name, fan_in = step.spec.name, step.wiring.fan_in
            top_k = options.top_k
            if step.spec.kind == "pool" and top_k >= 1:
                # Every non-zero edge of a window carries the window's max, so each is among its top k.
                top_k = fan_in
            significant[name] = freeze(significant_mask(contributions[name], fan_in, top_k, options.floor))
        t6 = clock()

        activations = {"input": freeze(image.reshape(1, INPUT, INPUT))}
        for spec in self.specs[1:]:
            activations[spec.name] = freeze(flat[spec.name].reshape(spec.shape))
        logits = activations["output"]
        frozen_contributions = {k: freeze(v) for k, v in contributions.items()}
        t7 = clock()
        extras: dict[str, np.ndarray | None] = {}
        if options.extras:
            extras = self._extras(options.extras, image, target, contrast, ry, rx_t)
        t8 = clock()
        timings = {
            "preprocess": (t1 - t0) * 1e3, "forward": (t2 - t1) * 1e3, "gradcam": (t3 - t2) * 1e3,
            "canvas": (t4 - t3) * 1e3, "contributions": (t5 - t4) * 1e3, "significant": (t6 - t5) * 1e3,
            "total": (t8 - t0) * 1e3,
        }
        if options.extras:
            timings["extras"] = (t8 - t7) * 1e3
        return Snapshot(
            request_id=request.request_id,
            empty=False,
            logits=logits,
            probabilities=freeze(probabilities.astype(np.float32)),
            predicted=predicted,
            target=target,
            contrast=contrast,
            activations=MappingProxyType(activations),
            cam_channels=freeze(up[:c]),
            cam=freeze(up[c]),
            hirescam=freeze(up[c + 1]),
            canvas_cam_channels=freeze(on_canvas[:c]),
            canvas_cam=freeze(on_canvas[c]),
            canvas_hirescam=freeze(on_canvas[c + 1]),
            contributions=MappingProxyType(frozen_contributions),
            significant=MappingProxyType(significant),
            timings=_timings(timings),
            model_name=self.name,
            cam_layer=self.cam_spec.name,
            score=float(logits[target] - (logits[contrast] if contrast is not None else 0.0)),
            cam_lowres=freeze(lowres),
            gradients=freeze(grad),
            placement=prep,
            **extras,
        )

    def _extras(self, kinds: frozenset[str], image: np.ndarray, target: int, contrast: int | None,
                ry: np.ndarray, rx_t: np.ndarray) -> dict[str, np.ndarray | None]:
        """The requested extra maps (Snapshot field -> frozen array): one torch forward + backward."""
        from .attribution import gradient_maps

        sal, ixg = gradient_maps(self.model, image, target, contrast)
        out: dict[str, np.ndarray | None] = {}
        if "saliency" in kinds:
            out["saliency"] = freeze(sal)
            out["canvas_saliency"] = freeze(np.matmul(np.matmul(ry, sal), rx_t))
        if "inputxgrad" in kinds:
            out["input_x_gradient"] = freeze(ixg)
            out["canvas_input_x_gradient"] = freeze(np.matmul(np.matmul(ry, ixg), rx_t))
        return out

    def empty(self, request_id: int, canvas_shape: tuple[int, ...] = (INPUT, INPUT),
              timings: Mapping[str, float] | None = None) -> Snapshot:
        """The 'nothing drawn' snapshot: every array all zeros with its usual shape, no NaN.

        canvas_shape: (H, W) of the canvas_* maps (the drawing canvas's grid); timings: optional
        stage -> ms.
        """
        canvas_shape = (int(canvas_shape[0]), int(canvas_shape[1])) if len(canvas_shape) == 2 else (INPUT, INPUT)
        zeros = self._empty_cache
        if not zeros:
            zeros["activations"] = MappingProxyType({s.name: freeze(np.zeros(s.shape, np.float32)) for s in self.specs})
            zeros["contributions"] = MappingProxyType(
                {name: freeze(np.zeros(wire.count, np.float32)) for name, wire in self.wiring.items()})
            zeros["significant"] = MappingProxyType(
                {name: freeze(np.zeros(wire.count, bool)) for name, wire in self.wiring.items()})
        c, h, w = self.cam_spec.shape
        return Snapshot(
            request_id=request_id,
            empty=True,
            logits=None,
            probabilities=None,
            predicted=None,
            target=None,
            contrast=None,
            activations=zeros["activations"],
            cam_channels=freeze(np.zeros((c, INPUT, INPUT), np.float32)),
            cam=freeze(np.zeros((INPUT, INPUT), np.float32)),
            hirescam=freeze(np.zeros((INPUT, INPUT), np.float32)),
            canvas_cam_channels=freeze(np.zeros((c, *canvas_shape), np.float32)),
            canvas_cam=freeze(np.zeros(canvas_shape, np.float32)),
            canvas_hirescam=freeze(np.zeros(canvas_shape, np.float32)),
            contributions=zeros["contributions"],
            significant=zeros["significant"],
            timings=_timings(timings or {}),
            model_name=self.name,
            cam_layer=self.cam_spec.name,
            score=None,
            cam_lowres=freeze(np.zeros((c, h, w), np.float32)),
            gradients=freeze(np.zeros((c, h, w), np.float32)),
        )


def _timings(timings: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType({k: round(float(v), 4) for k, v in timings.items()})
