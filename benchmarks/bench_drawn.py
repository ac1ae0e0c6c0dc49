"""Accuracy on drawn digits by the size they are drawn at, pixels path vs strokes path. Prints one JSON object.

    CNNVIZ_MNIST_DIR=/path/to/mnist python benchmarks/bench_drawn.py [--per-digit 100] [--models tiny,wide]

Builds a drawn-digit test set from MNIST t10k: each digit's skeleton (Zhang-Suen thinning) is
traced into polylines (core.strokes.drawn_digit), scaled so that its larger side spans 50, 65 and
80% of the grid height, centred, and replayed through CanvasModel with the default brush (each
polyline one stroke, as a mouse would draw it). Each drawing is then read two ways:
- "pixels": preprocess(model.pixels), the behaviour before strokes were kept;
- "strokes": core.strokes.rasterise(model.strokes), the pen scaled to the digit's size.
Reports accuracy per size and per digit for every model, the largest gap between sizes, the
worst digit, and the median time of one rasterise call next to one preprocess call (same run).
The digits used are the first --per-digit of each class from --offset on in t10k (never trained on).
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

FRACTIONS = (0.5, 0.65, 0.8)


def pick(labels: np.ndarray, per_digit: int, offset: int) -> np.ndarray:
    """Indices of the first ``per_digit`` images of each class at or after ``offset``, class-sorted."""
    out = []
    for digit in range(10):
        idx = np.flatnonzero(labels[offset:] == digit)[:per_digit] + offset
        out.extend(idx.tolist())
    return np.array(out, dtype=np.int64)


def replay(lines, fraction: float):
    """Polylines (MNIST pixel units) -> a CanvasModel with them drawn at ``fraction`` of the grid."""
    from cnnviz_desktop.core.canvas import CanvasModel
    from cnnviz_desktop.core.strokes import fit_to_canvas

    model = CanvasModel()
    t = 0.0
    for line in fit_to_canvas(lines, fraction, grid=model.pixels.shape[0]):
        model.begin_stroke(float(line[0, 0]), float(line[0, 1]), t=t)
        for x, y in line[1:]:
            t += 0.01
            model.extend_stroke(float(x), float(y), t=t)
        model.end_stroke()
        t += 0.3
    return model


def analysis_timing(models, name: str = "tiny") -> dict:
    """Median Analyzer.analyse total (ms) of the same drawings with and without their strokes."""
    from cnnviz_desktop.core import weights
    from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer

    analyzer = Analyzer(weights.load(name))
    with_strokes, pixels_only = [], []
    for rep in range(3):
        for i, model in enumerate(models):
            pixels, strokes = model.pixels.copy(), model.strokes
            with_strokes.append(analyzer.analyse(AnalysisRequest(i, pixels, strokes=strokes)).timings)
            pixels_only.append(analyzer.analyse(AnalysisRequest(i, pixels)).timings)
    med = lambda rows, key: round(statistics.median(r[key] for r in rows), 3)
    return {"model": name, "strokes_total_ms": med(with_strokes, "total"),
            "pixels_total_ms": med(pixels_only, "total"),
            "strokes_preprocess_ms": med(with_strokes, "preprocess"),
            "pixels_preprocess_ms": med(pixels_only, "preprocess")}


def build(images: np.ndarray, fractions=FRACTIONS):
    """-> ({fraction: (pixels_inputs (N, 28, 28), strokes_inputs (N, 28, 28))}, the traced polylines,
    100 of the drawings (CanvasModel), timings of preprocess vs rasterise)."""
    from cnnviz_desktop.core.preprocess import preprocess
    from cnnviz_desktop.core.strokes import drawn_digit, rasterise

    traced = [drawn_digit(img.astype(np.float32) / 255.0) for img in images]
    out = {}
    t_pre, t_ras = [], []
    kept = []
    for fraction in fractions:
        pix, strk = [], []
        for lines in traced:
            model = replay(lines, fraction)
            strokes = model.strokes
            c0 = time.perf_counter()
            a = preprocess(model.pixels)
            c1 = time.perf_counter()
            b = rasterise(strokes, model.pixels.shape)
            c2 = time.perf_counter()
            t_pre.append(c1 - c0)
            t_ras.append(c2 - c1)
            if len(kept) < 100:
                kept.append(model)
            pix.append(a.image)
            strk.append(b.image if b is not None else a.image)
        out[fraction] = (np.stack(pix), np.stack(strk))
    points = [sum(len(s) for s in replay(lines, 0.8).strokes) for lines in traced[:50]]
    return out, traced, kept, {"preprocess_ms": round(1e3 * statistics.median(t_pre), 3),
                               "rasterise_ms": round(1e3 * statistics.median(t_ras), 3),
                               "median_points_per_digit": statistics.median(points)}


def predict(loaded, inputs: np.ndarray) -> np.ndarray:
    import torch

    from cnnviz_desktop.core.preprocess import normalise

    with torch.no_grad():
        return loaded.model(normalise(inputs)).argmax(1).numpy()


def report(pred: np.ndarray, labels: np.ndarray) -> dict:
    per_digit = {str(d): round(float((pred[labels == d] == d).mean()), 3) for d in range(10)}
    return {"accuracy": round(float((pred == labels).mean()), 4), "per_digit": per_digit}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-digit", type=int, default=100)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--models", default="tiny,wide")
    parser.add_argument("--data", default=os.environ.get("CNNVIZ_MNIST_DIR", ""))
    parser.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS),
                        help="sizes to draw at, as fractions of the grid height")
    args = parser.parse_args()
    if not args.data:
        sys.exit("bench_drawn: set CNNVIZ_MNIST_DIR (or --data) to the MNIST folder")
    import torch

    torch.set_num_threads(1)
    from cnnviz_desktop.core import mnist, weights

    test = mnist.load(args.data, "test")
    idx = pick(test.labels, args.per_digit, args.offset)
    labels = test.labels[idx]
    fractions = tuple(float(f) for f in args.fractions.split(","))
    sets, _traced, kept, timing = build(test.images[idx], fractions)
    timing["analysis"] = analysis_timing(kept)
    result = {"digits": len(idx), "fractions": list(fractions), "timing": timing, "models": {}}
    for name in args.models.split(","):
        loaded = weights.load(name)
        entry = {"originals": report(predict(loaded, test.images[idx].astype(np.float32) / 255.0), labels)}
        for path, k in (("pixels", 0), ("strokes", 1)):
            by_size = {f"{round(f * 100)}%": report(predict(loaded, sets[f][k]), labels) for f in fractions}
            accs = [v["accuracy"] for v in by_size.values()]
            worst = min((acc, d, size) for size, v in by_size.items() for d, acc in v["per_digit"].items())
            entry[path] = {"by_size": by_size, "gap_points": round(100 * (max(accs) - min(accs)), 2),
                           "worst_digit": {"digit": worst[1], "size": worst[2], "accuracy": worst[0]}}
        result["models"][name] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
