"""How much of Grad-CAM's positive evidence lies on the ink ('blank paper' channel). Prints one JSON object.

    CNNVIZ_MNIST_DIR=/path/to/mnist python benchmarks/bench_inkshare.py [--count 1500] [--models tiny,wide]

For the first --count t10k digits (never trained on), each placed on the drawing grid as its pixels, the
analysis engine's Grad-CAM of the prediction on the canvas ('Both': all channels summed) is measured with
core.metrics.ink_share (ink = input above 0.1, dilated by 1 px). Reports per model the median share, its
quartiles, the share of digits whose map has no positive cell at all, and the median share per channel
map (which channel answers to blank paper), plus the accuracy on the same digits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(name: str, images: np.ndarray, labels: np.ndarray) -> dict:
    from cnnviz_desktop.core import weights
    from cnnviz_desktop.core.analysis import AnalysisRequest, Analyzer
    from cnnviz_desktop.core.metrics import ink_share

    analyzer = Analyzer(weights.load(name))
    shares, none, correct = [], 0, 0
    per_channel: dict[int, list[float]] = {}
    for i, (image, label) in enumerate(zip(images, labels)):
        snap = analyzer.analyse(AnalysisRequest(i + 1, image))
        correct += int(snap.predicted == int(label))
        share = ink_share(image, snap.canvas_cam)
        if share is None:
            none += 1
        else:
            shares.append(share)
        for k, channel in enumerate(snap.canvas_cam_channels):
            s = ink_share(image, channel)
            if s is not None:
                per_channel.setdefault(k, []).append(s)
    q = np.quantile(shares, [0.25, 0.5, 0.75]) if shares else [float("nan")] * 3
    return {
        "digits": int(len(images)),
        "accuracy": round(correct / len(images), 4),
        "median_ink_share": round(float(q[1]), 3),
        "quartiles": [round(float(q[0]), 3), round(float(q[2]), 3)],
        "no_positive_cell": round(none / len(images), 3),
        "median_ink_share_per_channel": {str(k): round(statistics.median(v), 3)
                                         for k, v in sorted(per_channel.items())},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("CNNVIZ_MNIST_DIR"), help="MNIST folder (or CNNVIZ_MNIST_DIR)")
    p.add_argument("--count", type=int, default=1500)
    p.add_argument("--models", default="tiny,wide")
    args = p.parse_args(argv)
    if not args.data:
        print(json.dumps({"error": "set CNNVIZ_MNIST_DIR or pass --data"}))
        return 2
    from cnnviz_desktop.core import mnist

    test = mnist.load(args.data, "test")
    images = test.images[: args.count].astype(np.float32) / 255.0
    labels = test.labels[: args.count]
    out = {"benchmark": "inkshare", "models": {m: measure(m, images, labels) for m in args.models.split(",")}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
