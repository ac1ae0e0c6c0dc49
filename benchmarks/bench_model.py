"""Forward-pass cost of the shipped models. Prints one JSON object.

    python benchmarks/bench_model.py [--repeats N]

Per-image latency is the median of single-image forward passes (what the app does per stroke);
throughput is images per second with batches of 256. The baseline in the same run is a bare
1x1 linear layer's forward (torch's per-call overhead on this machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from cnnviz_desktop.core import weights


def median_ms(fn, repeats: int) -> float:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    one = torch.randn(1, 1, 28, 28)
    batch = torch.randn(256, 1, 28, 28)
    baseline_layer = torch.nn.Linear(1, 1)
    with torch.no_grad():
        baseline = median_ms(lambda: baseline_layer(torch.zeros(1, 1)), args.repeats)
        result = {"threads": args.threads, "baseline_linear_1x1_ms": round(baseline, 4), "models": {}}
        for name in ("tiny", "wide"):
            model = weights.load(name).model
            single = median_ms(lambda: model(one), args.repeats)
            batch_ms = median_ms(lambda: model(batch), max(20, args.repeats // 20))
            result["models"][name] = {
                "parameters": model.parameter_count(),
                "forward_ms_median": round(single, 4),
                "forward_vs_baseline": round(single / baseline, 1),
                "batch256_ms_median": round(batch_ms, 3),
                "throughput_images_per_s": round(256 / batch_ms * 1000),
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
