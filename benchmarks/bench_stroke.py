"""Stroke-to-frame latency on the real window. Prints one JSON object.

    python benchmarks/bench_stroke.py [--model tiny] [--seconds 10] [--hz 120] [--input synthetic|xdotool]

--input synthetic (default): synthetic mouse moves at 120 Hz for 10 s go through the canvas's real
mouse handlers (zig-zag strokes across the grid). Moves that come due while a frame renders are merged
into the newest, as Qt's X11 motion compression did before the app turned it off; the figures stay
comparable with earlier runs, while --input xdotool measures what the app does now.
For every request we remember when its input event happened; when the 3D view swaps a frame after the
window applied that request's analysis, latency = swap time - event time. Also:
frames per second, requests submitted, analyses delivered, requests coalesced by the worker, and
whether the last stroke's analysis was shown. The baseline measured in the same run is the frame
time of the idle window (repaint of the unchanged scene), so the ratio says what a stroke costs.

--input xdotool: real X pointer events. xdotool (XTEST) moves the pointer through the same zig-zag
strokes at --hz (default 125 Hz here), button down, one xdotool process per stroke, so the X server and
Qt's platform plugin deliver the events exactly as for a user's mouse. Reports, besides the figures
above, how many positions were sent (each is a distinct pixel, so X delivers each as one motion event),
how many reached the canvas (its point_applied signal) and the fraction (1.0 expected). For contrast the
same strokes are also drawn for --compressed-seconds with Qt's motion compression switched back on
(what the app did before), alternating stroke by stroke with the normal ones. Latency here is measured
from the event's X server timestamp, put on this process's clock by the smallest observed delivery
delay (so it excludes that constant part).

Needs an X display with OpenGL; without DISPLAY it re-runs itself under xvfb-run at 1280x720.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time


def reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("CNNVIZ_BENCH_NO_XVFB"):
        return
    if not shutil.which("xvfb-run"):
        sys.exit("bench_stroke: no DISPLAY and no xvfb-run (apt-get install xvfb xauth)")
    os.environ["CNNVIZ_BENCH_NO_XVFB"] = "1"
    os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24 +extension GLX",
                           sys.executable, *sys.argv])


def wait_for_last_stroke(app, window, pending_frames) -> bool:
    """Process events until the newest request's analysis is shown (10 s at most) and its frames are
    swapped (2 s at most); True if the last stroke's analysis is the one on screen."""
    last_id = window.last_request_id
    deadline = time.monotonic() + 10
    while (window.snapshot is None or window.snapshot.request_id != last_id) and time.monotonic() < deadline:
        app.processEvents()
    t_wait = time.monotonic() + 2
    while time.monotonic() < t_wait and pending_frames:
        app.processEvents()
    return window.snapshot is not None and window.snapshot.request_id == last_id


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=None, help="input rate (default 120, xdotool: 125)")
    parser.add_argument("--input", choices=("synthetic", "xdotool"), default="synthetic")
    parser.add_argument("--compressed-seconds", type=float, default=3.0,
                        help="xdotool: seconds drawn with Qt's motion compression on, for contrast (0: skip)")
    parser.add_argument("--compare-views", action="store_true",
                        help="synthetic: run once with the core views, once with every explanation view open")
    args = parser.parse_args()
    if args.hz is None:
        args.hz = 125.0 if args.input == "xdotool" else 120.0
    if args.input == "xdotool" and not shutil.which("xdotool"):
        sys.exit("bench_stroke: --input xdotool needs xdotool (apt-get install xdotool)")
    reexec_under_xvfb()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from cnnviz_desktop.__main__ import configure_environment, configure_qt_attributes

    configure_environment()
    configure_qt_attributes()
    from PySide6.QtWidgets import QApplication

    from cnnviz_desktop.ui.canvas import keep_every_pointer_event

    app = QApplication(sys.argv[:1])
    keep_every_pointer_event()  # as app.run does, once the QApplication exists

    from cnnviz_desktop.devtools.gl_bench import open_window

    owner = open_window(app, args.model)
    window = owner.window
    view = window.scene.view

    # Baseline: idle frames (the unchanged scene repainted), same run.
    idle = []
    last = [time.perf_counter()]

    def on_idle_frame():
        now = time.perf_counter()
        idle.append((now - last[0]) * 1000)
        last[0] = now
        if len(idle) < 40:
            view.update()

    view.frameSwapped.connect(on_idle_frame)
    last[0] = time.perf_counter()
    view.update()
    t_end = time.monotonic() + 20
    while len(idle) < 40 and time.monotonic() < t_end:
        app.processEvents()
    view.frameSwapped.disconnect(on_idle_frame)
    idle_frame_ms = statistics.median(idle[5:]) if len(idle) > 10 else None
    if args.input == "xdotool":
        result = run_xdotool(args, app, owner, idle_frame_ms)
        owner.close()
        print(json.dumps(result))
        return

    if not args.compare_views:
        result = run_synthetic(args, app, owner, idle_frame_ms)
    else:
        core = run_synthetic(args, app, owner, idle_frame_ms)
        shown = show_explanation_views(app, window)
        everything = run_synthetic(args, app, owner, idle_frame_ms)
        result = {"model": args.model, "core_views": core, "explanation_views_visible": shown,
                  "all_views": everything,
                  "latency_all_vs_core": round(everything["latency_ms_median"] / core["latency_ms_median"], 2)
                  if core["latency_ms_median"] and everything["latency_ms_median"] else None}
    owner.close()
    print(json.dumps(result))


def show_explanation_views(app, window) -> list[str]:
    """Open every hidden view except the help and the history, split (not tabbed) so each is visible and
    renders on every stroke; returns their ids."""
    from PySide6.QtCore import Qt

    shown, first = [], None
    for view_id, dock in window.docks.items():
        if view_id in ("drawing", "probabilities", "help", "history"):
            continue
        dock.setVisible(True)
        if first is None:
            first = dock
        else:
            window.splitDockWidget(first, dock, Qt.Orientation.Vertical)
        shown.append(view_id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(window.views[v].isVisible() for v in shown):
        app.processEvents()
    for _ in range(50):
        app.processEvents()
    return [v for v in shown if window.views[v].isVisible()]


def run_synthetic(args, app, owner, idle_frame_ms) -> dict:
    """Synthetic strokes through the canvas's mouse handlers for --seconds; the figures as a dict."""
    from PySide6.QtCore import QEvent, Qt, QTimer

    from cnnviz_desktop.ui.input_sim import send_mouse

    window = owner.window
    view = window.scene.view
    first_request = window.last_request_id
    event_time: dict[int, float] = {}
    pending_frames: list[int] = []
    latencies: list[float] = []
    frames: list[float] = []
    delivered = [0]

    def on_applied(snap):
        delivered[0] += 1
        pending_frames.append(snap.request_id)

    def on_frame():
        now = time.perf_counter()
        frames.append(now)
        while pending_frames:
            rid = pending_frames.pop()
            if rid in event_time:
                latencies.append((now - event_time[rid]) * 1000)
        pending_frames.clear()

    window.snapshot_applied.connect(on_applied)
    view.frameSwapped.connect(on_frame)
    canvas = window.canvas
    total = int(args.seconds * args.hz)
    state = {"i": 0, "down": False}
    start = time.perf_counter()

    def point(i):
        # Zig-zag strokes of 60 moves each, lifting the pen between them.
        phase = (i % 60) / 59
        row = 5 + (i // 60) % 4 * 5
        return 4 + 20 * phase, row + 2 * ((i // 3) % 2)

    compressed = [0]

    def deliver(j, t_sched):
        """Send the event(s) for scheduled move j; returns nothing, records request times."""
        pos = canvas.cell_centre(*point(j))
        before = window.last_request_id
        if j % 60 == 0:
            if state["down"]:
                send_mouse(canvas, QEvent.Type.MouseButtonRelease, canvas.cell_centre(*point(j - 1)),
                           Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
            if (j // 60) % 8 == 7:
                window.clear_canvas()
            send_mouse(canvas, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton,
                       Qt.MouseButton.LeftButton)
            state["down"] = True
        else:
            send_mouse(canvas, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
        for rid in range(before + 1, window.last_request_id + 1):
            event_time[rid] = t_sched

    def tick():
        # Moves are due at 120 Hz of wall-clock time. While the GUI thread was busy (rendering a frame),
        # several may have come due: like Qt's X11 motion compression (now off in the app), only the newest
        # position of each stroke is delivered (presses and releases never are skipped).
        due = min(total - 1, int((time.perf_counter() - start) * args.hz))
        i = state["i"]
        if i > due:
            if i >= total:
                if state["down"]:
                    send_mouse(canvas, QEvent.Type.MouseButtonRelease, canvas.cell_centre(*point(total - 1)),
                               Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
                    state["down"] = False
                timer.stop()
            return
        for j in range(i, due + 1):
            if j % 60 == 0 or j == due or (j + 1) % 60 == 0:
                deliver(j, start + j / args.hz)
            else:
                compressed[0] += 1
        state["i"] = due + 1

    timer = QTimer(interval=1, timeout=tick)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.start()
    while timer.isActive():
        app.processEvents()
    elapsed = time.perf_counter() - start
    last_shown = wait_for_last_stroke(app, window, pending_frames)
    coalesced = getattr(owner.worker, "coalesced", None)
    return {
        "model": args.model,
        "input_hz": args.hz,
        "seconds": round(elapsed, 2),
        "mouse_events_due": total,
        "moves_compressed_like_x11": compressed[0],
        "requests": window.last_request_id - first_request,
        "analyses_delivered": delivered[0],
        "requests_coalesced": coalesced,
        "last_stroke_shown": last_shown,
        "latency_ms_median": round(statistics.median(latencies), 2) if latencies else None,
        "latency_ms_p95": round(percentile(latencies, 0.95), 2) if latencies else None,
        "fps": round(len(frames) / elapsed, 1),
        "baseline_idle_frame_ms_median": round(idle_frame_ms, 2) if idle_frame_ms else None,
        "latency_vs_idle_frame": round(statistics.median(latencies) / idle_frame_ms, 2)
        if latencies and idle_frame_ms else None,
    }


def stroke_cells(k: int) -> list[tuple[float, float]]:
    """Stroke k of the benchmark: 60 positions (cell units), the same zig-zag as the synthetic mode."""
    row = 5 + k % 4 * 5
    return [(4 + 20 * (i / 59), row + 2 * ((i // 3) % 2)) for i in range(60)]


def run_xdotool(args, app, owner, idle_frame_ms) -> dict:
    """Real X pointer strokes through xdotool; returns the JSON result (see the module docstring)."""
    import subprocess

    from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt

    window = owner.window
    canvas = window.canvas
    view = window.scene.view
    compress = Qt.ApplicationAttribute.AA_CompressHighFrequencyEvents

    class Stamps(QObject):
        """Remembers the X server timestamp and arrival time of the canvas's current pointer event."""

        def __init__(self):
            super().__init__()
            self.current = None
            self.offsets: list[float] = []

        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove):
                now_ms = time.perf_counter() * 1000
                self.current = event.timestamp()
                self.entered = now_ms
                self.offsets.append(now_ms - self.current)
            return False

    stamps = Stamps()
    canvas.installEventFilter(stamps)
    state = {"sent": 0, "applied": 0, "finished": 0}
    event_xtime: dict[int, int] = {}
    pending_frames: list[int] = []
    frame_times: list[tuple[float, list[int]]] = []
    frames: list[float] = []
    delivered = [0]

    handler_ms: list[float] = []

    def on_changed():
        # Connected after the window's own slot: entry of the event -> request submitted.
        if getattr(stamps, "entered", None) is not None:
            handler_ms.append(time.perf_counter() * 1000 - stamps.entered)
            stamps.entered = None

    canvas.canvas_changed.connect(on_changed)

    def on_point(x, y):
        state["applied"] += 1
        if stamps.current is not None:
            event_xtime[window.last_request_id + 1] = stamps.current  # the request this position triggers

    def on_applied(snap):
        delivered[0] += 1
        pending_frames.append(snap.request_id)

    def on_frame():
        now = time.perf_counter()
        frames.append(now)
        frame_times.append((now, list(pending_frames)))
        pending_frames.clear()

    def on_finished():
        state["finished"] += 1

    canvas.point_applied.connect(on_point)
    canvas.stroke_finished.connect(on_finished)
    window.snapshot_applied.connect(on_applied)
    view.frameSwapped.connect(on_frame)

    phase = {"compressed": False}
    totals = {False: {"strokes": 0, "sent": 0, "applied": 0, "seconds": 0.0, "frames": [], "handler": []},
              True: {"strokes": 0, "sent": 0, "applied": 0, "seconds": 0.0, "frames": [], "handler": []}}

    def stroke(k: int) -> None:
        """Stroke k through xdotool, in the current phase (Qt's motion compression on or off)."""
        compressed = phase["compressed"]
        QCoreApplication.setAttribute(compress, compressed)
        total = totals[compressed]
        sent0, applied0 = state["sent"], state["applied"]
        frame_times.clear()
        handler_ms.clear()
        start = time.perf_counter()
        if k % 8 == 7:
            window.clear_canvas()
        points = []
        for x, y in stroke_cells(k):
            p = canvas.mapToGlobal(canvas.cell_centre(x, y)).toPoint()
            if not points or p != points[-1]:
                points.append(p)
        cmd = ["xdotool", "mousemove", str(points[0].x()), str(points[0].y()), "sleep", "0.05", "mousedown", "1"]
        for p in points[1:]:
            cmd += ["sleep", f"{1 / args.hz:.4f}", "mousemove", str(p.x()), str(p.y())]
        cmd += ["sleep", "0.02", "mouseup", "1"]
        finished = state["finished"]
        proc = subprocess.Popen(cmd)
        while proc.poll() is None:
            app.processEvents()
        t_end = time.monotonic() + 5
        while state["finished"] == finished and time.monotonic() < t_end:
            app.processEvents()
        state["sent"] += len(points)
        total["strokes"] += 1
        total["sent"] += state["sent"] - sent0
        total["applied"] += state["applied"] - applied0
        total["seconds"] += time.perf_counter() - start
        total["frames"] += frame_times
        total["handler"] += handler_ms

    # The two phases alternate stroke by stroke, so both see the same (shared, noisy) machine.
    ratio = args.compressed_seconds / args.seconds if args.seconds > 0 else 0.0
    k = 0
    while totals[False]["seconds"] < args.seconds:
        phase["compressed"] = totals[True]["seconds"] < ratio * totals[False]["seconds"]
        stroke(k)
        k += 1
    phase["compressed"] = False
    stroke(k)  # the last stroke as the app draws it
    QCoreApplication.setAttribute(compress, False)
    last_shown = wait_for_last_stroke(app, window, pending_frames)
    # X timestamps -> this process's clock: the least-delayed delivery defines the offset.
    offset_ms = min(stamps.offsets) if stamps.offsets else 0.0

    def phase_latencies(total) -> list[float]:
        return [now * 1000 - (event_xtime[rid] + offset_ms)
                for now, ids in total["frames"] for rid in ids if rid in event_xtime]

    off, on = totals[False], totals[True]
    latencies = phase_latencies(off)
    handler = statistics.median(off["handler"]) if off["handler"] else None
    n_strokes, sent, applied, elapsed = off["strokes"], off["sent"], off["applied"], off["seconds"]
    n_frames = len(off["frames"])
    compressed = None
    if on["strokes"]:
        c_lat = phase_latencies(on)
        compressed = {"seconds": round(on["seconds"], 2), "strokes": on["strokes"],
                      "positions_sent": on["sent"], "positions_applied": on["applied"],
                      "fraction_applied": round(on["applied"] / on["sent"], 3) if on["sent"] else None,
                      "latency_ms_median": round(statistics.median(c_lat), 2) if c_lat else None,
                      "latency_ms_p95": round(percentile(c_lat, 0.95), 2) if c_lat else None,
                      "fps": round(len(on["frames"]) / on["seconds"], 1)}
    canvas.removeEventFilter(stamps)
    coalesced = getattr(owner.worker, "coalesced", None)
    median = statistics.median(latencies) if latencies else None
    return {
        "model": args.model,
        "input": "xdotool (XTEST, real X pointer events)",
        "input_hz": args.hz,
        "seconds": round(elapsed, 2),
        "strokes": n_strokes,
        "positions_sent": sent,
        "positions_applied": applied,
        "fraction_applied": round(applied / sent, 4) if sent else None,
        "event_to_request_ms_median": round(handler, 3) if handler is not None else None,
        "with_qt_motion_compression": compressed,
        "requests": window.last_request_id,
        "analyses_delivered": delivered[0],
        "requests_coalesced": coalesced,
        "last_stroke_shown": last_shown,
        "latency_ms_median": round(median, 2) if median is not None else None,
        "latency_ms_p95": round(percentile(latencies, 0.95), 2) if latencies else None,
        "fps": round(n_frames / elapsed, 1),
        "baseline_idle_frame_ms_median": round(idle_frame_ms, 2) if idle_frame_ms else None,
        "latency_vs_idle_frame": round(median / idle_frame_ms, 2) if median is not None and idle_frame_ms else None,
    }


if __name__ == "__main__":
    main()
