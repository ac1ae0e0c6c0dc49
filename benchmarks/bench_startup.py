"""Start-up time of CNNViz, unfrozen and frozen, next to ``python -c "import torch"`` measured in the same run.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--bundle dist/cnnviz/cnnviz] [--use-display]

Prints ONE JSON object. All times are seconds from process start (``Popen``), medians over ``--runs`` runs
(after one discarded warm-up run of each command, so every figure is a warm-cache figure):

- ``window_visible_s``: when the X server reports the app's first top-level window mapped (a ``MapNotify`` on
  the root window, watched through libX11 in this process). Independent of what the app prints.
- ``first_frame_s``: process start to the first analysed frame on screen, as the app reports it
  (``seconds_to_first_frame``: the first GL frame swap after the first analysis, timed from the process's start
  time in /proc). Without that key: when the ``--self-test`` JSON line arrives, which is later (the self-test
  first draws a whole digit).
- ``exit_s``: process wall time; also the fallback of both figures above if the window or the line never came.
- ``app_reported``: medians of the app's own keys (``seconds_to_window``, ``seconds_to_first_frame``), which the
  app measures from its process start time (/proc/self/stat).
- ``window_lead_s``: ``first_frame_s - window_visible_s``; positive means the window was on screen before the
  model (and torch) had finished loading.

Every run uses a private Xvfb (GLX, 1600x1000x24; started here, like xvfb-run) and an environment reduced to
PATH, HOME, DISPLAY and temporary XDG directories, so the bundle cannot see the build venv. Noisy on a shared
machine: compare ratios (``ratios``), not absolute seconds, across machines.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XVFB_ARGS = ["-screen", "0", "1600x1000x24", "+extension", "GLX", "+render", "-nolisten", "tcp"]
MAP_NOTIFY = 19
SUBSTRUCTURE_NOTIFY_MASK = 1 << 19


class _XMapEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("event", ctypes.c_ulong), ("window", ctypes.c_ulong),
                ("override_redirect", ctypes.c_int)]


class _XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xmap", _XMapEvent), ("pad", ctypes.c_long * 24)]


class MapWatcher:
    """Records when the next top-level, non-override-redirect window is mapped on ``display``."""

    def __init__(self, display: str):
        name = ctypes.util.find_library("X11")
        self._x11 = ctypes.CDLL(name) if name else None
        self._dpy = None
        if self._x11:
            self._x11.XOpenDisplay.restype = ctypes.c_void_p
            self._x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
            self._x11.XDefaultRootWindow.restype = ctypes.c_ulong
            self._x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
            self._x11.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
            self._x11.XPending.argtypes = [ctypes.c_void_p]
            self._x11.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.POINTER(_XEvent)]
            self._x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
            self._x11.XFlush.argtypes = [ctypes.c_void_p]
            self._dpy = self._x11.XOpenDisplay(display.encode())
        if self._dpy:
            self._x11.XSelectInput(self._dpy, self._x11.XDefaultRootWindow(self._dpy), SUBSTRUCTURE_NOTIFY_MASK)
            self._x11.XFlush(self._dpy)
        self.available = bool(self._dpy)
        self.mapped_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _drain(self) -> None:
        event = _XEvent()
        while self._x11.XPending(self._dpy):
            self._x11.XNextEvent(self._dpy, ctypes.byref(event))
            if (event.type == MAP_NOTIFY and not event.xmap.override_redirect and self.mapped_at is None
                    and self._armed):
                self.mapped_at = time.perf_counter()

    def start(self) -> None:
        self.mapped_at = None
        self._armed = False
        if not self.available:
            return
        self._drain()  # discard events of earlier runs
        self._armed = True
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set() and self.mapped_at is None:
                self._drain()
                time.sleep(0.002)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        if self._dpy:
            self._x11.XCloseDisplay(self._dpy)
            self._dpy = None


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), *XVFB_ARGS], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def timed_run(cmd: list[str], env: dict[str, str], cwd: Path, watcher: MapWatcher | None, timeout: float) -> dict:
    """One process: seconds to window mapped, to the JSON line, to exit; plus the app's JSON report."""
    if watcher:
        watcher.start()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    # A hung app (e.g. an exception inside a Qt slot) never exits: kill its process group after the timeout.
    watchdog = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    report, line_at = None, None
    stderr_chunks: list[str] = []
    drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    for line in proc.stdout:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and report is None:
            report, line_at = value, time.perf_counter()
    code = proc.wait()
    ended = time.perf_counter()
    watchdog.cancel()
    drain.join(timeout=5)
    if watcher:
        watcher.stop()
    mapped_at = watcher.mapped_at if watcher else None
    return {
        "code": code,
        "exit_s": ended - started,
        "window_visible_s": (mapped_at - started) if mapped_at else None,
        "first_frame_s": (line_at - started) if line_at else None,
        "report": report or {},
        "stderr": "".join(stderr_chunks)[-2000:],
    }


def median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def summarise(runs: list[dict]) -> dict:
    failures = [r for r in runs if r["code"] != 0]
    window = median([r["window_visible_s"] if r["window_visible_s"] is not None else r["exit_s"] for r in runs])
    reported = {}
    for key in ("seconds_to_window", "seconds_to_first_frame"):
        found = [r["report"].get(key) for r in runs if isinstance(r["report"].get(key), (int, float))]
        reported[key] = median(found)
    app_frames = [r["report"].get("seconds_to_first_frame") for r in runs]
    from_app = all(isinstance(v, (int, float)) for v in app_frames)
    frame = median(app_frames) if from_app else median(
        [r["first_frame_s"] if r["first_frame_s"] is not None else r["exit_s"] for r in runs])
    out = {
        "window_visible_s": window,
        "first_frame_s": frame,
        "exit_s": median([r["exit_s"] for r in runs]),
        "window_lead_s": round(frame - window, 3) if window is not None and frame is not None else None,
        "app_reported": reported,
        "window_source": "x11_map_notify" if all(r["window_visible_s"] is not None for r in runs) else "exit_time",
        "first_frame_source": "app_reported" if from_app else (
            "json_line" if all(r["first_frame_s"] is not None for r in runs) else "exit_time"),
        "failed_runs": len(failures),
    }
    if failures:
        out["last_failure_stderr"] = failures[-1]["stderr"][-800:]
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--bundle", default=str(ROOT / "dist" / "cnnviz" / "cnnviz"),
                   help="frozen executable (skipped if missing)")
    p.add_argument("--python", default=sys.executable, help="interpreter of the project venv")
    p.add_argument("--use-display", action="store_true", help="use $DISPLAY instead of a private Xvfb")
    p.add_argument("--timeout", type=float, default=180.0)
    args = p.parse_args(argv)

    xvfb = None
    if args.use_display and os.environ.get("DISPLAY"):
        display = os.environ["DISPLAY"]
    else:
        xvfb, display = start_xvfb()
    watcher = MapWatcher(display)
    bundle = Path(args.bundle)
    try:
        with tempfile.TemporaryDirectory(prefix="cnnviz-bench-") as tmp:
            tmp_path = Path(tmp)
            for sub in ("home", "data", "runtime"):
                (tmp_path / sub).mkdir(mode=0o700)
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path / "home"), "DISPLAY": display,
                   "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
                   "QT_QPA_PLATFORM": "xcb"}
            py_env = dict(env, PYTHONUNBUFFERED="1", PYQTGRAPH_QT_LIB="PySide6")
            commands = {
                "python": ([args.python, "-c", "pass"], py_env, None),
                "import_torch": ([args.python, "-c", "import torch"], py_env, None),
                "unfrozen": ([args.python, "-m", "cnnviz_desktop", "--self-test"], dict(py_env, PYTHONPATH=str(ROOT)),
                             watcher),
            }
            if bundle.is_file():
                commands["frozen"] = ([str(bundle), "--self-test"], env, watcher)
            results: dict[str, list[dict]] = {name: [] for name in commands}
            for i in range(args.runs + 1):  # run 0 warms the page cache and is discarded
                for name, (cmd, run_env, w) in commands.items():
                    result = timed_run(cmd, run_env, tmp_path, w if w and w.available else None, args.timeout)
                    if i > 0:
                        results[name].append(result)
    finally:
        watcher.close()
        if xvfb:
            xvfb.terminate()
            xvfb.wait()

    torch_s = median([r["exit_s"] for r in results["import_torch"]])
    python_s = median([r["exit_s"] for r in results["python"]])
    unfrozen = summarise(results["unfrozen"])
    frozen = summarise(results["frozen"]) if "frozen" in results else None
    out = {
        "benchmark": "startup",
        "runs": args.runs,
        "python_startup_s": python_s,
        "import_torch_s": torch_s,
        "unfrozen": unfrozen,
        "frozen": frozen,
        "bundle": str(bundle) if frozen else None,
        "ratios": {
            "unfrozen_window_vs_import_torch": ratio(unfrozen["window_visible_s"], torch_s),
            "unfrozen_first_frame_vs_import_torch": ratio(unfrozen["first_frame_s"], torch_s),
            "frozen_window_vs_import_torch": ratio(frozen and frozen["window_visible_s"], torch_s),
            "frozen_first_frame_vs_import_torch": ratio(frozen and frozen["first_frame_s"], torch_s),
            "frozen_vs_unfrozen_first_frame": ratio(frozen and frozen["first_frame_s"], unfrozen["first_frame_s"]),
        },
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(out))
    return 1 if unfrozen["failed_runs"] or (frozen and frozen["failed_runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
