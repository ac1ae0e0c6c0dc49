"""Cost of the explanation methods, each against one analysis measured in the same run. Prints one JSON object.

    CNNVIZ_MNIST_DIR=/path/to/mnist python benchmarks/bench_explain.py [--model tiny] [--repeats 30]
        [--tsne-points 5000]

Baseline: one full per-stroke analysis (core.analysis.Analyzer.analyse: preprocess, forward, Grad-CAM,
HiResCAM, canvas maps, contributions, significance) of t10k digits placed on the grid. Then, on the same
digits and one torch thread (the lanes share the process's torch threads with the analysis worker):
- saliency and gradient x input (core.attribution; one forward + backward each),
- the full occlusion map (core.occlusion.occlusion_map, 4x4 patch, stride 1: 625 occluded images in one
  batched forward),
- one input-maximisation step (core.maximize.maximise, the median per step over a 50-step run),
- t-SNE of --tsne-points test images' dense1 features (core.embedding.tsne, perplexity 30; one run, it is
  long) and the per-stroke placement of the drawing into it (core.embedding.place).
Each figure is a median in ms and a ratio to the analysis median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, repeats: int) -> float:
    """Median wall time of fn() in ms (one warm-up call first)."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("CNNVIZ_MNIST_DIR"), help="MNIST folder (or CNNVIZ_MNIST_DIR)")
    p.add_argument("--model", default="tiny")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--tsne-points", type=int, default=5000, help="0: skip t-SNE")
    args = p.parse_args(argv)
    if not args.data:
        print(json.dumps({"error": "set CNNVIZ_MNIST_DIR or pass --data"}))
        return 2
    import torch

    torch.set_num_threads(1)
    from cnnviz_desktop.core import mnist, weights
    from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer

    test = mnist.load(args.data, "test")
    loaded = weights.load(args.model)
    model = loaded.model
    analyzer = Analyzer(loaded)
    digits = test.images[: args.repeats].astype(np.float32) / 255.0
    counter = iter(range(1, 10**9))
    snaps = [analyzer.analyse(AnalysisRequest(next(counter), d)) for d in digits]
    inputs = [np.asarray(s.activations["input"][0]) for s in snaps]
    targets = [int(s.predicted) for s in snaps]
    k = iter(range(10**9))

    def cycle(fn):
        def run():
            i = next(k) % len(inputs)
            fn(i)
        return run

    analysis_ms = timed(cycle(lambda i: analyzer.analyse(AnalysisRequest(next(counter), digits[i]))), args.repeats)
    result: dict = {"benchmark": "explain", "model": args.model, "torch_threads": 1,
                    "baseline_analysis_ms_median": round(analysis_ms, 3)}

    def add(name: str, ms: float, **extra) -> None:
        result[name] = {"ms_median": round(ms, 3), "vs_analysis": round(ms / analysis_ms, 2), **extra}

    from cnnviz_desktop.core import attribution

    add("saliency", timed(cycle(lambda i: attribution.saliency(model, inputs[i], targets[i])), args.repeats))
    add("input_x_gradient", timed(cycle(lambda i: attribution.input_x_gradient(model, inputs[i], targets[i])),
                                  args.repeats))
    from cnnviz_desktop.core.occlusion import occlusion_map

    add("occlusion_map_4x4", timed(cycle(lambda i: occlusion_map(model, inputs[i], targets[i], size=4)),
                                   max(5, args.repeats // 3)), positions=(28 - 4 + 1) ** 2)
    from cnnviz_desktop.core import maximize

    steps = 50
    settings = maximize.MaxSettings(steps=steps)
    runs = []
    for digit in range(3):
        t0 = time.perf_counter()
        maximize.maximise(model, maximize.Objective("class", digit), settings)
        runs.append((time.perf_counter() - t0) * 1e3 / steps)
    add("maximisation_step", statistics.median(runs), steps_per_run=steps)
    if args.tsne_points > 0:
        from cnnviz_desktop.core import embedding

        n = min(args.tsne_points, len(test))
        images = test.images[:n].astype(np.float32) / 255.0
        t0 = time.perf_counter()
        features = embedding.dense_features(model, images)
        features_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        coords = embedding.tsne(features, perplexity=30, seed=0)
        tsne_ms = (time.perf_counter() - t0) * 1e3
        add("tsne", tsne_ms, points=n, features_ms=round(features_ms, 1),
            knn5_accuracy=round(float(embedding.knn_accuracy(coords, test.labels[:n], k=5)), 4))
        from cnnviz_desktop.core.architecture import describe

        layer = embedding.penultimate_layer(describe(loaded.arch)).name
        dense = [np.asarray(s.activations[layer]).ravel() for s in snaps]
        add("tsne_place_drawing", timed(cycle(lambda i: embedding.place(dense[i], features, coords)), args.repeats))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
