"""The networks CNNViz visualises (torch modules built from core.architecture's descriptions)."""

from __future__ import annotations

import torch
from torch import nn

from .architecture import (  # noqa: F401  (re-exported: the public names of the network family)
    ARCHITECTURES,
    INPUT_SIZE,
    NUM_CLASSES,
    Architecture,
    Layer,
    LayerKind,
    LayerSpec,
    conv_size,
    describe,
    last_conv_layer,
    parse_spec,
)


class ConvNet(nn.Module):
    """The sequential network of an :class:`Architecture`: ``body[i]`` is the module of ``arch.layers[i]``."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        modules: list[nn.Module] = []
        channels, size, features, width = 1, INPUT_SIZE, 0, 0
        for layer in arch.layers:
            op = layer.op
            if op == "conv":
                modules.append(nn.Conv2d(channels, layer.out, layer.kernel, layer.stride, layer.padding))
                channels, size = layer.out, conv_size(size, layer.kernel, layer.stride, layer.padding)
                width = channels
                if size < 1:
                    raise ValueError(f"architecture {arch.name!r}: a convolution shrinks the map below 1x1")
            elif op == "max":
                modules.append(nn.MaxPool2d(layer.kernel, layer.stride))
                size = conv_size(size, layer.kernel, layer.stride, 0)
            elif op == "avg":
                modules.append(nn.AvgPool2d(layer.kernel, layer.stride))
                size = conv_size(size, layer.kernel, layer.stride, 0)
            elif op == "gap":
                modules.append(nn.AdaptiveAvgPool2d(1))
                size = 1
            elif op == "flat":
                modules.append(nn.Flatten())
                features = channels * size * size
            elif op == "fc":
                modules.append(nn.Linear(features, layer.out))
                features = width = layer.out
            elif op == "bn":
                modules.append(nn.BatchNorm1d(width) if modules and isinstance(modules[-1], nn.Linear)
                               else nn.BatchNorm2d(width))
            elif op == "drop":
                modules.append(nn.Dropout(layer.p))
            elif op in _ACTIVATIONS:
                modules.append(_ACTIVATIONS[op](layer))
            else:
                raise ValueError(f"architecture {arch.name!r}: unknown layer {op!r}")
            if size < 1:
                raise ValueError(f"architecture {arch.name!r}: a layer shrinks the map below 1x1")
        self.body = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) normalised input -> (B, 10) logits."""
        return self.body(x)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def stored_state(self) -> dict[str, torch.Tensor]:
        """The tensors a weight file holds (architecture.tensor_shapes): the state dict without batch norms'
        integer batch counters."""
        return {k: v for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")}


_ACTIVATIONS = {
    "relu": lambda layer: nn.ReLU(),
    "lrelu": lambda layer: nn.LeakyReLU(layer.p),
    "tanh": lambda layer: nn.Tanh(),
    "sigmoid": lambda layer: nn.Sigmoid(),
    "gelu": lambda layer: nn.GELU(),
}


def build(arch: Architecture | str) -> ConvNet:
    """A fresh, randomly initialised network for an architecture or a shipped architecture name."""
    if isinstance(arch, str):
        arch = ARCHITECTURES[arch]
    return ConvNet(arch)
