"""Training and evaluation (deterministic for a seed), with augmentation suited to hand drawing."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import weights
from .mnist import Dataset
from .networks import Architecture, ConvNet
from .preprocess import normalise


@dataclass(frozen=True)
class Augmentation:
    """Random affine (rotation, scale, shift) and stroke thickness changes, applied per image."""

    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift_px: float = 1.5
    thicken_p: float = 0.15
    thin_p: float = 0.05

    def describe(self) -> dict:
        return {
            "rotation_deg": self.rotate_deg, "scale": list(self.scale), "shift_px": self.shift_px,
            "thicken_probability": self.thicken_p, "thin_probability": self.thin_p,
        }

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """x: (B, 1, 28, 28) in [0, 1] -> augmented batch, same shape."""
        b = x.shape[0]
        u = torch.rand(b, 6, generator=gen)
        # Stroke thickness: a 3x3 dilation thickens, an erosion thins (skipped if it would erase the digit).
        thick = u[:, 0] < self.thicken_p
        thin = (u[:, 0] >= self.thicken_p) & (u[:, 0] < self.thicken_p + self.thin_p)
        if thick.any():
            dilated = F.max_pool2d(x, 3, stride=1, padding=1)
            x = torch.where(thick[:, None, None, None], 0.5 * x + 0.5 * dilated, x)
        if thin.any():
            eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
            keep = eroded.flatten(1).sum(1) > 0.35 * x.flatten(1).sum(1)
            x = torch.where((thin & keep)[:, None, None, None], 0.5 * x + 0.5 * eroded, x)
        angle = (u[:, 1] * 2 - 1) * math.radians(self.rotate_deg)
        scale = self.scale[0] + u[:, 2] * (self.scale[1] - self.scale[0])
        tx = (u[:, 3] * 2 - 1) * self.shift_px * 2 / 28
        ty = (u[:, 4] * 2 - 1) * self.shift_px * 2 / 28
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass
class EpochStats:
    epoch: int
    loss: float
    accuracy: float
    seconds: float


def set_determinism(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class StepResult:
    """One optimiser step of a :class:`TrainingRun`.

    epoch, step: 1-based epoch and step within it; loss, correct, size: the batch's mean cross-entropy
    (nats), number of correct predictions and number of images; lr: the learning rate the step used;
    epoch_end: the step was the last of its epoch (then ``epoch_stats`` holds the epoch's stats).
    """

    epoch: int
    step: int
    loss: float
    correct: int
    size: int
    lr: float
    epoch_end: bool
    epoch_stats: EpochStats | None = None


def blank_paper_activation(model: ConvNet) -> torch.Tensor:
    """The Grad-CAM layer's activation (architecture.last_conv_layer: the family's last pooling) for a blank
    sheet of paper.

    Shape (1, C, h, w). Training with ``loss + w * mean(this)`` (``blank_paper`` in :class:`TrainingRun` and
    ``fit``, ``--blank-paper-penalty`` in cnnviz-train) makes the last conv block silent where nothing is
    drawn, so that Grad-CAM's evidence can only come from the ink and its surroundings: 'no ink here' stops
    being a feature (the tiny network otherwise learns a 'blank paper' channel; see bench_inkshare.py).
    """
    x = torch.full((1, 1, 28, 28), (0.0 - 0.1307) / 0.3081)
    from .architecture import describe, last_conv_layer

    cam_layer = last_conv_layer(describe(model.arch))
    for module in model.body[:cam_layer.module + 1]:
        x = module(x)
    return x


class TrainingRun:
    """fit's training loop, one optimiser step at a time (the in-app trainer drives it step by step).

    Same seed, data and settings give exactly the same weights as :func:`fit` (which uses this class):
    the random streams are drawn in the same order (model init, then per epoch one permutation, then the
    augmentation of each batch). Bitwise equality also needs the same torch thread count (reductions are
    split per thread). ``init_state``: a state_dict to start from instead of the random initialisation
    (the random init is still drawn first, so the data order and augmentation stay those of the seed).
    Calls :func:`set_determinism`, which is process-wide.

    Fine-tuning on extra images (the class's own labelled drawings): ``extra_images`` (N, 28, 28) in [0, 1]
    (float) or 0-255 (uint8), the network input as the analysis engine sees it, with ``extra_labels`` (N,)
    0-9, are appended to the training images: each epoch's permutation runs over all n + N images, so every
    drawing is in exactly one batch per epoch, like an MNIST image (deterministic for the seed), and gets the
    same augmentation. ``extra_weight`` w (1-1000) is a per-sample loss weight: a batch's loss is
    ``sum(w_i * ce_i) / sum(w_i)`` with w_i = 1 for MNIST images and w for drawings, so a drawing counts as
    w MNIST images in the gradient. A weight rather than oversampling by w, because w copies of each drawing
    would lengthen every epoch (1000 copies of 1000 drawings: 17x MNIST) and make the progress/ETA lie.
    Without extras (None or N = 0) the loop, the random streams and so the weights are bit-identical to a
    run without the option (the plain mean cross-entropy is used).
    """

    def __init__(self, arch: Architecture, train: Dataset, *, epochs: int = 40, seed: int = 0, batch_size: int = 128,
                 lr: float = 1e-2, augmentation: Augmentation | None = Augmentation(),
                 init_state: dict | None = None, blank_paper: float = 0.0,
                 extra_images: np.ndarray | None = None, extra_labels: np.ndarray | None = None,
                 extra_weight: float = 1.0) -> None:
        from .trainer import check_extras  # torch-free (the trainer validates settings before importing torch)

        extras = check_extras(extra_images, extra_labels, extra_weight)
        if not (math.isfinite(blank_paper) and 0.0 <= blank_paper <= 100.0):
            raise ValueError(f"the blank-paper penalty must be 0-100, got {blank_paper}")
        self.blank_paper = float(blank_paper)
        if epochs < 1 or batch_size < 1 or not (math.isfinite(lr) and lr > 0) or len(train) == 0:
            raise ValueError(f"fit needs epochs >= 1, batch_size >= 1, a finite lr > 0 and some images; got "
                             f"epochs={epochs}, batch_size={batch_size}, lr={lr}, {len(train)} images")
        self.arch, self.epochs, self.seed, self.batch_size, self.lr = arch, epochs, seed, batch_size, lr
        self.augmentation = augmentation
        self.gen = set_determinism(seed)
        self.model = ConvNet(arch)
        if init_state is not None:
            missing, unexpected = self.model.load_state_dict({k: torch.as_tensor(v) for k, v in init_state.items()},
                                                             strict=False)
            if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
                raise ValueError(f"starting weights do not fit {arch.name!r}: missing {missing}, "
                                 f"unexpected {unexpected}")
        self.images = torch.from_numpy(train.images.astype(np.float32) / 255.0)[:, None]
        self.labels = torch.from_numpy(train.labels)
        self.mnist_count = int(len(self.labels))
        self.extra_count = 0
        self.extra_weight = float(extra_weight)
        self.sample_weights: torch.Tensor | None = None  # None: every image counts once (plain mean loss)
        if extras is not None:
            images, labels = extras
            self.extra_count = int(len(labels))
            self.images = torch.cat([self.images, torch.from_numpy(images)[:, None]])
            self.labels = torch.cat([self.labels, torch.from_numpy(labels.astype(self.labels.numpy().dtype))])
            self.sample_weights = torch.cat([torch.ones(self.mnist_count),
                                             torch.full((self.extra_count,), self.extra_weight)])
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.steps_per_epoch = math.ceil(len(self.labels) / batch_size)
        self.total_steps = epochs * self.steps_per_epoch
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr, total_steps=self.total_steps)
        self.history: list[EpochStats] = []
        self.epoch = 0  # the epoch in progress (0 before the first step)
        self.step_in_epoch = 0  # steps done in the epoch in progress
        self.steps_done = 0
        self._order: torch.Tensor | None = None
        self._epoch_start = 0.0
        self._total_loss, self._correct, self._seen = 0.0, 0, 0

    @property
    def done(self) -> bool:
        """True once every planned step has run."""
        return self.steps_done >= self.total_steps

    @property
    def mid_epoch(self) -> bool:
        """True between the first and the last step of an epoch."""
        return self._order is not None

    @property
    def images_count(self) -> int:
        return int(len(self.labels))

    @property
    def current_lr(self) -> float:
        """The learning rate the next step will use."""
        return float(self.opt.param_groups[0]["lr"])

    def running_stats(self) -> tuple[float, float]:
        """(mean loss, accuracy) over the steps of the epoch in progress (0, 0 before its first step)."""
        return (self._total_loss / self._seen, self._correct / self._seen) if self._seen else (0.0, 0.0)

    def step(self) -> StepResult:
        """Run one optimiser step on the next batch. Raises RuntimeError when the run is done."""
        if self.done:
            raise RuntimeError("the training run is complete")
        if self._order is None:
            self.epoch += 1
            self.step_in_epoch = 0
            self._epoch_start = time.perf_counter()
            self.model.train()
            self._order = torch.randperm(len(self.labels), generator=self.gen)
            self._total_loss, self._correct, self._seen = 0.0, 0, 0
        batch = self.step_in_epoch
        idx = self._order[batch * self.batch_size:(batch + 1) * self.batch_size]
        x = self.images[idx]
        if self.augmentation is not None:
            x = self.augmentation(x, self.gen)
        x = (x - 0.1307) / 0.3081
        y = self.labels[idx]
        lr = self.current_lr
        logits = self.model(x)
        if self.sample_weights is None:
            loss = F.cross_entropy(logits, y)
        else:
            w = self.sample_weights[idx]
            loss = (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
        objective = loss
        if self.blank_paper > 0.0:
            objective = loss + self.blank_paper * blank_paper_activation(self.model).mean()
        self.opt.zero_grad(set_to_none=True)
        objective.backward()
        self.opt.step()
        self.sched.step()
        loss_value = float(loss.detach())
        correct = int((logits.argmax(1) == y).sum())
        self._total_loss += loss_value * len(idx)
        self._correct += correct
        self._seen += len(idx)
        self.step_in_epoch += 1
        self.steps_done += 1
        stats = None
        if self.step_in_epoch == self.steps_per_epoch:
            stats = EpochStats(self.epoch, self._total_loss / self._seen, self._correct / self._seen,
                               time.perf_counter() - self._epoch_start)
            self.history.append(stats)
            self.model.eval()
            self._order = None
        return StepResult(self.epoch, batch + 1, loss_value, correct, len(idx), lr, stats is not None, stats)

    def card(self, stats: EpochStats | None = None, extra: dict | None = None) -> dict:
        """The model card fit writes after an epoch (``stats``: that epoch; default: the last complete one)."""
        stats = stats if stats is not None else (self.history[-1] if self.history else None)
        loss, accuracy = (stats.loss, stats.accuracy) if stats is not None else self.running_stats()
        return {
            "name": self.arch.name,
            "architecture": self.arch.to_dict(),
            "parameters": self.model.parameter_count(),
            "training_data": {"source": "MNIST training IDX files", "images": self.mnist_count,
                              **({"labelled_drawings": self.extra_count, "drawings_weight": self.extra_weight}
                                 if self.extra_count else {})},
            "augmentation": self.augmentation.describe() if self.augmentation else None,
            "epochs": stats.epoch if stats is not None else 0,
            "epochs_planned": self.epochs,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "optimizer": f"Adam, one-cycle lr max {self.lr}",
            **({"blank_paper_penalty": self.blank_paper} if self.blank_paper > 0.0 else {}),
            "final_train_loss": round(loss, 5),
            "final_train_accuracy": round(accuracy, 5),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            **(extra or {}),
        }


def fit(
    arch: Architecture,
    train: Dataset,
    out: Path,
    *,
    epochs: int = 40,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-2,
    augmentation: Augmentation | None = Augmentation(),
    on_batch: Callable[[int, int, float, float], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    card_extra: dict | None = None,
    blank_paper: float = 0.0,
) -> tuple[ConvNet, list[EpochStats]]:
    """Train ``arch`` on ``train`` and checkpoint (weights + card) to ``out`` after every epoch.

    Deterministic for a seed on one machine (and torch thread count). A KeyboardInterrupt propagates after
    the last complete epoch's checkpoint has been written; the partial epoch is discarded.
    ``blank_paper``: weight of the blank-paper penalty (see :func:`blank_paper_activation`; 0: off).
    """
    run = TrainingRun(arch, train, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                      augmentation=augmentation, blank_paper=blank_paper)
    while not run.done:
        result = run.step()
        if on_batch is not None:
            on_batch(result.epoch, result.step, *run.running_stats())
        if result.epoch_end:
            weights.save(run.model, out, run.card(result.epoch_stats, card_extra))
            if on_epoch is not None:
                on_epoch(result.epoch_stats)
    return run.model, run.history


def drawing_input(record) -> np.ndarray | None:
    """The network's (28, 28) float32 input in [0, 1] for a saved drawing (core.history.DrawingRecord), exactly
    as the analysis engine makes it (strokes redrawn when the canvas has ink and strokes, else the canvas
    preprocessed); None for an empty canvas."""
    from .preprocess import INK_THRESHOLD, preprocess
    from .strokes import rasterise

    pixels = np.asarray(record.canvas)
    prep = None
    if record.strokes and bool((pixels > INK_THRESHOLD).any()):
        prep = rasterise(record.strokes, pixels.shape)
    if prep is None:
        prep = preprocess(pixels)
    return None if prep is None else np.asarray(prep.image, dtype=np.float32)


def labelled_drawings(history) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The drawings of an open core.history.History that have a true label, as network inputs.

    Returns (images (N, 28, 28) float32 in [0, 1], labels (N,) int64, ids (N) of the records used), oldest
    first; drawings with an empty canvas are skipped. Raises CnnvizError if the database cannot be read."""
    ids = history.ids("labelled", order="id")
    images, labels, used = [], [], []
    for record in history.iter_records(ids):
        image = drawing_input(record)
        if image is None or record.label is None:
            continue
        images.append(image)
        labels.append(record.label)
        used.append(int(record.id))
    if not images:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64), []
    return np.stack(images), np.asarray(labels, np.int64), used


@torch.no_grad()
def accuracy_on(model: ConvNet, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> float:
    """Accuracy (0-1) of ``model`` on network inputs ``images`` (N, 28, 28) float in [0, 1] with ``labels``
    (N,); 0.0 for N = 0. Puts the model in eval mode (the caller restores train mode if it needs it)."""
    model.eval()
    images = np.asarray(images, dtype=np.float32)
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(normalise(images[start:start + batch_size]))
        correct += int((logits.argmax(1).numpy() == np.asarray(labels[start:start + batch_size])).sum())
    return correct / len(images) if len(images) else 0.0


@torch.no_grad()
def predict_batches(model: ConvNet, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """images: (N, 28, 28) uint8 MNIST-style -> (N, 10) probabilities (float32)."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = normalise(images[start:start + batch_size].astype(np.float32) / 255.0)
        out.append(torch.softmax(model(x), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def evaluate(model: ConvNet, test: Dataset) -> dict:
    """Accuracy, n and the 10x10 confusion matrix (rows: true digit, columns: predicted)."""
    predicted = predict_batches(model, test.images).argmax(1)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (test.labels, predicted), 1)
    n = int(len(test.labels))
    return {
        "accuracy": float((predicted == test.labels).mean()) if n else 0.0,
        "n": n,
        "confusion_matrix": confusion.tolist(),
    }
