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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class AnalysisOptions:
    """top_k: significant edges kept per destination neuron; floor: fraction of the layer's largest
    |contribution| below which an edge is never significant."""

    top_k: int = 3
    floor: float = 0.05


@dataclass(frozen=True)
class AnalysisRequest:
    """request_id: increasing int; pixels: (H, W) float32 canvas in [0, 1] (a private copy);
    target: class to explain (None: the prediction); contrast: class B for 'target rather than B'."""

    request_id: int
    pixels: np.ndarray
    target: int | None = None
    contrast: int | None = None
    options: AnalysisOptions = AnalysisOptions()


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


def freeze(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only so a Snapshot cannot be changed after it is made."""
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array
