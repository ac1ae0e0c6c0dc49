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
  'input' is the preprocessed 28x28 image in [0, 1] with shape (1, 28, 28); conv and dense layers
  are after their (folded) batch norm and activation (spec.activation; none: the pre-activation);
  pool layers after pooling (and an activation if one follows); 'output' holds the logits.
- cam_channels: (C, 28, 28) signed Grad-CAM per channel of the Grad-CAM layer
  (networks.last_conv_layer: the last map layer that is not a global pooling; the last pooled conv
  block for tiny/wide) (alpha_k * A_k, no ReLU), upsampled with the stride-correct geometry; cam: (28, 28) their sum
  ('Both'); hirescam: (28, 28) (gradient x activation summed over channels, same geometry).
  These are in network-input coordinates; canvas_cam* are the same resampled onto the canvas
  grid (canvas shape) for the drawing overlay.
- contributions: dict target layer name -> (E,) array aligned with wiring.network_wiring(arch)[name]
  (conv/dense: source activation x weight, batch norm folded into the weight; a padded conv tap
  (wiring ``valid`` False) is 0; max pool: the source activation if it is its window's max, else 0;
  avg pool and global average pooling: source / window size, so the edges sum to the average; an
  output that global-average-pools: source / cells); significant: same keys, (E,) bool (top-k per
  destination plus a floor relative to the largest |contribution| in that layer; every non-zero
  edge of a max pool).
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
  pre-activation (the output of its batch norm if it has one, before its activation), with weight
  and bias the folded ones: w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) +
  beta (eval-mode running statistics); activations['input'] stays in [0, 1] for display.
- Significant edges: |c| among the top_k of its destination (ties at the k-th value are all
  kept), |c| >= floor * max|c| of the layer, and c != 0.
- Upsampling: a cell i of a layer with cumulative stride S and receptive-field centre O (input
  pixel index O + S*i, derived from the layer descriptions' kernels, strides and paddings: see
  :func:`receptive_field`) is spread bilinearly over the input pixels it covers: for tiny/wide that
  is 'scale by 4 (bilinear, align_corners=False), pad (3, 5)' for the 5x5 grid. Pixels outside every
  cell's footprint get 0.
- Grad-CAM's gradient is d score / d A through whatever follows the CAM layer (global pooling, fc
  layers with any activation and folded batch norm), computed in numpy by a backward pass of those
  layers (exactly torch's derivatives: ReLU' = [x > 0], LeakyReLU' = 1 or the slope, tanh' = 1 - y^2,
  sigmoid' = y (1 - y), GELU' = Phi(x) + x phi(x)).
- Timings keys: 'preprocess', 'forward', 'gradcam', 'canvas', 'contributions', 'significant',
  'total' (milliseconds, measured in the thread that ran the analysis); 'extras' too when extra maps
  were computed (included in 'total').

The engine computes everything after preprocessing in numpy (float32) from views of the model's
weights (copies where a batch norm is folded in): at this size torch's per-call overhead costs more
than the arithmetic; GELU and its erf run through torch's own kernels on zero-copy views, so they are
torch's numbers. Analyzer checks at construction that every module is the one the architecture
describes and that its forward pass reproduces the torch model's logits; a model it cannot
reproduce raises CnnvizError naming the layer and why.

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

    Derived from the layers' kernels, strides and paddings: a window of k cells with stride s and zero
    padding p on a layer (S, O) gives (S * s, O + S * ((k - 1) / 2 - p)). For tiny/wide: conv1 (1, 1),
    pool1 (2, 1.5), conv2 (2, 3.5), pool2 (4, 4.5); a padded 'same' conv (k 3, p 1) keeps (S, O).
    A global average pooling counts as a window over its whole source (kernel = stride = its size).
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
        offset += stride * ((spec.kernel - 1) / 2.0 - (spec.padding or 0))
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


# The layer ops the engine computes (a _Step's op): 'ogap' is an output that global-average-pools 10 maps.
_WINDOW_OPS = ("max", "avg", "gap", "ogap")
_SQRT_HALF = 0.7071067811865476
_ZERO = np.zeros(1, dtype=np.float32)  # the zero slot a padded conv's taps read
_INV_SQRT_2PI = 0.3989422804014327


@dataclass(frozen=True)
class _Step:
    """One shown layer's computation: its op, gather indices, (folded) weights and activation.

    op: 'conv' | 'max' | 'avg' | 'gap' | 'fc' | 'ogap' (an output that averages each of 10 maps).
    gather: conv (H*W, fan_in) flat source indices, n_src for a padded tap (the zero slot appended to
    the source); pools and 'ogap' (window, n_dst) window-major. weight: conv (Cout, Cin*k*k), fc
    (out, in), batch norm folded in; bias likewise. cells: the window size of avg/gap/ogap.
    """

    spec: LayerSpec
    wiring: Wiring
    op: str
    gather: np.ndarray | None = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: str | None = None
    slope: float = 0.0
    cells: int = 1
    padded: bool = False
    keep_pre: bool = False  # keep the pre-activation (backward through it, or a max pool's contributions)


def _as_numpy(tensor) -> np.ndarray:
    """A float32 numpy VIEW of a CPU parameter (shares memory: the analyzer sees the model's weights)."""
    array = tensor.detach().cpu().numpy()
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


def _activate(name: str | None, pre: np.ndarray, slope: float, in_place: bool) -> np.ndarray:
    """The activation ``name`` of pre-activations ``pre`` (float32), as torch computes it."""
    if name is None:
        return pre
    if name == "relu":
        return np.maximum(pre, np.float32(0.0), out=pre if in_place else None)
    if name == "lrelu":
        return np.where(pre > 0.0, pre, pre * np.float32(slope))
    if name == "tanh":
        return np.tanh(pre, out=pre if in_place else None)
    if name == "sigmoid":
        # 0.5 * (1 + tanh(x / 2)) is the logistic function without exp's overflow for large |x|.
        out = np.tanh(pre * np.float32(0.5))
        out += np.float32(1.0)
        out *= np.float32(0.5)
        return out
    if name == "gelu":
        import torch

        # The exact erf form of nn.GELU(): torch's own kernel on a zero-copy view.
        return torch.nn.functional.gelu(torch.from_numpy(np.ascontiguousarray(pre))).numpy()
    raise CnnvizError(f"unknown activation {name!r}")


def _derivative(name: str, pre: np.ndarray, out: np.ndarray, slope: float) -> np.ndarray:
    """d activation / d pre-activation at ``pre`` (``out`` = the activation), as torch's backward uses it."""
    if name == "relu":
        return pre > 0.0
    if name == "lrelu":
        return np.where(pre > 0.0, np.float32(1.0), np.float32(slope))
    if name == "tanh":
        return np.float32(1.0) - out * out
    if name == "sigmoid":
        return out * (np.float32(1.0) - out)
    if name == "gelu":
        import torch

        cdf = 0.5 * (1.0 + torch.special.erf(torch.from_numpy(pre * np.float32(_SQRT_HALF)))).numpy()
        pdf = np.exp(pre * pre * np.float32(-0.5)) * np.float32(_INV_SQRT_2PI)
        return cdf + pre * pdf
    raise CnnvizError(f"unknown activation {name!r}")


# numpy's OpenBLAS runs a matrix product on all its threads from m*n*k >= 65536 * 4 (GEMM_MULTITHREAD_THRESHOLD
# 4). For the conv products of bigger networks (gap003's conv2: 10 x 90 x 784) on a shared 2-core machine
# that stalls: measured median 52 us but up to 18-36 ms when its threads must wake, against at most 0.3 ms
# in blocks below the threshold. Matrix-vector products (fc layers) measured no stall and stay one call.
_GEMM_LIMIT = 65536 * 4


def _gemm(weight: np.ndarray, unfolded: np.ndarray) -> np.ndarray:
    """weight (m, k) @ unfolded (n, k).T -> (m, n) float32, in blocks of columns that OpenBLAS runs on one thread."""
    m, k = weight.shape
    n = unfolded.shape[0]
    if m * n * k < _GEMM_LIMIT:
        return weight @ unfolded.T
    block = max(1, (_GEMM_LIMIT - 1) // (m * k))
    out = np.empty((m, n), dtype=np.float32)
    for start in range(0, n, block):
        out[:, start:start + block] = weight @ unfolded[start:start + block].T
    return out


# torch module classes by the spec op of the layer they implement (checked before the engine trusts them).
def _module_classes() -> dict[str, tuple]:
    from torch import nn

    return {"conv": (nn.Conv2d,), "fc": (nn.Linear,), "max": (nn.MaxPool2d,), "avg": (nn.AvgPool2d,),
            "gap": (nn.AdaptiveAvgPool2d,), "bn": (nn.BatchNorm1d, nn.BatchNorm2d), "drop": (nn.Dropout,),
            "flat": (nn.Flatten,), "relu": (nn.ReLU,), "lrelu": (nn.LeakyReLU,), "tanh": (nn.Tanh,),
            "sigmoid": (nn.Sigmoid,), "gelu": (nn.GELU,)}


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Analyzer:
    """Forward pass, Grad-CAM and per-connection contributions for one model. Build once per model.

    ``Analyzer(loaded)`` with a weights.LoadedModel, or ``Analyzer(model, arch)``. Everything static
    (layer descriptions, wiring, gather indices, weight views, folded batch norms, upsampling matrices)
    is prepared here; :meth:`analyse` then costs a preprocessing pass, a numpy forward pass and a
    handful of small vectorised operations. Not thread-safe to share between threads only in the sense
    that the model's weights must not change during a call; analyse itself keeps no state between calls.

    Works for every network of the spec language (core.architecture): convs of any kernel, stride and
    padding, the five activations, max/avg pools (overlapping too), global average pooling, batch norm
    (folded into the conv/fc before it, eval-mode running statistics), dropout (the identity), fc layers,
    an fc or a global-average-pooling output. Raises CnnvizError naming the layer and the reason for a
    model it cannot reproduce (a module that is not what the architecture says, a batch norm without
    running statistics, ...), and when its forward pass does not give the torch model's logits.
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
        self._check_modules()
        self._ops = self._op_modules()
        cam_at = [s.name for s in self.specs[1:]].index(self.cam_spec.name)
        self._steps = [self._plan(spec, keep_pre=i > cam_at) for i, spec in enumerate(self.specs[1:])]
        # The layers between the CAM layer and the logits, walked backwards for the gradient.
        self._head = self._steps[cam_at + 1:]
        for step in self._head:
            if step.op not in ("gap", "fc", "ogap"):  # cannot happen for a spec: the CAM layer is the last map
                raise CnnvizError(f"model {arch.name!r}: layer {step.spec.name} ({step.op}) follows the Grad-CAM "
                                  f"layer {self.cam_spec.name}; only global pooling and fc layers may")
        c, h, w = self.cam_spec.shape
        stride, offset = receptive_field(self.specs, self.cam_spec.name)
        self.cam_stride, self.cam_offset = stride, offset
        self._up_y = upsampling_matrix(h, stride, offset)
        self._up_x_t = np.ascontiguousarray(upsampling_matrix(w, stride, offset).T)
        self._empty_cache: dict[str, MappingProxyType] = {}
        if check:
            self.check()

    # -- construction ------------------------------------------------------------------------

    def _check_modules(self) -> None:
        """Every module of the model's body is the one the architecture describes (class and settings)."""
        from torch import nn

        body = getattr(self.model, "body", None)
        layers = self.arch.layers
        if not isinstance(body, nn.Sequential) or len(body) != len(layers):
            raise CnnvizError(f"model {self.name!r}: expected a ConvNet whose body has the architecture's "
                              f"{len(layers)} modules (core.networks.ConvNet)")
        classes = _module_classes()
        for i, (layer, module) in enumerate(zip(layers, body)):
            where = f"model {self.name!r}, module {i} ({layer.token!r})"
            expected = classes.get(layer.op)
            if expected is None or not isinstance(module, expected):
                raise CnnvizError(f"{where}: the architecture says {layer.token!r} but the model has "
                                  f"{type(module).__name__}; the analysis engine cannot reproduce it")
            if layer.op == "conv":
                ok = (module.kernel_size == (layer.kernel, layer.kernel) and module.stride == (layer.stride,) * 2
                      and _pair(module.padding) == (layer.padding,) * 2 and module.dilation == (1, 1)
                      and module.groups == 1 and module.padding_mode == "zeros")
                if not ok:
                    raise CnnvizError(f"{where}: a Conv2d with kernel {module.kernel_size}, stride {module.stride}, "
                                      f"padding {module.padding}, dilation {module.dilation}, groups "
                                      f"{module.groups} ({module.padding_mode}) is not the described "
                                      f"{layer.kernel}x{layer.kernel} stride {layer.stride} padding {layer.padding} "
                                      f"zero-padded convolution")
            elif layer.op in ("max", "avg"):
                ok = (_pair(module.kernel_size) == (layer.kernel,) * 2 and _pair(module.stride) == (layer.stride,) * 2
                      and _pair(module.padding) == (0, 0) and not module.ceil_mode)
                if layer.op == "max":
                    ok = ok and _pair(module.dilation) == (1, 1)
                else:
                    ok = ok and module.divisor_override is None
                if not ok:
                    raise CnnvizError(f"{where}: a pool with kernel {module.kernel_size}, stride {module.stride}, "
                                      f"padding {module.padding} (ceil mode {module.ceil_mode}) is not the "
                                      f"described unpadded {layer.kernel}x{layer.kernel} stride {layer.stride} pool")
            elif layer.op == "gap" and _pair(module.output_size) != (1, 1):
                raise CnnvizError(f"{where}: AdaptiveAvgPool2d to {module.output_size} is not a global average "
                                  f"pooling (output size 1)")
            elif layer.op == "bn":
                if module.running_mean is None or module.running_var is None:
                    raise CnnvizError(f"{where}: a batch norm without running statistics cannot be folded "
                                      f"into its layer's weights (track_running_stats=False)")
                if module.training:
                    raise CnnvizError(f"{where}: the batch norm is in training mode (call model.eval())")
            elif layer.op == "lrelu" and abs(float(module.negative_slope) - layer.p) > 1e-12:
                raise CnnvizError(f"{where}: LeakyReLU slope {module.negative_slope} is not the described {layer.p}")
            elif layer.op == "gelu" and getattr(module, "approximate", "none") != "none":
                raise CnnvizError(f"{where}: GELU(approximate={module.approximate!r}) is not the exact GELU "
                                  f"the architecture describes")
        # One activation per shown layer: describe() keeps only the last of two in a row.
        ops = [layer.op for layer in layers]
        owner = None
        seen_activation = False
        for i, op in enumerate(ops):
            if op in ("conv", "max", "avg", "gap", "fc"):
                owner, seen_activation = (i, layers[i].token), False
            elif op in ("relu", "lrelu", "tanh", "sigmoid", "gelu"):
                if seen_activation:
                    raise CnnvizError(f"model {self.name!r}, module {i} ({layers[i].token!r}): a second activation "
                                      f"after layer {owner[1]!r} (module {owner[0]}); the analysis engine shows one "
                                      f"activation per layer: remove one of them from the spec")
                seen_activation = True

    def _op_modules(self) -> dict[str, int]:
        """Shown layer name -> index of its op module (the conv, pool, gap or linear) in the body."""
        ops = [i for i, layer in enumerate(self.arch.layers) if layer.op in ("conv", "max", "avg", "gap", "fc")]
        return {spec.name: i for spec, i in zip(self.specs[1:], ops)}

    def _folded(self, spec: LayerSpec) -> tuple[np.ndarray, np.ndarray]:
        """(weight (out, fan_in), bias (out,)) of a conv/fc layer with its batch norm folded in:
        w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta (eval-mode statistics)."""
        body = self.model.body
        module = body[spec.weight_module]
        weight = _as_numpy(module.weight).reshape(module.weight.shape[0], -1)
        bias = (_as_numpy(module.bias) if module.bias is not None
                else np.zeros(weight.shape[0], np.float32))
        if spec.norm_module is None:
            return weight, bias
        bn = body[spec.norm_module]
        var = bn.running_var.detach().cpu().numpy().astype(np.float64)
        mean = bn.running_mean.detach().cpu().numpy().astype(np.float64)
        gamma = (bn.weight.detach().cpu().numpy().astype(np.float64) if bn.weight is not None
                 else np.ones_like(var))
        beta = bn.bias.detach().cpu().numpy().astype(np.float64) if bn.bias is not None else np.zeros_like(var)
        if var.shape != (weight.shape[0],):
            raise CnnvizError(f"layer {spec.name}: its batch norm has {var.shape[0]} channels, not {weight.shape[0]}")
        scale = gamma / np.sqrt(var + float(bn.eps))
        folded_w = (weight.astype(np.float64) * scale[:, None]).astype(np.float32)
        folded_b = ((bias.astype(np.float64) - mean) * scale + beta).astype(np.float32)
        return folded_w, folded_b

    def _plan(self, spec: LayerSpec, keep_pre: bool = False) -> _Step:
        wiring = self.wiring[spec.name]
        source = self.spec_by_name[spec.source]
        act = dict(activation=spec.activation, slope=float(spec.slope))
        if spec.kind == "conv":
            c_out, h, w = spec.shape
            gather = wiring.src.reshape(-1, wiring.fan_in)[: h * w].astype(np.intp)
            padded = wiring.valid is not None
            if padded:  # padded taps read the zero slot appended after the source's cells
                valid = wiring.valid.reshape(-1, wiring.fan_in)[: h * w]
                gather = np.where(valid, gather, np.intp(source.size))
            weight, bias = self._folded(spec)
            return _Step(spec, wiring, "conv", gather=gather, weight=weight, bias=bias, padded=padded,
                         keep_pre=keep_pre, **act)
        if spec.kind == "pool" or (spec.kind == "output" and spec.op == "gap"):
            # Window-major (window, n_dst): the max over a window is then an elementwise max of its rows,
            # far cheaper in numpy than a reduction along a short last axis.
            gather = np.ascontiguousarray(wiring.src.reshape(-1, wiring.fan_in).T).astype(np.intp)
            op = "ogap" if spec.kind == "output" else spec.op
            return _Step(spec, wiring, op, gather=gather, cells=wiring.fan_in,
                         keep_pre=keep_pre or (op == "max" and spec.activation is not None), **act)
        if spec.kind in ("dense", "output"):
            weight, bias = self._folded(spec)
            return _Step(spec, wiring, "fc", weight=weight, bias=bias, keep_pre=keep_pre, **act)
        raise CnnvizError(f"layer {spec.name}: unsupported kind {spec.kind!r}")

    def check(self, atol: float = 1e-4) -> None:
        """Raise CnnvizError unless the numpy forward pass reproduces the torch model's logits
        (within atol * max(1, max |logit|), rtol 1e-4) on a seeded random image."""
        import torch

        rng = np.random.default_rng(0)
        image = rng.random((INPUT, INPUT), dtype=np.float32)
        normalised = (image - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
        try:
            with torch.no_grad():
                expected = self.model(torch.from_numpy(normalised)[None, None])[0].numpy()
        except Exception as exc:  # a model that does not even run on a 28x28 image
            raise CnnvizError(f"model {self.name!r}: the torch model fails on a 28x28 image ({exc})") from exc
        flat, _, _ = self._forward(normalised)
        got = flat["output"]
        scale = max(1.0, float(np.abs(expected).max())) if np.isfinite(expected).all() else 1.0
        if got.shape != expected.shape or not np.allclose(got, expected, atol=atol * scale, rtol=1e-4):
            difference = np.abs(got - expected).max() if got.shape == expected.shape else float("nan")
            raise CnnvizError(f"model {self.name!r}: the analysis engine does not reproduce the network "
                              f"(max difference {difference:.3g})")

    # -- the per-request work ----------------------------------------------------------------

    def _forward(self, normalised: np.ndarray):
        """Every layer's flat activation, the conv layers' unfolded inputs and the pools' windows, and
        the pre-activations the backward pass (and max pools' contributions) need."""
        flat: dict[str, np.ndarray] = {"input": normalised.reshape(-1)}
        cols: dict[str, np.ndarray] = {}
        pres: dict[str, np.ndarray] = {}
        zero = _ZERO
        for step in self._steps:
            spec = step.spec
            source = flat[spec.source]
            op = step.op
            if op == "conv":
                if step.padded:
                    source = np.concatenate((source, zero))
                unfolded = source[step.gather]  # (H*W, Cin*k*k)
                cols[spec.name] = unfolded
                pre = _gemm(step.weight, unfolded)  # (Cout, H*W)
                pre += step.bias[:, None]
            elif op == "max":
                windows = source[step.gather]  # (k*k, n_dst)
                cols[spec.name] = windows
                pre = windows.max(axis=0)
            elif op in _WINDOW_OPS:  # avg, gap, ogap
                windows = source[step.gather]
                cols[spec.name] = windows
                pre = windows.mean(axis=0, dtype=np.float32)
            else:
                pre = step.weight @ source
                pre += step.bias
            activation = step.activation
            if activation is None:
                out = pre
            elif step.keep_pre:
                pres[spec.name] = pre
                out = _activate(activation, pre, step.slope, in_place=False)
            elif activation == "relu":  # the family's only activation: inline
                out = np.maximum(pre, 0.0, out=pre)
            else:
                out = _activate(activation, pre, step.slope, in_place=True)
            flat[spec.name] = out.reshape(-1)
        return flat, cols, pres

    def _score_gradient(self, flat: dict[str, np.ndarray], pres: dict[str, np.ndarray], target: int,
                        contrast: int | None) -> np.ndarray:
        """d score / d (flattened CAM-layer activation), score = logit[target] (- logit[contrast]):
        backward through the head (global pooling, fc layers with their folded batch norm and activation)."""
        grad = np.zeros(NUM_CLASSES, dtype=np.float32)
        grad[target] = 1.0
        if contrast is not None:
            grad[contrast] -= 1.0
        for step in reversed(self._head):
            activation = step.activation
            if activation == "relu":
                grad = grad * (pres[step.spec.name] > 0.0)
            elif activation is not None:
                name = step.spec.name
                grad = grad * _derivative(activation, pres[name], flat[name], step.slope)
            if step.op == "fc":
                grad = step.weight.T @ grad
            else:  # gap / ogap: each channel's cells share its gradient equally (the windows do not overlap)
                grad = np.repeat(grad * np.float32(1.0 / step.cells), step.cells)
        return grad

    def _contributions(self, flat, cols, pres) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for step in self._steps:
            spec = step.spec
            if step.op == "conv":
                c = step.weight[:, None, :] * cols[spec.name][None, :, :]  # (Cout, H*W, Cin*k*k)
            elif step.op == "max":
                windows = cols[spec.name]  # (k*k, n_dst)
                pooled = pres[spec.name] if spec.name in pres else flat[spec.name]
                c = np.where(windows == pooled, windows, np.float32(0.0)).T  # (n_dst, k*k)
            elif step.op in _WINDOW_OPS:  # avg / gap / ogap: each cell's share of the average
                c = (cols[spec.name] * np.float32(1.0 / step.cells)).T
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
        flat, cols, pres = self._forward(normalised)
        logits = flat["output"]
        shifted = np.exp(logits - logits.max())
        probabilities = shifted / shifted.sum()
        predicted = int(np.argmax(logits))
        target = predicted if request.target is None else int(request.target)
        contrast = None if request.contrast is None else int(request.contrast)
        t2 = clock()

        # Grad-CAM on the last map layer (last_conv_layer): alpha_k = spatial mean of dScore/dA_k.
        c, h, w = self.cam_spec.shape
        act = flat[self.cam_spec.name].reshape(c, h, w)
        grad = self._score_gradient(flat, pres, target, contrast).reshape(c, h, w)
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

        contributions = self._contributions(flat, cols, pres)
        t5 = clock()
        options = request.options
        significant = {}
        for step in self._steps:
            name, fan_in = step.spec.name, step.wiring.fan_in
            top_k = options.top_k
            if step.op == "max" and top_k >= 1:
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
