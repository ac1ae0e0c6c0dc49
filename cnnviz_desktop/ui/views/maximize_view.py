"""The input-maximisation view: synthesise an image that excites a class, a conv channel or the neuron picked in
the 3D scene (core/maximize.py), watch it form with its score and total-variation curves, and 'Draw it' onto
the grid so the network reads it like a drawing.

The optimisation runs on its own background lane (ui/tasks.QtTaskRunner): a new Start cancels the old run,
Cancel stops it at its next step, and the per-stroke analysis never waits for it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import CnnvizError
from ...core.maximize import (
    LR_RANGE,
    STEPS_RANGE,
    TV_RANGE,
    MaxResult,
    MaxSettings,
    Objective,
    target_digit,
    to_canvas,
)
from ..qimage import to_qimage
from ..tasks import QtTaskRunner
from .base import Host, Style, View, scrolled

IMAGE_PX = 196  # 7 screen pixels per input pixel
EVERY = 5  # steps between animation frames

EXPLANATION = (
    "<b>Input maximisation</b>: an image the network responds to as strongly as possible. It starts from dark "
    "noise and climbs the gradient of the target's score (a class's <i>logit</i>; a channel's mean or one "
    "neuron's value before its ReLU) with Adam. Each step shifts the image by up to 2 pixels (jitter) and "
    "penalises differences between neighbouring pixels (total variation, TV): both make it smoother and less "
    "tied to single pixels.<br><b>Limits</b>: this is not 'what the network sees'; it is one image, among "
    "many, that excites it, and the settings shape it. 'Draw it' puts it on the grid, where it goes through "
    "the drawing's preprocessing (cropped, rescaled to 20 px, recentred), so its probability there can "
    "differ: both are shown."
)

SUMMARY = ("<b>Input maximisation</b>: an image that excites the chosen target, found by gradient ascent from "
           "noise. How it works and its limits: below the curves (and in this text's tooltip).")

KINDS = (("class", "A digit"), ("channel", "A conv/pool channel"), ("neuron", "The neuron picked in 3D"))


def _grey_legend(width: int, height: int) -> QPixmap:
    ramp = np.tile(np.linspace(0, 255, 256).astype(np.uint8), (8, 1))
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.drawImage(pixmap.rect(), to_qimage(ramp))
    painter.end()
    return pixmap


class MaximizeView(View):
    """See the module docstring. Public state for tests and scripts: ``result`` (the latest MaxResult, partial
    while running), ``running``, ``curve_points()``, ``drawn_probs``; actions ``start()``, ``cancel()``,
    ``draw_it()``."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.host = None
        self.session = None
        self.result: MaxResult | None = None
        self.running = False
        self.drawn_probs: np.ndarray | None = None
        self._drawn_request: int | None = None
        self._drawn_digit: int | None = None
        self.scale = 1.0
        self.runner = QtTaskRunner("maximise", self)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self._build()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        content = scrolled(self, QWidget())
        layout = QVBoxLayout(content)
        self.summary = QLabel(SUMMARY)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setToolTip(EXPLANATION)
        layout.addWidget(self.summary)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.kind = QComboBox()
        self.kind.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.kind.setMinimumContentsLength(8)
        for key, text in KINDS:
            self.kind.addItem(text, key)
        self.kind.setToolTip("What to maximise: a digit's logit, the mean activation of one channel of a conv or "
                             "pool layer, or the neuron you clicked in the 3D scene")
        form.addRow("Target", self.kind)
        self.target_stack = QStackedWidget()
        self.digit = QSpinBox()
        self.digit.setRange(0, 9)
        self.digit.setValue(3)
        self.digit.setToolTip("The digit whose logit is maximised")
        self.target_stack.addWidget(self.digit)
        channel_box = QWidget()
        row = QHBoxLayout(channel_box)
        row.setContentsMargins(0, 0, 0, 0)
        self.layer = QComboBox()
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.setMinimumContentsLength(6)
        self.layer.setToolTip("The conv (ReLU output) or pool layer")
        self.channel = QSpinBox()
        self.channel.setToolTip("The channel of that layer whose mean activation is maximised")
        row.addWidget(self.layer)
        row.addWidget(QLabel("ch"))
        row.addWidget(self.channel)
        self.target_stack.addWidget(channel_box)
        self.picked_label = QLabel("nothing picked")
        self.picked_label.setWordWrap(True)
        self.picked_label.setToolTip("Click a neuron in the 3D scene to pick it")
        self.target_stack.addWidget(self.picked_label)
        form.addRow("", self.target_stack)

        self.steps = QSpinBox()
        self.steps.setRange(10, STEPS_RANGE[1])
        self.steps.setSingleStep(50)
        self.steps.setValue(MaxSettings.steps)
        self.steps.setToolTip("Adam steps (300 is enough for a class at 28x28; more takes longer)")
        form.addRow("Steps", self.steps)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(3)
        self.lr.setRange(0.001, LR_RANGE[1])
        self.lr.setSingleStep(0.01)
        self.lr.setValue(MaxSettings.lr)
        self.lr.setToolTip("Adam's learning rate on the image's (pre-sigmoid) parameter; 0.05 works here, "
                           "larger is faster but noisier")
        form.addRow("Learning rate", self.lr)
        self.tv = QDoubleSpinBox()
        self.tv.setDecimals(3)
        self.tv.setRange(TV_RANGE[0], TV_RANGE[1])
        self.tv.setSingleStep(0.05)
        self.tv.setValue(MaxSettings.tv_weight)
        self.tv.setToolTip("Weight of the total-variation penalty (squared differences of neighbouring pixels): "
                           "0 gives speckled images; 0.05-0.2 gives smooth strokes; large values blur it away")
        form.addRow("TV weight", self.tv)
        self.seed = QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setToolTip("Seed of the start noise and the jitter: the same seed and settings give the same image")
        form.addRow("Seed", self.seed)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start the optimisation (a running one is cancelled)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the optimisation; the image so far stays")
        self.cancel_button.setEnabled(False)
        self.draw_button = QPushButton("Draw it")
        self.draw_button.setToolTip("Put the image on the drawing grid (undoable with Ctrl+Z): the network reads "
                                    "it as a drawing, after the usual preprocessing")
        self.draw_button.setEnabled(False)
        for button in (self.start_button, self.cancel_button, self.draw_button):
            button.setMinimumWidth(40)
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setToolTip("Steps done")
        layout.addWidget(self.progress_bar)
        self.status = QLabel("Choose a target and press Start")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.image = QLabel()
        self.image.setFixedSize(IMAGE_PX, IMAGE_PX)
        self.image.setStyleSheet("background: black; border: 1px solid #3c404a")
        self.image.setToolTip("The synthesised 28x28 image (light ink on dark, as the network's input)")
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        legend = QHBoxLayout()
        self.legend = QLabel()
        self.legend.setPixmap(_grey_legend(120, 12))
        self.legend.setToolTip("Pixel value: 0 (black paper) to 1 (full ink)")
        legend.addStretch(1)
        legend.addWidget(QLabel("0 paper"))
        legend.addWidget(self.legend)
        legend.addWidget(QLabel("1 ink"))
        legend.addStretch(1)
        layout.addLayout(legend)
        self.probs_label = QLabel("")
        self.probs_label.setWordWrap(True)
        self.probs_label.setTextFormat(Qt.TextFormat.RichText)
        self.probs_label.setToolTip("The network's probabilities for the synthesised image as it is, and after "
                                    "'Draw it' (preprocessed like a drawing)")
        layout.addWidget(self.probs_label)

        self.score_plot = pg.PlotWidget()
        self.tv_plot = pg.PlotWidget()
        for plot, title, colour in ((self.score_plot, "Score (logit for a digit)", "#ff9f43"),
                                    (self.tv_plot, "Total variation (unweighted)", "#54a0ff")):
            plot.setMinimumHeight(140)
            plot.setMinimumWidth(120)
            plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            plot.setTitle(title)
            plot.setLabel("bottom", "step")
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMouseEnabled(x=False, y=False)
            layout.addWidget(plot)
        self.score_curve = self.score_plot.plot(pen=pg.mkPen("#ff9f43", width=2))
        self.tv_curve = self.tv_plot.plot(pen=pg.mkPen("#54a0ff", width=2))
        self.score_plot.setToolTip("The objective at each step, on that step's jittered image: it should climb")
        self.tv_plot.setToolTip("The image's squared total variation at each step: how rough it is")
        self.explanation = QLabel(EXPLANATION)
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.explanation)
        layout.addStretch(1)

        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        self.layer.currentIndexChanged.connect(self._on_layer_changed)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.draw_button.clicked.connect(self.draw_it)

    # ------------------------------------------------------------------ session
    def attach(self, host: Host) -> None:
        self.host = host
        self.session = host.session
        self.session.model_changed.connect(self._on_model_changed)
        self.session.picked_changed.connect(self._on_picked_changed)
        self.session.snapshot_changed.connect(self._on_snapshot)
        if self.session.model is not None:
            self._on_model_changed(self.session.model)
        self._on_picked_changed(self.session.picked)

    def _on_model_changed(self, _model) -> None:
        if self.running:  # a result of the previous model would be a lie about this one
            self.cancel()
        layers = [s for s in self.session.specs if s.kind in ("conv", "pool")]
        current = self.layer.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        for spec in layers:
            self.layer.addItem(f"{spec.name} ({spec.shape[0]} ch)", spec.name)
        index = self.layer.findData(current)
        self.layer.setCurrentIndex(index if index >= 0 else 0)
        self.layer.blockSignals(False)
        self._on_layer_changed()

    def _on_layer_changed(self, *_args) -> None:
        name = self.layer.currentData()
        spec = next((s for s in self.session.specs if s.name == name), None) if self.session else None
        self.channel.setRange(0, max((spec.shape[0] - 1) if spec else 0, 0))

    def _on_picked_changed(self, picked) -> None:
        item = self.kind.model().item(2)
        if picked is None or picked[0] == "input":
            item.setEnabled(False)
            item.setToolTip("Click a neuron of a conv, pool, dense or output layer in the 3D scene first")
            self.picked_label.setText("nothing picked: click a neuron in the 3D scene")
            if self.kind.currentData() == "neuron":
                self.kind.setCurrentIndex(0)
        else:
            item.setEnabled(True)
            item.setToolTip(f"{picked[0]} neuron {tuple(picked[1])}")
            self.picked_label.setText(f"{picked[0]} neuron {tuple(picked[1])}")

    def _on_kind_changed(self, index: int) -> None:
        self.target_stack.setCurrentIndex(max(index, 0))

    def _on_snapshot(self, snapshot) -> None:
        if self._drawn_request is None or snapshot.request_id < self._drawn_request:
            return
        self._drawn_request = None
        if snapshot.empty:
            return
        self.drawn_probs = np.asarray(snapshot.probabilities, dtype=np.float32)
        self._show_probs()

    # ------------------------------------------------------------------ actions
    def objective(self) -> Objective:
        """The target the controls describe (CnnvizError if the picked neuron is missing)."""
        kind = self.kind.currentData()
        if kind == "class":
            return Objective.for_class(self.digit.value())
        if kind == "channel":
            return Objective.for_channel(self.layer.currentData(), self.channel.value())
        picked = self.session.picked if self.session else None
        if picked is None:
            raise CnnvizError("no neuron is picked: click one in the 3D scene first")
        return Objective.for_neuron(picked[0], picked[1])

    def settings(self) -> MaxSettings:
        return MaxSettings(steps=self.steps.value(), lr=self.lr.value(), tv_weight=self.tv.value(),
                           seed=self.seed.value())

    def start(self) -> None:
        """Start a maximisation with the controls' target and settings (cancelling a running one)."""
        from ...core.maximize import maximise

        if self.session is None or self.session.model is None:
            self.status.setText("No model is loaded yet")
            return
        try:
            objective, settings = self.objective(), self.settings()
        except CnnvizError as exc:
            self.status.setText(f"Cannot start: {exc}")
            return
        model = self.session.model
        self.result = None
        self.drawn_probs = None
        self._drawn_request = None
        self.running = True
        self.runner.submit(lambda ctx: maximise(model, objective, settings, ctx, every=EVERY))
        self.progress_bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.draw_button.setEnabled(False)
        self.status.setText(f"Maximising {objective.label()} on {getattr(model, 'name', 'the model')}\u2026")
        self._render()

    def cancel(self) -> None:
        """Stop the running maximisation (the image so far stays)."""
        if self.running:
            self.runner.cancel()

    def draw_it(self) -> None:
        """Load the image into the drawing grid (resampled to the canvas's shape; undoable)."""
        if self.result is None or self.session is None:
            return
        canvas = self.session.canvas
        self.drawn_probs = None
        self._drawn_digit = target_digit(self.result.objective)
        self.session.load_pixels(to_canvas(self.result.image01, canvas.pixels.shape))
        self._drawn_request = self.session.last_request_id
        self._show_probs()
        if self.host is not None:
            self.host.show_status("The synthesised image is on the grid (Ctrl+Z brings back your drawing)")

    def curve_points(self) -> tuple[int, int]:
        """(points in the score curve, points in the TV curve) as plotted now."""
        xs, _ = self.score_curve.getData()
        xt, _ = self.tv_curve.getData()
        return (0 if xs is None else len(xs), 0 if xt is None else len(xt))

    # ------------------------------------------------------------------ lane -> view
    def _on_progress(self, _task_id: int, fraction: float, payload) -> None:
        self.progress_bar.setValue(round(fraction * 1000))
        if isinstance(payload, MaxResult):
            self.result = payload
            self.status.setText(f"Maximising {payload.objective.label()}: step {payload.step} of {payload.steps}")
            self._render()

    def _on_finished(self, _task_id: int, result) -> None:
        self.running = False
        self.result = result
        self.progress_bar.setValue(1000)
        self.cancel_button.setEnabled(False)
        self.draw_button.setEnabled(True)
        self.status.setText(f"Done: {result.objective.label()} after {result.steps} steps "
                            f"(score {result.start_score:.2f} \u2192 {result.score:.2f})")
        self._render()

    def _on_cancelled(self, _task_id: int) -> None:
        self.running = False
        self.cancel_button.setEnabled(False)
        self.draw_button.setEnabled(self.result is not None)
        step = self.result.step if self.result is not None else 0
        self.status.setText(f"Cancelled at step {step}; press Start to run again")

    def _on_failed(self, _task_id: int, message: str) -> None:
        self.running = False
        self.cancel_button.setEnabled(False)
        self.status.setText(f"Could not maximise: {message}")

    # ------------------------------------------------------------------ rendering
    def _render(self) -> None:
        result = self.result
        if result is None:
            self.image.clear()
            self.score_curve.setData([], [])
            self.tv_curve.setData([], [])
            self.probs_label.setText("")
            return
        if not self.isVisible():
            return  # showEvent renders the latest state
        grey = np.clip(np.round(result.image01 * 255.0), 0, 255).astype(np.uint8)
        size = round(IMAGE_PX * self.scale)
        self.image.setPixmap(QPixmap.fromImage(to_qimage(grey)).scaled(
            size, size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation))
        steps = np.arange(1, len(result.scores) + 1)
        self.score_curve.setData(steps, result.scores)
        self.tv_curve.setData(steps, result.tv)
        self._show_probs()

    def _show_probs(self) -> None:
        result = self.result
        if result is None:
            self.probs_label.setText("")
            return
        probs = result.probs
        top = int(np.argmax(probs))
        digit = target_digit(result.objective)
        lines = []
        if digit is not None:
            lines.append(f"P({digit}) on this image: <b>{probs[digit]:.3f}</b>")
        lines.append(f"Network reads it as <b>{top}</b> ({probs[top]:.3f})")
        if result.objective.kind != "class":
            lines.append(f"Activation {result.start_activation:.3f} \u2192 <b>{result.activation:.3f}</b>")
        if self.drawn_probs is not None:
            drawn_top = int(np.argmax(self.drawn_probs))
            shown = digit if digit is not None else drawn_top
            lines.append(f"After 'Draw it' (preprocessed): P({shown}) = <b>{self.drawn_probs[shown]:.3f}</b>, "
                         f"read as {drawn_top}")
        elif self._drawn_request is not None:
            lines.append("After 'Draw it': analysing\u2026")
        self.probs_label.setText("<br>".join(lines))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._render()

    def apply_style(self, style: Style) -> None:
        self.scale = 1.3 if style.presentation else 1.0
        size = round(IMAGE_PX * self.scale)
        self.image.setFixedSize(size, size)
        self._render()
