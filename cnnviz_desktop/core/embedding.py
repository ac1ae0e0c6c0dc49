"""Embeddings of the test set's penultimate-layer activations: PCA (ours) and t-SNE (openTSNE).

What the embeddings view shows: every reference test digit as one point, placed by its penultimate-layer
activation vector (``dense1`` after ReLU for tiny and wide: the features the output layer reads; for a network
without hidden fc layers the map or global-pooling vector the output reads, flattened). Two maps:

- PCA (numpy SVD, ours: a few lines, no dependency, and it gives the exact linear projection of a new
  drawing): the two directions of largest variance; ``explained_variance_ratio`` says how much of the
  features' variance each axis keeps.
- t-SNE (openTSNE 1.0.4, chosen because it can place new points into an existing embedding; scikit-learn's
  TSNE cannot): a non-linear map that keeps neighbourhoods, not distances. Its axes mean nothing.

A drawing is placed cheaply per stroke (numpy only): exactly projected in PCA (:func:`pca_project`), and in
t-SNE by :func:`place` (the distance-weighted mean of its k nearest reference points in feature space, which is
how openTSNE initialises transformed points before optimising them; an approximation).

Precomputed coordinates are stored as ``.npz`` (never pickles: ``np.load(..., allow_pickle=False)``), keyed by
the weight file's sha256, and validated (shapes, dtypes, finite values, sizes) before use: see
:class:`EmbeddingSet`.

Qt-free. torch and openTSNE are imported lazily.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .architecture import LayerSpec, describe
from .errors import CnnvizError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
FORMAT_VERSION = 1
# The reference set: the first REFERENCE_COUNT digits of t10k (deterministic, documented, and the first
# 5,000 of t10k are the 'easier' half's writers as well as the harder: both writer groups are in it).
REFERENCE_COUNT = 5000
PRECOMPUTED_PERPLEXITIES = (5, 15, 30, 50)
DEFAULT_PERPLEXITY = 30
PERPLEXITY_RANGE = (5, 50)
TSNE_SEED = 0
# Bounds for files from outside (the cache folder or a tampered bundle): far above what we write.
MAX_FILE_BYTES = 64 << 20
MAX_MEMBER_BYTES = 64 << 20
MAX_POINTS = 70_000
MAX_FEATURES = 4096
MAX_PERPLEXITIES = 64


# ---------------------------------------------------------------------------------------------- features
def penultimate_layer(specs: list[LayerSpec] | tuple[LayerSpec, ...]) -> LayerSpec:
    """The layer that feeds the output layer (``dense1`` for tiny and wide): the last hidden layer.

    Any kind: a dense layer, a global average pooling ('gap', (C, 1, 1)), or the last map when the output
    is an fc on the flattened maps or a global average pooling over 10 maps (a fully convolutional net).
    specs: the model's LayerSpecs (architecture.describe). Raises CnnvizError if the output layer has no
    hidden layer before it other than the input, or if that layer has more than MAX_FEATURES values."""
    specs = list(specs)
    output = next((s for s in specs if s.kind == "output"), None)
    if output is None or output.source is None:
        raise CnnvizError("the model has no output layer: it cannot be embedded")
    layer = next(s for s in specs if s.name == output.source)
    if layer.kind == "input":
        raise CnnvizError("the model has no hidden layer before its output: there is nothing to embed")
    if layer.size > MAX_FEATURES:
        raise CnnvizError(f"the layer before the output, {layer.name} {layer.shape}, has {layer.size:,} values, "
                          f"more than the {MAX_FEATURES:,} an embedding can hold: this network cannot be "
                          f"embedded (a global pooling or a smaller map before the output can)")
    return layer


def _torch_module(model: Any):
    return getattr(model, "model", model)  # a weights.LoadedModel or a ConvNet


def dense_features(model: Any, images01: np.ndarray, batch: int = 1000, ctx=None) -> np.ndarray:
    """Penultimate-layer activations (after its activation, flattened row-major) of MNIST-style images.

    model: a ConvNet or a weights.LoadedModel; images01: (N, 28, 28) in [0, 1] (uint8 0-255 is accepted and
    scaled), light digit on dark, already centred as MNIST is; batch: images per forward pass; ctx: an optional
    tasks.TaskContext (checked between batches). Returns (N, D) float32, D = the layer's width (64 for wide)."""
    import torch

    net = _torch_module(model)
    images = np.asarray(images01)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CnnvizError(f"expected images of shape (N, 28, 28), got {images.shape}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    layer = penultimate_layer(describe(net.arch))
    head = net.body[: layer.module + 1]
    out = np.empty((len(images), layer.size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(images), max(1, int(batch))):
            if ctx is not None:
                ctx.check()
            chunk = images[start:start + batch].astype(np.float32) / scale
            x = torch.from_numpy((chunk - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
            out[start:start + len(chunk)] = head(x).reshape(len(chunk), -1).numpy()
    return out


# ---------------------------------------------------------------------------------------------- PCA
class PCA(NamedTuple):
    """coords: (N, k) float32 scores; ratio: (k,) explained variance ratio of each axis (decreasing, sum <= 1);
    mean: (D,) feature mean; components: (k, D) unit principal directions (rows)."""

    coords: np.ndarray
    ratio: np.ndarray
    mean: np.ndarray
    components: np.ndarray


def pca(features: np.ndarray, k: int = 2) -> PCA:
    """PCA of (N, D) features by SVD of the centred matrix (ours: numpy only). Returns a :class:`PCA`; the
    sign of each component is fixed (its largest-magnitude loading is positive) so maps are reproducible."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise CnnvizError(f"PCA needs (N, D) features with N >= 2, got shape {x.shape}")
    mean = x.mean(axis=0)
    centred = x - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(k, vt.shape[0])
    components = vt[:k]
    signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    variance = s**2
    total = float(variance.sum())
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    coords = centred @ components.T
    return PCA(coords.astype(np.float32), ratio.astype(np.float64), mean.astype(np.float32),
               components.astype(np.float32))


def pca_project(feature: np.ndarray, model: PCA | EmbeddingSet) -> np.ndarray:
    """Project one (D,) feature vector (or (M, D)) with a fitted PCA (or an EmbeddingSet's): (2,) (or (M, 2))."""
    if isinstance(model, EmbeddingSet):
        mean, components = model.pca_mean, model.pca_components
    else:
        mean, components = model.mean, model.components
    f = np.asarray(feature, dtype=np.float32)
    return ((f - mean) @ components.T).astype(np.float32)


# ---------------------------------------------------------------------------------------------- t-SNE
TSNE_EARLY_ITER = 125
TSNE_ITER = 250
CALLBACK_EVERY = 25


def tsne(features: np.ndarray, perplexity: float = DEFAULT_PERPLEXITY, seed: int = TSNE_SEED, ctx=None,
         n_jobs: int = 1) -> np.ndarray:
    """2-D t-SNE of (N, D) features with openTSNE (PCA initialisation, openTSNE's defaults otherwise:
    125 early-exaggeration + 250 iterations (half its default: the same 5-NN accuracy on 5,000 MNIST
    points, measured, in half the time), learning rate N/12).

    perplexity: the effective number of neighbours each point attends to (5-50 is sensible; it is lowered to
    (N - 1) / 3 for tiny sets); seed: fixes the result; ctx: an optional tasks.TaskContext: progress is reported
    (fraction of iterations done) and cancellation is honoured every 25 iterations; n_jobs: threads (1-2).
    Returns (N, 2) float32 coordinates (arbitrary units: only neighbourhoods mean something)."""
    from openTSNE import TSNE

    x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if x.ndim != 2 or len(x) < 4:
        raise CnnvizError(f"t-SNE needs (N, D) features with N >= 4, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise CnnvizError("the features hold NaN or infinite values: the model's weights are broken")
    perplexity = float(min(max(perplexity, 1.0), (len(x) - 1) / 3.0))
    total = TSNE_EARLY_ITER + TSNE_ITER
    done = [0]

    def callback(iteration, error, embedding):  # noqa: ARG001 - openTSNE's callback signature
        done[0] += CALLBACK_EVERY
        if ctx is not None:
            ctx.progress(min(done[0] / total, 0.99))  # raises Cancelled: openTSNE stops there
        return False

    if ctx is not None:
        ctx.progress(0.0)
    model = TSNE(n_components=2, perplexity=perplexity, early_exaggeration_iter=TSNE_EARLY_ITER,
                 n_iter=TSNE_ITER, random_state=int(seed), n_jobs=int(n_jobs), callbacks=callback,
                 callbacks_every_iters=CALLBACK_EVERY, verbose=False)
    embedding = model.fit(x)
    return np.asarray(embedding, dtype=np.float32)


def place(feature: np.ndarray, ref_features: np.ndarray, ref_coords: np.ndarray, k: int = 10) -> np.ndarray:
    """Cheap placement of a new point in an existing 2-D map (numpy only, per stroke).

    feature: (D,); ref_features: (N, D) the reference points' features; ref_coords: (N, 2) their map
    coordinates; k: neighbours. Returns (2,): the mean of the k nearest reference points' coordinates (Euclidean
    in feature space), weighted by 1 / (distance + a small epsilon): openTSNE's own kind of initialisation for
    transformed points, without its optimisation. An exact duplicate of a reference point lands on it."""
    f = np.asarray(feature, dtype=np.float32).reshape(-1)
    ref = np.asarray(ref_features, dtype=np.float32)
    d2 = np.einsum("ij,ij->i", ref, ref) - 2.0 * (ref @ f) + float(f @ f)
    k = int(min(max(k, 1), len(ref)))
    nearest = np.argpartition(d2, k - 1)[:k]
    dist = np.sqrt(np.maximum(d2[nearest], 0.0))
    scale = float(np.median(dist)) or 1.0
    weights = 1.0 / (dist + 1e-3 * scale)
    return (weights[:, None] * np.asarray(ref_coords, dtype=np.float64)[nearest]).sum(0) / weights.sum()


def refine(feature: np.ndarray, ref_features: np.ndarray, ref_coords: np.ndarray, perplexity: float,
           n_iter: int = 100) -> np.ndarray:
    """openTSNE's placement of one new point into a t-SNE map (its ``prepare_partial`` + optimisation, the
    reference points fixed): (2,). Slower than :func:`place` (builds the reference affinities: run it on a
    lane, not per stroke). feature: (D,); ref_features: (N, D); ref_coords: (N, 2)."""
    from openTSNE import TSNEEmbedding, affinity

    ref = np.ascontiguousarray(np.asarray(ref_features, dtype=np.float32))
    aff = affinity.PerplexityBasedNN(ref, perplexity=float(min(perplexity, (len(ref) - 1) / 3.0)), n_jobs=1,
                                     random_state=TSNE_SEED, verbose=False)
    embedding = TSNEEmbedding(np.asarray(ref_coords, dtype=np.float64), aff, random_state=TSNE_SEED)
    new = embedding.prepare_partial(np.asarray(feature, dtype=np.float32).reshape(1, -1), initialization="median")
    new = new.optimize(n_iter=n_iter, learning_rate=0.1, exaggeration=1.5, momentum=0.8)
    return np.asarray(new, dtype=np.float64)[0]


def knn_accuracy(coords: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of a map: the share of points whose k nearest other points
    (Euclidean in ``coords``, (N, d)) have the point's label as their majority (ties: the smallest label).
    labels: (N,) ints 0-9. A measure of how well the map keeps classes together."""
    from scipy.spatial import cKDTree

    pts = np.asarray(coords, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    _, idx = cKDTree(pts).query(pts, k=k + 1)
    neighbours = idx[:, 1:]  # the first hit is the point itself (duplicates may swap, at equal distance)
    votes = np.zeros((len(y), int(y.max()) + 1), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(y)), k), y[neighbours].reshape(-1)), 1)
    return float(np.mean(np.argmax(votes, axis=1) == y))


# ---------------------------------------------------------------------------------------------- stored sets
@dataclass
class EmbeddingSet:
    """The embeddings of one model's reference set.

    sha256: hex sha256 of the weight file they belong to; model_name: its architecture name; indices: (N,)
    int64 indices into MNIST t10k; labels: (N,) int64 digits; pca_coords: (N, 2) float32; pca_ratio: (2,)
    explained variance ratio; pca_mean: (D,) and pca_components: (2, D) to project new features; tsne:
    perplexity (int) -> (N, 2) float32 coordinates."""

    sha256: str
    model_name: str
    indices: np.ndarray
    labels: np.ndarray
    pca_coords: np.ndarray
    pca_ratio: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    tsne: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, sha256: str, model_name: str, indices: np.ndarray, labels: np.ndarray,
              features: np.ndarray) -> EmbeddingSet:
        """A set with its PCA computed from (N, D) ``features`` and no t-SNE yet."""
        fit = pca(features)
        return cls(sha256, model_name, np.asarray(indices, dtype=np.int64), np.asarray(labels, dtype=np.int64),
                   fit.coords, fit.ratio, fit.mean, fit.components)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def perplexities(self) -> tuple[int, ...]:
        return tuple(sorted(self.tsne))

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (.npz, compressed, atomically: a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        perps = np.asarray(self.perplexities, dtype=np.int64)
        tsne = (np.stack([self.tsne[p] for p in self.perplexities]).astype(np.float32) if len(perps)
                else np.zeros((0, len(self), 2), np.float32))
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, format_version=np.int64(FORMAT_VERSION), sha256=np.str_(self.sha256),
                model_name=np.str_(self.model_name), indices=self.indices.astype(np.int32),
                labels=self.labels.astype(np.uint8), pca_coords=self.pca_coords.astype(np.float32),
                pca_ratio=self.pca_ratio.astype(np.float64), pca_mean=self.pca_mean.astype(np.float32),
                pca_components=self.pca_components.astype(np.float32), perplexities=perps, tsne=tsne)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, sha256: str | None = None) -> EmbeddingSet:
        """Read and validate a file written by :meth:`save`. Never unpickles. ``sha256``: the weight file's
        digest it must belong to (None: any). Raises CnnvizError naming the file and what is wrong."""
        path = Path(path)

        def bad(what: str) -> CnnvizError:
            return CnnvizError(f"embedding file {path} is {what}. Delete it: the embeddings are recomputed "
                               f"when the view is opened.")

        try:
            size = path.stat().st_size
        except OSError as exc:
            raise CnnvizError(f"cannot read embedding file {path}: {exc.strerror or exc}") from exc
        if size > MAX_FILE_BYTES:
            raise bad(f"{size:,} bytes, more than the {MAX_FILE_BYTES:,} an embedding file may have")
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.file_size > MAX_MEMBER_BYTES:
                        raise bad(f"holding a member ({info.filename}) that inflates to {info.file_size:,} bytes")
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except CnnvizError:
            raise
        except ValueError as exc:  # numpy refuses object arrays (pickles) with ValueError
            raise bad(f"not a plain-array .npz file ({exc})") from exc
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, zipfile.LargeZipFile) as exc:
            raise bad(f"corrupt or not an .npz file ({type(exc).__name__}: {exc})") from exc
        return cls._validated(arrays, bad, sha256)

    @classmethod
    def _validated(cls, a: dict[str, np.ndarray], bad, sha256: str | None) -> EmbeddingSet:
        required = ("format_version", "sha256", "model_name", "indices", "labels", "pca_coords", "pca_ratio",
                    "pca_mean", "pca_components", "perplexities", "tsne")
        missing = [k for k in required if k not in a]
        if missing:
            raise bad(f"missing {', '.join(missing)}")

        def numeric(name: str, kinds: str) -> np.ndarray:
            arr = a[name]
            if arr.dtype.kind not in kinds:
                raise bad(f"holding {name} of type {arr.dtype}, expected numbers")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise bad(f"holding NaN or infinite values in {name}")
            return arr

        version = numeric("format_version", "iu")
        if version.shape != () or int(version) != FORMAT_VERSION:
            raise bad(f"of format version {version.tolist()}, this app reads version {FORMAT_VERSION}")
        for name in ("sha256", "model_name"):
            if a[name].dtype.kind != "U" or a[name].shape != () or len(str(a[name])) > 200:
                raise bad(f"holding a malformed {name}")
        digest = str(a["sha256"])
        if sha256 is not None and digest != sha256:
            raise bad(f"for another weight file (sha256 {digest[:12]}..., the model's is {sha256[:12]}...)")
        indices = numeric("indices", "iu").astype(np.int64)
        labels = numeric("labels", "iu").astype(np.int64)
        n = len(indices)
        if indices.ndim != 1 or not 2 <= n <= MAX_POINTS:
            raise bad(f"holding {indices.shape} indices, expected between 2 and {MAX_POINTS:,}")
        if indices.min() < 0 or indices.max() >= MAX_POINTS or len(np.unique(indices)) != n:
            raise bad("holding indices out of range or repeated")
        if labels.shape != (n,) or labels.min() < 0 or labels.max() > 9:
            raise bad("holding labels that are not one digit 0-9 per point")
        coords = numeric("pca_coords", "f").astype(np.float32)
        ratio = numeric("pca_ratio", "f").astype(np.float64)
        mean = numeric("pca_mean", "f").astype(np.float32)
        components = numeric("pca_components", "f").astype(np.float32)
        d = mean.shape[0] if mean.ndim == 1 else -1
        if coords.shape != (n, 2) or mean.ndim != 1 or not 1 <= d <= MAX_FEATURES or components.shape != (2, d):
            raise bad("holding PCA arrays of inconsistent shapes")
        if ratio.shape != (2,) or ratio.min() < 0 or ratio.sum() > 1 + 1e-6 or ratio[0] + 1e-9 < ratio[1]:
            raise bad("holding an explained variance ratio that is not two decreasing shares summing to <= 1")
        perps = numeric("perplexities", "iu").astype(np.int64)
        tsne = numeric("tsne", "f")
        if perps.ndim != 1 or len(perps) > MAX_PERPLEXITIES or tsne.shape != (len(perps), n, 2):
            raise bad("holding t-SNE arrays of inconsistent shapes")
        if len(perps) and (perps.min() < 1 or perps.max() > 1000 or len(np.unique(perps)) != len(perps)):
            raise bad("holding perplexities out of range or repeated")
        return cls(digest, str(a["model_name"]), indices, labels, coords, ratio, mean, components,
                   {int(p): tsne[i].astype(np.float32) for i, p in enumerate(perps)})


def shipped_path(model_path: str | os.PathLike) -> Path:
    """The precomputed embeddings beside a weight file: ``weights/<name>.embedding.npz``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".embedding.npz")


def cache_path(sha256: str) -> Path:
    """Where embeddings computed on this machine are cached: ``<user data>/embeddings/<sha256>.npz``."""
    from .userdata import user_data_dir

    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise CnnvizError(f"not a sha256 digest: {sha256!r}")
    return user_data_dir() / "embeddings" / f"{sha256}.npz"


def merge(base: EmbeddingSet | None, extra: EmbeddingSet | None) -> EmbeddingSet | None:
    """One set from two for the same model and reference points (``base`` wins on its own perplexities);
    ``extra`` is ignored if it describes other points."""
    if base is None:
        return extra
    if extra is None or extra.sha256 != base.sha256 or not np.array_equal(extra.indices, base.indices):
        return base
    tsne = dict(extra.tsne)
    tsne.update(base.tsne)
    return EmbeddingSet(base.sha256, base.model_name, base.indices, base.labels, base.pca_coords, base.pca_ratio,
                        base.pca_mean, base.pca_components, tsne)


def load_available(model_path: str | os.PathLike, sha256: str) -> tuple[EmbeddingSet | None, list[str]]:
    """The shipped set beside the weight file merged with this machine's cache for ``sha256``. Returns the set
    (None if neither exists or both are unusable) and the problems met (one sentence each; files that are
    refused are left in place and reported, never deleted)."""
    problems: list[str] = []
    found: list[EmbeddingSet | None] = []
    candidates = [shipped_path(model_path)]
    try:
        candidates.append(cache_path(sha256))
    except CnnvizError as exc:
        problems.append(str(exc))
    for candidate in candidates:
        if not candidate.is_file():
            found.append(None)
            continue
        try:
            found.append(EmbeddingSet.load(candidate, sha256))
        except CnnvizError as exc:
            problems.append(str(exc))
            found.append(None)
    result = None
    for item in found:
        result = merge(result, item) if result is not None else item
    return result, problems


def check_against(embedding: EmbeddingSet, labels_of_dataset: np.ndarray) -> None:
    """Raise CnnvizError unless the set's indices exist in a dataset with these (M,) labels and agree with
    them (a set made from another copy of MNIST, or a tampered file, would show wrong images)."""
    labels_of_dataset = np.asarray(labels_of_dataset)
    if embedding.indices.max() >= len(labels_of_dataset):
        raise CnnvizError(f"the embeddings refer to test image {int(embedding.indices.max())} but the MNIST "
                          f"test set found has only {len(labels_of_dataset)} images")
    if not np.array_equal(labels_of_dataset[embedding.indices], embedding.labels):
        raise CnnvizError("the embeddings' labels do not match the MNIST test set found: it is not the "
                          "official t10k file; point the data folder at the official MNIST files")


def reference_points(labels_of_dataset: np.ndarray, count: int = REFERENCE_COUNT) -> np.ndarray:
    """The indices of the reference set in t10k: the first ``count`` images (or all if fewer). (count,) int64."""
    return np.arange(min(int(count), len(labels_of_dataset)), dtype=np.int64)


def compute_set(model: Any, sha256: str, images: np.ndarray, labels: np.ndarray,
                perplexities=PRECOMPUTED_PERPLEXITIES, count: int = REFERENCE_COUNT, ctx=None,
                on_step=None) -> EmbeddingSet:
    """Features, PCA and a t-SNE per perplexity of the reference set (the first ``count`` of ``images``,
    (M, 28, 28) uint8 t10k, with (M,) ``labels``). ``on_step(perplexity, seconds)`` is told after each t-SNE.
    Returns the EmbeddingSet (not saved)."""
    import time

    indices = reference_points(labels, count)
    features = dense_features(model, images[indices], ctx=ctx)
    name = getattr(getattr(model, "arch", None), "name", "") or _torch_module(model).arch.name
    result = EmbeddingSet.build(sha256, name, indices, np.asarray(labels)[indices], features)
    for perplexity in perplexities:
        start = time.perf_counter()
        result.tsne[int(perplexity)] = tsne(features, perplexity, ctx=ctx)
        if on_step is not None:
            on_step(int(perplexity), time.perf_counter() - start)
    return result


def self_check(weights_directory: str | os.PathLike | None = None) -> dict:
    """A quick check that embeddings work in this installation (the frozen bundle's --self-test): every
    shipped ``*.embedding.npz`` loads and validates, and openTSNE runs a small t-SNE (150 random points, about a
    second) whose placement helper works. Returns {'files': {name: points}, 'tsne_points': n, 'ok': bool,
    'error': message or None}; never raises."""
    from .paths import weights_dir

    report: dict = {"files": {}, "tsne_points": 0, "ok": False, "error": None}
    try:
        folder = Path(weights_directory) if weights_directory is not None else weights_dir()
        for path in sorted(folder.glob("*.embedding.npz")):
            report["files"][path.name.split(".")[0]] = len(EmbeddingSet.load(path))
        rng = np.random.default_rng(0)
        centres = rng.normal(scale=8.0, size=(3, 8))
        x = (centres[rng.integers(0, 3, 150)] + rng.normal(size=(150, 8))).astype(np.float32)
        coords = tsne(x, perplexity=10)
        place(x[0], x, coords)
        report["tsne_points"] = len(coords)
        report["ok"] = bool(np.all(np.isfinite(coords))) and bool(report["files"])
        if not report["files"]:
            report["error"] = f"no precomputed embeddings in {folder}"
    except Exception as exc:  # noqa: BLE001 - reported by the self-test
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report
