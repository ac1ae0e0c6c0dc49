"""Cost of one full per-stroke analysis (Analyzer.analyse) against a bare forward pass. Prints one JSON object.

    python benchmarks/bench_analysis.py [--repeats N] [--models tiny,wide,big,gapfc]

Inputs: ten built-in hand-drawn-like digits (anti-aliased polylines, pen ~2 px) on the app's 28x28 canvas,
cycled. For each model (the shipped tiny and wide, and 'big': issue 14's scale target, a random-weight
network of the family with conv (32, 64) and dense (128,), 37,306 neurons and 2,659,072 connections;
'huge' = conv (48, 64), dense (256,); or NAME=C1/C2:D1):
- full: Analyzer.analyse (preprocess, forward, Grad-CAM + HiResCAM, canvas resampling, every contribution,
  significant edges, freezing), median and p95 in ms;
- forward: the torch model on the already preprocessed tensor under no_grad (the bare network);
- predict: preprocess + forward (the least any per-stroke prediction costs);
- ratios full / forward and full / predict; median per stage from Snapshot.timings;
- threads: everything with torch.set_num_threads(1) and (2), interleaved in rounds in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from cnnviz_desktop.core.architecture import neuron_count
from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer
from cnnviz_desktop.core.preprocess import preprocess
from cnnviz_desktop.devtools.bench_models import HELP, load_model

DIGITS = {
    0: [[(14, 4), (9, 7), (7, 14), (9, 21), (14, 24), (19, 21), (21, 14), (19, 7), (14, 4)]],
    1: [[(11, 8), (15, 4), (15, 24)]],
    2: [[(8, 8), (12, 4), (18, 5), (19, 10), (8, 23), (21, 23)]],
    3: [[(8, 5), (19, 5), (13, 12), (19, 16), (18, 22), (8, 23)]],
    4: [[(17, 23), (17, 4), (7, 17), (21, 17)]],
    5: [[(19, 4), (9, 4), (8, 12), (16, 12), (19, 17), (16, 23), (8, 22)]],
    6: [[(18, 4), (10, 10), (8, 18), (12, 23), (18, 21), (18, 15), (9, 15)]],
    7: [[(7, 5), (20, 5), (12, 24)]],
    8: [[(14, 13), (9, 9), (14, 4), (19, 9), (14, 13), (8, 18), (14, 24), (20, 18), (14, 13)]],
    9: [[(19, 11), (14, 14), (9, 10), (13, 4), (19, 8), (19, 14), (17, 24)]],
}


def draw(strokes, shape=(28, 28), width=2.0) -> np.ndarray:
    """Anti-aliased polylines (pixel coordinates (x, y)) on a dark canvas, values in [0, 1]."""
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float32) + 0.5
    dist = np.full(shape, np.inf, np.float32)
    for points in strokes:
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
            dist = np.minimum(dist, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0).astype(np.float32)


def sample(fn, items, repeats: int) -> list[float]:
    for item in items[:10]:
        fn(item)  # warm-up
    out = []
    for i in range(repeats):
        item = items[i % len(items)]
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1000)
    return out


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered), 4),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4)}


def _model(spec: str):
    """One --models entry as a weights.LoadedModel (cnnviz_desktop.devtools.bench_models)."""
    return load_model(spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--models", default="tiny,wide,big,gapfc", help=HELP)
    args = parser.parse_args()
    canvases = [draw(DIGITS[d]) for d in range(10)]
    requests = [AnalysisRequest(i, c) for i, c in enumerate(canvases)]
    result: dict = {"repeats": args.repeats, "inputs": "10 built-in drawn digits, 28x28 canvas", "models": {}}
    for spec in args.models.split(","):
        loaded = _model(spec)
        name = loaded.arch.name
        repeats = args.repeats if spec in ("tiny", "wide") else max(40, args.repeats // 4)
        analyzer = Analyzer(loaded)
        model = loaded.model
        tensors = [preprocess(c).tensor for c in canvases]
        entry: dict = {}
        correct = sum(analyzer.analyse(r).predicted == d for d, r in enumerate(requests))
        entry["built_in_digits_correct"] = f"{correct}/10"
        samples: dict = {(t, kind): [] for t in (1, 2) for kind in ("full", "forward", "predict")}
        # Interleave the configurations in rounds so drift on a shared machine hits them alike.
        for _ in range(4):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                n = max(10, repeats // 4)
                samples[threads, "full"] += sample(analyzer.analyse, requests, n)
                with torch.no_grad():
                    samples[threads, "forward"] += sample(model, tensors, n)
                    samples[threads, "predict"] += sample(lambda c: model(preprocess(c).tensor), canvases, n)
        for threads in (1, 2):
            block = {kind: stats(samples[threads, kind]) for kind in ("full", "forward", "predict")}
            block["ratio_full_over_forward"] = round(block["full"]["median_ms"] / block["forward"]["median_ms"], 2)
            block["ratio_full_over_predict"] = round(block["full"]["median_ms"] / block["predict"]["median_ms"], 2)
            entry[f"threads_{threads}"] = block
        torch.set_num_threads(1)
        snaps = [analyzer.analyse(requests[i % 10]).timings for i in range(repeats // 2)]
        entry["stages_median_ms"] = {k: round(statistics.median(t[k] for t in snaps), 4) for k in snaps[0]}
        entry["edges"] = int(sum(w.count for w in analyzer.wiring.values()))
        entry["neurons"] = neuron_count(loaded.arch)
        entry["repeats"] = repeats
        result["models"][name] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
