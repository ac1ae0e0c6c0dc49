"""Import a user's own PyTorch model into a CnnViz weight file (``cnnviz-train import``).

This RUNS THE USER'S OWN CODE: it imports their Python module (``MODULE:ATTR``) and calls their class or
factory, explicitly, on the command line, outside the app. The app itself only ever reads the result, a
``.safetensors`` file, which never executes code on load.

The pipeline (:func:`import_model`):

1. ``MODULE:ATTR`` -> an ``nn.Module`` (an instance, or a class / zero-argument factory returning one);
   MODULE is a dotted module name (found on ``sys.path`` and in the current folder) or a ``.py`` file path.
2. ``torch.load(FILE.pt, weights_only=True)`` -> a state dict (full pickled models are refused: they would
   run arbitrary code) loaded strictly into the module.
3. The module's leaf modules, nested ``nn.Sequential`` (and other containers) flattened in registration
   order, are mapped to :class:`~.architecture.Layer` s; every unsupported module is listed at once.
4. Shapes are probed with a 1x1x28x28 input (the input must be 28x28 grey, the output 10 values), and the
   model's output is compared with running the flattened modules in order (a ``forward`` that reorders,
   skips, repeats modules or uses functional layers is refused).
5. :func:`~.architecture.check_layers` builds the architecture; the weights are copied into
   ``ConvNet(arch)`` and both networks' outputs must agree (eval mode) on random inputs.
6. :func:`~.weights.save` writes the weight file and a model card naming the source and its sha256.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .architecture import Architecture, ArchitectureError, Layer, check_layers
from .errors import CnnvizError
from .networks import ConvNet

SUPPORTED = ("Conv2d (square kernel/stride/padding, padding='same' for odd kernels, dilation 1, groups 1, "
             "zero padding), ReLU, LeakyReLU, Tanh, Sigmoid, GELU (approximate='none'), MaxPool2d / AvgPool2d "
             "(square, padding 0, ceil_mode False), AdaptiveAvgPool2d(1), BatchNorm2d / BatchNorm1d (affine, "
             "tracking running stats, directly after a Conv2d / Linear), Dropout*, Flatten, Identity, Linear")
# Outputs of the user's model and of the converted one must agree this closely (relative to the largest logit).
TOLERANCE = 1e-4
PROBE_BATCH = 8
CNNVIZ_BN_EPS = 1e-5


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_model` wrote: the architecture, the weight file, the card and the largest output
    difference between the user's model and the converted one (logit units)."""

    arch: Architecture
    path: Path
    card: dict
    max_difference: float


def import_model(target: str, weights_file: str | os.PathLike, out: str | os.PathLike,
                 name: str | None = None, seed: int = 0) -> ImportResult:
    """Convert the user's model ``target`` ('MODULE:ATTR') with the state dict ``weights_file`` into a
    CnnViz weight file ``out`` (.safetensors, with a model card beside it). name: the network's name
    (default ATTR). Raises CnnvizError with one clear message on every failure (see the module docstring).
    """
    weights_file = Path(weights_file)
    model = resolve_target(target)
    state = load_state_dict(weights_file)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CnnvizError(f"{weights_file} does not fit {target}: {_first_lines(str(exc))}. Save the state dict "
                          f"of this very model (torch.save(model.state_dict(), ...)).") from exc
    model = model.float().eval()
    leaves = flatten_modules(model)
    layers = map_layers(leaves)
    generator = torch.Generator().manual_seed(seed)
    probe = torch.randn(PROBE_BATCH, 1, 28, 28, generator=generator)
    reference = _probe_model(model, target, probe)
    sequential = _run_in_order(leaves, probe)
    _check_same(reference, sequential, (
        f"{target}'s forward() is not its modules run in order ({', '.join(n for n, _ in leaves)}): it "
        f"reorders, skips, repeats or adds operations (e.g. functional calls such as F.relu, residual "
        f"additions). CnnViz shows sequential networks only: make every step a module, in the order used."))
    arch_name = name if name is not None else target.rsplit(":", 1)[-1]
    try:
        checked = check_layers(tuple(layer for layer, _ in layers), arch_name)
        arch = Architecture(arch_name, checked)
        Architecture.from_dict(arch.to_dict())  # the name and spec as the loader will check them
    except ArchitectureError as exc:
        raise CnnvizError(f"{target} cannot be shown: {exc}") from exc
    converted = ConvNet(arch)
    try:
        _copy_weights(layers, checked, converted)
    except (IndexError, RuntimeError) as exc:
        raise CnnvizError(f"{target}: its weights could not be copied into the converted network ({exc}); "
                          f"please report this with your model") from exc
    converted.eval()
    with torch.no_grad():
        ours = converted(probe)
    difference = _check_same(reference, ours, (
        f"the converted network does not reproduce {target}'s outputs: this is a bug in the importer, "
        f"please report it with your model"))
    card = {
        "name": arch.name,
        "architecture": arch.to_dict(),
        "parameters": converted.parameter_count(),
        "source": f"imported from {target}, {weights_file.name}, sha256 {_sha256(weights_file)}",
        "imported_from": {"target": target, "weights": str(weights_file), "sha256": _sha256(weights_file)},
        "import_max_logit_difference": float(f"{difference:.3g}"),
        "training_data": {"source": "unknown (an imported model: see its own documentation)"},
        "torch_version": torch.__version__,
    }
    from . import weights

    path = weights.save(converted, out, card)
    return ImportResult(arch, path, weights.load(path).card, difference)


# ---------------------------------------------------------------------------------------------------------
# 1-2: the user's module and state dict


def resolve_target(target: str) -> nn.Module:
    """'MODULE:ATTR' -> the nn.Module it names (imports MODULE: runs the user's code)."""
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise CnnvizError(f"the model must be given as MODULE:ATTR (e.g. mynet:Net or path/to/mynet.py:model), "
                          f"got {target!r}")
    module_name, attr = target.split(":")
    module = _import(module_name)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = sorted(n for n, v in vars(module).items()
                           if isinstance(v, nn.Module) or (inspect.isclass(v) and issubclass(v, nn.Module)))
            hint = f" (it defines {', '.join(found)})" if found else ""
            raise CnnvizError(f"{module_name} has no attribute {attr!r}{hint}")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        return obj
    if callable(obj):
        try:
            made = obj()
        except Exception as exc:
            raise CnnvizError(f"{target}: calling it without arguments failed ({type(exc).__name__}: "
                              f"{_first_lines(str(exc))}). Give a model instance, a class or a factory that "
                              f"needs no arguments.") from exc
        if isinstance(made, nn.Module):
            return made
        raise CnnvizError(f"{target}() returned a {type(made).__name__}, not a torch nn.Module")
    raise CnnvizError(f"{target} is a {type(obj).__name__}, not a torch nn.Module, class or factory")


def _import(module_name: str):
    try:
        if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise CnnvizError(f"module file {path} not found")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(path.stem, module)
            spec.loader.exec_module(module)
            return module
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(module_name)
    except CnnvizError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name == module_name.split(".")[0]:
            raise CnnvizError(f"module {module_name!r} not found: run from its folder, add the folder to "
                              f"PYTHONPATH, or give the file path (path/to/{module_name}.py:ATTR)") from exc
        raise CnnvizError(f"importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise CnnvizError(f"importing {module_name} failed ({type(exc).__name__}: {_first_lines(str(exc))})") from exc


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` -> a state dict of tensors (nothing but tensors is run or
    accepted; a full pickled model is refused with a message saying how to save its state dict)."""
    if not path.is_file():
        raise CnnvizError(f"weights file {path} not found" if not path.exists() else f"{path} is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CnnvizError(f"{path} is not a plain state dict (weights_only loading refused it: it looks like a "
                          f"whole pickled model, which could run any code). Save the weights with "
                          f"torch.save(model.state_dict(), '{path.name}') and import again.") from exc
    except Exception as exc:
        raise CnnvizError(f"{path} cannot be read by torch.load ({type(exc).__name__}: "
                          f"{_first_lines(str(exc))})") from exc
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]  # a common checkpoint layout
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CnnvizError(f"{path} holds a {type(data).__name__}, not a state dict of tensors. Save the weights "
                          f"with torch.save(model.state_dict(), '{path.name}').")
    return data


# ---------------------------------------------------------------------------------------------------------
# 3: flatten and map


def flatten_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's leaf modules in registration order, as (dotted name, module); containers (nn.Sequential
    and any module with children) are opened. A model without children is its own single leaf."""
    leaves: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, module: nn.Module) -> None:
        children = list(module.named_children())
        if not children or _is_leaf(module):
            leaves.append((prefix or type(module).__name__, module))
            return
        for child_name, child in children:
            walk(f"{prefix}.{child_name}" if prefix else child_name, child)

    walk("", model)
    return leaves


def _is_leaf(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.RNNBase))


def map_layers(leaves: list[tuple[str, nn.Module]]) -> list[tuple[Layer, tuple[str, nn.Module]]]:
    """Each leaf -> its Layer (Identity modules are dropped). Raises one CnnvizError listing every
    unsupported module (name: type, why) and the supported set."""
    mapped: list[tuple[Layer, tuple[str, nn.Module]]] = []
    problems: list[str] = []
    previous = ""
    for name, module in leaves:
        try:
            layer = _layer_of(module, previous)
        except _Unsupported as why:
            problems.append(f"{name}: {type(module).__name__} ({why})")
            previous = ""
            continue
        if layer is None:
            continue
        mapped.append((layer, (name, module)))
        previous = layer.op
    if problems:
        raise CnnvizError("the model has modules CnnViz cannot show:\n  " + "\n  ".join(problems)
                          + f"\nSupported: {SUPPORTED}.")
    return mapped


class _Unsupported(Exception):
    pass


def _square(value, what: str) -> int:
    if isinstance(value, int):
        return value
    values = tuple(value)
    if len(set(values)) != 1:
        raise _Unsupported(f"{what} {values} is not square")
    return int(values[0])


def _layer_of(m: nn.Module, previous: str) -> Layer | None:
    if isinstance(m, nn.Conv2d):
        kernel = _square(m.kernel_size, "kernel")
        stride = _square(m.stride, "stride")
        if _square(m.dilation, "dilation") != 1:
            raise _Unsupported(f"dilation {m.dilation}: only dilation 1")
        if m.groups != 1:
            raise _Unsupported(f"groups={m.groups}: only groups=1")
        if m.padding_mode != "zeros":
            raise _Unsupported(f"padding_mode={m.padding_mode!r}: only zero padding")
        if m.padding == "same":
            if kernel % 2 == 0:
                raise _Unsupported(f"padding='same' with an even kernel {kernel} pads unevenly")
            padding = kernel // 2
        elif m.padding == "valid":
            padding = 0
        else:
            padding = _square(m.padding, "padding")
        if padding >= kernel:
            raise _Unsupported(f"padding {padding} must be below the kernel {kernel}")
        return Layer("conv", m.out_channels, kernel, stride, padding)
    if isinstance(m, nn.Linear):
        return Layer("fc", m.out_features)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if not (m.affine and m.track_running_stats):
            raise _Unsupported("needs affine=True and track_running_stats=True (it is folded with its statistics)")
        wanted = "conv" if isinstance(m, nn.BatchNorm2d) else "fc"
        if previous != wanted:
            raise _Unsupported(f"must directly follow a {'Conv2d' if wanted == 'conv' else 'Linear'} "
                               f"(it is folded into its weights)")
        return Layer("bn")
    if type(m) is nn.ReLU:
        return Layer("relu")
    if isinstance(m, nn.LeakyReLU):
        slope = float(m.negative_slope)
        if not 0.0 <= slope <= 1.0:
            raise _Unsupported(f"negative_slope {slope}: must be 0-1")
        return Layer("lrelu", p=slope)
    if type(m) is nn.Tanh:
        return Layer("tanh")
    if type(m) is nn.Sigmoid:
        return Layer("sigmoid")
    if type(m) is nn.GELU:
        if m.approximate != "none":
            raise _Unsupported(f"approximate={m.approximate!r}: only approximate='none'")
        return Layer("gelu")
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
        kernel = _square(m.kernel_size, "kernel")
        stride = _square(m.stride if m.stride is not None else m.kernel_size, "stride")
        if _square(m.padding, "padding") != 0:
            raise _Unsupported(f"padding={m.padding}: only padding 0")
        if m.ceil_mode:
            raise _Unsupported("ceil_mode=True: only ceil_mode False")
        if kind == "max" and (_square(m.dilation, "dilation") != 1 or m.return_indices):
            raise _Unsupported("only dilation 1 without return_indices")
        if kind == "avg" and m.divisor_override is not None:
            raise _Unsupported("divisor_override is not supported")
        return Layer(kind, 0, kernel, stride)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        size = m.output_size
        if size not in (1, (1, 1), [1, 1]):
            raise _Unsupported(f"output_size {size}: only AdaptiveAvgPool2d(1) (global average pooling)")
        return Layer("gap")
    if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)):
        return Layer("drop", p=float(m.p) if 0.0 <= m.p < 1.0 else 0.5)
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise _Unsupported(f"start_dim={m.start_dim}, end_dim={m.end_dim}: only Flatten() (1, -1)")
        return Layer("flat")
    if isinstance(m, nn.Identity):
        return None
    if isinstance(m, nn.Conv1d):
        why = "1-d convolution: CnnViz networks read 2-d images"
    elif isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        why = "the network must end with its 10 logits: remove the softmax (CnnViz applies it for the bars)"
    elif isinstance(m, nn.RNNBase):
        why = "recurrent layer: not a feed-forward layer"
    else:
        why = "not in the supported set"
    raise _Unsupported(why)


# ---------------------------------------------------------------------------------------------------------
# 4-5: probe, compare, copy


def _probe_model(model: nn.Module, target: str, probe: torch.Tensor) -> torch.Tensor:
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None and first_conv.in_channels != 1:
        raise CnnvizError(f"{target} expects {first_conv.in_channels} input channels; CnnViz networks read one "
                          f"grey 28x28 image (1x1x28x28)")
    try:
        with torch.no_grad():
            output = model(probe[:1])
    except Exception as exc:
        raise CnnvizError(f"{target} does not accept a 1x1x28x28 input (a 28x28 grey digit, as MNIST): running it "
                          f"raised {type(exc).__name__}: {_first_lines(str(exc))}. CnnViz shows networks for "
                          f"28x28 inputs only (was it built for another size, e.g. 32x32?)") from exc
    if not isinstance(output, torch.Tensor):
        raise CnnvizError(f"{target} returns a {type(output).__name__}, not one tensor of 10 logits")
    if output.numel() != 10:
        raise CnnvizError(f"{target} gives {output.numel()} outputs (shape {tuple(output.shape)}) for one 28x28 "
                          f"image; CnnViz needs exactly 10 (one logit per digit)")
    with torch.no_grad():
        return model(probe).reshape(len(probe), -1)


def _run_in_order(leaves: list[tuple[str, nn.Module]], x: torch.Tensor) -> torch.Tensor | None:
    """The leaves applied in order (a flatten inserted before the first Linear on maps), or None if that
    fails (then the model's forward is not its modules in order)."""
    try:
        with torch.no_grad():
            for _, module in leaves:
                if isinstance(module, nn.Linear) and x.dim() > 2:
                    x = x.flatten(1)
                x = module(x)
        return x.reshape(len(x), -1)
    except Exception:
        return None


def _check_same(reference: torch.Tensor, other: torch.Tensor | None, message: str) -> float:
    if other is None or other.shape != reference.shape:
        raise CnnvizError(message)
    scale = max(1.0, float(reference.abs().max()))
    difference = float((reference - other).abs().max())
    if not difference <= TOLERANCE * scale:
        raise CnnvizError(f"{message} (largest difference {difference:.3g})")
    return difference


def _copy_weights(layers: list[tuple[Layer, tuple[str, nn.Module]]], checked: tuple[Layer, ...],
                  converted: ConvNet) -> None:
    """Copy each user module's tensors into the matching ``converted.body[i]`` (check_layers may have
    inserted Flatten layers, which hold nothing)."""
    j = 0
    with torch.no_grad():
        for layer, (name, module) in layers:
            while checked[j] != layer:
                if checked[j].op != "flat":
                    raise CnnvizError(f"internal error aligning {name} with the network's layers")
                j += 1
            target = converted.body[j]
            if layer.op in ("conv", "fc"):
                target.weight.copy_(module.weight)
                if module.bias is not None:
                    target.bias.copy_(module.bias)
                else:
                    target.bias.zero_()
            elif layer.op == "bn":
                target.weight.copy_(module.weight)
                target.bias.copy_(module.bias)
                target.running_mean.copy_(module.running_mean)
                # ConvNet's batch norms use eps 1e-5: keep var + eps (what inference divides by) unchanged.
                var = module.running_var + (module.eps - CNNVIZ_BN_EPS)
                if (var < 0).any():
                    raise CnnvizError(f"{name}: eps {module.eps} cannot be converted (CnnViz uses {CNNVIZ_BN_EPS})")
                target.running_var.copy_(var)
            j += 1


def _sha256(path: Path) -> str:
    from .weights import sha256_of

    return sha256_of(path)


def _first_lines(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

