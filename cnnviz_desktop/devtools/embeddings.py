"""Precompute the shipped models' embeddings (PCA and t-SNE of dense1 for the first 5,000 t10k digits).

    python -m cnnviz_desktop.devtools.embeddings [--data DIR] [--models tiny wide] [--perplexities 5 15 30 50]

Writes ``weights/<name>.embedding.npz`` beside each weight file (coordinates, indices, labels, the PCA's mean and
components: no images), keyed by the weight file's sha256, and prints one JSON line per model with the file's
size, the t-SNE times and the 5-NN accuracy of each map. Run it again whenever a shipped weight file changes
(the app ignores a file whose sha256 does not match and recomputes in the background).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from ..core import embedding, mnist, weights
    from ..core.paths import mnist_dir_from_env, weights_dir

    p = argparse.ArgumentParser(prog="python -m cnnviz_desktop.devtools.embeddings", description=__doc__.split("\n")[0])
    p.add_argument("--data", help="MNIST folder (default: $CNNVIZ_MNIST_DIR)")
    p.add_argument("--models", nargs="+", default=["tiny", "wide"])
    p.add_argument("--perplexities", nargs="+", type=int, default=list(embedding.PRECOMPUTED_PERPLEXITIES))
    p.add_argument("--count", type=int, default=embedding.REFERENCE_COUNT)
    args = p.parse_args(argv)
    data = args.data or mnist_dir_from_env()
    if data is None:
        print("error: no MNIST folder: pass --data DIR or set CNNVIZ_MNIST_DIR", file=sys.stderr)
        return 2
    test = mnist.load(data, "test")
    for name in args.models:
        loaded = weights.load(name)
        sha = weights.sha256_of(loaded.path)
        times: dict[int, float] = {}
        result = embedding.compute_set(loaded, sha, test.images, test.labels, args.perplexities, args.count,
                                       on_step=lambda perp, s: times.__setitem__(perp, round(s, 1)))
        out = result.save(weights_dir() / f"{name}.embedding.npz")
        print(json.dumps({
            "model": name, "file": str(out), "bytes": out.stat().st_size, "points": len(result),
            "pca_ratio": [round(float(r), 4) for r in result.pca_ratio],
            "pca_knn5": round(embedding.knn_accuracy(result.pca_coords, result.labels), 4),
            "tsne_seconds": times,
            "tsne_knn5": {p: round(embedding.knn_accuracy(c, result.labels), 4) for p, c in result.tsne.items()},
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
