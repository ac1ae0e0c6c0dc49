"""Stroke-to-frame latency on the real window. Prints one JSON object.

    python benchmarks/bench_stroke.py [--model tiny] [--seconds 10] [--hz 120]

Synthetic mouse moves at 120 Hz for 10 s go through the canvas's real mouse handlers (zig-zag strokes
across the grid). For every request we remember when its input event happened; when the 3D view swaps
a frame after the window applied that request's analysis, latency = swap time - event time. Also:
frames per second, requests submitted, analyses delivered, requests coalesced by the worker, and
whether the last stroke's analysis was shown. The baseline measured in the same run is the frame
time of the idle window (repaint of the unchanged scene), so the ratio says what a stroke costs.

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


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=120.0)
    args = parser.parse_args()
    reexec_under_xvfb()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from cnnviz_desktop.__main__ import configure_environment, parser as app_parser

    configure_environment()
    from PySide6.QtCore import QEvent, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from cnnviz_desktop.app import Application
    from cnnviz_desktop.ui.input_sim import send_mouse

    app = QApplication(sys.argv[:1])
    import tempfile

    settings = QSettings(os.path.join(tempfile.mkdtemp(), "s.ini"), QSettings.Format.IniFormat)
    owner = Application(app_parser().parse_args(["--model", args.model]), app, settings)
    owner.window.resize(1280, 720)
    owner.start()
    window = owner.window
    deadline = time.monotonic() + 120
    while window.snapshot is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
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
        # several may have come due: like the X server's motion compression, only the newest position
        # of each stroke is delivered (presses and releases never are skipped).
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
    last_id = window.last_request_id
    deadline = time.monotonic() + 10
    while (window.snapshot is None or window.snapshot.request_id != last_id) and time.monotonic() < deadline:
        app.processEvents()
    t_wait = time.monotonic() + 2
    while time.monotonic() < t_wait and pending_frames:
        app.processEvents()
    last_shown = window.snapshot.request_id == last_id
    coalesced = getattr(owner.worker, "coalesced", None)
    result = {
        "model": args.model,
        "input_hz": args.hz,
        "seconds": round(elapsed, 2),
        "mouse_events_due": total,
        "moves_compressed_like_x11": compressed[0],
        "requests": last_id,
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
    owner.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
