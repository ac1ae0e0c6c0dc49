"""A small Python API (no Qt): load a model, analyse a digit image, get an immutable Snapshot.

    >>> from cnnviz_desktop import api
    >>> snap = api.analyse("digit.png")                # or a 2-D array in [0, 1], light digit on dark
    >>> snap.predicted, snap.probabilities.round(3)    # int, (10,) float32
    >>> snap.cam.shape, snap.canvas_cam.shape          # (28, 28) network input, (H, W) your image
    >>> why = api.analyse(image, model="wide", target=4, contrast=9)   # 'why 4 rather than 9'

Everything in the returned Snapshot is documented in :mod:`cnnviz_desktop.core.analysis`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Union

import numpy as np

from .core.analysis import AnalysisOptions, AnalysisRequest, Analyzer, Snapshot
from .core.errors import CnnvizError

__all__ = ["AnalysisOptions", "Analyzer", "Snapshot", "load_model", "analyzer", "analyse", "load_image"]

_lock = threading.Lock()
_analyzers: dict[str, Analyzer] = {}

ImageLike = Union[np.ndarray, str, os.PathLike]


def load_model(name_or_path: str | os.PathLike = "tiny"):
    """A shipped model ('tiny', 'wide') or a .safetensors file written by cnnviz-train -> weights.LoadedModel.

    Raises CnnvizError when the file is missing, corrupt or does not fit its architecture.
    """
    from .core import weights

    return weights.load(name_or_path)


def analyzer(model="tiny") -> Analyzer:
    """An Analyzer for a model name/path (built once and cached), a LoadedModel or an Analyzer."""
    if isinstance(model, Analyzer):
        return model
    if isinstance(model, (str, os.PathLike)):
        key = os.fspath(model)
        with _lock:
            if key not in _analyzers:
                _analyzers[key] = Analyzer(load_model(key))
            return _analyzers[key]
    if hasattr(model, "model") and hasattr(model, "arch"):
        return Analyzer(model)
    raise TypeError(f"model must be a name, a path, a LoadedModel or an Analyzer, not {type(model).__name__}")


def load_image(image: ImageLike) -> np.ndarray:
    """A canvas (H, W) float32 in [0, 1], light digit on dark, from an array or a PNG/JPEG path.

    Arrays: 2-D; integer arrays are read as 0-255 and scaled; float arrays must already be in [0, 1].
    Files: any mode, up to core.images.MAX_IMAGE_PIXELS (longer than MAX_CANVAS_SIDE: reduced); dark-on-light
    images are inverted (see core.images.load_canvas).
    """
    if isinstance(image, (str, os.PathLike)):
        from .core.images import load_canvas

        return load_canvas(Path(image))
    array = np.asarray(image)
    if array.ndim != 2:
        raise CnnvizError(f"an image must be a 2-D (grey) array, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return array.astype(np.float32) / (1.0 if array.dtype == bool else 255.0)
    array = array.astype(np.float32)
    finite = array[np.isfinite(array)]
    if finite.size and (finite.min() < -1e-3 or finite.max() > 1.0 + 1e-3):
        raise CnnvizError(f"float images must hold values in [0, 1] (got {finite.min():.3g} .. {finite.max():.3g}); "
                          "divide 0-255 data by 255")
    return array


def analyse(image: ImageLike, model="tiny", target: int | None = None, contrast: int | None = None,
            options: AnalysisOptions | None = None, request_id: int = 0) -> Snapshot:
    """Analyse one digit image: prediction, signed Grad-CAM / HiResCAM maps, connection contributions.

    image: a 2-D array (any size, [0, 1], light digit on dark; uint8 0-255 accepted) or a PNG/JPEG path.
    model: 'tiny' | 'wide' | a weight file path | a LoadedModel | an Analyzer.
    target: class whose LOGIT Grad-CAM explains (None: the predicted class);
    contrast: class B to explain 'target rather than B' (score = logit[target] - logit[B]).
    Returns a read-only Snapshot: probabilities (10,), predicted, cam / hirescam (28, 28) on the
    network input, canvas_cam (H, W) on the image's own grid, cam_channels (C, 28, 28),
    activations / contributions / significant per layer, timings in ms. A blank image gives
    snapshot.empty == True with all-zero maps.
    """
    canvas = load_image(image)
    request = AnalysisRequest(request_id, canvas, target=target, contrast=contrast,
                              options=options or AnalysisOptions())
    return analyzer(model).analyse(request)
