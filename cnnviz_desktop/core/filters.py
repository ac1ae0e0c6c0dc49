"""Convolution filters of a model as numpy arrays, grouped the way the filters view shows them."""

from __future__ import annotations

import numpy as np


def conv_filters(model) -> dict[str, np.ndarray]:
    """conv layer name -> (Cout, Cin, k, k) float32 weights (a copy) of a weights.LoadedModel, read through
    the layer description's weight_module (no assumption about the module's attribute names beyond that
    index into its sequential body). Empty when the model has none."""
    from .architecture import describe

    body = getattr(getattr(model, "model", None), "body", None)
    out: dict[str, np.ndarray] = {}
    if body is None:
        return out
    for spec in describe(model.arch):
        if spec.kind == "conv" and spec.weight_module is not None:
            weight = getattr(body[spec.weight_module], "weight", None)
            if weight is not None:
                out[spec.name] = weight.detach().cpu().numpy().astype(np.float32, copy=True)
    return out


def signed_scale(filters: dict[str, np.ndarray]) -> float:
    """One colour scale for every filter shown: the largest |weight| (1.0 when there are none)."""
    values = [float(np.abs(w).max()) for w in filters.values() if w.size]
    return max(values) if values else 1.0
