"""Embeddings of dense1 (core/embedding.py): t-SNE quality, PCA, placement, and the stored .npz files."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

from cnnviz_desktop.core import embedding as emb
from cnnviz_desktop.core import weights
from cnnviz_desktop.core.errors import CnnvizError
from cnnviz_desktop.core.paths import weights_dir
from cnnviz_desktop.core.tasks import Cancelled


@pytest.fixture(scope="module")
def wide_features(wide, mnist_test):
    indices = emb.reference_points(mnist_test.labels)
    return emb.dense_features(wide, mnist_test.images[indices]), mnist_test.labels[indices]


def test_dense_features_are_the_torch_models_dense1_after_relu(wide, mnist_test):
    import torch

    images = mnist_test.images[:7]
    features = emb.dense_features(wide, images, batch=3)
    assert emb.penultimate_layer(emb.describe(wide.arch)).name == "dense1"
    captured = {}
    relu = wide.model.body[emb.penultimate_layer(emb.describe(wide.arch)).module]

    def hook(_module, _inputs, out):
        captured["a"] = out.detach().numpy().copy()

    handle = relu.register_forward_hook(hook)
    with torch.no_grad():
        x = (torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1) - 0.1307) / 0.3081
        wide.model(x)
    handle.remove()
    assert features.shape == (7, 64) and features.dtype == np.float32
    assert np.abs(features - captured["a"]).max() < 1e-5
    assert features.min() >= 0.0


def test_tsne_of_5000_test_points_on_wide_keeps_classes_together(wide_features):
    features, labels = wide_features
    assert len(features) >= 5000
    start = time.perf_counter()
    coords = emb.tsne(features, perplexity=30, seed=0)
    seconds = time.perf_counter() - start
    accuracy = emb.knn_accuracy(coords, labels, k=5)
    print(f"t-SNE of {len(features)} points: {seconds:.1f} s, 5-NN accuracy {accuracy:.4f}")
    assert coords.shape == (len(features), 2) and np.all(np.isfinite(coords))
    assert accuracy >= 0.9


def test_tsne_reports_progress_and_stops_when_cancelled(wide_features):
    features, _ = wide_features

    class Ctx:
        def __init__(self):
            self.fractions = []

        def check(self):
            if len(self.fractions) >= 3:
                raise Cancelled

        def progress(self, fraction, payload=None):
            self.fractions.append(fraction)
            self.check()

    ctx = Ctx()
    with pytest.raises(Cancelled):
        emb.tsne(features[:600], perplexity=15, ctx=ctx)
    assert len(ctx.fractions) == 3 and ctx.fractions == sorted(ctx.fractions) and ctx.fractions[-1] < 1


def test_pca_ratio_is_a_decreasing_share_and_projection_matches(wide_features):
    features, _ = wide_features
    fit = emb.pca(features)
    assert fit.coords.shape == (len(features), 2)
    assert 0 < fit.ratio[1] <= fit.ratio[0] < 1 and fit.ratio.sum() < 1
    # Against numpy's covariance eigenvalues: the same variance shares.
    eig = np.sort(np.linalg.eigvalsh(np.cov(features.T.astype(np.float64))))[::-1]
    assert np.allclose(fit.ratio, eig[:2] / eig.sum(), rtol=1e-4)
    assert np.allclose(emb.pca_project(features[:5], fit), fit.coords[:5], atol=1e-3)
    assert np.allclose(emb.pca_project(features[3], fit), fit.coords[3], atol=1e-3)


def test_place_puts_a_training_digit_among_its_own_class(wide, mnist_dir, wide_features):
    from cnnviz_desktop.core import mnist

    features, labels = wide_features
    stored = emb.EmbeddingSet.load(weights_dir() / "wide.embedding.npz", weights.sha256_of(wide.path))
    coords = stored.tsne[30]
    train = mnist.load(mnist_dir, "train")
    hits = 0
    for i in range(20):  # training digits: never in the reference (test) set
        feature = emb.dense_features(wide, train.images[i:i + 1])[0]
        xy = emb.place(feature, features, coords)
        nearest = np.argsort(((coords - xy) ** 2).sum(1))[:10]
        hits += int(np.bincount(labels[nearest], minlength=10).argmax() == train.labels[i])
    assert hits >= 18
    # A reference point placed from its own features lands on itself.
    assert np.allclose(emb.place(features[5], features, coords), coords[5], atol=0.05)


def test_knn_accuracy_counts_majorities():
    coords = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], dtype=float)
    assert emb.knn_accuracy(coords, np.array([0, 0, 0, 1, 1, 1]), k=2) == 1.0
    assert emb.knn_accuracy(coords, np.array([0, 1, 0, 1, 0, 1]), k=2) < 0.5


@pytest.mark.parametrize("name", ["tiny", "wide"])
def test_shipped_embeddings_load_validate_and_match_the_data(name, mnist_test):
    loaded = weights.load(name)
    path = emb.shipped_path(loaded.path)
    assert path == weights_dir() / f"{name}.embedding.npz"
    assert path.stat().st_size < 1_000_000  # small: coordinates, indices and labels only
    stored = emb.EmbeddingSet.load(path, weights.sha256_of(loaded.path))
    assert len(stored) == 5000 and stored.model_name == name
    assert stored.perplexities == emb.PRECOMPUTED_PERPLEXITIES
    emb.check_against(stored, mnist_test.labels)
    assert 0 < stored.pca_ratio[1] <= stored.pca_ratio[0] < 1
    accuracy = emb.knn_accuracy(stored.tsne[30], stored.labels)
    if name == "wide":
        assert accuracy >= 0.9
    with zipfile.ZipFile(path) as archive:  # no images are shipped
        assert not any("image" in n for n in archive.namelist())


def _a_set(n=20, d=4) -> emb.EmbeddingSet:
    rng = np.random.default_rng(0)
    e = emb.EmbeddingSet.build("a" * 64, "tiny", np.arange(n), rng.integers(0, 10, n),
                               rng.random((n, d)).astype(np.float32))
    e.tsne[5] = rng.normal(size=(n, 2)).astype(np.float32)
    return e


def test_save_and_load_round_trip(tmp_path):
    e = _a_set()
    path = e.save(tmp_path / "x.npz")
    back = emb.EmbeddingSet.load(path, "a" * 64)
    assert back.perplexities == (5,) and np.array_equal(back.labels, e.labels)
    assert np.allclose(back.tsne[5], e.tsne[5]) and np.allclose(back.pca_components, e.pca_components)
    with pytest.raises(CnnvizError, match="another weight file"):
        emb.EmbeddingSet.load(path, "b" * 64)


def _write(path, **arrays):
    e = _a_set()
    base = dict(format_version=np.int64(1), sha256=np.str_(e.sha256), model_name=np.str_("tiny"),
                indices=e.indices, labels=e.labels, pca_coords=e.pca_coords, pca_ratio=e.pca_ratio,
                pca_mean=e.pca_mean, pca_components=e.pca_components, perplexities=np.array([5]),
                tsne=e.tsne[5][None])
    base.update(arrays)
    base = {k: v for k, v in base.items() if v is not None}
    np.savez(path, **base)
    return path


@pytest.mark.parametrize("arrays, message", [
    (dict(pca_coords=np.full((20, 2), np.nan, np.float32)), "NaN"),
    (dict(labels=np.arange(20) + 5), "labels"),
    (dict(indices=np.zeros(20, np.int64)), "indices"),
    (dict(tsne=np.zeros((1, 19, 2), np.float32)), "t-SNE arrays"),
    (dict(pca_ratio=np.array([0.2, 0.9])), "explained variance"),
    (dict(format_version=np.int64(99)), "format version"),
    (dict(tsne=None), "missing tsne"),
    (dict(labels=np.array(["a"] * 20)), "expected numbers"),
    (dict(sha256=np.arange(3)), "malformed sha256"),
])
def test_malformed_npz_is_refused_with_a_clear_message(tmp_path, arrays, message):
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CnnvizError, match=message) as info:
        emb.EmbeddingSet.load(path)
    assert str(path) in str(info.value) and "Delete it" in str(info.value)


def test_hostile_npz_files_are_refused_without_unpickling(tmp_path):
    # An object array (a pickle) is never loaded.
    pickled = tmp_path / "pickle.npz"
    np.savez(pickled, tsne=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CnnvizError, match="not a plain-array"):
        emb.EmbeddingSet.load(pickled)
    # Not a zip at all, a truncated one, and one whose member inflates far beyond any real file.
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all" * 10)
    with pytest.raises(CnnvizError, match="corrupt or not an .npz"):
        emb.EmbeddingSet.load(garbage)
    good = _a_set().save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CnnvizError, match="corrupt"):
        emb.EmbeddingSet.load(truncated)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tsne.npy", b"\0" * (emb.MAX_MEMBER_BYTES + 1))
    with pytest.raises(CnnvizError, match="inflates"):
        emb.EmbeddingSet.load(bomb)
    with pytest.raises(CnnvizError, match="cannot read"):
        emb.EmbeddingSet.load(tmp_path / "missing.npz")


def test_load_available_merges_the_shipped_file_with_the_cache_and_reports_bad_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(tmp_path / "user"))
    model_path = tmp_path / "m.safetensors"
    shipped = _a_set()
    shipped.save(emb.shipped_path(model_path))
    cached = _a_set()
    cached.tsne = {7: np.ones((20, 2), np.float32), 5: np.zeros((20, 2), np.float32)}
    cached.save(emb.cache_path("a" * 64))
    merged, problems = emb.load_available(model_path, "a" * 64)
    assert merged.perplexities == (5, 7) and not problems
    assert np.allclose(merged.tsne[5], shipped.tsne[5])  # the shipped map wins
    emb.cache_path("a" * 64).write_bytes(b"junk")
    merged, problems = emb.load_available(model_path, "a" * 64)
    assert merged.perplexities == (5,) and len(problems) == 1 and "Delete it" in problems[0]
    assert emb.cache_path("a" * 64).exists()  # reported, never deleted


def test_refine_places_a_point_with_opentsne_near_its_own_class(wide_features):
    features, labels = wide_features
    ref, ref_labels = features[:1500], labels[:1500]
    coords = emb.tsne(ref, perplexity=30)
    hits = 0
    for i in range(1500, 1510):  # points not in the reference map
        xy = emb.refine(features[i], ref, coords, perplexity=30)
        nearest = np.argsort(((coords - xy) ** 2).sum(1))[:10]
        hits += int(np.bincount(ref_labels[nearest], minlength=10).argmax() == labels[i])
    assert hits >= 9
