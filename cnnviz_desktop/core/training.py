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
) -> tuple[ConvNet, list[EpochStats]]:
    """Train ``arch`` on ``train`` and checkpoint (weights + card) to ``out`` after every epoch.

    Deterministic for a seed on one machine. A KeyboardInterrupt propagates after the last complete
    epoch's checkpoint has been written; the partial epoch is discarded.
    """
    if epochs < 1 or batch_size < 1 or not (math.isfinite(lr) and lr > 0) or len(train) == 0:
        raise ValueError(f"fit needs epochs >= 1, batch_size >= 1, a finite lr > 0 and some images; got "
                         f"epochs={epochs}, batch_size={batch_size}, lr={lr}, {len(train)} images")
    gen = set_determinism(seed)
    model = ConvNet(arch)
    images = torch.from_numpy(train.images.astype(np.float32) / 255.0)[:, None]
    labels = torch.from_numpy(train.labels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(labels) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    history: list[EpochStats] = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        total_loss, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            x = images[idx]
            if augmentation is not None:
                x = augmentation(x, gen)
            x = (x - 0.1307) / 0.3081
            y = labels[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
            if on_batch is not None:
                on_batch(epoch, step + 1, total_loss / seen, correct / seen)
        stats = EpochStats(epoch, total_loss / seen, correct / seen, time.perf_counter() - start)
        history.append(stats)
        model.eval()
        card = {
            "name": arch.name,
            "architecture": arch.to_dict(),
            "parameters": model.parameter_count(),
            "training_data": {"source": "MNIST training IDX files", "images": len(labels)},
            "augmentation": augmentation.describe() if augmentation else None,
            "epochs": epoch,
            "epochs_planned": epochs,
            "seed": seed,
            "batch_size": batch_size,
            "optimizer": f"Adam, one-cycle lr max {lr}",
            "final_train_loss": round(stats.loss, 5),
            "final_train_accuracy": round(stats.accuracy, 5),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            **(card_extra or {}),
        }
        weights.save(model, out, card)
        if on_epoch is not None:
            on_epoch(stats)
    return model, history


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
