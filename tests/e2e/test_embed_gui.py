"""The embeddings view, driven as a person would: open it (Alt+9), see both maps, draw and watch the marker,
change the perplexity (precomputed: at once; another: in the background, cancellable), hover and click a point."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from cnnviz_desktop.core import embedding as emb
from cnnviz_desktop.ui.input_sim import drag

from .test_main_window import ring, settle


@pytest.fixture
def data_env(mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNVIZ_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(tmp_path / "user"))
    return tmp_path / "user"


def _type_perplexity(qtbot, view, value: int) -> None:
    box = view.perplexity
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), str(value))
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)


def _isolated_point(coords: np.ndarray) -> int:
    """A point far from its neighbours (so the pointer on it cannot hit another)."""
    sample = np.arange(0, len(coords), 7)
    d2 = ((coords[sample, None, :] - coords[None, :, :]) ** 2).sum(-1)
    d2[np.arange(len(sample)), sample] = np.inf
    return int(sample[int(np.argmax(d2.min(1)))])


def _move(widget, pos: QPointF) -> None:
    event = QMouseEvent(QEvent.Type.MouseMove, pos, widget.mapToGlobal(pos), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_embeddings_view_maps_marker_perplexity_hover_and_click(start_app, qtbot, data_env):
    window = start_app(model="wide").window
    view = window.views["embedding"]
    assert not view.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_9, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    # The shipped precomputed maps: both maps with all 5,000 points, PCA's explained variance in words.
    qtbot.waitUntil(lambda: view.ready is not None and view.shown_perplexity == 30, timeout=120_000)
    assert view.points_shown() == (5000, 5000)
    ratio = view.ready.embedding.pca_ratio
    assert f"{ratio[0]:.1%}" in view.pca_map.title.text() and "variance" in view.pca_map.title.text()
    assert view.legend.text().count("&nbsp;") >= 10 and "perplexity 30" in view.tsne_map.title.text()

    # Draw: the marker appears, exactly at the PCA projection of the snapshot's dense1 activations.
    assert view.marker_positions() == (None, None)
    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    qtbot.waitUntil(lambda: view.marker_positions()[0] is not None, timeout=5_000)
    first = view.marker_positions()
    expected = emb.pca_project(np.asarray(snap.activations["dense1"]).reshape(-1), view.ready.embedding)
    assert np.allclose(first[0], expected, atol=1e-4)
    # In t-SNE the drawing sits among test digits of the class it is read as.
    coords = view.ready.embedding.tsne[30]
    near = np.argsort(((coords - np.asarray(first[1])) ** 2).sum(1))[:10]
    assert np.bincount(view.ready.embedding.labels[near], minlength=10).argmax() == snap.predicted
    window.session.clear()
    drag(window.canvas, [(14.0, 4.0), (14.5, 24.0)])
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.marker_positions()[0] not in (None, first[0]), timeout=5_000)
    assert view.marker_positions()[1] != first[1]

    # A precomputed perplexity shows at once, no background work.
    _type_perplexity(qtbot, view, 15)
    assert view.shown_perplexity == 15 and not view.lane.busy
    assert "perplexity 15" in view.tsne_map.title.text()
    # Another one runs in the background, the old map stays; Cancel keeps it and resets the control.
    _type_perplexity(qtbot, view, 20)
    assert view.lane.busy and view.progress.isVisible() and view.shown_perplexity == 15
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.lane.busy and not view.progress.isVisible(), timeout=60_000)
    assert view.shown_perplexity == 15 and view.perplexity.value() == 15 and "cancelled" in view.status
    _type_perplexity(qtbot, view, 12)
    assert view.progress.isVisible() and view.shown_perplexity == 15
    drag(window.canvas, ring())  # the window keeps working meanwhile
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.shown_perplexity == 12, timeout=600_000)
    assert view.points_shown() == (5000, 5000) and not view.progress.isVisible()
    assert emb.cache_path(view.ready.sha256).is_file()  # remembered for the next time
    assert 12 in emb.EmbeddingSet.load(emb.cache_path(view.ready.sha256)).tsne

    # Hover a point: the inset shows its test image and its label.
    tsne_map = view.tsne_map
    i = _isolated_point(tsne_map.coords)
    _move(tsne_map.plot.viewport(), tsne_map.view_to_widget(i))
    label = int(view.ready.embedding.labels[i])
    qtbot.waitUntil(view.inset.isVisible, timeout=5_000)
    assert view.hovered == (i, label) and f"label {label}" in view.inset_text.text()
    assert view.inset_image.pixmap() is not None and not view.inset_image.pixmap().isNull()

    # Click a point: its test image is on the grid (and analysed).
    pca_map = view.pca_map
    j = _isolated_point(pca_map.coords)
    qtbot.mouseClick(pca_map.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=pca_map.view_to_widget(j).toPoint())
    image = view.ready.images[j].astype(np.float32) / 255.0
    qtbot.waitUntil(lambda: np.allclose(window.session.canvas.pixels, image, atol=1e-6), timeout=5_000)
    snap = settle(qtbot, window)
    assert not snap.empty


def test_without_data_the_view_says_so_and_a_chosen_folder_is_used_and_remembered(start_app, qtbot, mnist_dir,
                                                                                 monkeypatch, tmp_path):
    monkeypatch.delenv("CNNVIZ_MNIST_DIR", raising=False)
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(tmp_path / "user"))
    window = start_app().window
    view = window.views["embedding"]
    window.toggle_view("embedding")
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    assert "MNIST test set" in view.status and "not found" in view.status
    assert view.choose_button.isVisible() and view.download_button.isVisible()
    assert view.ready is None and view.points_shown() == (0, 0)
    # A folder without the files is refused in words; the right one is used and kept in the settings.
    view.set_data_dir(tmp_path)
    assert "not found" in view.status and str(tmp_path) in view.status
    view.set_data_dir(mnist_dir)
    qtbot.waitUntil(lambda: view.ready is not None and view.shown_perplexity == 30, timeout=120_000)
    assert view.points_shown() == (5000, 5000) and not view.choose_button.isVisible()
    assert window.session.store.value("data/mnist_dir") == str(mnist_dir)
