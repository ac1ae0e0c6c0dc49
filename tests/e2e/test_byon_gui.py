"""Bring your own network (issue 14): networks of the spec language, trained by ``cnnviz-train fit --arch`` and
imported by ``cnnviz-train import``, in the real window: drawn on, checked against torch/captum, every view opened.
"""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from cnnviz_desktop.core.architecture import describe, last_conv_layer, receptive_field
from cnnviz_desktop.ui.input_sim import drag

from ..core.test_spec import SPECS
from .test_main_window import ring, settle

ROOT = Path(__file__).resolve().parents[2]
# Five of issue 14's architectures: padding 1, stride 2, 5x5 kernels + average pooling + tanh, batch norm in
# three conv blocks, 003's shape (global average pooling as the output). gapfc and mixed are covered by core tests.
TRAINED = ("pad1", "stride2", "k5avg", "bn3", "gap003")
ATOL = 2e-4


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> dict[str, Path]:
    """Each of TRAINED trained for one short epoch by the real CLI (subprocess), once per test session."""
    data = os.environ.get("CNNVIZ_MNIST_DIR")
    if not data:
        if os.environ.get("CNNVIZ_REQUIRE_DATA") == "1":
            pytest.fail("CNNVIZ_MNIST_DIR is not set")
        pytest.skip("CNNVIZ_MNIST_DIR is not set (MNIST is needed to train the networks)")
    folder = tmp_path_factory.mktemp("byon_models")
    paths = {}
    for key in TRAINED:
        out = folder / f"{key}.safetensors"
        result = subprocess.run(
            [sys.executable, "-m", "cnnviz_desktop.cli.train", "fit", "--arch", SPECS[key], "--name", key,
             "--epochs", "1", "--limit", "1000", "--no-eval", "--quiet", "--data", data, "--out", str(out)],
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        paths[key] = out
    return paths


@pytest.fixture(autouse=True)
def user_data(monkeypatch, tmp_path) -> Path:
    """The history database, caches and logs of these windows go to a fresh folder. Torn down after
    start_app: the closed window's reference cycles are collected here, on the GUI thread. Left to the cyclic
    collector, they are freed by whichever thread allocates next -- a view's background lane -- and deleting
    Qt widgets there deadlocks against the GUI thread (seen: QMenu::~QMenu in a lane thread)."""
    gc.collect()
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(tmp_path / "user"))
    yield tmp_path / "user"
    QApplication.processEvents()
    gc.collect()


def _messages_open() -> list[str]:
    return [w.text() for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def _folded_bias(model, spec) -> np.ndarray:
    """The bias of a conv/fc layer with its batch norm folded in (what contributions + bias must give)."""
    module = model.body[spec.weight_module]
    bias = module.bias.detach().double() if module.bias is not None else torch.zeros(module.out_channels)
    if spec.norm_module is not None:
        bn = model.body[spec.norm_module]
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = (bias - bn.running_mean.double()) * scale + bn.bias.detach().double()
    return bias.numpy()


def check_snapshot_against_torch(window, snap) -> None:
    """Grad-CAM equals captum's LayerGradCam on the torch model for the drawn input; every conv/dense
    neuron's contributions plus its (folded) bias equal its pre-activation."""
    from captum.attr import LayerGradCam

    loaded = window.loaded
    model = loaded.model
    specs = describe(loaded.arch)
    x = snap.placement.tensor
    cam_spec = last_conv_layer(specs)
    assert snap.cam_layer == cam_spec.name
    reference = LayerGradCam(model, model.body[cam_spec.module]).attribute(
        x, target=snap.target, relu_attributions=False, attr_dim_summation=False)[0].detach().numpy()
    assert snap.cam_lowres.shape == reference.shape == cam_spec.shape
    assert np.abs(snap.cam_lowres - reference).max() <= ATOL * max(1.0, np.abs(reference).max())
    outputs, a = [], x
    with torch.no_grad():
        for module in model.body:
            a = module(a)
            outputs.append(a[0].numpy())
    wiring = window.session.wiring if hasattr(window.session, "wiring") else None
    for spec in specs[1:]:
        if spec.weight_module is None:
            continue
        contributions = snap.contributions[spec.name]
        rows = contributions.reshape(spec.size, -1) if wiring is None else contributions.reshape(
            -1, wiring[spec.name].fan_in)
        pre = outputs[spec.norm_module if spec.norm_module is not None else spec.weight_module].reshape(-1)
        bias = _folded_bias(model, spec)
        if spec.kind == "conv":
            bias = np.repeat(bias, spec.shape[1] * spec.shape[2])
        assert np.abs(rows.sum(1) + bias - pre).max() <= ATOL * max(1.0, np.abs(pre).max()), spec.name


def check_receptive_field(window, qtbot) -> None:
    """Click a neuron of the Grad-CAM layer in the scene: the canvas outlines exactly its receptive field."""
    scene = window.scene
    specs = describe(window.loaded.arch)
    cam = last_conv_layer(specs)
    _, h, w = cam.shape
    index = (0, h // 2, w // 2)
    qtbot.waitSignal(scene.view.frameSwapped, timeout=10_000, raising=False)
    position = scene.screen_position(cam.name, index)
    assert position is not None
    with qtbot.waitSignal(scene.neuron_picked, timeout=10_000) as picked:
        qtbot.mouseClick(scene.view, Qt.MouseButton.LeftButton, pos=QPoint(round(position[0]), round(position[1])))
    layer, picked_index, _ = picked.args
    picked_index = tuple(picked_index)
    assert window.session.picked == (layer, picked_index)
    box = receptive_field(specs, layer, picked_index)
    assert window.canvas.highlight == window.snapshot.placement.box_to_canvas(box), (layer, picked_index)
    if len(picked_index) == 3:
        r0, c0, r1, c1 = window.canvas.highlight
        assert r0 < r1 and c0 < c1


def check_labels(window, qtbot) -> None:
    from cnnviz_desktop.core.labels import rects_intersect

    scene = window.scene
    for view in ("default", "front", "side", "top"):
        scene.preset_view(view)
        qtbot.waitSignal(scene.view.frameSwapped, timeout=10_000, raising=False)
        rects = scene.label_rects()
        width, height = scene.view.width(), scene.view.height()
        assert rects, view
        for (ta, a), (tb, b) in itertools.combinations(rects, 2):
            assert not rects_intersect(a, b), f"{view}: {ta!r} {a} overlaps {tb!r} {b}"
        for text, (x, y, rw, rh) in rects:
            assert x >= 0 and y >= 0 and x + rw <= width and y + rh <= height, f"{view}: {text!r} cut by the edge"
    scene.reset_view()


ERROR_WORDS = ("could not", "cannot", "failed", "error", "traceback", "not supported", "unsupported")


def _view_texts(dock) -> list[str]:
    from PySide6.QtWidgets import QAbstractButton, QLabel

    texts = [w.text() for w in dock.findChildren(QLabel) if w.isVisible()]
    texts += [w.toolTip() for w in dock.findChildren(QAbstractButton) if w.isVisible() and w.isEnabled()]
    return [t for t in texts if t]


def _errors_in(dock) -> list[str]:
    return [t for t in _view_texts(dock) if any(word in t.lower() for word in ERROR_WORDS)]


def open_every_view(window, qtbot) -> None:
    """Show every dock once (after the drawing) and let it render: no error message (dialog, status bar or
    text in the view), no failed analysis."""
    failures: list[str] = []
    window.session.analysis_failed.connect(failures.append)
    try:
        for view_id, dock in window.docks.items():
            if not dock.isVisible():
                window.toggle_view(view_id)
            qtbot.waitUntil(dock.isVisible, timeout=5_000)
            dock.raise_()
            qtbot.wait(150)
            settle(qtbot, window)
            assert not _messages_open(), (view_id, _messages_open())
            status = window.statusBar().currentMessage().lower()
            assert "failed" not in status and "error" not in status, (view_id, status)
            if os.environ.get("BYON_DEBUG"):
                print(view_id, _view_texts(dock))
            assert not _errors_in(dock), (view_id, _errors_in(dock))
    finally:
        window.session.analysis_failed.disconnect(failures.append)
    assert not failures, failures


@pytest.mark.parametrize("key", TRAINED)
def test_a_network_of_the_spec_language_in_the_window(start_app, qtbot, trained_models, key):
    path = trained_models[key]
    window = start_app(model=str(path)).window
    loaded = window.loaded
    assert loaded.arch.name == key and loaded.path == path
    # The window names the model and its spec.
    assert key in window.windowTitle()
    assert SPECS[key].split("-")[0] in window.model_label.text() + window.model_label.toolTip()
    assert loaded.arch.spec in window.model_label.toolTip()
    assert any(act.text().replace("&", "") == key and act.isChecked()
               for act in window.menus["&Model"].actions()), "the Model menu lists the open model"
    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    assert not snap.empty and snap.model_name == key
    check_snapshot_against_torch(window, snap)
    check_receptive_field(window, qtbot)
    check_labels(window, qtbot)
    open_every_view(window, qtbot)


def test_an_imported_model_opens_through_file_open_model(start_app, qtbot, tmp_path, monkeypatch):
    """cnnviz-train import's output opens with File > Open model (the dialog answered), is listed in the
    Model menu and analysed; the title and status bar name it."""
    module = tmp_path / "usernet.py"
    module.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(),
                                              nn.Conv2d(10, 10, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.head = nn.AdaptiveAvgPool2d(1)

            def forward(self, x):
                return self.head(self.features(x)).flatten(1)
        """), encoding="utf-8")
    torch.manual_seed(0)
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import torch, usernet; " \
             f"torch.save(usernet.Net().state_dict(), {str(tmp_path / 'usernet.pt')!r})"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    out = tmp_path / "usernet.safetensors"
    result = subprocess.run([sys.executable, "-m", "cnnviz_desktop.cli.train", "import", f"{module}:Net",
                             "--weights", str(tmp_path / "usernet.pt"), "--out", str(out), "--name", "usernet"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    window = start_app().window
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(out), "")))
    window.action("open_weights").trigger()
    qtbot.waitUntil(lambda: window.loaded.arch.name == "usernet", timeout=60_000)
    assert "usernet" in window.windowTitle()
    assert window.loaded.arch.spec in window.model_label.toolTip()
    entries = [act for act in window.menus["&Model"].actions() if act.text().replace("&", "") == "usernet"]
    assert len(entries) == 1 and entries[0].isChecked()
    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    assert not snap.empty and snap.model_name == "usernet"
    check_snapshot_against_torch(window, snap)
    # Back to tiny through the menu, and to the imported one again through its Model-menu entry.
    window.model_actions["tiny"].trigger()
    qtbot.waitUntil(lambda: window.loaded.arch.name == "tiny", timeout=60_000)
    entries[0].trigger()
    qtbot.waitUntil(lambda: window.loaded.arch.name == "usernet", timeout=60_000)
    assert not _messages_open()


@pytest.mark.slow  # t-SNE of 5,000 digits: about 2 min of CPU here
def test_embeddings_of_a_network_without_dense_layers_are_computed_and_cached(start_app, qtbot, trained_models,
                                                                              user_data):
    """No shipped maps for a user's network: the view computes them from the layer before the output (a map
    layer for 003's shape), caches them by the weight file's sha256, and places the drawing exactly in PCA."""
    from cnnviz_desktop.core import embedding as emb
    from cnnviz_desktop.core.weights import sha256_of

    path = trained_models["gap003"]
    window = start_app(model=str(path)).window
    view = window.views["embedding"]
    window.toggle_view("embedding")
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    layer = emb.penultimate_layer(describe(window.loaded.arch))
    assert layer.kind == "pool" and layer.name in view.explain.text() and "dense1" not in view.explain.text()
    qtbot.waitUntil(lambda: view.ready is not None and view.shown_perplexity is not None, timeout=300_000)
    assert view.ready.layer == layer.name
    assert view.points_shown() == (5000, 5000)
    assert emb.cache_path(sha256_of(path)).is_file()
    assert str(user_data) in str(emb.cache_path(sha256_of(path)))
    drag(window.canvas, ring())
    snap = settle(qtbot, window)
    qtbot.waitUntil(lambda: view.marker_positions()[0] is not None, timeout=10_000)
    expected = emb.pca_project(np.asarray(snap.activations[layer.name]).reshape(-1), view.ready.embedding)
    assert np.allclose(view.marker_positions()[0], expected, atol=1e-4)
    assert not _errors_in(window.docks["embedding"])


def test_a_model_the_engine_cannot_analyse_says_so_and_keeps_the_drawing(start_app, qtbot, monkeypatch):
    """A weight file that loads but cannot be analysed: one clear (non-modal) message naming the network and
    why, in a dialog that does not block the window; the drawing stays."""
    from cnnviz_desktop.core import analysis
    from cnnviz_desktop.core.errors import CnnvizError

    window = start_app().window
    drag(window.canvas, ring())
    settle(qtbot, window)
    drawing = window.canvas.model.pixels.copy()

    def refuse(model, *args, **kwargs):
        raise CnnvizError(f"layer conv1 of {model.arch.name} is not supported by this test")

    monkeypatch.setattr(analysis, "Analyzer", refuse)
    window.model_requested.emit("wide")
    qtbot.waitUntil(lambda: bool(_messages_open()), timeout=60_000)
    (text,) = _messages_open()
    assert "cannot analyse the network 'wide'" in text and "is not supported by this test" in text
    assert "Model menu" in text
    assert np.array_equal(window.canvas.model.pixels, drawing)
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    assert not box.isModal()
    box.close()


@pytest.mark.parametrize("key", [
    "k5avg",
    "bn3",
])
def test_training_view_fine_tunes_the_current_spec_network(start_app, qtbot, trained_models, key, tmp_path):
    """The training view's 'start from: the current model' trains a network outside the family (its own
    layers, not the tiny/wide boxes) and the result is shown as the current model."""
    window = start_app(model=str(trained_models[key])).window
    spec = window.loaded.arch.spec
    view = window.views["training"]
    window.toggle_view("training")
    qtbot.waitUntil(view.isVisible, timeout=5_000)
    view.init_box.setCurrentIndex(1)
    view.data_edit.setText(os.environ["CNNVIZ_MNIST_DIR"])
    view.images_spin.setValue(256)
    view.epochs_spin.setValue(1)
    view.batch_spin.setValue(64)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "finished" in view.message_label.text() or "failed" in view.message_label.text()
                    or view.state == "idle", timeout=180_000)
    assert "Training finished" in view.message_label.text(), view.message_label.text()
    qtbot.waitUntil(lambda: str(window.loaded.path).startswith("(training"), timeout=30_000)
    assert window.loaded.arch.spec == spec
    # Live weights are no file: the Model menu keeps one entry, the opened file's.
    assert list(window.user_model_actions) == [str(trained_models[key])]
    # Saved, the fine-tuned network is a weight file of the same layers, the current model and listed.
    tuned = tmp_path / f"{key}_tuned.safetensors"
    assert view.save_to(str(tuned))
    qtbot.waitUntil(lambda: window.loaded.path == tuned, timeout=30_000)
    from cnnviz_desktop.core import weights

    assert weights.load(tuned).arch.spec == spec
    assert list(window.user_model_actions) == [str(trained_models[key]), str(tuned)]
