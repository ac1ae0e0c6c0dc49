"""The networks CNNViz visualises (torch modules built from core.architecture's descriptions)."""

from __future__ import annotations

import torch
from torch import nn

from .architecture import (  # noqa: F401  (re-exported: the public names of the network family)
    ARCHITECTURES,
    INPUT_SIZE,
    NUM_CLASSES,
    Architecture,
    LayerKind,
    LayerSpec,
    describe,
    last_conv_layer,
)


class ConvNet(nn.Module):
    """Sequential conv/pool/dense network; ``body`` holds every module in order."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        modules: list[nn.Module] = []
        channels, size = 1, INPUT_SIZE
        for out_channels in arch.conv_channels:
            modules += [nn.Conv2d(channels, out_channels, arch.kernel), nn.ReLU(), nn.MaxPool2d(arch.pool)]
            channels = out_channels
            size = (size - arch.kernel + 1) // arch.pool
            if size < 1:
                raise ValueError(f"architecture {arch.name!r}: too many conv blocks for a 28x28 input")
        modules.append(nn.Flatten())
        features = channels * size * size
        for units in arch.dense_units:
            modules += [nn.Linear(features, units), nn.ReLU()]
            features = units
        modules.append(nn.Linear(features, NUM_CLASSES))
        self.body = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) normalised input -> (B, 10) logits."""
        return self.body(x)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(arch: Architecture | str) -> ConvNet:
    """A fresh, randomly initialised network for an architecture or a shipped architecture name."""
    if isinstance(arch, str):
        arch = ARCHITECTURES[arch]
    return ConvNet(arch)
