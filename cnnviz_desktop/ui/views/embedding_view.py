"""The embeddings view: 5,000 MNIST test digits as PCA and t-SNE maps of the penultimate layer (dense1), with
the drawing as a live marker in both.

Everything heavy (reading MNIST, the reference features, t-SNE) runs on this view's background lane
(ui/tasks.QtTaskRunner); the GUI thread only draws what core/embedding.py returns. Per stroke the marker costs
a projection and a 10-nearest-neighbour lookup in numpy (no extra forward pass: it reads the snapshot's
activations). Skipped while hidden.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QSplitter,
                               QVBoxLayout, QWidget)

from ...core import embedding as emb
from ...core.errors import CnnvizError
from ..qimage import to_qimage
from .base import Host, Style, View

DATA_KEY = "data/mnist_dir"  # where the user chose the MNIST folder (the settings store; one key)
# Ten digit colours: the Okabe-Ito colour-blind-safe set (without black) plus white and grey, and every digit
# also has its own marker shape, so no distinction relies on colour alone.
DIGIT_COLORS = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (40, 130, 220),
                (213, 94, 0), (204, 121, 167), (245, 245, 245), (150, 150, 150), (255, 182, 219))
DIGIT_SYMBOLS = ("o", "s", "t", "d", "+", "x", "star", "t1", "p", "h")
SYMBOL_TEXT = ("\u25cf", "\u25a0", "\u25bc", "\u25c6", "+", "\u00d7", "\u2605", "\u25b2", "\u2b1f", "\u2b22")
POINT_SIZE = 5
MARKER_SIZE = 22
HOVER_PX = 8
BACKGROUND = (14, 15, 19)

SUMMARY = (
    "Dots: the first 5,000 MNIST test digits, placed by what the last hidden layer ({layer}) makes of them. "
    "<b>PCA</b>: a straight projection, its axes mean something. <b>t-SNE</b>: keeps neighbours only, its axes "
    "and gaps mean nothing. \u2605 = your drawing. Hover a dot to see it, click to draw it. "
    "<i>(Hover here for more.)</i>")
EXPLANATION = (
    "Each dot is one of the first 5,000 MNIST test digits, placed by the network's last hidden layer "
    "({layer}, after its activation): the features the output layer reads. <b>PCA</b> (top) is a straight projection "
    "onto the two directions in which those features vary most: its axes mean something, and the percentages "
    "say how much of the variance each keeps. <b>t-SNE</b> keeps neighbourhoods, not distances: its axes, "
    "cluster sizes and the gaps between clusters mean nothing; perplexity is about how many neighbours each "
    "point attends to. The big white-rimmed star is your drawing: exact in PCA; in t-SNE an approximation "
    "(the weighted mean of its 10 nearest test digits in feature space). Hover a dot to see the digit, click "
    "it to draw it.")


@dataclass
class _Ready:
    """What the lane prepared for one model: the set, the reference features (N, D) and images (N, 28, 28)."""

    model_path: str
    sha256: str
    layer: str
    embedding: emb.EmbeddingSet
    features: np.ndarray
    images: np.ndarray
    problems: tuple[str, ...] = ()


_DATA_CACHE: dict[str, object] = {}


def _load_test(directory: Path):
    from ...core import mnist

    key = str(Path(directory).resolve())
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = mnist.load(directory, "test")
    return _DATA_CACHE[key]


def _save_cache(embedding: emb.EmbeddingSet) -> str | None:
    """Write the set to this machine's cache; a sentence if that failed (the maps still show)."""
    try:
        embedding.save(emb.cache_path(embedding.sha256))
    except (OSError, CnnvizError) as exc:
        return f"could not cache the embeddings ({exc}); they will be recomputed next time"
    return None


def prepare_task(model, directory: Path, perplexity: int):
    """The lane task for a model: MNIST, features, stored maps, and a t-SNE at ``perplexity`` if missing.
    Reports the PCA-only set as progress first, so PCA shows while t-SNE runs."""
    from ...core import weights

    def run(ctx):
        ctx.progress(0.0, "reading the MNIST test set")
        data = _load_test(directory)
        ctx.check()
        sha = weights.sha256_of(model.path)
        stored, problems = emb.load_available(model.path, sha)
        if stored is not None:
            try:
                emb.check_against(stored, data.labels)
            except CnnvizError as exc:
                problems.append(str(exc))
                stored = None
        indices = stored.indices if stored is not None else emb.reference_points(data.labels)
        features = emb.dense_features(model, data.images[indices], ctx=ctx)
        if stored is None:
            stored = emb.EmbeddingSet.build(sha, model.arch.name, indices, data.labels[indices], features)
        layer = emb.penultimate_layer(emb.describe(model.arch)).name
        ready = _Ready(str(model.path), sha, layer, stored, features, data.images[indices], tuple(problems))
        if perplexity not in stored.tsne:
            ctx.progress(0.02, ready)
            stored.tsne[perplexity] = emb.tsne(features, perplexity, ctx=ctx)
            problem = _save_cache(stored)
            if problem:
                ready.problems = (*ready.problems, problem)
        return ready

    return run


def perplexity_task(ready: _Ready, perplexity: int):
    features = ready.features

    def run(ctx):
        coords = emb.tsne(features, perplexity, ctx=ctx)
        return ready.sha256, perplexity, coords

    return run


def download_task(directory: Path):
    def run(ctx):
        from ...core import mnist

        names = list(mnist.OFFICIAL_MD5)
        for i, name in enumerate(names):
            ctx.progress(i / len(names), f"downloading {name}")
            mnist.download(directory, checksums={name: mnist.OFFICIAL_MD5[name]})
        return directory

    return run


class _Map(QWidget):
    """One map: a pyqtgraph plot with one ScatterPlotItem of all points and one for the drawing's marker."""

    def __init__(self, owner: EmbeddingView, title: str) -> None:
        super().__init__()
        self.owner = owner
        self.coords = np.zeros((0, 2), np.float32)
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        self.plot = pg.PlotWidget(background=BACKGROUND)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setAspectLocked(False)
        self.plot.showGrid(x=False, y=False)
        self.plot.setToolTip("Scroll to zoom, drag to pan (right-drag zooms one axis). Hover a dot to see its "
                             "test digit; click it to load it into the drawing grid.")
        self.points = pg.ScatterPlotItem(size=POINT_SIZE, pen=None, pxMode=True)
        self.marker = pg.ScatterPlotItem(size=MARKER_SIZE, symbol="star", pxMode=True,
                                         pen=pg.mkPen((255, 255, 255), width=2.5), brush=pg.mkBrush(255, 60, 60))
        self.marker.setZValue(10)
        self.plot.addItem(self.points)
        self.plot.addItem(self.marker)
        self.plot.scene().sigMouseMoved.connect(self._on_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)

    def set_points(self, coords: np.ndarray, labels: np.ndarray) -> None:
        self.coords = np.asarray(coords, np.float32)
        brushes = self.owner.brushes
        symbols = np.asarray(DIGIT_SYMBOLS, dtype=object)[labels]
        self.points.setData(x=self.coords[:, 0], y=self.coords[:, 1], brush=[brushes[d] for d in labels],
                            symbol=list(symbols), data=np.arange(len(labels)))
        self.plot.autoRange()

    def clear_points(self) -> None:
        self.coords = np.zeros((0, 2), np.float32)
        self.points.clear()
        self.marker.clear()

    def set_marker(self, xy: np.ndarray | None) -> None:
        if xy is None:
            self.marker.clear()
        else:
            self.marker.setData(x=[float(xy[0])], y=[float(xy[1])])

    def marker_position(self) -> tuple[float, float] | None:
        x, y = self.marker.getData()
        return (float(x[0]), float(y[0])) if len(x) else None

    def nearest(self, scene_pos: QPointF) -> int | None:
        """The point within HOVER_PX pixels of a scene position, or None."""
        if not len(self.coords):
            return None
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        px, py = vb.viewPixelSize()
        if not px or not py:
            return None
        d2 = ((self.coords[:, 0] - p.x()) / px) ** 2 + ((self.coords[:, 1] - p.y()) / py) ** 2
        i = int(np.argmin(d2))
        return i if d2[i] <= HOVER_PX**2 else None

    def view_to_widget(self, index: int) -> QPointF:
        """Where point ``index`` is drawn, in the plot viewport's coordinates (tests, the inset)."""
        vb = self.plot.getPlotItem().vb
        scene = vb.mapViewToScene(QPointF(float(self.coords[index, 0]), float(self.coords[index, 1])))
        return QPointF(self.plot.mapFromScene(scene))

    def _on_moved(self, scene_pos) -> None:
        self.owner.hover(self, self.nearest(scene_pos))

    def _on_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        index = self.nearest(event.scenePos())
        if index is not None:
            event.accept()
            self.owner.open_point(index)


class EmbeddingView(View):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        from ..tasks import QtTaskRunner

        self.session = None
        self.host = None
        self.ready: _Ready | None = None
        self.shown_perplexity: int | None = None
        self.pending_model = None
        self.status = ""
        self.scale = 1.0
        self.hovered: tuple[int, int] | None = None  # (reference index, label) under the pointer
        self.brushes = [pg.mkBrush(*c, 200) for c in DIGIT_COLORS]
        self.lane = QtTaskRunner("embeddings", self)
        self.lane.progress.connect(self._on_progress)
        self.lane.finished.connect(self._on_finished)
        self.lane.failed.connect(self._on_failed)
        self.lane.cancelled.connect(self._on_cancelled)
        self._task_kind = ""

        self.explain = QLabel(SUMMARY.format(layer="dense1"))
        self.explain.setWordWrap(True)
        self.explain.setTextFormat(Qt.TextFormat.RichText)
        self.explain.setToolTip(f"<p>{EXPLANATION.format(layer='dense1')}</p>")
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setToolTip("The colour and the marker shape of each digit's test images")
        self.legend.setStyleSheet("background: rgb(14, 15, 19); color: rgb(220, 224, 232); padding: 2px;")
        self.perplexity = QSpinBox()
        self.perplexity.setRange(*emb.PERPLEXITY_RANGE)
        self.perplexity.setValue(emb.DEFAULT_PERPLEXITY)
        self.perplexity.setPrefix("perplexity ")
        self.perplexity.setKeyboardTracking(False)
        self.perplexity.setToolTip("t-SNE's perplexity (5-50): roughly how many neighbours each point attends to. "
                                   "5, 15, 30 and 50 are precomputed for the shipped models and show at once; "
                                   "other values are computed in the background (the old map stays meanwhile).")
        self.perplexity.valueChanged.connect(self._on_perplexity)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setToolTip("t-SNE in the background; the window stays usable")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the computation; the map shown stays")
        self.cancel_button.clicked.connect(self.cancel)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.choose_button = QPushButton("Choose MNIST folder...")
        self.choose_button.setToolTip("The folder holding t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)")
        self.choose_button.clicked.connect(self.choose_folder)
        self.download_button = QPushButton("Download MNIST")
        self.download_button.setToolTip("Fetch the official MNIST files (about 11 MB, MD5-checked) into your "
                                        "user data folder")
        self.download_button.clicked.connect(self.download)
        # The hovered test digit: its image and label in a small box beside the point.
        self.inset = QFrame(self)
        self.inset.setObjectName("embeddingInset")
        self.inset.setStyleSheet("#embeddingInset { background: rgb(14, 15, 19); border: 1px solid #999; }"
                                 " QLabel { color: white; }")
        self.inset_image = QLabel()
        self.inset_text = QLabel()
        self.inset_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        inset_layout = QVBoxLayout(self.inset)
        inset_layout.setContentsMargins(4, 4, 4, 4)
        inset_layout.setSpacing(2)
        inset_layout.addWidget(self.inset_image)
        inset_layout.addWidget(self.inset_text)
        self.inset.hide()

        self.pca_map = _Map(self, "PCA")
        self.tsne_map = _Map(self, "t-SNE")
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.pca_map)
        self.splitter.addWidget(self.tsne_map)

        controls = QHBoxLayout()
        controls.addWidget(self.perplexity)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.cancel_button)
        data_row = QHBoxLayout()
        data_row.addWidget(self.choose_button)
        data_row.addWidget(self.download_button)
        data_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.explain)
        layout.addLayout(controls)
        layout.addWidget(self.status_label)
        layout.addLayout(data_row)
        layout.addWidget(self.legend)
        layout.addWidget(self.splitter, 1)
        self._set_busy(False)
        self._show_data_buttons(False)
        self._update_legend()

    # ------------------------------------------------------------------ wiring
    def attach(self, host: Host) -> None:
        self.host = host
        session = self.session = host.session
        session.snapshot_changed.connect(self._on_snapshot)
        session.model_changed.connect(self._on_model_changed)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.ensure()

    def apply_style(self, style: Style) -> None:
        self.scale = style.scale
        self._update_legend(style.scale)

    # ------------------------------------------------------------------ state
    def data_dir(self) -> Path | None:
        """The MNIST folder: $CNNVIZ_MNIST_DIR, else the one chosen in this view (settings), else None."""
        from ...core.paths import mnist_dir_from_env

        env = mnist_dir_from_env()
        if env is not None:
            return env
        stored = self.session.store.value(DATA_KEY, None) if self.session is not None else None
        return Path(str(stored)) if stored else None

    def ensure(self) -> None:
        """Start preparing the current model's maps if they are not ready (or being prepared)."""
        session = self.session
        if session is None or session.model is None or not self.isVisible():
            return
        model = session.model
        if self.ready is not None and self.ready.model_path == str(model.path) and self.pending_model is None:
            self._update_marker()
            return
        if self.pending_model is model and self.lane.busy:
            return
        directory = self.data_dir()
        if directory is None or not self._has_test_files(directory):
            self._no_data(directory)
            return
        self._show_data_buttons(False)
        self.pending_model = model
        self._task_kind = "prepare"
        self._set_busy(True, f"Preparing the maps of {model.arch.name}...")
        self.lane.submit(prepare_task(model, directory, int(self.perplexity.value())))

    @staticmethod
    def _has_test_files(directory: Path) -> bool:
        return any((directory / f"t10k-images-idx3-ubyte{ext}").is_file() for ext in ("", ".gz"))

    def _no_data(self, directory: Path | None) -> None:
        where = f" (looked in {directory})" if directory is not None else ""
        self._say("The maps need the MNIST test set (the t10k files), which was not found" + where +
                  ". Choose the folder that holds them, or download them.")
        self._show_data_buttons(True)

    def _describe_layer(self, model) -> None:
        """The texts name the layer this model's maps are made of (dense1 for tiny and wide)."""
        try:
            spec = emb.penultimate_layer(emb.describe(model.arch))
            shape = "\u00d7".join(map(str, spec.shape))
            layer = spec.name if len(spec.shape) == 1 else f"{spec.name}, {shape} values"
        except (CnnvizError, AttributeError):
            layer = "the layer before the output"
        self.explain.setText(SUMMARY.format(layer=layer))
        self.explain.setToolTip(f"<p>{EXPLANATION.format(layer=layer)}</p>")

    def _on_model_changed(self, _model) -> None:
        if _model is not None:
            self._describe_layer(_model)
        self.pca_map.set_marker(None)
        self.tsne_map.set_marker(None)
        if self.isVisible():
            self.ensure()

    def _on_perplexity(self, value: int) -> None:
        value = int(value)
        ready = self.ready
        if ready is None:
            if self.pending_model is not None:  # preparing: restart it with the new perplexity
                self.pending_model = None
                self.ensure()
            return
        if value in ready.embedding.tsne:
            if self.lane.busy and self._task_kind == "perplexity":
                self.lane.cancel()
            self._show_tsne(value)
            return
        self._task_kind = "perplexity"
        self._set_busy(True, f"Computing t-SNE at perplexity {value} in the background; the map of perplexity "
                             f"{self.shown_perplexity} stays until it is ready.")
        self.lane.submit(perplexity_task(ready, value))

    def cancel(self) -> None:
        self.lane.cancel()

    # ------------------------------------------------------------------ lane results
    def _on_progress(self, _task_id: int, fraction: float, payload) -> None:
        self.progress.setValue(int(fraction * 1000))
        if isinstance(payload, _Ready):
            self._show_ready(payload, tsne=False)
            self._say(f"PCA ready; computing t-SNE at perplexity {int(self.perplexity.value())} in the background...")
        elif isinstance(payload, str):
            self._say(payload[:1].upper() + payload[1:] + "...")

    def _on_finished(self, _task_id: int, result) -> None:
        kind = self._task_kind
        self._set_busy(False)
        if kind == "prepare" and isinstance(result, _Ready):
            self.pending_model = None
            self._show_ready(result, tsne=True)
        elif kind == "perplexity" and self.ready is not None:
            sha, perplexity, coords = result
            if sha != self.ready.sha256:
                return
            self.ready.embedding.tsne[perplexity] = coords
            problem = _save_cache(self.ready.embedding)
            if int(self.perplexity.value()) == perplexity:
                self._show_tsne(perplexity)
            if problem:
                self.host.show_status(problem, 8000)
        elif kind == "download":
            self.session.store.set_value(DATA_KEY, str(result))
            self._say(f"MNIST downloaded into {result}.")
            self.ensure()

    def _on_failed(self, _task_id: int, message: str) -> None:
        kind = self._task_kind
        self._set_busy(False)
        if kind == "prepare":
            self.pending_model = None
        self._say(f"Could not compute the maps: {message}")
        if kind in ("prepare", "download"):
            self._show_data_buttons(True)

    def _on_cancelled(self, _task_id: int) -> None:
        self._set_busy(False)
        if self._task_kind == "prepare":
            self.pending_model = None
            self._say("Cancelled. Change the perplexity or reopen the view to compute the maps.")
        elif self.shown_perplexity is not None:
            self.perplexity.blockSignals(True)
            self.perplexity.setValue(self.shown_perplexity)
            self.perplexity.blockSignals(False)
            self._say(f"t-SNE cancelled; showing perplexity {self.shown_perplexity}.")

    # ------------------------------------------------------------------ rendering
    def _show_ready(self, ready: _Ready, tsne: bool) -> None:
        self.ready = ready
        e = ready.embedding
        self.pca_map.set_points(e.pca_coords, e.labels)
        r = e.pca_ratio
        self.pca_map.title.setText(f"PCA of {ready.layer} ({len(e):,} test digits): axis 1 explains "
                                   f"{r[0]:.1%} of the variance, axis 2 {r[1]:.1%} (together {r.sum():.1%})")
        if tsne:
            wanted = int(self.perplexity.value())
            self._show_tsne(wanted if wanted in e.tsne else min(e.tsne, key=lambda p: abs(p - wanted)))
            text = f"{len(e):,} test digits, model {e.model_name}. Precomputed/cached perplexities: " + \
                ", ".join(str(p) for p in e.perplexities) + "."
            if ready.problems:
                text += " Note: " + " ".join(ready.problems)
            self._say(text)
        else:
            self.tsne_map.clear_points()
            self.tsne_map.title.setText("t-SNE: computing...")
        self._update_marker()

    def _show_tsne(self, perplexity: int) -> None:
        e = self.ready.embedding
        self.shown_perplexity = perplexity
        self.tsne_map.set_points(e.tsne[perplexity], e.labels)
        self.tsne_map.title.setText(f"t-SNE of {self.ready.layer}, perplexity {perplexity} (openTSNE): "
                                    f"axes have no meaning, neighbourhoods do")
        self._update_marker()

    def _on_snapshot(self, _snapshot) -> None:
        if self.isVisible():
            self._update_marker()

    def _update_marker(self) -> None:
        """Place the drawing in both maps from the snapshot's activations (numpy only)."""
        ready = self.ready
        snap = self.session.snapshot if self.session is not None else None
        if (ready is None or snap is None or snap.empty or ready.model_path != str(self.session.model.path)
                or ready.layer not in snap.activations):
            self.pca_map.set_marker(None)
            self.tsne_map.set_marker(None)
            return
        feature = np.asarray(snap.activations[ready.layer], dtype=np.float32).reshape(-1)
        self.pca_map.set_marker(emb.pca_project(feature, ready.embedding))
        if self.shown_perplexity is not None and self.shown_perplexity in ready.embedding.tsne:
            self.tsne_map.set_marker(emb.place(feature, ready.features, ready.embedding.tsne[self.shown_perplexity]))
        else:
            self.tsne_map.set_marker(None)

    def hover(self, which: _Map, index: int | None) -> None:
        """Show (or hide) the inset with the test digit under the pointer."""
        ready = self.ready
        if index is None or ready is None:
            self.hovered = None
            self.inset.hide()
            return
        label = int(ready.embedding.labels[index])
        test_index = int(ready.embedding.indices[index])
        self.hovered = (index, label)
        image = to_qimage(np.ascontiguousarray(ready.images[index]))
        side = int(round(84 * self.scale))
        self.inset_image.setPixmap(QPixmap.fromImage(image).scaled(
            side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        self.inset_text.setText(f"label {label}\ntest #{test_index}")
        self.inset.adjustSize()
        self.host.show_status(f"Test digit #{test_index}, label {label} (click to draw it)", 3000)
        pos = which.plot.viewport().mapTo(self, which.view_to_widget(index).toPoint())
        x = min(max(pos.x() + 12, 0), max(self.width() - self.inset.width(), 0))
        y = min(max(pos.y() - self.inset.height() - 8, 0), max(self.height() - self.inset.height(), 0))
        self.inset.move(x, y)
        self.inset.show()
        self.inset.raise_()

    def open_point(self, index: int) -> None:
        """Load reference point ``index``'s test image into the drawing grid (resampled to the grid's shape)."""
        ready = self.ready
        if ready is None:
            return
        image = ready.images[index].astype(np.float32) / 255.0
        shape = self.session.canvas.pixels.shape
        if image.shape != shape:
            from ...core.preprocess import resize_antialiased

            image = np.clip(resize_antialiased(image, *shape), 0.0, 1.0).astype(np.float32)
        self.session.load_pixels(image)
        label = int(ready.embedding.labels[index])
        self.host.show_status(f"Test digit #{int(ready.embedding.indices[index])} (label {label}) is on the grid; "
                              "Ctrl+Z brings your drawing back", 6000)

    # ------------------------------------------------------------------ data folder
    def choose_folder(self) -> None:
        start = str(self.data_dir() or Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Folder with the MNIST test files", start)
        if chosen:
            self.set_data_dir(Path(chosen))

    def set_data_dir(self, directory: Path) -> None:
        """Use (and remember) ``directory`` as the MNIST folder."""
        if not self._has_test_files(directory):
            self._no_data(directory)
            return
        self.session.store.set_value(DATA_KEY, str(directory))
        if os.environ.get("CNNVIZ_MNIST_DIR", "").strip():
            self._say("Note: $CNNVIZ_MNIST_DIR is set and takes precedence over the chosen folder.")
        self.ready = None
        self.pending_model = None
        self.ensure()

    def download(self) -> None:
        from ...core.userdata import user_data_dir

        try:
            target = user_data_dir() / "mnist"
        except CnnvizError as exc:
            self._say(str(exc))
            return
        self._task_kind = "download"
        self._set_busy(True, f"Downloading MNIST into {target}...")
        self.lane.submit(download_task(target))

    # ------------------------------------------------------------------ small helpers
    def _say(self, text: str) -> None:
        self.status = text
        self.status_label.setText(text)

    def _set_busy(self, busy: bool, text: str | None = None) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
        if text is not None:
            self._say(text)

    def _show_data_buttons(self, visible: bool) -> None:
        self.choose_button.setVisible(visible)
        self.download_button.setVisible(visible)

    def _update_legend(self, scale: float = 1.0) -> None:
        size = int(round(13 * scale))
        parts = [f"<span style='color: rgb{c}; font-size: {size}pt'>{s}</span>&nbsp;{d}"
                 for d, (c, s) in enumerate(zip(DIGIT_COLORS, SYMBOL_TEXT))]
        self.legend.setText("digit: " + " &nbsp; ".join(parts))

    def points_shown(self) -> tuple[int, int]:
        """How many points each map shows (PCA, t-SNE)."""
        return len(self.pca_map.points.data), len(self.tsne_map.points.data)

    def marker_positions(self) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        return self.pca_map.marker_position(), self.tsne_map.marker_position()
