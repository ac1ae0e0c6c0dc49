"""Input maximisation: synthesise a 28x28 image that excites a class, a conv channel or one neuron (Qt-free).

Gradient ascent on the input, as in the techniques page the issue cites (and ARCHITECTURE.md section 4):

- The image is an unconstrained parameter ``p`` (1, 1, 28, 28) mapped to [0, 1] by a sigmoid, so every
  step gives a valid image without clipping; it starts from seeded noise around a dark value (MNIST
  is light ink on black), ``sigmoid(init_bias + init_noise * N(0, 1))``.
- Each step rolls the image by a random shift of up to ``jitter`` pixels (both axes, wrap-around),
  normalises it as the network expects, ``(x - 0.1307) / 0.3081``, and takes one Adam step on
  ``-(score) + tv_weight * TV(image)``. TV is the squared total variation (sum over neighbouring pixel
  pairs of the squared difference, beta = 2 in Mahendran and Vedaldi's terms): it favours smooth
  strokes without the staircase that an absolute-value TV leaves. Jitter keeps the image from relying
  on single pixels that exist only at one position.
- The score: a class's LOGIT (a probability target saturates and stops pushing); for a conv or pool
  channel the spatial mean of the channel's map, for one neuron its value. Hidden layers are scored
  BEFORE their activation (after a folded batch norm: the input of the ReLU, tanh, ...; a max pool
  cell after a monotonic activation as the max of its pre-activation window): the activation is
  act(score), so raising the score raises the activation, and a neuron that starts silent still gets
  a gradient. Average and global pools are scored on their output. Any network of the spec language
  works: the body is run module by module up to the layer's last module (batch norms in eval mode,
  dropout the identity).

The model is never changed: no hooks are registered (the analysis worker runs the same module at the
same time), its parameters are not asked for gradients (``torch.autograd.grad`` w.r.t. the input
only, so no ``.grad`` is written), and it must already be in eval mode (a weights.LoadedModel is).
Random numbers come from a local ``torch.Generator``: a fixed seed gives the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .architecture import INPUT_SIZE, NUM_CLASSES, LayerSpec, describe
from .errors import CnnvizError
from .preprocess import MNIST_MEAN, MNIST_STD

OBJECTIVE_KINDS = ("class", "channel", "neuron")
# Ranges the settings accept (the view's spin boxes use the same).
STEPS_RANGE = (1, 5000)
LR_RANGE = (1e-4, 1.0)
TV_RANGE = (0.0, 10.0)
JITTER_RANGE = (0, 6)
INIT_NOISE_RANGE = (0.0, 5.0)
INIT_BIAS_RANGE = (-10.0, 10.0)


@dataclass(frozen=True)
class Objective:
    """What to maximise. kind 'class': ``digit`` 0-9 (its logit); 'channel': the mean of ``channel`` of
    conv/pool ``layer``; 'neuron': one neuron, ``layer`` and ``index`` as in ``Session.picked``
    ((c, y, x) for conv/pool maps, (n,) for dense and output layers). Checked against the model by
    :func:`maximise` (the layer must exist and the index be inside it)."""

    kind: str
    digit: int | None = None
    layer: str | None = None
    channel: int | None = None
    index: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVE_KINDS:
            raise CnnvizError(f"unknown objective {self.kind!r}: choose one of {', '.join(OBJECTIVE_KINDS)}")
        if self.kind == "class":
            if not _is_int(self.digit) or not 0 <= int(self.digit) < NUM_CLASSES:
                raise CnnvizError(f"a class objective needs a digit 0-9, got {self.digit!r}")
        elif not isinstance(self.layer, str) or not self.layer:
            raise CnnvizError(f"a {self.kind} objective needs a layer name (e.g. 'conv1')")
        if self.kind == "channel" and (not _is_int(self.channel) or int(self.channel) < 0):
            raise CnnvizError(f"a channel objective needs a channel number (0 or more), got {self.channel!r}")
        if self.kind == "neuron":
            index = tuple(self.index) if isinstance(self.index, (tuple, list)) else None
            if not index or not all(_is_int(i) and int(i) >= 0 for i in index):
                raise CnnvizError(f"a neuron objective needs an index of whole numbers 0 or more, got {self.index!r}")
            object.__setattr__(self, "index", tuple(int(i) for i in index))

    @classmethod
    def for_class(cls, digit: int) -> Objective:
        return cls("class", digit=digit)

    @classmethod
    def for_channel(cls, layer: str, channel: int) -> Objective:
        return cls("channel", layer=layer, channel=channel)

    @classmethod
    def for_neuron(cls, layer: str, index: tuple[int, ...]) -> Objective:
        return cls("neuron", layer=layer, index=tuple(index))

    def label(self) -> str:
        """In words, for titles: 'digit 3', 'conv2 channel 1', 'dense1 neuron (5,)'."""
        if self.kind == "class":
            return f"digit {self.digit}"
        if self.kind == "channel":
            return f"{self.layer} channel {self.channel}"
        return f"{self.layer} neuron {self.index}"


@dataclass(frozen=True)
class MaxSettings:
    """steps: Adam steps; lr: Adam learning rate (on the pre-sigmoid parameter); tv_weight: weight of
    the squared total variation (0 turns it off); jitter: largest random shift per step, pixels;
    seed: the start noise and jitter's random numbers; init_bias, init_noise: the start parameter is
    init_bias + init_noise * N(0, 1) (sigmoid(-2) = 0.12: dark, like MNIST's paper).
    Invalid values raise CnnvizError naming the field and its range."""

    steps: int = 300
    lr: float = 0.05
    tv_weight: float = 0.1
    jitter: int = 2
    seed: int = 0
    init_bias: float = -2.0
    init_noise: float = 0.5

    def __post_init__(self) -> None:
        for name, (low, high) in (("steps", STEPS_RANGE), ("jitter", JITTER_RANGE)):
            value = getattr(self, name)
            if not _is_int(value) or not low <= int(value) <= high:
                raise CnnvizError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not _is_int(self.seed) or int(self.seed) < 0:
            raise CnnvizError(f"seed must be a whole number 0 or more, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        for name, (low, high) in (("lr", LR_RANGE), ("tv_weight", TV_RANGE), ("init_bias", INIT_BIAS_RANGE),
                                  ("init_noise", INIT_NOISE_RANGE)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not ok or not math.isfinite(float(value)) or not low <= float(value) <= high:
                raise CnnvizError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True)
class MaxResult:
    """A maximisation's state (final, or partial while it runs).

    image01: (28, 28) float32 in [0, 1], light on dark like the network's input.
    scores: (n,) float32, the objective's score at each step done (a class LOGIT; a hidden layer's
        pre-ReLU value), on that step's jittered image.
    tv: (n,) float32, the (unweighted) squared total variation of the image at each step.
    probs: (10,) float32, the network's probabilities for ``image01`` (not jittered).
    score, activation: the objective on ``image01``: its score and its activation (read after the
        layer's ReLU / pool, as the scene shows it: the channel's mean activation, the neuron's value;
        the logit for a class or an output neuron).
    start_score, start_activation: the same on the start noise.
    step, steps: steps done and planned; done: True for the final result.
    """

    objective: Objective
    settings: MaxSettings
    image01: np.ndarray
    scores: np.ndarray
    tv: np.ndarray
    probs: np.ndarray
    score: float
    activation: float
    start_score: float
    start_activation: float
    step: int
    steps: int
    done: bool = False

    @property
    def target_probability(self) -> float | None:
        """The probability of the objective's digit (class objectives and output neurons), else None."""
        digit = target_digit(self.objective)
        return None if digit is None else float(self.probs[digit])


@dataclass(frozen=True)
class Evaluation:
    """An objective measured on one image: score (logit or pre-ReLU value), activation (what the scene
    shows for that neuron or channel: after the ReLU / pool; the logit for classes), probs (10,) float32."""

    score: float
    activation: float
    probs: np.ndarray = field(repr=False)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def target_digit(objective: Objective) -> int | None:
    """The digit an objective is about (a class, or a neuron of the output layer), else None."""
    if objective.kind == "class":
        return int(objective.digit)
    if objective.kind == "neuron" and objective.layer == "output":
        return int(objective.index[0])
    return None


def _module_of(model: Any) -> tuple[nn.Module, list[LayerSpec]]:
    """(torch module with a sequential ``body``, its layer descriptions) of a LoadedModel or a ConvNet."""
    net = getattr(model, "model", model)
    body = getattr(net, "body", None)
    arch = getattr(net, "arch", None) or getattr(model, "arch", None)
    if not isinstance(net, nn.Module) or body is None or arch is None:
        raise CnnvizError("input maximisation needs one of the app's networks (a ConvNet or a loaded weight file)")
    return net, describe(arch)


@dataclass(frozen=True)
class _Target:
    """An objective checked against a model: the layer it reads and the objective."""

    spec: LayerSpec
    objective: Objective


def _resolve(objective: Objective, specs: list[LayerSpec]) -> _Target:
    by_name = {s.name: s for s in specs}
    if objective.kind == "class":
        return _Target(by_name["output"], objective)
    layer = objective.layer
    spec = by_name.get(layer)
    if spec is None:
        raise CnnvizError(f"this network has no layer {layer!r}; its layers are "
                          f"{', '.join(s.name for s in specs if s.kind != 'input')}")
    if spec.kind == "input":
        raise CnnvizError("an input pixel is not something the network computes: pick a neuron of a conv, pool, "
                          "dense or output layer")
    if objective.kind == "channel":
        if spec.kind not in ("conv", "pool"):
            raise CnnvizError(f"{layer} is a {spec.kind} layer: a channel objective needs a conv or pool layer "
                              f"(use a neuron objective for {layer})")
        if objective.channel >= spec.shape[0]:
            raise CnnvizError(f"{layer} has channels 0-{spec.shape[0] - 1}, not {objective.channel}")
    else:
        if len(objective.index) != len(spec.shape) or any(i >= n for i, n in zip(objective.index, spec.shape)):
            raise CnnvizError(f"neuron {objective.index} is outside {layer}, whose shape is {spec.shape}")
    return _Target(spec, objective)


def _score_tensors(net: nn.Module, target: _Target, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``net.body`` on normalised x (B, 1, 28, 28) up to the target layer (no hooks). Returns the
    objective's score (B,) (a logit, or a hidden layer's pre-ReLU value: see the module docstring) and
    its activation (B,) (the same read from the layer's output, i.e. after its ReLU / pool)."""
    body = net.body
    spec = target.spec
    stop = len(body) - 1 if spec.kind == "output" else spec.module
    inputs = []
    h = x
    for i in range(stop + 1):
        inputs.append(h)
        h = body[i](h)
    values = h
    if spec.kind != "output":
        if isinstance(body[stop], _ACTIVATIONS):  # conv and dense layers: before their activation
            values = inputs[stop]
        elif isinstance(body[stop], nn.MaxPool2d):
            # A max pool after a monotonic activation (Dropout between is the identity in eval mode):
            # the max of the pre-activation window, as act(max) = max(act).
            before = stop - 1
            while before >= 0 and isinstance(body[before], nn.Dropout):
                before -= 1
            if before >= 0 and isinstance(body[before], _MONOTONIC):
                values = body[stop](inputs[before])
    return _read(target.objective, values), _read(target.objective, h)


# Activations a hidden layer is scored before (raising the pre-activation raises every one of them but GELU,
# which still has a gradient everywhere); max pools read through the monotonic ones only.
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU)
_MONOTONIC = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)


def _read(obj: Objective, values: torch.Tensor) -> torch.Tensor:
    if obj.kind == "class":
        return values[:, obj.digit]
    if obj.kind == "channel":
        return values[:, obj.channel].mean(dim=(-2, -1))
    return values[(slice(None), *obj.index)]


def _normalised(image01: torch.Tensor) -> torch.Tensor:
    return (image01 - MNIST_MEAN) / MNIST_STD


def total_variation(image01: torch.Tensor) -> torch.Tensor:
    """Squared total variation of (..., H, W): sum of squared differences of vertical and horizontal
    neighbours (a scalar tensor; 0 for a flat image)."""
    dy = image01[..., 1:, :] - image01[..., :-1, :]
    dx = image01[..., :, 1:] - image01[..., :, :-1]
    return (dy * dy).sum() + (dx * dx).sum()


def evaluate(model: Any, objective: Objective, image01: np.ndarray) -> Evaluation:
    """The objective on one image (28, 28) in [0, 1] (no jitter): score, activation and the network's
    probabilities. ``model``: a weights.LoadedModel or a ConvNet in eval mode."""
    net, specs = _module_of(model)
    target = _resolve(objective, specs)
    image = np.asarray(image01, dtype=np.float32)
    if image.shape != (INPUT_SIZE, INPUT_SIZE):
        raise CnnvizError(f"an image to evaluate must be {INPUT_SIZE}x{INPUT_SIZE}, got shape {image.shape}")
    return _evaluate(net, target, torch.from_numpy(np.clip(image, 0.0, 1.0))[None, None])


def _evaluate(net: nn.Module, target: _Target, image01: torch.Tensor) -> Evaluation:
    with torch.no_grad():
        x = _normalised(image01)
        score, activation = _score_tensors(net, target, x)
        logits = net(x)
        probs = torch.softmax(logits, dim=1)[0].numpy().astype(np.float32)
    return Evaluation(float(score[0]), float(activation[0]), probs)


def maximise(model: Any, objective: Objective, settings: MaxSettings | None = None, ctx: Any = None,
             every: int = 10) -> MaxResult:
    """Synthesise an image that maximises ``objective`` (see the module docstring for the method).

    model: a weights.LoadedModel or a ConvNet (eval mode; never modified). settings: MaxSettings
    (defaults if None). ctx: a core.tasks.TaskContext or None; every ``every`` steps (and after the
    last) ``ctx.progress(step / steps, partial MaxResult)`` is called, which also cancels (raises
    core.tasks.Cancelled) once the task was cancelled. Returns the final MaxResult (done=True).
    Deterministic for a fixed ``settings.seed`` on one machine and thread count.
    """
    settings = settings if settings is not None else MaxSettings()
    if not isinstance(settings, MaxSettings):
        raise CnnvizError("settings must be a MaxSettings")
    if not isinstance(objective, Objective):
        raise CnnvizError("objective must be an Objective (class, channel or neuron)")
    if not _is_int(every) or every < 1:
        raise CnnvizError(f"every must be a whole number 1 or more, got {every!r}")
    net, specs = _module_of(model)
    if net.training:
        raise CnnvizError("the network must be in eval mode for input maximisation")
    target = _resolve(objective, specs)
    gen = torch.Generator().manual_seed(settings.seed)
    shape = (1, 1, INPUT_SIZE, INPUT_SIZE)
    param = (settings.init_bias + settings.init_noise * torch.randn(shape, generator=gen)).requires_grad_(True)
    optimiser = torch.optim.Adam([param], lr=settings.lr)
    start = _evaluate(net, target, torch.sigmoid(param.detach()))
    steps, jitter = settings.steps, settings.jitter
    scores = np.zeros(steps, dtype=np.float32)
    tvs = np.zeros(steps, dtype=np.float32)

    def snapshot(done_steps: int, final: bool) -> MaxResult:
        image = torch.sigmoid(param.detach())
        now = _evaluate(net, target, image)
        return MaxResult(objective, settings, image[0, 0].numpy().astype(np.float32, copy=True),
                         scores[:done_steps].copy(), tvs[:done_steps].copy(), now.probs, now.score,
                         now.activation, start.score, start.activation, done_steps, steps, final)

    if ctx is not None:
        ctx.check()
    for step in range(steps):
        if jitter:
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
        else:
            dy = dx = 0
        with torch.enable_grad():
            image = torch.sigmoid(param)
            shifted = torch.roll(image, shifts=(dy, dx), dims=(2, 3)) if (dy or dx) else image
            score, _ = _score_tensors(net, target, _normalised(shifted))
            tv = total_variation(image)
            loss = -score.sum() + settings.tv_weight * tv
            (grad,) = torch.autograd.grad(loss, [param])
        param.grad = grad
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        scores[step] = float(score.detach()[0])
        tvs[step] = float(tv.detach())
        done = step + 1
        if ctx is not None:
            if done % every == 0 and done < steps:
                ctx.progress(done / steps, snapshot(done, False))
            else:
                ctx.check()
    result = snapshot(steps, True)
    if ctx is not None:
        ctx.progress(1.0, result)
    return result


def to_canvas(image01: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A (28, 28) image in [0, 1] resampled to a canvas of ``shape`` (rows, cols) (area-averaged when
    smaller, bilinear when larger), float32 in [0, 1]; the same array values when the shape is 28x28."""
    image = np.clip(np.asarray(image01, dtype=np.float32), 0.0, 1.0)
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 1 or cols < 1:
        raise CnnvizError(f"a canvas shape must be positive, got {shape}")
    if image.shape == (rows, cols):
        return image.copy()
    t = torch.from_numpy(np.ascontiguousarray(image))[None, None]
    if rows <= image.shape[0] and cols <= image.shape[1]:
        out = F.interpolate(t, size=(rows, cols), mode="area")
    else:
        out = F.interpolate(t, size=(rows, cols), mode="bilinear", align_corners=False)
    return np.clip(out[0, 0].numpy(), 0.0, 1.0).astype(np.float32)
