"""Shared pieces of the GL benchmarks (bench_scene, bench_surfaces): a virtual X server, waiting for a frame."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time


def reexec_under_xvfb(name: str) -> None:
    """Without a DISPLAY, run this script again under ``xvfb-run`` (GLX on) and exit with its code."""
    if os.environ.get("DISPLAY") or os.environ.get("CNNVIZ_BENCH_NO_XVFB"):
        return
    if shutil.which("xvfb-run") is None:
        sys.exit(f"{name}: no DISPLAY and no xvfb-run; install Debian's xvfb or run inside an X session")
    env = dict(os.environ, CNNVIZ_BENCH_NO_XVFB="1")
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24 +extension GLX", sys.executable, *sys.argv]
    sys.exit(subprocess.call(cmd, env=env))


def frame_waiter(app):
    """wait_frame(view): request a repaint of a GLViewWidget and process events until it swapped (10 s at most)."""

    def wait_frame(view) -> None:
        done = []
        view.frameSwapped.connect(lambda: done.append(1))
        view.update()
        deadline = time.perf_counter() + 10
        while not done and time.perf_counter() < deadline:
            app.processEvents()
        view.frameSwapped.disconnect()

    return wait_frame


def open_window(app, model: str, size: tuple[int, int] = (1280, 720), timeout_s: float = 120.0):
    """The real app's window on ``model`` with throw-away settings, once its first snapshot arrived.

    Returns the app.Application (``.window`` is the main window); the caller shuts it down.
    """
    import tempfile

    from PySide6.QtCore import QSettings

    from ..__main__ import parser as app_parser
    from ..app import Application

    settings = QSettings(os.path.join(tempfile.mkdtemp(), "s.ini"), QSettings.Format.IniFormat)
    owner = Application(app_parser().parse_args(["--model", model]), app, settings)
    owner.window.resize(*size)
    owner.start()
    deadline = time.monotonic() + timeout_s
    while owner.window.snapshot is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    return owner
