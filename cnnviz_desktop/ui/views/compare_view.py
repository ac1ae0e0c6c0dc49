"""The compare view: two explanation methods side by side for the same drawing and the same class, and a line
saying how much they agree (core.attribution.agreement: overlap of their top-10% cells on the 28x28 input).

Grad-CAM, HiResCAM, saliency and gradient x input come with the snapshot (the engine computes the last two
only while a pane shows them: session.need / release). Occlusion is a sweep of ~600 forwards: it runs on
this view's own background lane (ui/tasks.QtTaskRunner), never in the analysis worker or the GUI thread, and
only while the view is shown.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout

from ...core import attribution
from ..map_pane import MapPane
from ..tasks import QtTaskRunner
from .base import explanation_label, Host, Style, View

OWNER = "compare"
OCCLUSION_MODULE = "cnnviz_desktop.core.occlusion"
OCCLUSION_SIZE = 4
# (id, menu text, signed map?, tooltip)
METHODS = (
    ("gradcam", "Grad-CAM", True, "Grad-CAM: channel-averaged gradient x activation of the last conv block, "
                                  "upsampled from its 5x5 grid (coarse)"),
    ("hirescam", "HiResCAM", True, "HiResCAM: exact gradient x activation per cell of the last conv block"),
    ("saliency", "Saliency", False, "Saliency: |d score / d pixel| (unsigned, sharp, noisy)"),
    ("inputxgrad", "Gradient \u00d7 input", True, "Gradient x input: pixel value x gradient (signed; not zero "
                                                  "on blank paper, which is -0.42 to the network)"),
    ("occlusion", "Occlusion", True, f"Occlusion: the drop of the class score when a black {OCCLUSION_SIZE}x"
                                     f"{OCCLUSION_SIZE} patch hides each place (computed in the background)"),
)
BY_ID = {m[0]: m for m in METHODS}
DEFAULTS = ("gradcam", "saliency")
SUMMARY = (
    "Two explanation methods on the same drawing and class, and how much they agree."
)
EXPLANATION = (
    "Two explanations of the same drawing and the same class, side by side. Where they mark the same cells, "
    "trust that part more; where they disagree, each method answers a different question (Grad-CAM: which "
    "coarse regions the last conv block used; saliency: where the score is most sensitive; gradient \u00d7 "
    "input: a first-order share of the score per pixel; occlusion: what hiding a patch costs). The agreement "
    "is the overlap of their strongest 10% of cells (by magnitude) on the 28\u00d728 image the network sees."
)


def occlusion_available() -> bool:
    """True when the occlusion module is part of this build (found without importing it)."""
    try:
        return importlib.util.find_spec(OCCLUSION_MODULE) is not None
    except (ImportError, ValueError):
        return False


class CompareView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session = None
        self.host = None
        self._palette = "default"
        self.agreement: float | None = None
        self.correlation: float | None = None
        self._occlusion_key = None  # (generation, request_id, target) of self._occlusion
        self._occlusion: np.ndarray | None = None
        self._occlusion_pending = None
        self._occlusion_error: tuple = ()  # (key, message) of the last failure
        self._occlusion_progress = 0.0
        self.lane = QtTaskRunner("compare-occlusion", self)
        self.lane.finished.connect(self._on_occlusion_done)
        self.lane.failed.connect(self._on_occlusion_failed)
        self.lane.progress.connect(self._on_occlusion_progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        self.explanation = explanation_label(SUMMARY, EXPLANATION)
        layout.addWidget(self.explanation)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self.selectors: list[QComboBox] = []
        self.panes: list[MapPane] = []
        for i, default in enumerate(DEFAULTS):
            selector = QComboBox()
            selector.setAccessibleName(f"Method {i + 1}")
            selector.setToolTip(f"The explanation method of pane {i + 1}")
            for j, (method, text, _signed, tip) in enumerate(METHODS):
                selector.addItem(text, method)
                selector.setItemData(j, tip, Qt.ItemDataRole.ToolTipRole)
            selector.setCurrentIndex(selector.findData(default))
            selector.activated.connect(lambda _i: self._on_methods_changed())
            pane = MapPane()
            self.selectors.append(selector)
            self.panes.append(pane)
            grid.addWidget(selector, 0, i)
            grid.addWidget(pane, 1, i)
            grid.setColumnStretch(i, 1)
        grid.setRowStretch(1, 1)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.class_selector = QComboBox()
        self.class_selector.setAccessibleName("Explained class")
        self.class_selector.setToolTip("Which class both methods explain: the prediction or any digit")
        self.class_selector.addItem("Prediction", None)
        for digit in range(10):
            self.class_selector.addItem(str(digit), digit)
        self.class_selector.activated.connect(
            lambda i: self.session.set_target(self.class_selector.itemData(i)))
        row.addWidget(QLabel("Explain"))
        row.addWidget(self.class_selector)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addLayout(grid, 1)
        self.agreement_label = QLabel("")
        self.agreement_label.setWordWrap(True)
        self.agreement_label.setToolTip("Overlap (intersection over union) of the two maps' strongest 10% of cells "
                                        "on the 28x28 input, by magnitude: 1 = the same cells, about 0.05 for two "
                                        "unrelated maps. The rank correlation compares every cell's |value|.")
        self.agreement_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.agreement_label)

    # ------------------------------------------------------------------ protocol
    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        self._palette = session.palette
        session.snapshot_changed.connect(lambda _snap: self.render() if self.isVisible() else None)
        session.model_changed.connect(lambda _m: self._forget_occlusion())
        session.changed.connect(self._on_changed)
        if self.isVisible():
            self._update_needs()
        self.render()

    def apply_style(self, style: Style) -> None:
        self._palette = style.palette
        self.render()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.session is not None:
            self._update_needs()
            self.render()

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        if self.session is not None:
            self.session.release(OWNER)
        self.lane.cancel()
        self._occlusion_pending = None

    # ------------------------------------------------------------------ state
    def methods(self) -> list[str]:
        """The method id of each pane, left to right."""
        return [selector.currentData() for selector in self.selectors]

    def _update_needs(self) -> None:
        self.session.need(OWNER, {m for m in self.methods() if m in attribution.EXTRAS})

    def _on_methods_changed(self) -> None:
        if self.session is not None and self.isVisible():
            self._update_needs()
        self.render()

    def _on_changed(self, name: str, value) -> None:
        if name == "palette":
            self._palette = value
        if name in ("target", "contrast", "palette") and self.isVisible():
            self.render()

    def _forget_occlusion(self) -> None:
        self.lane.cancel()
        self._occlusion_key = self._occlusion_pending = None
        self._occlusion = None

    # ------------------------------------------------------------------ occlusion on the lane
    def _occlusion_for(self, snap) -> tuple[np.ndarray | None, str]:
        """(map or None, message): the current drawing's occlusion map, starting its computation if needed."""
        if not occlusion_available():
            return None, "Occlusion is not available in this build"
        session = self.session
        key = (session.generation, snap.request_id, snap.target)
        if key == self._occlusion_key:
            return self._occlusion, ""
        if self._occlusion_error and self._occlusion_error[0] == key:
            return None, self._occlusion_error[1]
        if key != self._occlusion_pending:
            self._occlusion_pending = key
            self._occlusion_error = ()
            self._occlusion_progress = 0.0
            model = getattr(session.model, "model", session.model)
            image = np.array(snap.activations["input"][0], dtype=np.float32)
            target = int(snap.target)

            def task(ctx, model=model, image=image, target=target, key=key):
                from ...core.occlusion import occlusion_map  # lazy: the module may be absent from a build

                return key, occlusion_map(model, image, target, size=OCCLUSION_SIZE, stride=1, ctx=ctx)

            self.lane.submit(task)
        # While the new map is computed the previous one stays (no flicker while drawing), marked as stale.
        return None, f"Computing occlusion\u2026 {self._occlusion_progress:.0%}"

    def _on_occlusion_done(self, _task_id: int, payload) -> None:
        key, values = payload
        self._occlusion_key, self._occlusion = key, np.asarray(values, dtype=np.float32)
        if key == self._occlusion_pending:
            self._occlusion_pending = None
        self.render()

    def _on_occlusion_failed(self, _task_id: int, message: str) -> None:
        self._occlusion_error = (self._occlusion_pending, f"Occlusion failed: {message}")
        self._occlusion_pending = None
        self.render()

    def _on_occlusion_progress(self, _task_id: int, fraction: float, _payload) -> None:
        self._occlusion_progress = fraction
        if self._occlusion_key is None or self._occlusion is None:
            self.render()

    # ------------------------------------------------------------------ render
    def current_maps(self) -> list[np.ndarray | None]:
        """The (28, 28) map each pane shows for the current drawing (None: not available yet)."""
        return [pane.values if pane.target is not None else None for pane in self.panes]

    def render(self) -> None:
        session = self.session
        if session is None:
            return
        index = self.class_selector.findData(session.target) if session.target is not None else 0
        if index >= 0 and index != self.class_selector.currentIndex():
            self.class_selector.setCurrentIndex(index)
        snap = session.snapshot
        empty = snap is None or snap.empty
        maps: list[np.ndarray | None] = []
        for selector, pane in zip(self.selectors, self.panes):
            method = selector.currentData()
            _, text, signed, tip = BY_ID[method]
            pane.setToolTip(tip)
            if empty:
                pane.target = None
                pane.set_map(None, signed=signed, title=text, message="Draw a digit", palette=self._palette)
                maps.append(None)
                continue
            values, message = self._values(method, snap)
            what = f"digit {snap.target}"
            if snap.contrast is not None and method != "occlusion":
                what = f"{snap.target} rather than {snap.contrast}"
            stale = values is None and method == "occlusion" and self._occlusion is not None
            if stale:  # keep the previous drawing's map visible while the new one is computed
                pane.target = None
                pane.set_map(self._occlusion, signed=True, title=f"{text}, updating\u2026",
                             ink=np.asarray(snap.activations["input"][0]), palette=self._palette)
                maps.append(None)
                continue
            pane.target = None if values is None else snap.target
            pane.set_map(values, signed=signed, title=f"{text}, {what}", message=message,
                         ink=np.asarray(snap.activations["input"][0]), palette=self._palette)
            maps.append(values)
        self._render_agreement(maps)

    def _values(self, method: str, snap) -> tuple[np.ndarray | None, str]:
        if method == "gradcam":
            return np.asarray(snap.cam), ""
        if method == "hirescam":
            return np.asarray(snap.hirescam), ""
        if method == "saliency":
            return (None, "Computing\u2026") if snap.saliency is None else (np.asarray(snap.saliency), "")
        if method == "inputxgrad":
            return ((None, "Computing\u2026") if snap.input_x_gradient is None
                    else (np.asarray(snap.input_x_gradient), ""))
        return self._occlusion_for(snap)

    def _render_agreement(self, maps: list[np.ndarray | None]) -> None:
        names = [BY_ID[m][1] for m in self.methods()]
        if len(maps) < 2 or maps[0] is None or maps[1] is None:
            self.agreement = self.correlation = None
            snap = self.session.snapshot
            self.agreement_label.setText("Draw a digit to compare" if snap is None or snap.empty
                                         else "Waiting for both maps\u2026")
            return
        self.agreement = attribution.agreement(maps[0], maps[1])
        self.correlation = attribution.rank_correlation(maps[0], maps[1])
        if self.methods()[0] == self.methods()[1]:
            verdict = "the same method"
        elif self.agreement >= 0.5:
            verdict = "they mostly agree"
        elif self.agreement >= 0.2:
            verdict = "they partly agree"
        else:
            verdict = "they mostly disagree"
        self.agreement_label.setText(
            f"<b>{names[0]}</b> vs <b>{names[1]}</b>: top-10% cells overlap <b>{self.agreement:.2f}</b> "
            f"(1 = same cells, about 0.05 by chance); rank correlation of |values| {self.correlation:.2f}. "
            f"{verdict.capitalize()}.")
