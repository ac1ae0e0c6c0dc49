"""Network descriptions (no torch): architectures as layer lists, their spec language, and the layers the scene shows.

An :class:`Architecture` is a name and a sequential list of :class:`Layer` modules for a 28x28 grey input and 10
outputs. It is written as a compact **spec** (the same text is stored in weight files and accepted by
``cnnviz-train fit --arch``), tokens joined by ``-``:

=================  =====================================================================================
``c16k5s2p2``      Conv2d: 16 output channels, kernel 5 (default 3), stride 2 (default 1), zero padding 2
                   (default 0; ``p`` must be below the kernel). Suffixes in any order.
``relu``           ReLU. ``lrelu`` LeakyReLU (slope 0.01, or ``lrelu0.2``), ``tanh``, ``sigmoid``, ``gelu``.
``max2``           MaxPool2d kernel 2 (stride = kernel, or ``max3s2``). ``avg2`` AvgPool2d, same syntax.
``gap``            global average pooling (AdaptiveAvgPool2d(1)): one value per channel.
``bn``             BatchNorm (2d after a conv, 1d after an fc): must directly follow a conv or an fc; folded
                   into that layer's weights for the view.
``drop``           Dropout (p 0.5, or ``drop0.25``); the identity at inference.
``flat``           Flatten (optional: inserted before the first ``fc`` that follows maps).
``fc64``           Linear with 64 outputs.
=================  =====================================================================================

The network must start with a conv and end with 10 outputs: ``fc10``, or ``gap`` over 10 channels (a
fully convolutional net such as ``c10k3p1-relu-c10k3p1-relu-max2-gap``). The shipped 'tiny' is
``c8k3-relu-max2-c2k3-relu-max2-fc22-relu-fc10``. Every spec describes exactly one torch ``nn.Sequential``
(``networks.ConvNet``: module ``i`` of the list is ``body[i]``, so state-dict names are ``body.{i}.weight``).

Downstream code (analysis, 3D layout, UI) never hard-codes a network: it reads the list of
:class:`LayerSpec` returned by :func:`describe` -- the layers the scene shows (input, each conv, each pool,
each dense layer, the output), each with the modules that make it (weights, folded batch norm, activation).
This module imports no torch, so the window can lay out a network before torch has finished loading.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

LayerKind = Literal["input", "conv", "pool", "dense", "output"]

INPUT_SIZE = 28
NUM_CLASSES = 10

ACTIVATIONS = ("relu", "lrelu", "tanh", "sigmoid", "gelu")
DEFAULT_SLOPE = 0.01
DEFAULT_DROPOUT = 0.5


@dataclass(frozen=True)
class Layer:
    """One module of the sequential stack (one token of the spec).

    op: 'conv' | 'fc' | 'max' | 'avg' | 'gap' | 'bn' | 'drop' | 'flat' | an activation in ACTIVATIONS.
    out: output channels (conv) or units (fc), else 0. kernel, stride, padding: conv and max/avg (0 otherwise).
    p: the LeakyReLU slope or the dropout probability (0.0 otherwise).
    """

    op: str
    out: int = 0
    kernel: int = 0
    stride: int = 0
    padding: int = 0
    p: float = 0.0

    @property
    def token(self) -> str:
        """This layer in the spec language (canonical form)."""
        if self.op == "conv":
            return (f"c{self.out}k{self.kernel}" + (f"s{self.stride}" if self.stride != 1 else "")
                    + (f"p{self.padding}" if self.padding else ""))
        if self.op in ("max", "avg"):
            return f"{self.op}{self.kernel}" + (f"s{self.stride}" if self.stride != self.kernel else "")
        if self.op == "fc":
            return f"fc{self.out}"
        if self.op == "lrelu":
            return "lrelu" if self.p == DEFAULT_SLOPE else f"lrelu{_number(self.p)}"
        if self.op == "drop":
            return "drop" if self.p == DEFAULT_DROPOUT else f"drop{_number(self.p)}"
        return self.op


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Architecture:
    """A network: its name and its layer list (see the module docstring). Build with :meth:`family`,
    :func:`parse_spec` or :func:`validated_architecture` (untrusted input); all of them check the layers.

    conv_channels / dense_units / kernel / pool are read-only summaries (the family's parameters for
    family networks: conv k x k -> ReLU -> max pool, then dense -> ReLU, then fc10).
    """

    name: str
    layers: tuple[Layer, ...]

    @classmethod
    def family(cls, name: str, conv_channels: tuple[int, ...] | list[int], dense_units: tuple[int, ...] | list[int],
               kernel: int = 3, pool: int = 2) -> Architecture:
        """``[conv kxk (unpadded) -> ReLU -> maxpool] * len(conv_channels) -> flatten -> [fc -> ReLU] * m -> fc10``."""
        layers: list[Layer] = []
        for c in conv_channels:
            layers += [Layer("conv", int(c), kernel, 1, 0), Layer("relu"), Layer("max", 0, pool, pool)]
        layers.append(Layer("flat"))
        for u in dense_units:
            layers += [Layer("fc", int(u)), Layer("relu")]
        layers.append(Layer("fc", NUM_CLASSES))
        return cls(str(name), tuple(layers))

    @property
    def spec(self) -> str:
        """The layer list in the spec language; Flatten is written only where it is not implied."""
        tokens = []
        for i, layer in enumerate(self.layers):
            if layer.op == "flat" and _implied_flatten(self.layers, i):
                continue
            tokens.append(layer.token)
        return "-".join(tokens)

    @property
    def conv_channels(self) -> tuple[int, ...]:
        return tuple(layer.out for layer in self.layers if layer.op == "conv")

    @property
    def dense_units(self) -> tuple[int, ...]:
        """Hidden fc widths (the last fc, the 10 outputs, excluded)."""
        fcs = [layer.out for layer in self.layers if layer.op == "fc"]
        return tuple(fcs[:-1]) if fcs and self.layers[_last_weight_index(self.layers)].op == "fc" else tuple(fcs)

    @property
    def kernel(self) -> int:
        """The first conv's kernel size."""
        return next(layer.kernel for layer in self.layers if layer.op == "conv")

    @property
    def pool(self) -> int:
        """The first max/avg pool's kernel size (0 if there is none)."""
        return next((layer.kernel for layer in self.layers if layer.op in ("max", "avg")), 0)

    @property
    def is_family(self) -> bool:
        """True if this is a network of the original family (see :meth:`family`)."""
        try:
            return self.layers == Architecture.family(self.name, self.conv_channels, self.dense_units,
                                                      self.kernel, self.pool or 2).layers
        except StopIteration:
            return False

    def to_dict(self) -> dict:
        """The JSON form stored in weight files: family networks keep the original fields
        (name, conv_channels, dense_units, kernel, pool); any other network is {"name", "spec"}."""
        if self.is_family:
            return {"name": self.name, "conv_channels": list(self.conv_channels),
                    "dense_units": list(self.dense_units), "kernel": self.kernel, "pool": self.pool}
        return {"name": self.name, "spec": self.spec}

    @classmethod
    def from_dict(cls, data: dict) -> Architecture:
        """Inverse of :meth:`to_dict` (validated: see :func:`validated_architecture`)."""
        return validated_architecture(_plain(data))


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _implied_flatten(layers: tuple[Layer, ...], i: int) -> bool:
    """A Flatten at i that the parser would insert by itself: right before an fc, after map layers, or at the
    end of a network whose output is a global average pooling."""
    if i == len(layers) - 1 and i > 0 and layers[i - 1].op == "gap":
        return True
    return i + 1 < len(layers) and layers[i + 1].op == "fc" and all(x.op != "flat" for x in layers[:i])


def _last_weight_index(layers: tuple[Layer, ...]) -> int:
    return max((i for i, x in enumerate(layers) if x.op in ("conv", "fc", "gap")), default=0)


# ------------------------------------------------------------------------------------------------------------
# The layers the scene shows


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the scene shows it.

    name: unique id ('input', 'conv1', 'pool1', 'gap', ..., 'dense1', 'output').
    kind: 'input' | 'conv' | 'pool' | 'dense' | 'output'.
    shape: output shape without batch: (C, H, W) for maps, (N,) for vectors.
    source: name of the layer that feeds this one (None for the input).
    kernel, stride: receptive window on the source (conv: k/s, pool: k/s, gap: the whole map; None for dense).
    module: index of the module in ``ConvNet.body`` whose output is this layer's activation (the last module
        of the layer: its activation or dropout if it has one; -1 for the input).
    weight_module: index of the module holding the weights (conv/linear), or None.
    padding: zero padding of a conv (0 otherwise).
    op: 'conv' | 'max' | 'avg' | 'gap' | 'fc' ('' for the input). An 'output' layer is an fc, or a 'gap' over
        10 channels (then it has no weights).
    activation: the activation applied after the layer's op (and folded batch norm): one of ACTIVATIONS or
        None (the output's logits, a pool without one, an fc without one).
    slope: the LeakyReLU slope (0.0 otherwise).
    norm_module: index of the BatchNorm module folded into this layer's weights, or None.
    """

    name: str
    kind: LayerKind
    shape: tuple[int, ...]
    source: str | None
    kernel: int | None = None
    stride: int | None = None
    module: int = -1
    weight_module: int | None = None
    padding: int = 0
    op: str = ""
    activation: str | None = None
    slope: float = 0.0
    norm_module: int | None = None

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


def describe(arch: Architecture) -> list[LayerSpec]:
    """The layers the scene shows, in data-flow order, each fed by the one before it."""
    return list(_describe(arch.layers))


def _describe(layers: tuple[Layer, ...]) -> tuple[LayerSpec, ...]:
    specs = [LayerSpec("input", "input", (1, INPUT_SIZE, INPUT_SIZE), None)]
    counts = {"conv": 0, "pool": 0, "dense": 0, "gap": 0}
    last_weight = _last_weight_index(layers)
    channels = size = 0
    for i, layer in enumerate(layers):
        prev = specs[-1]
        if layer.op in ("conv", "max", "avg", "gap", "fc"):
            if layer.op == "conv":
                channels = layer.out
                size = conv_size(prev.shape[1], layer.kernel, layer.stride, layer.padding)
                counts["conv"] += 1
                spec = LayerSpec(f"conv{counts['conv']}", "conv", (channels, size, size), prev.name,
                                 kernel=layer.kernel, stride=layer.stride, module=i, weight_module=i,
                                 padding=layer.padding, op="conv")
            elif layer.op in ("max", "avg"):
                channels, size = prev.shape[0], conv_size(prev.shape[1], layer.kernel, layer.stride, 0)
                counts["pool"] += 1
                spec = LayerSpec(f"pool{counts['pool']}", "pool", (channels, size, size), prev.name,
                                 kernel=layer.kernel, stride=layer.stride, module=i, op=layer.op)
            elif layer.op == "gap":
                channels, whole = prev.shape[0], prev.shape[1]
                if i == last_weight:
                    spec = LayerSpec("output", "output", (channels,), prev.name, kernel=whole, stride=whole,
                                     module=i, op="gap")
                else:
                    counts["gap"] += 1
                    name = "gap" if counts["gap"] == 1 else f"gap{counts['gap']}"
                    spec = LayerSpec(name, "pool", (channels, 1, 1), prev.name, kernel=whole, stride=whole,
                                     module=i, op="gap")
            else:
                if i == last_weight:
                    spec = LayerSpec("output", "output", (layer.out,), prev.name, module=i, weight_module=i, op="fc")
                else:
                    counts["dense"] += 1
                    spec = LayerSpec(f"dense{counts['dense']}", "dense", (layer.out,), prev.name, module=i,
                                     weight_module=i, op="fc")
            specs.append(spec)
            continue
        # Batch norms and activations belong to the shown layer before them (its activation is their
        # output); Flatten and Dropout change nothing a view shows (module stays the map's last module).
        if layer.op == "bn":
            specs[-1] = _replace(specs[-1], module=i, norm_module=i)
        elif layer.op in ACTIVATIONS:
            specs[-1] = _replace(specs[-1], module=i, activation=layer.op,
                                 slope=layer.p if layer.op == "lrelu" else 0.0)
    return tuple(specs)


def _replace(spec: LayerSpec, **changes) -> LayerSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output size of a conv or pool window along one axis (floor mode, as torch)."""
    return (size + 2 * padding - kernel) // stride + 1


def last_conv_layer(specs: list[LayerSpec]) -> LayerSpec:
    """Grad-CAM's layer: the last map layer of the network that still has a spatial grid -- the last pooled
    conv block for the family (its cells are exactly what the dense head reads); the map a global average
    pooling reads for a GAP network; whatever follows it (dense layers, pooling) is differentiated through."""
    maps = [s for s in specs if s.kind in ("conv", "pool") and s.op != "gap"]
    return maps[-1]


def receptive_field(specs: list[LayerSpec], layer: str, index: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Input pixels (row0, col0, row1, col1; end exclusive, clipped to the input) that neuron ``index`` of
    ``layer`` can see.

    index is (c, y, x) for maps and (n,) for vectors; dense and output neurons see the whole input.
    Returns None for an unknown layer or an index outside its shape.
    """
    by_name = {s.name: s for s in specs}
    spec = by_name.get(layer)
    if spec is None or len(index) != len(spec.shape) or any(not 0 <= i < n for i, n in zip(index, spec.shape)):
        return None
    _, height, width = specs[0].shape
    if len(spec.shape) == 1:
        return (0, 0, height, width)
    y0 = y1 = index[1]
    x0 = x1 = index[2]
    while spec.source is not None:
        if spec.kind in ("conv", "pool"):
            p = spec.padding
            y0, x0 = y0 * spec.stride - p, x0 * spec.stride - p
            y1, x1 = y1 * spec.stride - p + spec.kernel - 1, x1 * spec.stride - p + spec.kernel - 1
        spec = by_name[spec.source]
        if len(spec.shape) == 3:  # taps on the padding, or cells a floor-mode stride never reads, see nothing
            y0, x0 = max(y0, 0), max(x0, 0)
            y1, x1 = min(y1, spec.shape[1] - 1), min(x1, spec.shape[2] - 1)
    return (max(y0, 0), max(x0, 0), min(y1 + 1, height), min(x1 + 1, width))


# ------------------------------------------------------------------------------------------------------------
# The shipped architectures


# 'tiny' is the reference app's network. 8 first-layer filters: 4 filters reach only ~0.961 on the
# test set with 10k training images, below our 0.965 bar; 8 reach ~0.972 and their 3x3 filter grids
# still fit beside the layer in one readable row.
ARCHITECTURES: dict[str, Architecture] = {
    "tiny": Architecture.family("tiny", conv_channels=(8, 2), dense_units=(22,)),
    "wide": Architecture.family("wide", conv_channels=(8, 16), dense_units=(64,)),
}


# ------------------------------------------------------------------------------------------------------------
# Limits and validation of untrusted descriptions


# Limits for architectures read from files (weight-file metadata is untrusted input). Generous for
# teaching networks (the shipped 'wide' has 27,562 parameters and 9,954 neurons) and small enough that a
# hostile file cannot make the loader allocate much (5M float32 parameters = 20 MB).
MAX_CONV_BLOCKS = 16
MAX_DENSE_LAYERS = 16
MAX_LAYERS = 64
MAX_CHANNELS = 512
MAX_UNITS = 4096
MAX_KERNEL = INPUT_SIZE
MAX_POOL = INPUT_SIZE
MAX_STRIDE = INPUT_SIZE
MAX_NAME_LENGTH = 64
MAX_SPEC_LENGTH = 2000
MAX_PARAMETERS = 5_000_000
MAX_NEURONS = 200_000
ARCHITECTURE_FIELDS = ("name", "conv_channels", "dense_units", "kernel", "pool")
SPEC_FIELDS = ("name", "spec")


class ArchitectureError(ValueError):
    """An architecture description that is malformed or outside the stated limits.

    ``field`` names the offending field ('pool', 'conv_channels[1]', 'spec', ...); str() is the full message.
    """

    def __init__(self, field: str, message: str, whole: bool = False):
        super().__init__(f"architecture {message}" if whole else f"architecture field {field!r} {message}")
        self.field = field


class SpecError(ArchitectureError):
    """A malformed or unsupported spec: the message names the token (and its position) and what to write."""

    def __init__(self, message: str, token: str | None = None, position: int | None = None):
        where = f"token {position} {token!r}: " if token is not None else ""
        ValueError.__init__(self, f"architecture spec: {where}{message}")
        self.field = "spec"
        self.token = token
        self.position = position


def _checked_int(value: object, field: str, low: int, high: int) -> int:
    # bool is an int subclass and floats like 3.0 would silently truncate: accept real ints only.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchitectureError(field, f"must be an integer {low}-{high}, got {_shown(value)}")
    if not low <= value <= high:
        raise ArchitectureError(field, f"must be {low}-{high}, got {value}")
    return value


def _checked_list(value: object, field: str, low: int, high: int, max_len: int, min_len: int) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ArchitectureError(field, f"must be a list of integers, got {_shown(value)}")
    if not min_len <= len(value) <= max_len:
        raise ArchitectureError(field, f"must hold {min_len}-{max_len} entries, got {len(value)}")
    return tuple(_checked_int(v, f"{field}[{i}]", low, high) for i, v in enumerate(value))


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


_CONV = re.compile(r"c(\d{1,6})((?:[ksp]\d{1,6})*)")
_POOL = re.compile(r"(max|avg)(\d{1,6})(?:s(\d{1,6}))?")
_FC = re.compile(r"fc(\d{1,6})")
_SCALAR = re.compile(r"(lrelu|drop)(\d*\.?\d+(?:e-?\d+)?)?")
SPEC_HELP = ("tokens joined by '-': c<channels>[k<kernel>][s<stride>][p<padding>], relu, lrelu[<slope>], tanh, "
             "sigmoid, gelu, max<k>[s<stride>], avg<k>[s<stride>], gap, bn, drop[<p>], flat, fc<units>; "
             "e.g. c16k5p2-relu-max2-c32k3-relu-gap-fc10")


def parse_layers(spec: str) -> tuple[Layer, ...]:
    """The layer list a spec describes (syntax only; :func:`parse_spec` also checks shapes and limits).

    Raises :class:`SpecError` naming the first token that is not in the language.
    """
    if not isinstance(spec, str):
        raise SpecError(f"must be a string, got {_shown(spec)}")
    if len(spec) > MAX_SPEC_LENGTH:
        raise SpecError(f"is {len(spec):,} characters long, more than the limit of {MAX_SPEC_LENGTH:,}")
    text = spec.strip().lower()
    if not text:
        raise SpecError(f"is empty; write {SPEC_HELP}")
    tokens = text.split("-")
    if len(tokens) > MAX_LAYERS:
        raise SpecError(f"has {len(tokens)} layers, more than the limit of {MAX_LAYERS}")
    layers: list[Layer] = []
    for position, token in enumerate(tokens, start=1):
        layers.append(_parse_token(token, position))
    return tuple(layers)


def _parse_token(token: str, position: int) -> Layer:
    def bad(message: str) -> SpecError:
        return SpecError(message, token, position)

    if not token:
        raise bad("is empty (two '-' in a row, or a '-' at an end)")
    if token in ("relu", "tanh", "sigmoid", "gelu", "gap", "bn", "flat"):
        return Layer(token)
    match = _SCALAR.fullmatch(token)
    if match:
        op, number = match.groups()
        value = (DEFAULT_SLOPE if op == "lrelu" else DEFAULT_DROPOUT) if number is None else float(number)
        if op == "drop" and not 0.0 <= value < 1.0:
            raise bad(f"dropout probability must be 0 <= p < 1, got {number}")
        if op == "lrelu" and not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise bad(f"LeakyReLU slope must be 0-1, got {number}")
        return Layer(op, p=value)
    match = _CONV.fullmatch(token)
    if match:
        out = _token_int(match.group(1), "channels", 1, MAX_CHANNELS, bad)
        options: dict[str, int] = {}
        for key, number in re.findall(r"([ksp])(\d+)", match.group(2)):
            if key in options:
                raise bad(f"gives '{key}' twice")
            options[key] = int(number)
        kernel = _token_int(str(options.get("k", 3)), "kernel", 1, MAX_KERNEL, bad)
        stride = _token_int(str(options.get("s", 1)), "stride", 1, MAX_STRIDE, bad)
        padding = options.get("p", 0)
        if not 0 <= padding < kernel:
            raise bad(f"padding must be 0-{kernel - 1} (below the kernel {kernel}), got {padding}")
        return Layer("conv", out, kernel, stride, padding)
    match = _POOL.fullmatch(token)
    if match:
        op, kernel_text, stride_text = match.groups()
        kernel = _token_int(kernel_text, "pool size", 1, MAX_POOL, bad)
        stride = _token_int(stride_text, "stride", 1, MAX_STRIDE, bad) if stride_text else kernel
        return Layer(op, 0, kernel, stride)
    match = _FC.fullmatch(token)
    if match:
        return Layer("fc", _token_int(match.group(1), "units", 1, MAX_UNITS, bad))
    hint = ""
    if token.startswith(("conv", "linear", "dense", "pool", "maxpool", "avgpool", "softmax", "batchnorm")):
        hint = " (write convolutions as c<channels>k<kernel>, dense layers as fc<units>, pooling as max2/avg2/gap)"
    raise bad(f"is not a layer{hint}; {SPEC_HELP}")


def _token_int(text: str, what: str, low: int, high: int, bad) -> int:
    value = int(text)
    if not low <= value <= high:
        raise bad(f"{what} must be {low}-{high}, got {value}")
    return value


def check_layers(layers: tuple[Layer, ...], name: str = "") -> tuple[Layer, ...]:
    """Check a layer list's structure and shapes for a 28x28 input and 10 outputs; insert the implied Flatten.

    Returns the completed layer list. Raises :class:`SpecError` naming the offending layer: a first layer
    that is not a conv, a map that shrinks below 1x1, a conv or pool after the flatten, a batch norm that does
    not directly follow a conv or fc, anything after the 10 outputs, an output that is not 10 values, more
    layers, neurons or parameters than the limits.
    """
    layers = tuple(layers)
    if not layers:
        raise SpecError("has no layers")
    if layers[0].op != "conv":
        raise SpecError(f"the first layer must be a convolution (c<channels>...), got {layers[0].token!r}",
                        layers[0].token, 1)
    done: list[Layer] = []
    flat = False
    size = INPUT_SIZE
    channels = 1
    units = 0
    last_weight = _last_weight_index(layers)
    for position, layer in enumerate(layers, start=1):
        token = layer.token

        def bad(message: str, token=token, position=position) -> SpecError:
            return SpecError(message, token, position)

        index = position - 1
        if index > last_weight and layer.op not in ("drop", "flat"):
            raise bad("follows the network's 10 outputs; the last layer must be fc10 (or gap over 10 channels)")
        op = layer.op
        if op in ("conv", "max", "avg", "gap") and flat:
            raise bad("is a map layer after the flatten; convolutions and pooling must come before any fc")
        if op == "conv":
            new = conv_size(size, layer.kernel, layer.stride, layer.padding)
            if new < 1:
                raise bad(f"needs at least a {layer.kernel - 2 * layer.padding}x{layer.kernel - 2 * layer.padding} "
                          f"map but gets {size}x{size}: use fewer blocks, a smaller kernel or padding")
            size, channels = new, layer.out
        elif op in ("max", "avg"):
            new = conv_size(size, layer.kernel, layer.stride, 0)
            if new < 1:
                raise bad(f"pools a {size}x{size} map with a {layer.kernel}x{layer.kernel} window, which does not fit")
            size = new
        elif op == "gap":
            size = 1
        elif op == "bn":
            previous = done[-1].op if done else ""
            if previous not in ("conv", "fc"):
                raise bad(f"must directly follow a conv or an fc (it is folded into its weights), not {previous!r}")
        elif op == "flat":
            if flat:
                raise bad("flattens twice")
            flat = True
            units = channels * size * size
        elif op == "fc":
            if not flat:
                done.append(Layer("flat"))
                flat = True
                units = channels * size * size
            units = layer.out
        done.append(layer)
    final = layers[last_weight]
    if final.op == "fc" and final.out != NUM_CLASSES:
        raise SpecError(f"the last fc must have {NUM_CLASSES} outputs (one per digit), got {final.token!r}",
                        final.token, last_weight + 1)
    if final.op == "gap" and channels != NUM_CLASSES:
        raise SpecError(f"a network that ends with gap needs {NUM_CLASSES} channels before it, got {channels}",
                        final.token, last_weight + 1)
    if final.op == "conv":
        raise SpecError(f"the network must end with fc{NUM_CLASSES} (or gap over {NUM_CLASSES} channels)")
    if final.op == "gap" and not flat:
        done.append(Layer("flat"))  # (B, 10, 1, 1) -> (B, 10) logits
    if sum(1 for x in done if x.op == "conv") > MAX_CONV_BLOCKS:
        raise SpecError(f"has more than {MAX_CONV_BLOCKS} convolutions")
    if sum(1 for x in done if x.op == "fc") > MAX_DENSE_LAYERS + 1:
        raise SpecError(f"has more than {MAX_DENSE_LAYERS + 1} fc layers")
    del units
    result = tuple(done)
    neurons = sum(s.size for s in _describe(result))
    if neurons > MAX_NEURONS:
        raise ArchitectureError("neurons", f"{name!r} has {neurons:,} neurons, more than the limit of "
                                           f"{MAX_NEURONS:,}", whole=True)
    parameters = _parameter_count(result)
    if parameters > MAX_PARAMETERS:
        raise ArchitectureError("parameters", f"{name!r} has {parameters:,} parameters, more than the limit of "
                                              f"{MAX_PARAMETERS:,}", whole=True)
    return result


def parse_spec(spec: str, name: str | None = None) -> Architecture:
    """A checked :class:`Architecture` from a spec (see the module docstring). name: defaults to the spec.

    Raises :class:`SpecError` (an ArchitectureError) naming the token that is wrong and what is accepted.
    """
    layers = check_layers(parse_layers(spec), name or "")
    arch_name = name if name is not None else Architecture("", layers).spec[:MAX_NAME_LENGTH]
    _check_name(arch_name)
    return Architecture(arch_name, layers)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
        raise ArchitectureError("name", f"must be a printable string of 1-{MAX_NAME_LENGTH} characters, "
                                        f"got {_shown(name)}")
    return name


def _parameter_count(layers: tuple[Layer, ...]) -> int:
    return sum(math.prod(shape) for shape in _tensor_shapes(layers).values())


def parameter_count(arch: Architecture) -> int:
    """Number of stored values (weights, biases, batch-norm statistics) of ``arch``, computed without torch."""
    return _parameter_count(arch.layers)


def neuron_count(arch: Architecture) -> int:
    """Number of neurons (activation values) of every layer the scene shows, input included."""
    return sum(spec.size for spec in describe(arch))


def tensor_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """State-dict names -> shapes of ``ConvNet(arch)`` ('body.0.weight': (C, 1, k, k), ...), without torch.

    Batch norms store weight, bias, running_mean and running_var (their integer batch counter is not stored).
    """
    return _tensor_shapes(arch.layers)


def _tensor_shapes(layers: tuple[Layer, ...]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    channels, size, features = 1, INPUT_SIZE, 0
    width = 0  # the width of the last conv/fc output (for a batch norm)
    for i, layer in enumerate(layers):
        prefix = f"body.{i}"
        if layer.op == "conv":
            shapes[f"{prefix}.weight"] = (layer.out, channels, layer.kernel, layer.kernel)
            shapes[f"{prefix}.bias"] = (layer.out,)
            channels, size = layer.out, conv_size(size, layer.kernel, layer.stride, layer.padding)
            width = channels
        elif layer.op in ("max", "avg"):
            size = conv_size(size, layer.kernel, layer.stride, 0)
        elif layer.op == "gap":
            size = 1
        elif layer.op == "flat":
            features = channels * size * size
        elif layer.op == "fc":
            shapes[f"{prefix}.weight"] = (layer.out, features)
            shapes[f"{prefix}.bias"] = (layer.out,)
            features = width = layer.out
        elif layer.op == "bn":
            for key in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.{key}"] = (width,)
    return shapes


def validated_architecture(data: object) -> Architecture:
    """Check an untrusted architecture description (e.g. from a weight file) and build it.

    data: a dict, either {"name", "spec"} (any network: see the module docstring) or the original family's
    fields {"name", "conv_channels", "dense_units", "kernel", "pool"} ('kernel' and 'pool' optional).
    Every field must have the right type (ints are real ints, not bools or floats) and lie within the
    module's limits; the spatial size must stay >= 1 through every conv and pool, and the totals must
    stay within MAX_PARAMETERS and MAX_NEURONS. Nothing is allocated before all checks pass.
    Raises :class:`ArchitectureError` naming the first offending field (or token of the spec).
    """
    if not isinstance(data, dict):
        raise ArchitectureError("architecture", f"must be a JSON object, got {_shown(data)}", whole=True)
    if "spec" in data:
        unknown = sorted(str(k) for k in data if k not in SPEC_FIELDS)
        if unknown:
            raise ArchitectureError(unknown[0], f"is unknown (expected {', '.join(SPEC_FIELDS)})")
        if "name" not in data:
            raise ArchitectureError("name", "is missing")
        name = _check_name(data["name"])
        return parse_spec(data["spec"], name)
    unknown = sorted(str(k) for k in data if k not in ARCHITECTURE_FIELDS)
    if unknown:
        raise ArchitectureError(unknown[0], f"is unknown (expected {', '.join(ARCHITECTURE_FIELDS)}, "
                                            f"or name and spec)")
    for required in ("name", "conv_channels", "dense_units"):
        if required not in data:
            raise ArchitectureError(required, "is missing")
    name = _check_name(data["name"])
    conv = _checked_list(data["conv_channels"], "conv_channels", 1, MAX_CHANNELS, MAX_CONV_BLOCKS, 1)
    dense = _checked_list(data["dense_units"], "dense_units", 1, MAX_UNITS, MAX_DENSE_LAYERS, 0)
    kernel = _checked_int(data.get("kernel", 3), "kernel", 1, MAX_KERNEL)
    pool = _checked_int(data.get("pool", 2), "pool", 1, MAX_POOL)
    size = INPUT_SIZE
    for block in range(1, len(conv) + 1):
        size = size - kernel + 1
        if size < 1:
            raise ArchitectureError("conv_channels", f"has too many blocks for a {INPUT_SIZE}x{INPUT_SIZE} input "
                                                     f"with kernel {kernel}: conv{block} would be {size}x{size}")
        size //= pool
        if size < 1:
            raise ArchitectureError("pool", f"{pool} shrinks pool{block} below 1x1")
    arch = Architecture.family(name, conv, dense, kernel=kernel, pool=pool)
    neurons = neuron_count(arch)
    if neurons > MAX_NEURONS:
        raise ArchitectureError("neurons", f"has {neurons:,} neurons, more than the limit of {MAX_NEURONS:,}",
                                whole=True)
    parameters = parameter_count(arch)
    if parameters > MAX_PARAMETERS:
        raise ArchitectureError("parameters", f"has {parameters:,} parameters, more than the limit of "
                                              f"{MAX_PARAMETERS:,}", whole=True)
    return arch
