"""The training view: train a network of the family inside the app and watch the scene change as it learns.

Training runs in a separate process (core/trainer.py via ui/training_bridge.py); every few hundred milliseconds
its weights become the current model exactly as a model switch does (a new session generation, so no
half-updated weights are ever analysed), throttled so the drawing stays responsive. Curves: smoothed loss and
accuracy per batch, test accuracy per epoch on a fixed test subset, and the learning rate.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import CnnvizError
from ..training_bridge import TrainingBridge
from .base import Host, Style, View

SWAP_INTERVAL_S = 0.4  # at most one live model swap per this many seconds
SWAP_WAIT_S = 3.0  # ...and none while the previous swap's analysis is pending, unless it takes longer than this
DATA_KEY = "training/mnist_dir"
DRAWINGS_WEIGHT = 20  # default: a labelled drawing counts as 20 MNIST images
NO_DRAWINGS_TIP = ("No saved drawing has a true label yet. Label drawings: draw a digit and press X (Report "
                   "misclassification...) to save it with its true digit, or import labelled drawings in the "
                   "History view (Import...).")
DRAWINGS_TIP = ("Add the saved drawings of the History that have a true label to the training data (all of them; "
                "their accuracy is measured on the same drawings, so it shows how well they were learned, i.e. "
                "memorised, not how new drawings will fare)")
HELP = ("<b>Train a network here and watch it learn.</b> Pick a network and settings, press Start: a separate "
        "process trains it on MNIST (one CPU thread), and every ~0.4 s its current weights replace the model, so "
        "the 3D scene, the probabilities, Grad-CAM, the filters and feature maps of your drawing change as it "
        "learns, from noise to strokes. Curves: loss and accuracy per batch (smoothed), test accuracy after every "
        "epoch on a fixed test subset, learning rate (one-cycle). Stop in the middle of an epoch keeps the last "
        "complete epoch. Same seed and settings give the same weights as <tt>OMP_NUM_THREADS=1 cnnviz-train "
        "fit</tt>. <i>Your drawings</i> adds the class's labelled drawings from the History, each counting as "
        "<i>weight</i> MNIST images; the result line shows their accuracy and the MNIST test accuracy before and "
        "now. The trainer runs at lower priority, so drawing stays smooth.")


def _ints(text: str) -> tuple[int, ...]:
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        return tuple(int(p) for p in parts)
    except ValueError as exc:
        raise CnnvizError(f"{text!r} is not a list of whole numbers (e.g. 8, 2)") from exc


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600} h {seconds // 60 % 60} min"


class TrainingView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.host = None
        self.bridge = TrainingBridge(self)
        self.bridge.message.connect(self._on_message)
        self.bridge.exited.connect(self._on_exited)
        self.state = "idle"  # idle | starting | running | paused | stopped
        self.unsaved = False
        self.swaps = 0
        self._pending_weights: dict | None = None
        self._last_swap = 0.0
        self._shown_at = 0.0
        self._swap_generation = -1
        self._before_training = None
        self._arch = None
        self._total_steps = 1
        self._stopping_expected = False
        self._swap_timer = QTimer(self, interval=100, timeout=self._maybe_swap)
        self.labelled_count = 0
        self._history_access = None
        self._before: dict = {}
        self._drawings_n = 0
        self._build()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        self.help = QLabel(HELP)
        self.help.setWordWrap(True)
        self.help.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.help)
        row = QHBoxLayout()
        outer.addLayout(row, 1)
        form_box = QWidget()
        form = QFormLayout(form_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.arch_box = QComboBox()
        self.arch_box.addItems(["tiny", "wide"])
        self.arch_box.setToolTip("The network family's shipped shapes; change channels and units below")
        self.arch_box.currentTextChanged.connect(self._on_arch_chosen)
        self.channels_edit = QLineEdit()
        self.channels_edit.setToolTip("Output channels of each conv block (conv 3x3, ReLU, max-pool 2), e.g. 8, 2")
        self.units_edit = QLineEdit()
        self.units_edit.setToolTip("Hidden dense layer widths (the 10 outputs are implicit), e.g. 22")
        self.init_box = QComboBox()
        self.init_box.addItems(["random weights", "the current model"])
        self.init_box.setToolTip("Start from random weights (seeded) or fine-tune the model shown now "
                                 "(its architecture is then used)")
        data_row = QHBoxLayout()
        self.data_edit = QLineEdit()
        self.data_edit.setToolTip("Folder with the MNIST IDX files (train-images-idx3-ubyte.gz ...); default "
                                  "$CNNVIZ_MNIST_DIR")
        browse = QPushButton("Browse...")
        browse.setToolTip("Choose the MNIST folder")
        browse.clicked.connect(self._browse)
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(browse)
        self.images_spin = QSpinBox(minimum=0, maximum=60_000, singleStep=1000, value=0, specialValueText="all")
        self.images_spin.setToolTip("Train on the first N training images (all: every image in the folder; 60,000 in "
                                   "the official files)")
        self.epochs_spin = QSpinBox(minimum=1, maximum=1000, value=2)
        self.epochs_spin.setToolTip("Passes over the training images; the learning-rate schedule spans them all")
        self.lr_spin = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1.0, singleStep=0.001, value=0.01)
        self.lr_spin.setToolTip("Peak learning rate of the one-cycle schedule (Adam)")
        self.batch_spin = QSpinBox(minimum=1, maximum=4096, value=128)
        self.batch_spin.setToolTip("Images per optimiser step")
        self.augment_box = QCheckBox("rotate, scale, shift, thicken")
        self.augment_box.setChecked(True)
        self.augment_box.setToolTip("Random affine and stroke-width changes per image, as cnnviz-train uses: "
                                    "helps with hand drawing")
        self.live_box = QCheckBox("show the weights while training")
        self.live_box.setChecked(True)
        self.live_box.setToolTip("On: every ~0.4 s the network being trained becomes the current model (the scene "
                                 "changes as it learns). Off: only the final weights are shown (a little faster)")
        self.seed_spin = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed_spin.setToolTip("Random seed: the same seed and settings give the same weights")
        drawings_row = QHBoxLayout()
        self.drawings_box = QCheckBox("Add the class's labelled drawings")
        self.drawings_box.setToolTip(DRAWINGS_TIP)
        self.drawings_weight_spin = QSpinBox(minimum=1, maximum=1000, value=DRAWINGS_WEIGHT, prefix="weight ")
        self.drawings_weight_spin.setToolTip("How many MNIST images each drawing counts as (a per-image loss "
                                             "weight; 1-1000)")
        self.drawings_weight_spin.setEnabled(False)
        self.drawings_box.toggled.connect(self.drawings_weight_spin.setEnabled)
        self.drawings_count_label = QLabel("")
        self.drawings_count_label.setToolTip("Saved drawings of the History that have a true label")
        drawings_row.addWidget(self.drawings_box)
        drawings_row.addWidget(self.drawings_weight_spin)
        drawings_row.addWidget(self.drawings_count_label, 1)
        for label, widget in (("Network", self.arch_box), ("Conv channels", self.channels_edit),
                              ("Dense units", self.units_edit), ("Start from", self.init_box),
                              ("MNIST folder", data_row), ("Training images", self.images_spin),
                              ("Epochs", self.epochs_spin), ("Learning rate", self.lr_spin),
                              ("Batch size", self.batch_spin), ("Augmentation", self.augment_box),
                              ("Seed", self.seed_spin), ("Live model", self.live_box)):
            form.addRow(label, widget)
        row.addWidget(form_box)

        right = QVBoxLayout()
        row.addLayout(right, 1)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start training with these settings (a new trainer process)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause or resume the training")
        self.step_batch_button = QPushButton("Step batch")
        self.step_batch_button.setToolTip("Train one batch, then pause")
        self.step_epoch_button = QPushButton("Step epoch")
        self.step_epoch_button.setToolTip("Train to the end of the epoch in progress, then pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the training (mid-epoch: keeps the last complete epoch's weights)")
        self.save_button = QPushButton("Save...")
        self.save_button.setToolTip("Save the weights and model card as cnnviz-train does; the saved file "
                                    "becomes the current model")
        self.start_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.step_batch_button.clicked.connect(lambda: self._command("step_batch"))
        self.step_epoch_button.clicked.connect(lambda: self._command("step_epoch"))
        self.stop_button.clicked.connect(self.stop_training)
        self.save_button.clicked.connect(self.save_dialog)
        for b in (self.start_button, self.pause_button, self.step_batch_button, self.step_epoch_button,
                  self.stop_button, self.save_button):
            buttons.addWidget(b)
        right.addLayout(buttons)
        right.addLayout(drawings_row)  # here, not in the form: the form already fills a docked view's height
        progress_row = QHBoxLayout()
        self.progress = QProgressBar(minimum=0, maximum=1000, value=0)
        self.progress.setToolTip("Share of all planned optimiser steps done")
        self.rate_label = QLabel("-")
        self.rate_label.setToolTip("Training images per second (excluding pauses) and time left")
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.rate_label)
        right.addLayout(progress_row)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        right.addWidget(self.message_label)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setToolTip("Accuracy of the starting weights (before) and after the last complete epoch "
                                     "(now). Your drawings are also trained on: their accuracy shows whether they "
                                     "were learned (memorised); MNIST test shows whether MNIST was kept.")
        right.addWidget(self.result_label)
        self._build_plots(right)
        self._on_arch_chosen("tiny")
        self._sync_buttons()

    def _build_plots(self, layout) -> None:
        import pyqtgraph as pg

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setToolTip("Loss and accuracy per batch (smoothed: moving average), test accuracy after each "
                              "epoch (dots), accuracy on your drawings before training and after each epoch "
                              "(squares, when added), learning rate per batch")
        self.plots.setMinimumHeight(160)
        loss = self.plots.addPlot(title="loss (cross-entropy)")
        acc = self.plots.addPlot(title="accuracy")
        lr = self.plots.addPlot(title="learning rate")
        for plot in (loss, acc, lr):
            plot.setLabel("bottom", "step")
            plot.showGrid(x=True, y=True, alpha=0.2)
        acc.setYRange(0, 1)
        acc.addLegend(offset=(5, 5))
        self.loss_curve = loss.plot(pen=pg.mkPen((240, 150, 60), width=2), name="train loss")
        self.acc_curve = acc.plot(pen=pg.mkPen((90, 170, 255), width=2), name="train (smoothed)")
        self.test_curve = acc.plot(pen=pg.mkPen((120, 220, 120), width=2), symbol="o", symbolSize=7,
                                   symbolBrush=(120, 220, 120), name="test subset")
        self.drawings_curve = acc.plot(pen=pg.mkPen((230, 110, 200), width=2), symbol="s", symbolSize=7,
                                       symbolBrush=(230, 110, 200), name="your drawings")
        self.lr_curve = lr.plot(pen=pg.mkPen((200, 200, 200), width=2))
        layout.addWidget(self.plots, 1)
        self._reset_curves()

    def _reset_curves(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.lrs: list[float] = []
        self.test_points: list[tuple[int, float]] = []
        self.drawings_points: list[tuple[int, float]] = []  # (step, accuracy): before training, then per epoch
        for curve in (self.loss_curve, self.acc_curve, self.test_curve, self.lr_curve, self.drawings_curve):
            curve.setData([], [])

    # ------------------------------------------------------------------ View protocol
    def attach(self, host: Host) -> None:
        self.host = host
        self.session = host.session
        stored = self.session.store.value(DATA_KEY, None)
        env = os.environ.get("CNNVIZ_MNIST_DIR", "").strip()
        self.data_edit.setText(str(stored or env or ""))
        self.session.snapshot_changed.connect(self._on_snapshot)
        if isinstance(host, QObject):
            host.installEventFilter(self)
            from ..history_models import HistoryAccess

            self._history_access = HistoryAccess.of(host)
            self._history_access.changed.connect(self._on_history_changed)
        self._set_drawings_available(None, "")

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh_drawings_count()
        # The curves are not redrawn while the view is hidden; catch up now.
        self.loss_curve.setData(self.steps, self.losses)
        self.acc_curve.setData(self.steps, self.accuracies)
        self.lr_curve.setData(self.steps, self.lrs)

    def apply_style(self, style: Style) -> None:
        font = self.font()
        font.setPointSizeF(max(8.0, 9.0 * style.scale))
        self.setFont(font)

    # ------------------------------------------------------------------ settings -> trainer
    def _on_arch_chosen(self, name: str) -> None:
        from ...core.architecture import ARCHITECTURES

        arch = ARCHITECTURES[name]
        self.channels_edit.setText(", ".join(map(str, arch.conv_channels)))
        self.units_edit.setText(", ".join(map(str, arch.dense_units)))

    # ------------------------------------------------------------------ the class's labelled drawings
    def _on_history_changed(self) -> None:
        if self.isVisible():
            self.refresh_drawings_count()

    def refresh_drawings_count(self) -> int | None:
        """Count the History's labelled drawings (one SQL count, no pictures read) and enable the checkbox
        accordingly; None (and the reason in the view) if the database cannot be read."""
        if self._history_access is None:
            return None
        try:
            count = self._history_access.get().count("labelled")
        except CnnvizError as exc:
            self._set_drawings_available(None, f"Cannot read the saved drawings: {exc}. Training without them "
                                               "still works.")
            return None
        self._set_drawings_available(count, "")
        return count

    def _set_drawings_available(self, count: int | None, problem: str) -> None:
        self.labelled_count = count or 0
        usable = bool(count)
        if not usable:
            self.drawings_box.setChecked(False)
        self.drawings_box.setEnabled(usable)
        self.drawings_weight_spin.setEnabled(usable and self.drawings_box.isChecked())
        if problem:
            self.drawings_box.setToolTip(problem)
            self.drawings_count_label.setText("the saved drawings cannot be read (see the message)")
            self._say(problem, error=True)
        elif count is None:
            self.drawings_box.setToolTip(DRAWINGS_TIP)
            self.drawings_count_label.setText("")
        else:
            self.drawings_box.setToolTip(DRAWINGS_TIP if usable else NO_DRAWINGS_TIP)
            self.drawings_count_label.setText(f"{count:,} labelled drawing{'s' if count != 1 else ''} in the "
                                              f"history")

    def labelled_drawings(self):
        """(images (N, 28, 28) float32, labels (N,), source) of the History's labelled drawings as network
        inputs (read now, in the GUI thread: about 2 ms per drawing with strokes). CnnvizError if unreadable."""
        from ...core.training import labelled_drawings

        history = self._history_access.get()
        images, labels, _ids = labelled_drawings(history)
        return images, labels, str(history.path)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The folder with the MNIST IDX files", self.data_edit.text())
        if folder:
            self.data_edit.setText(folder)

    def settings(self):
        """The TrainSettings the form describes (CnnvizError with one sentence if something is wrong)."""
        from ...core.trainer import TrainSettings, family_architecture

        init_state, init_name = None, "random"
        current = self.session.model if self.session is not None else None
        if self.init_box.currentIndex() == 1:
            if current is None:
                raise CnnvizError("no model is loaded yet to start from; choose 'random weights'")
            arch = current.arch
            init_state = {k: v.detach().cpu().numpy().copy() for k, v in current.model.state_dict().items()}
            init_name = str(getattr(current, "path", "") or arch.name)
        else:
            arch = family_architecture(self.arch_box.currentText(), _ints(self.channels_edit.text()),
                                       _ints(self.units_edit.text()))
        data = self.data_edit.text().strip()
        if not data:
            raise CnnvizError("no MNIST folder: choose the folder with the IDX files (Browse...), set "
                              "CNNVIZ_MNIST_DIR, or fetch them with 'cnnviz-train fit --download DIR'")
        if not Path(data).is_dir():
            raise CnnvizError(f"the MNIST folder {data} does not exist: choose the folder with the IDX files "
                              f"(Browse...), or fetch them with 'cnnviz-train fit --download {data}'")
        extras = {}
        if self.drawings_box.isChecked() and self._history_access is not None:
            try:
                images, labels, source = self.labelled_drawings()
            except CnnvizError as exc:
                self._set_drawings_available(None, f"Cannot read the saved drawings: {exc}")
                raise CnnvizError(f"cannot read the saved drawings ({exc}); press Start again to train without "
                                  f"them") from exc
            if len(labels) == 0:
                self._set_drawings_available(0, "")
                raise CnnvizError("the history has no labelled drawing with ink any more; press Start again to "
                                  "train without them")
            extras = dict(extra_images=images, extra_labels=labels,
                          extra_weight=float(self.drawings_weight_spin.value()), extra_name=source)
        return TrainSettings(arch, data, epochs=self.epochs_spin.value(), lr=self.lr_spin.value(),
                             batch_size=self.batch_spin.value(), augment=self.augment_box.isChecked(),
                             seed=self.seed_spin.value(), train_limit=self.images_spin.value() or None,
                             init_state=init_state, init_name=init_name, **extras).validated()

    def start_training(self) -> bool:
        if self.unsaved and not self._confirm_discard("Start a new training?"):
            return False
        try:
            settings = self.settings()
        except CnnvizError as exc:
            self._say(str(exc), error=True)
            return False
        self.session.store.set_value(DATA_KEY, settings.data_dir)
        self._before_training = self.session.model
        self._arch = settings.arch
        self._reset_curves()
        self._before = {}
        self.result_label.setText("")
        self.progress.setValue(0)
        self.rate_label.setText("-")
        self._pending_weights = None
        self._stopping_expected = False
        self.bridge.start(settings)
        self.state = "starting"
        self.unsaved = False
        self._say("Starting the trainer process (it loads torch and the data: a few seconds)...")
        self._sync_buttons()
        return True

    def _command(self, kind: str) -> None:
        if self.state in ("running", "paused"):
            self.bridge.send(kind)

    def toggle_pause(self) -> None:
        self._command("resume" if self.state == "paused" else "pause")

    def stop_training(self) -> None:
        if self.state in ("running", "paused", "starting"):
            self._stopping_expected = True
            if not self.bridge.send("stop") or self.state == "starting":
                self.bridge.shutdown()
                self.state = "idle"
                self._sync_buttons()

    def save_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save the trained weights",
                                              str(Path.home() / "trained.safetensors"), "Weight files (*.safetensors)")
        if name:
            self.save_to(name)

    def save_to(self, path: str) -> bool:
        """Ask the trainer to save (weights + card as cnnviz-train writes), wait for it, load the file as the
        current model. False (and a message) if it could not."""
        path = str(path)
        if not path.endswith(".safetensors"):
            path += ".safetensors"
        if not self.bridge.send("save", {"path": path, "extra": {"trained_in": "CNNViz Desktop training view"}}):
            self._say("The trainer is not running: nothing to save. Start a training first.", error=True)
            return False
        reply = self.bridge.wait_for(("saved", "save_failed"))
        if reply is None:
            self._say("The trainer did not answer the save request.", error=True)
            return False
        kind, payload = reply
        if kind == "save_failed":
            self._say(f"Could not save: {payload['message']}", error=True)
            return False
        from ...core import weights

        self.unsaved = False
        try:
            loaded = weights.load(path)
        except CnnvizError as exc:
            self._say(f"Saved, but it cannot be loaded back: {exc}", error=True)
            return False
        self._pending_weights = None
        self.session.set_model(loaded)
        self._say(f"Saved {path} (with its model card). It is now the current model; Model > Open weights "
                  f"file... opens it again later.")
        self.host.show_status(f"Saved {path}; it is now the current model", 8000)
        return True

    # ------------------------------------------------------------------ trainer -> view
    def _on_message(self, kind: str, payload: dict) -> None:
        if kind == "ready":
            self._total_steps = max(1, payload["total_steps"])
            drawings = payload.get("drawings", 0)
            with_drawings = f" + {drawings:,} of your drawings" if drawings else ""
            self._say(f"Training on {payload['images']:,} images{with_drawings}, {payload['steps_per_epoch']} "
                      f"steps per epoch; test accuracy on {payload['test_images']:,} test images after each epoch.")
            self._before = dict(payload.get("before") or {})
            self._show_result(self._before)
            if self._before.get("drawings_accuracy") is not None:
                self._add_drawings_point(0, self._before["drawings_accuracy"])
        elif kind == "state":
            self.state = payload["state"]
            self._sync_buttons()
        elif kind == "batches":
            for step, _epoch, loss, acc, lr in payload["points"]:
                self.steps.append(step)
                self.losses.append(loss)
                self.accuracies.append(acc)
                self.lrs.append(lr)
            if payload["points"] and self.isVisible():
                self.loss_curve.setData(self.steps, self.losses)
                self.acc_curve.setData(self.steps, self.accuracies)
                self.lr_curve.setData(self.steps, self.lrs)
            self.progress.setValue(int(round(1000 * payload["progress"])))
            self.rate_label.setText(f"epoch {payload['epoch']}  \u00b7  {payload['images_per_s']:,.0f} images/s  "
                                    f"\u00b7  ETA {_duration(payload['eta_s'])}")
        elif kind == "epoch":
            if payload["test_accuracy"] is not None:
                self.test_points.append((self.steps[-1] if self.steps else 0, payload["test_accuracy"]))
                self.test_curve.setData([s for s, _ in self.test_points], [a for _, a in self.test_points])
            test = (f", test {payload['test_accuracy']:.3f} on {payload['test_n']:,}"
                    if payload["test_accuracy"] is not None else "")
            drawings = payload.get("drawings_accuracy")
            if drawings is not None:
                self._add_drawings_point(self.steps[-1] if self.steps else 0, drawings)
            mine = (f", your drawings {drawings:.0%} (before {self._before.get('drawings_accuracy', 0):.0%}, "
                    f"n={payload['drawings_n']:,})" if drawings is not None else "")
            self._say(f"Epoch {payload['epoch']}: train loss {payload['loss']:.3f}, accuracy "
                      f"{payload['accuracy']:.3f}{test}{mine}.")
            self._show_result(payload)
        elif kind == "weights":
            if payload["steps"] > 0:
                self.unsaved = True
            if payload["final"] or self.live_box.isChecked():
                self._pending_weights = payload
                self._swap_timer.start()
                self._maybe_swap()
        elif kind == "error":
            self._say(f"Training failed: {payload['message']}. The current model is unchanged.", error=True)
        elif kind == "stopped":
            self.state = "stopped"
            if payload["reason"] == "error":  # nothing was trained: nothing to save, no process to keep
                self._stopping_expected = True
                self.bridge.shutdown()
                self.state = "idle"
            if payload["reason"] == "finished":
                self._say("Training finished. Save... writes the weights and model card.")
            elif payload["reason"] == "stopped":
                self._say("Stopped" + (f": {payload['note']}" if payload.get("note") else "") +
                          ". Save... writes these weights.")
            self._sync_buttons()

    def _on_exited(self, exitcode) -> None:
        expected = self._stopping_expected or self.state in ("stopped", "idle")
        self.state = "idle"
        self.bridge.shutdown()
        if not expected:
            self.unsaved = False
            self._say(f"The trainer process ended unexpectedly (exit code {exitcode}). The model shown stays the "
                      f"last complete set of weights it sent; press Start to train again.", error=True)
        self._sync_buttons()

    def _on_snapshot(self, _snapshot) -> None:
        if self.session.generation == self._swap_generation:
            self._shown_at = time.monotonic()

    def _maybe_swap(self) -> None:
        """Make the newest weights the current model, at most every SWAP_INTERVAL_S and not while the last
        swap's analysis is pending (so the drawing keeps being analysed between swaps)."""
        weights_msg = self._pending_weights
        if weights_msg is None:
            self._swap_timer.stop()
            return
        now = time.monotonic()
        session = self.session
        pending = session.generation == self._swap_generation and session.snapshot is None
        if pending and now - self._last_swap < SWAP_WAIT_S:
            return
        # The last swap's analysis stays on screen for SWAP_INTERVAL_S before the next swap replaces it.
        if now - max(self._last_swap, self._shown_at) < SWAP_INTERVAL_S:
            return
        self._pending_weights = None
        self._swap_timer.stop()
        session.set_model(_live_model(weights_msg), remember=False)
        self._swap_generation = session.generation
        self._last_swap = now
        self.swaps += 1

    # ------------------------------------------------------------------ helpers
    def _add_drawings_point(self, step: int, accuracy: float) -> None:
        self.drawings_points.append((step, accuracy))
        self.drawings_curve.setData([s for s, _ in self.drawings_points], [a for _, a in self.drawings_points])

    def _show_result(self, now: dict) -> None:
        """The before -> now line: your drawings (when added) | MNIST test subset."""
        before = self._before
        parts = []

        def pct(value) -> str:
            return "-" if value is None else f"{100 * value:.1f}%"

        if before.get("drawings_accuracy") is not None:
            parts.append(f"<b>Your drawings</b>: before {pct(before['drawings_accuracy'])} → now "
                         f"{pct(now.get('drawings_accuracy'))} (n={before.get('drawings_n', 0):,})")
        if before.get("test_accuracy") is not None:
            parts.append(f"<b>MNIST test</b>: before {pct(before['test_accuracy'])} → now "
                         f"{pct(now.get('test_accuracy'))} (n={before.get('test_n', 0):,})")
        note = (" <i>(your drawings are trained on: their accuracy measures memorisation)</i>"
                if before.get("drawings_accuracy") is not None else "")
        self.result_label.setText(" &nbsp;|&nbsp; ".join(parts) + note)

    def _say(self, text: str, error: bool = False) -> None:
        self.message_label.setStyleSheet("color: #b00020;" if error else "")
        self.message_label.setText(text)

    def _sync_buttons(self) -> None:
        training = self.state in ("running", "paused")
        self.start_button.setEnabled(self.state in ("idle", "stopped"))
        self.pause_button.setEnabled(training)
        self.pause_button.setText("Resume" if self.state == "paused" else "Pause")
        self.step_batch_button.setEnabled(training)
        self.step_epoch_button.setEnabled(training)
        self.stop_button.setEnabled(training or self.state == "starting")
        self.save_button.setEnabled(self.state in ("running", "paused", "stopped") and self.bridge.alive)

    def _confirm_discard(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Unsaved training", f"The trained weights are not saved. {question}",
                                      QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.host and event.type() == QEvent.Type.Close:
            if not self.close_requested():
                event.ignore()
                return True
        return False

    def close_requested(self) -> bool:
        """The window is closing: ask whether to save unsaved training, then stop the trainer. False: cancel."""
        if self.unsaved and self.bridge.alive:
            buttons = QMessageBox.StandardButton
            answer = QMessageBox.question(self, "Save the trained network?",
                                          "The network trained in the Training view is not saved. Save it before "
                                          "closing?", buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
            if answer == buttons.Cancel:
                return False
            if answer == buttons.Save:
                name, _ = QFileDialog.getSaveFileName(self, "Save the trained weights",
                                                      str(Path.home() / "trained.safetensors"),
                                                      "Weight files (*.safetensors)")
                if not name:
                    return False
                self.bridge.send("pause")
                if not self.save_to(name):
                    return False
        self._stopping_expected = True
        self.bridge.shutdown()
        self.state = "idle"
        self.unsaved = False
        return True


def _live_model(message: dict):
    """A weights.LoadedModel-like model from a trainer weights message (a fresh module: nothing shared)."""
    import torch

    from ...core.architecture import Architecture
    from ...core.networks import ConvNet
    from ...core.weights import LoadedModel

    arch = Architecture.from_dict(message["arch"])
    model = ConvNet(arch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in message["state"].items()})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    card = {"name": arch.name, "note": "live weights of the training in progress", "epochs": message["epoch"],
            "steps": message["steps"]}
    return LoadedModel(model=model, arch=arch, path=Path(f"(training {arch.name}: step {message['steps']})"),
                       card=card)
