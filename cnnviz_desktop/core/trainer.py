"""The in-app trainer: a child PROCESS that trains a network step by step and streams stats and weights (Qt-free).

Why a process: torch's thread count and deterministic mode are process-wide, so training in a thread of the GUI
process would fight the analysis worker; a process also cannot freeze the window. The child uses one torch thread
(this machine class has 2 cores shared with the GUI and the worker) and :class:`~.training.TrainingRun`, fit's own
loop, so the same seed and settings give the same weights as ``OMP_NUM_THREADS=1 cnnviz-train fit``.

Protocol (one duplex :func:`multiprocessing.Pipe`, spawn context; every item a ``(kind, payload)`` tuple):

Commands (parent -> child): ``("start", TrainSettings)`` once, then ``("pause", None)``, ``("resume", None)``,
``("step_batch", None)`` (one step, then paused), ``("step_epoch", None)`` (to the end of the epoch in progress,
then paused), ``("stop", None)`` (end the run: mid-epoch, the weights go back to the last complete epoch if there
is one), ``("save", {"path": str, "extra": dict})`` and ``("quit", None)``.

Messages (child -> parent), payload a dict:
- ``ready``: images (MNIST training images), drawings (labelled drawings added, 0 if none), test_images,
  steps_per_epoch, total_steps, epochs (data loaded, about to train); before: the accuracy of the starting
  weights, a dict test_accuracy (None without a test subset), test_n, drawings_accuracy (None without
  drawings), drawings_n.
- ``state``: state ('running' | 'paused' | 'stopped').
- ``batches``: points: list of (step, epoch, loss_smoothed, accuracy_smoothed, lr) since the last message;
  images_per_s (over the last few seconds of training), progress (0..1), eta_s, epoch, step_in_epoch.
  Sent at most every ``stats_interval_s``.
- ``epoch``: epoch, loss, accuracy (train, running over the epoch), test_accuracy, test_n, drawings_accuracy
  (None without drawings), drawings_n, seconds. The drawings' accuracy is measured on ALL the added drawings,
  which are also trained on: it shows whether they were learned (memorised), not how new drawings would fare.
- ``weights``: state (dict name -> float32 numpy array, ``ConvNet.state_dict`` names), arch (dict), epoch
  (complete epochs), steps, final (bool), note (str). Sent at most every ``weights_interval_s`` while
  training, and after every step command, epoch end and stop.
- ``saved``: path, card. ``save_failed``: path, message.
- ``error``: message (one sentence for the user; the run is over, 'stopped' follows).
- ``stopped``: reason ('finished' | 'stopped' | 'error'), note.

Priority: the trainer runs at lower priority (``os.nice(TRAINER_NICE)`` at start, niceness 15 above the
GUI's). On Linux's CFS a niceness 15 process gets about 1/30 of a core against a busy niceness-0 one (weights
1024 vs 36), so the GUI thread, the analysis worker and llvmpipe's render threads get the CPU whenever they need
it, while an idle GUI leaves the trainer both cores' share as before (niceness costs nothing when nobody else
wants the CPU). Set CNNVIZ_TRAINER_NICE=0 to turn it off (bench_training.py compares both).

The child dies with its parent: it is a daemon process (joined at the parent's normal exit), ignores SIGINT
(Ctrl+C in a terminal is for the GUI, which stops it), and a watcher thread exits the child within about half a
second once ``os.getppid()`` changes (the parent was killed); a closed pipe (EOF) ends it too.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .architecture import ARCHITECTURES, Architecture, ArchitectureError, tensor_shapes, validated_architecture
from .errors import CnnvizError

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**63 - 1
SMOOTHING = 0.05  # weight of the newest batch in the smoothed loss/accuracy curves (bias-corrected EMA)
PARENT_POLL_S = 0.5
TRAINER_NICE = 15  # niceness added in the child (see the module docstring); CNNVIZ_TRAINER_NICE overrides


@dataclass(frozen=True)
class TrainSettings:
    """What to train. arch: the network; data_dir: folder with the MNIST IDX files; epochs, lr (one-cycle peak),
    batch_size, augment, seed: as ``cnnviz-train fit``; train_limit: use only the first N training images (None:
    all); test_limit: the fixed test subset (first N t10k images) evaluated after every epoch; init_state: a
    state_dict (numpy arrays) to start from instead of random weights, init_name: where it came from (card);
    weights_interval_s / stats_interval_s: how often weights / batch stats are sent; start_paused: wait for a
    command before the first step. extra_images (N, 28, 28) float in [0, 1] or uint8, extra_labels (N,) 0-9,
    extra_weight (1-1000): the class's labelled drawings as network inputs, mixed into the training data with
    a per-sample loss weight (see :class:`~.training.TrainingRun`); their accuracy is reported before training
    and after every epoch. extra_name: where they came from (model card)."""

    arch: Architecture
    data_dir: str
    epochs: int = 1
    lr: float = 1e-2
    batch_size: int = 128
    augment: bool = True
    seed: int = 0
    train_limit: int | None = None
    test_limit: int = 1000
    init_state: dict[str, np.ndarray] | None = field(default=None, compare=False)
    init_name: str = "random"
    weights_interval_s: float = 0.4
    stats_interval_s: float = 0.1
    start_paused: bool = False
    extra_images: np.ndarray | None = field(default=None, compare=False)
    extra_labels: np.ndarray | None = field(default=None, compare=False)
    extra_weight: float = 20.0
    extra_name: str = ""

    @property
    def extra_count(self) -> int:
        """How many drawings are added (0 if none)."""
        return 0 if self.extra_images is None else int(len(self.extra_images))

    def validated(self) -> TrainSettings:
        """self if every field is in range, else CnnvizError naming the field and what to do."""
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise CnnvizError(f"epochs must be 1-{MAX_EPOCHS}, got {self.epochs}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise CnnvizError(f"batch size must be 1-{MAX_BATCH_SIZE:,}, got {self.batch_size}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise CnnvizError(f"learning rate must be above 0 and at most 10 (e.g. 0.01), got {self.lr}")
        if not 0 <= self.seed <= MAX_SEED:
            raise CnnvizError(f"seed must be 0-{MAX_SEED}, got {self.seed}")
        if self.train_limit is not None and self.train_limit < 1:
            raise CnnvizError(f"the training subset must hold at least 1 image, got {self.train_limit}")
        if self.test_limit < 0:
            raise CnnvizError(f"the test subset size cannot be negative, got {self.test_limit}")
        try:
            validated_architecture(_plain(self.arch.to_dict()))
        except ArchitectureError as exc:
            raise CnnvizError(f"architecture: {exc}") from exc
        if not str(self.data_dir).strip():
            raise CnnvizError("no MNIST folder: set CNNVIZ_MNIST_DIR or choose the folder with the IDX files")
        check_extras(self.extra_images, self.extra_labels, self.extra_weight)
        return self


MAX_EXTRA_IMAGES = 100_000
MAX_EXTRA_WEIGHT = 1000.0


def check_extras(images: np.ndarray | None, labels: np.ndarray | None,
                 weight: float = 1.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate fine-tuning images: None (no extras, also for N = 0) or (images (N, 28, 28) float32 in [0, 1],
    labels (N,) int64 0-9). ``images`` may be float in [0, 1] or uint8 0-255; at most MAX_EXTRA_IMAGES;
    ``weight`` 1-MAX_EXTRA_WEIGHT. Raises CnnvizError naming what is wrong."""
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and 1.0 <= weight <= MAX_EXTRA_WEIGHT):
        raise CnnvizError(f"the drawings' weight must be 1-{MAX_EXTRA_WEIGHT:g}, got {weight}")
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        raise CnnvizError("the drawings need both their images and their labels")
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CnnvizError(f"the drawings must be (N, 28, 28) network inputs, got shape {images.shape}")
    if labels.shape != (len(images),):
        raise CnnvizError(f"the drawings need one label each: {len(images)} images, labels of shape {labels.shape}")
    if len(images) > MAX_EXTRA_IMAGES:
        raise CnnvizError(f"at most {MAX_EXTRA_IMAGES:,} drawings can be added, got {len(images):,}")
    if len(images) == 0:
        return None
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
        raise CnnvizError("the drawings' labels must be whole numbers 0-9")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all():
            raise CnnvizError("the drawings hold NaN or infinite pixel values")
        if images.min() < 0.0 or images.max() > 1.0:
            raise CnnvizError("the drawings' pixels must be in [0, 1] (or uint8 0-255)")
        images = images.astype(np.float32)
    else:
        raise CnnvizError(f"the drawings must be float in [0, 1] or uint8, got {images.dtype}")
    return np.ascontiguousarray(images), labels.astype(np.int64)


def family_architecture(base: str, conv_channels: tuple[int, ...] | None = None,
                        dense_units: tuple[int, ...] | None = None) -> Architecture:
    """A network of the family: the shipped ``base`` ('tiny', 'wide') with optional channel / unit counts.
    Keeps the base's name when nothing changes, else names it e.g. 'tiny-8-4-32'. CnnvizError if out of limits."""
    arch = ARCHITECTURES[base]
    conv = tuple(conv_channels) if conv_channels is not None else arch.conv_channels
    dense = tuple(dense_units) if dense_units is not None else arch.dense_units
    name = arch.name if (conv, dense) == (arch.conv_channels, arch.dense_units) else \
        "-".join([base, *map(str, conv), *map(str, dense)])
    try:
        return validated_architecture({"name": name, "conv_channels": list(conv), "dense_units": list(dense),
                                       "kernel": arch.kernel, "pool": arch.pool})
    except ArchitectureError as exc:
        raise CnnvizError(f"architecture: {exc}") from exc


# ------------------------------------------------------------------------------------------------ parent side


class TrainerProcess:
    """The parent's handle on one trainer child. Not thread-safe except that one thread may :meth:`recv`
    while another calls :meth:`send` (the pipe's two directions are independent).

    Usage: ``t = TrainerProcess(); t.start(settings); t.send("pause"); msg = t.recv(0.1); t.close()``.
    """

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._conn, self._child_conn = self._ctx.Pipe(duplex=True)
        self.process = self._ctx.Process(target=_child_main, args=(self._child_conn, os.getpid()),
                                         name="cnnviz-trainer", daemon=True)
        self._eof = False
        self._send_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def start(self, settings: TrainSettings) -> None:
        """Spawn the child (it imports torch: a few seconds) and send it the settings (validated first)."""
        settings.validated()
        self.process.start()
        self._child_conn.close()  # only the child holds its end now, so its death reads as EOF here
        self.send("start", settings)

    def send(self, kind: str, payload: Any = None) -> bool:
        """Send a command; False if the child is gone."""
        with self._send_lock:
            try:
                self._conn.send((kind, payload))
                return True
            except (OSError, EOFError, ValueError):
                return False

    def recv(self, timeout: float | None = 0.0) -> tuple[str, dict] | None:
        """The next message, waiting up to ``timeout`` s (None: until one arrives); None if none came.
        Once the child is gone (EOF) returns ``("exited", {"exitcode": int | None})`` once, then None."""
        if self._eof:
            return None
        try:
            if not self._conn.poll(timeout):
                return None
            return self._conn.recv()
        except (EOFError, OSError, ValueError):
            self._eof = True
            self.process.join(2.0)
            return ("exited", {"exitcode": self.process.exitcode})

    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self, timeout: float = 3.0) -> None:
        """Ask the child to quit, then terminate (and finally kill) it if it does not; always joins. Idempotent."""
        if self.process.pid is None:
            self._conn.close()
            return
        if self.process.is_alive():
            self.send("quit")
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        try:
            self._conn.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------ child side


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(0)


def trainer_niceness() -> int:
    """The niceness the trainer child adds to its own (CNNVIZ_TRAINER_NICE, 0-19, default TRAINER_NICE)."""
    value = os.environ.get("CNNVIZ_TRAINER_NICE", "").strip()
    try:
        return min(19, max(0, int(value))) if value else TRAINER_NICE
    except ValueError:
        return TRAINER_NICE


def _lower_priority() -> None:
    """Run the trainer below the GUI (see the module docstring); best effort (no os.nice: nothing happens)."""
    increment = trainer_niceness()
    if increment and hasattr(os, "nice"):
        try:
            os.nice(increment)
        except OSError:
            pass


def _child_main(conn, parent_pid: int) -> None:
    """Entry point of the trainer process (see the module docstring)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority()
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="cnnviz-trainer-parent", daemon=True).start()
    try:
        _Child(conn).serve()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: nothing to report to
    finally:
        try:
            conn.close()
        except OSError:
            pass
    # Leave at once: the interpreter's normal shutdown (torch's thread pools, multiprocessing's exit
    # handlers) took about 5 s here, and the GUI waits for this exit when it closes.
    os._exit(0)


class _Child:
    def __init__(self, conn) -> None:
        self.conn = conn
        self.run = None
        self.state = "idle"
        self.budget = 0  # steps still to run while paused (step commands)
        self.settings: TrainSettings | None = None
        self.test = None
        self.last_epoch_state: dict | None = None
        self.rolled_back = False
        self.last_test: tuple[float, int] | None = None
        self.extras: tuple[np.ndarray, np.ndarray] | None = None
        self.last_drawings: tuple[float, int] | None = None
        self.before: dict = {}
        self.points: list[tuple] = []
        self.loss_ema = self.acc_ema = 0.0
        self.ema_weight = 0.0
        self.rate_window: deque[tuple[float, int]] = deque()
        self.last_stats = self.last_weights = 0.0

    def send(self, kind: str, **payload) -> None:
        self.conn.send((kind, payload))

    # -- set-up
    def serve(self) -> None:
        while True:
            kind, payload = self.conn.recv()
            if kind == "quit":
                return
            if kind == "start":
                break
        try:
            self._prepare(payload)
        except CnnvizError as exc:
            self._fail(str(exc))
        except MemoryError:
            self._fail("not enough memory to load the training data; use a smaller subset")
        except Exception as exc:  # never a silent death: the view shows one sentence
            self._fail(f"the trainer could not start ({type(exc).__name__}: {exc})")
        else:
            self._loop()
        self._serve_after_stop()

    def _fail(self, message: str) -> None:
        self.state = "stopped"
        self.send("error", message=message)
        self.send("stopped", reason="error", note=message)

    def _prepare(self, settings: TrainSettings) -> None:
        from . import mnist

        # The data first (no torch needed): a missing folder is reported in a moment, not after torch's import.
        self.settings = settings.validated()
        train = mnist.load(settings.data_dir, "train")
        if settings.train_limit is not None:
            train = mnist.Dataset(train.images[:settings.train_limit], train.labels[:settings.train_limit])
        if len(train) == 0:
            raise CnnvizError(f"the MNIST training files in {settings.data_dir} hold no images: nothing to train on")
        if settings.test_limit:
            test = mnist.load(settings.data_dir, "test")
            self.test = mnist.Dataset(test.images[:settings.test_limit], test.labels[:settings.test_limit])
        import torch

        torch.set_num_threads(1)
        from . import training

        init = settings.init_state
        if init is not None:
            expected = {k: tuple(v) for k, v in tensor_shapes(settings.arch).items()}
            # A batch norm's integer batch counter is state but not a stored tensor (architecture.tensor_shapes).
            got = {k: tuple(np.shape(v)) for k, v in init.items() if not k.endswith("num_batches_tracked")}
            if got != expected:
                raise CnnvizError(f"the starting weights do not fit architecture {settings.arch.name!r}")
        self.extras = check_extras(settings.extra_images, settings.extra_labels, settings.extra_weight)
        extra_images, extra_labels = self.extras if self.extras is not None else (None, None)
        self.run = training.TrainingRun(
            settings.arch, train, epochs=settings.epochs, seed=settings.seed, batch_size=settings.batch_size,
            lr=settings.lr, augmentation=training.Augmentation() if settings.augment else None, init_state=init,
            extra_images=extra_images, extra_labels=extra_labels, extra_weight=settings.extra_weight)
        test = self._test_accuracy()
        drawings = self._drawings_accuracy()
        self.before = {"test_accuracy": test[0] if test else None, "test_n": test[1] if test else 0,
                       "drawings_accuracy": drawings[0] if drawings else None,
                       "drawings_n": drawings[1] if drawings else 0}
        self.send("ready", images=self.run.mnist_count, drawings=self.run.extra_count,
                  test_images=len(self.test) if self.test is not None else 0,
                  steps_per_epoch=self.run.steps_per_epoch, total_steps=self.run.total_steps, epochs=settings.epochs,
                  before=self.before)
        self._set_state("paused" if settings.start_paused else "running")
        self._send_weights(note="initial weights")

    # -- the training loop
    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.send("state", state=state)

    def _loop(self) -> None:
        while self.state != "stopped":
            active = self.state == "running" or self.budget > 0
            # Commands first; while paused, block on the pipe (the watcher thread handles a dead parent).
            if self.conn.poll(0 if active else None):
                self._command(*self.conn.recv())
                continue
            self._step()

    def _command(self, kind: str, payload) -> None:
        if kind == "pause":
            self.budget = 0
            self._flush()
            self._set_state("paused")
        elif kind == "resume":
            self.budget = 0
            self._set_state("running")
        elif kind == "step_batch":
            self.budget = 1
            self._set_state("paused")
        elif kind == "step_epoch":
            run = self.run
            self.budget = run.steps_per_epoch - run.step_in_epoch if run.mid_epoch else run.steps_per_epoch
            self._set_state("paused")
        elif kind == "stop":
            self._stop("stopped")
        elif kind == "save":
            self._save(payload)
        elif kind == "quit":
            raise EOFError

    def _step(self) -> None:
        run = self.run
        started = time.perf_counter()
        result = run.step()
        now = time.perf_counter()
        self.rate_window.append((now - started, result.size))
        while len(self.rate_window) > 1 and sum(t for t, _ in self.rate_window) > 3.0:
            self.rate_window.popleft()
        self.ema_weight = (1 - SMOOTHING) * self.ema_weight + SMOOTHING
        self.loss_ema = (1 - SMOOTHING) * self.loss_ema + SMOOTHING * result.loss
        self.acc_ema = (1 - SMOOTHING) * self.acc_ema + SMOOTHING * result.correct / result.size
        self.points.append((run.steps_done, result.epoch, self.loss_ema / self.ema_weight,
                            self.acc_ema / self.ema_weight, result.lr))
        stepping = self.budget > 0
        if stepping:
            self.budget -= 1
        if result.epoch_end:
            self._epoch_done(result.epoch_stats)
        if run.done:
            self._stop("finished")
            return
        if not result.epoch_end and (now - self.last_stats >= self.settings.stats_interval_s
                                     or (stepping and self.budget == 0)):
            self._flush()
        if now - self.last_weights >= self.settings.weights_interval_s or result.epoch_end or \
                (stepping and self.budget == 0):
            self._send_weights()

    def _flush(self) -> None:
        run = self.run
        if run is None:
            return
        seconds = sum(t for t, _ in self.rate_window)
        rate = sum(n for _, n in self.rate_window) / seconds if seconds > 0 else 0.0
        steps = len(self.rate_window)
        eta = (run.total_steps - run.steps_done) * seconds / steps if steps and seconds > 0 else None
        self.send("batches", points=self.points, images_per_s=rate, progress=run.steps_done / run.total_steps,
                  eta_s=eta, epoch=run.epoch, step_in_epoch=run.step_in_epoch,
                  steps=run.steps_done)
        self.points = []
        self.last_stats = time.perf_counter()

    def _test_accuracy(self) -> tuple[float, int] | None:
        if self.test is None or len(self.test) == 0:
            return None
        from . import training

        result = training.evaluate(self.run.model, self.test)
        if self.run.mid_epoch:
            self.run.model.train()
        return result["accuracy"], result["n"]

    def _drawings_accuracy(self) -> tuple[float, int] | None:
        """(accuracy, n) of the model now on all the added drawings, or None without drawings."""
        if self.extras is None:
            return None
        from . import training

        accuracy = training.accuracy_on(self.run.model, *self.extras)
        if self.run.mid_epoch:
            self.run.model.train()
        return accuracy, int(len(self.extras[1]))

    def _epoch_done(self, stats) -> None:
        self.last_epoch_state = self._state()
        self.last_test = self._test_accuracy()
        self.last_drawings = self._drawings_accuracy()
        self._flush()
        acc, n = self.last_test if self.last_test is not None else (None, 0)
        d_acc, d_n = self.last_drawings if self.last_drawings is not None else (None, 0)
        self.send("epoch", epoch=stats.epoch, loss=stats.loss, accuracy=stats.accuracy, test_accuracy=acc,
                  test_n=n, drawings_accuracy=d_acc, drawings_n=d_n, seconds=stats.seconds)

    def _state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.run.model.state_dict().items()}

    def _send_weights(self, final: bool = False, note: str = "") -> None:
        run = self.run
        self.send("weights", state=self._state(), arch=run.arch.to_dict(), epoch=len(run.history),
                  steps=len(run.history) * run.steps_per_epoch if self.rolled_back else run.steps_done,
                  step_in_epoch=0 if self.rolled_back or not run.mid_epoch else run.step_in_epoch,
                  final=final, note=note)
        self.last_weights = time.perf_counter()

    def _stop(self, reason: str) -> None:
        run = self.run
        note = ""
        if reason == "stopped" and run.mid_epoch and self.last_epoch_state is not None:
            import torch

            run.model.load_state_dict({k: torch.from_numpy(v) for k, v in self.last_epoch_state.items()})
            run.model.eval()
            note = (f"stopped in epoch {run.epoch}: kept the weights of epoch {len(run.history)}, "
                    f"the last complete one")
            self.rolled_back = True
        elif reason == "stopped" and run.mid_epoch:
            note = f"stopped after {run.steps_done} steps, before the first epoch was complete"
        self.budget = 0
        self._flush()
        self._send_weights(final=True, note=note)
        self.state = "stopped"
        self.send("state", state="stopped")
        self.send("stopped", reason=reason, note=note)

    def _serve_after_stop(self) -> None:
        while True:
            kind, payload = self.conn.recv()
            if kind == "quit":
                return
            if kind == "save":
                self._save(payload)

    def _save(self, payload: dict) -> None:
        from . import weights

        path = Path(payload["path"])
        if self.run is None:
            self.send("save_failed", path=str(path), message="nothing has been trained yet")
            return
        run = self.run
        extra = dict(payload.get("extra") or {})
        extra.update({"started_from": self.settings.init_name, "torch_threads": 1})
        partial = run.mid_epoch and not self.rolled_back
        extra["steps"] = len(run.history) * run.steps_per_epoch if self.rolled_back else run.steps_done
        if partial:
            extra["partial_epoch_steps"] = run.step_in_epoch
        test = self._test_accuracy() if partial or self.last_test is None else self.last_test
        if test is not None:
            extra.update({"test_accuracy": round(test[0], 5), "test_n": test[1],
                          "test_data": f"the first {test[1]:,} MNIST t10k images"})
        if self.settings.train_limit is not None:
            extra["training_data"] = {"source": "MNIST training IDX files", "images": run.mnist_count,
                                      "subset": f"the first {run.mnist_count:,} images"}
        if run.extra_count:
            data = dict(extra.get("training_data") or run.card()["training_data"])
            data.update({"labelled_drawings": run.extra_count, "drawings_weight": run.extra_weight,
                         **({"drawings_source": self.settings.extra_name} if self.settings.extra_name else {})})
            extra["training_data"] = data
            drawings = self._drawings_accuracy()
            extra.update({"drawings_accuracy": round(drawings[0], 5), "drawings_n": drawings[1],
                          "drawings_accuracy_before": round(self.before["drawings_accuracy"], 5)})
        card = run.card(extra=extra)
        try:
            weights.save(run.model, path, card)
        except CnnvizError as exc:
            self.send("save_failed", path=str(path), message=str(exc))
            return
        except Exception as exc:  # the user's disk: any failure is a message, never a dead trainer
            self.send("save_failed", path=str(path), message=f"cannot write {path}: {exc}")
            return
        self.send("saved", path=str(path), card=card)



def _plain(data: dict) -> dict:
    """An architecture dict as JSON holds it (tuples as lists), for validated_architecture."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
