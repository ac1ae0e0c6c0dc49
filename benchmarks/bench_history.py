"""The saved-drawings database at class scale. Prints one JSON object.

    python benchmarks/bench_history.py [--rows 10000] [--rerun 300] [--model tiny] [--no-gui]

In a fresh database file in a temporary folder (or --db): saves --rows drawings one by one (one
transaction each, as the app saves: canvas, strokes, probabilities, Grad-CAM), reporting the median and
95th percentile save latency; then times one page of 100 rows (newest first at the start, middle and end,
and sorted by confidence with the 'reported' filter), a count with each filter, the confusion matrix,
and finally re-runs --rerun drawings through core.history.rerun against a plain batch forward of the
same canvases (preprocess + one torch forward, what cnnviz-predict does) in the same run. Unless --no-gui:
opens the dashboard on that database in the real window (Qt offscreen, no 3D view) and scrolls it to the end
page by page (open time, median time per lazily fetched page).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_ms(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


def _drawings(rng: np.random.Generator, n: int):
    """n random pen drawings (1-3 polylines of 4-12 points inside the grid), as stroke lists."""
    from cnnviz_desktop.core.strokes import Stroke

    out = []
    for _ in range(n):
        strokes, t = [], 0.0
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(4, 13))
            xy = np.cumsum(rng.normal(0, 3, (k, 2)), axis=0) + rng.uniform(8, 20, 2)
            xy = np.clip(xy, 2, 26)
            ts = t + np.arange(k) * 0.03
            t = float(ts[-1]) + 0.2
            strokes.append(Stroke(np.column_stack([xy, ts, np.ones(k)]).astype(np.float32)))
        out.append(tuple(strokes))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--rerun", type=int, default=300)
    p.add_argument("--model", default="tiny")
    p.add_argument("--db", default=None, help="database file (default: a new one in a temporary folder)")
    p.add_argument("--no-gui", dest="gui", action="store_false", help="skip the dashboard part")
    args = p.parse_args(argv)

    import torch

    from cnnviz_desktop.core import history as hist
    from cnnviz_desktop.core import weights
    from cnnviz_desktop.core.analysis import Analyzer
    from cnnviz_desktop.core.preprocess import preprocess

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    loaded = weights.load(args.model)
    analyzer = Analyzer(loaded)
    bases = []
    for strokes in _drawings(rng, 50):
        pixels, kept = hist.render_strokes(strokes)
        bases.append(hist.analyse_record(analyzer, hist.DrawingRecord(canvas=pixels, strokes=kept), loaded))

    tmp = tempfile.TemporaryDirectory()
    path = Path(args.db) if args.db else Path(tmp.name) / "history.sqlite"
    result: dict = {"rows": args.rows, "model": loaded.name}
    with hist.History.open(path) as h:
        latencies = []
        t_all = time.perf_counter()
        for i in range(args.rows):
            base = bases[i % len(bases)]
            label = int(rng.integers(0, 10)) if i % 4 == 0 else None
            record = hist.DrawingRecord(canvas=base.canvas, strokes=base.strokes, model=base.model,
                                        weights_sha256=base.weights_sha256, predicted=base.predicted,
                                        probabilities=base.probabilities, cam=base.cam, label=label,
                                        reason="wrong" if label is not None and i % 20 == 0 else None,
                                        note=f"pupil {i % 30}")
            t0 = time.perf_counter()
            h.save(record)
            latencies.append((time.perf_counter() - t0) * 1e3)
        result["save_total_s"] = round(time.perf_counter() - t_all, 2)
        result["save_median_ms"] = round(statistics.median(latencies), 3)
        result["save_p95_ms"] = round(float(np.percentile(latencies, 95)), 3)
        result["db_bytes"] = path.stat().st_size + (Path(f"{path}-wal").stat().st_size
                                                    if Path(f"{path}-wal").exists() else 0)
        n = h.count()
        result["page_100_ms"] = {
            "newest_first": _median_ms(lambda: h.query(limit=100)),
            "newest_middle": _median_ms(lambda: h.query(limit=100, offset=n // 2)),
            "newest_last": _median_ms(lambda: h.query(limit=100, offset=max(0, n - 100))),
            "reported_by_confidence": _median_ms(lambda: h.query("reported", order="confidence", limit=100)),
            "search_notes": _median_ms(lambda: h.query(search="pupil 7", limit=100)),
        }
        result["count_ms"] = {
            "all": _median_ms(lambda: h.count()),
            "reported": _median_ms(lambda: h.count("reported")),
            "misclassified": _median_ms(lambda: h.count("misclassified")),
            "digit_3": _median_ms(lambda: h.count(hist.Filter(digit=3))),
            "model": _median_ms(lambda: h.count(hist.Filter(model=loaded.name))),
        }
        result["ids_all_ms"] = _median_ms(lambda: h.ids())
        result["confusion_ms"] = _median_ms(lambda: h.confusion())

        ids = h.ids(order="id")[: args.rerun]
        t0 = time.perf_counter()
        reran = hist.rerun(h, analyzer, ids)
        rerun_s = time.perf_counter() - t0
        canvases = [r.canvas for r in h.iter_records(ids)]
    t0 = time.perf_counter()
    batch = torch.cat([preprocess(c).tensor for c in canvases])
    with torch.no_grad():
        torch.softmax(loaded.model(batch), dim=1)
    plain_s = time.perf_counter() - t0
    result["rerun"] = {
        "drawings": len(reran),
        "rerun_ms_per_drawing": round(rerun_s * 1e3 / max(1, len(reran)), 3),
        "rerun_per_s": round(len(reran) / rerun_s, 1),
        "plain_batch_ms_per_drawing": round(plain_s * 1e3 / max(1, len(canvases)), 3),
        "plain_batch_per_s": round(len(canvases) / plain_s, 1),
        "ratio_rerun_over_plain": round(rerun_s / plain_s, 2),
        "note": "rerun = read from the db + full analysis (strokes rasterised, forward, Grad-CAM, contributions) "
                "per drawing; plain = pixels preprocess + one batched torch forward",
    }
    if args.gui:
        result["dashboard"] = dashboard(path, loaded.name)
    tmp.cleanup()
    print(json.dumps(result))


def dashboard(path: Path, model: str) -> dict:
    """Open the dashboard (Alt+5's toggle) in the real window on the database at ``path`` and scroll it to the
    end page by page, as a user dragging the scroll bar down would. Qt's offscreen platform, no 3D view."""
    import os

    os.environ["CNNVIZ_USER_DATA"] = str(path.parent)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from cnnviz_desktop.__main__ import parser as app_parser
    from cnnviz_desktop.app import Application

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(path.parent / "settings.ini"), QSettings.Format.IniFormat)
    owner = Application(app_parser().parse_args(["--model", model, "--no-gl"]), app, settings)
    owner.window.resize(1366, 768)
    owner.start()
    window = owner.window
    deadline = time.monotonic() + 120
    while window.snapshot is None and time.monotonic() < deadline:
        app.processEvents()
    view = window.views["history"]
    t0 = time.perf_counter()
    window.toggle_view("history")
    while (view.model is None or view.model.rowCount() == 0) and time.monotonic() < deadline:
        app.processEvents()
    app.processEvents()
    open_ms = (time.perf_counter() - t0) * 1e3
    shown_at_open = view.model.rowCount()
    bar = view.table.verticalScrollBar()
    pages, t0 = [], time.perf_counter()
    total = view.model.total
    while view.model.rowCount() < total and time.monotonic() < deadline + 120:
        t1 = time.perf_counter()
        before = view.model.rowCount()
        bar.setValue(bar.maximum())
        while view.model.rowCount() == before and time.monotonic() < deadline + 120:
            app.processEvents()
        view.table.viewport().repaint()
        pages.append((time.perf_counter() - t1) * 1e3)
    scroll_s = time.perf_counter() - t0
    out = {
        "open_ms": round(open_ms, 1),
        "rows_shown_at_open": shown_at_open, "rows_total": total,
        "scroll_pages": len(pages),
        "scroll_page_ms_median": round(statistics.median(pages), 2) if pages else None,
        "scroll_to_end_s": round(scroll_s, 2),
        "rows_at_end": view.model.rowCount(),
    }
    owner.close()
    return out
    return 0


if __name__ == "__main__":
    sys.exit(main())
