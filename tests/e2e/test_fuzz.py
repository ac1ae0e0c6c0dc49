"""Seeded fuzz test of the real window: random drags on the grid and on the 3D view, the app's shortcut
keys, wheel turns over the 3D view, window resizes and model switches, for CNNVIZ_FUZZ_SECONDS (default 60).

Checks: no exception anywhere (pytest-qt fails on exceptions in Qt virtual methods; sys.excepthook is
wrapped as well), no modal dialog opened by any of these inputs, the window still visible and the event
loop alive, resident memory grown by less than 10 % after a warm-up phase, and the last stroke's analysis
shown at the end. Inputs go through QTest/qtbot (and QWheelEvent) at positions resolved from the widgets.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from .test_main_window import settle

pytestmark = [pytest.mark.slow, pytest.mark.gl]

SEED = int(os.environ.get("CNNVIZ_FUZZ_SEED", "20261201"))
NO = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
K = Qt.Key
# The app's shortcuts, minus the ones that open a file dialog or quit (Ctrl+O, Ctrl+S, Ctrl+Q) and Ctrl+M,
# which is its own action (model switch) below.
KEYS = ([(K.Key_Delete, NO), (K.Key_Backspace, NO), (K.Key_Z, CTRL), (K.Key_Z, CTRL | SHIFT), (K.Key_Y, CTRL),
         (K.Key_BracketLeft, NO), (K.Key_BracketRight, NO), (K.Key_H, NO), (K.Key_B, NO), (K.Key_C, NO),
         (K.Key_C, SHIFT), (K.Key_M, NO), (K.Key_P, NO), (K.Key_F11, NO), (K.Key_R, NO), (K.Key_F5, NO),
         (K.Key_F6, NO), (K.Key_F7, NO), (K.Key_A, NO), (K.Key_L, NO), (K.Key_F1, NO), (K.Key_F1, SHIFT),
         (K.Key_Up, CTRL), (K.Key_Down, CTRL)]
        + [(getattr(K, f"Key_{d}"), NO) for d in range(10)]
        + [(getattr(K, f"Key_{d}"), CTRL) for d in range(10)])
BUTTONS = (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton)


def rss_kib() -> int:
    """Resident set size of this process (VmRSS, KiB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def quiet_rss(qtbot, window) -> int:
    """RSS (KiB) in a reproducible state: normal 1280x800 window, last analysis shown, garbage collected,
    freed heap returned to the system (malloc_trim, so glibc's caching of freed blocks is not counted as
    growth); median of three samples."""
    import ctypes

    if window.presentation:
        qtbot.keyClick(window, K.Key_F11)
    window.resize(1280, 800)
    qtbot.wait(300)
    settle(qtbot, window)
    qtbot.wait(300)
    settle(qtbot, window)
    samples = []
    for _ in range(3):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
        samples.append(rss_kib())
        qtbot.wait(200)
    return sorted(samples)[1]


class Fuzzer:
    def __init__(self, owner, qtbot, rng: random.Random):
        self.owner, self.window, self.qtbot, self.rng = owner, owner.window, qtbot, rng
        self.counts: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def pause(self) -> None:
        """Let the event loop run (analyses, frames) for a few ms, as between a user's actions."""
        self.qtbot.wait(self.rng.choice((0, 1, 5, 15, 40)))

    def drag(self, widget, points: list[QPoint], button: Qt.MouseButton) -> None:
        qtbot = self.qtbot
        qtbot.mousePress(widget, button, NO, points[0])
        for p in points[1:]:
            qtbot.mouseMove(widget, p)
            if self.rng.random() < 0.3:
                QApplication.processEvents()
        qtbot.mouseRelease(widget, button, NO, points[-1])

    def grid_drag(self) -> None:
        canvas = self.window.canvas
        rng = self.rng
        n = rng.randint(2, 12)
        cells = [(rng.uniform(-2, 30), rng.uniform(-2, 30))]  # sometimes starting or leaving off the grid
        for _ in range(n - 1):
            x, y = cells[-1]
            cells.append((x + rng.uniform(-5, 5), y + rng.uniform(-5, 5)))
        points = [canvas.cell_centre(x, y).toPoint() for x, y in cells]
        button = Qt.MouseButton.RightButton if rng.random() < 0.2 else Qt.MouseButton.LeftButton
        self.drag(canvas, points, button)
        self._count("grid_drag")

    def view(self):
        scene = self.window.scene
        view = getattr(scene, "view", None) if scene is not None else None
        return view if view is not None and view.isVisible() and view.width() > 10 else None

    def view_drag(self) -> None:
        view = self.view()
        if view is None:
            return
        rng = self.rng
        w, h = view.width(), view.height()
        points = [QPoint(rng.randrange(w), rng.randrange(h)) for _ in range(rng.randint(1, 8))]
        self.drag(view, points, rng.choice(BUTTONS))
        self._count("view_drag")

    def wheel(self) -> None:
        view = self.view()
        if view is None:
            return
        pos = QPointF(self.rng.randrange(view.width()), self.rng.randrange(view.height()))
        delta = QPoint(0, self.rng.choice((-240, -120, 120, 240)))
        event = QWheelEvent(pos, QPointF(view.mapToGlobal(pos)), QPoint(), delta, Qt.MouseButton.NoButton, NO,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(view, event)
        self._count("wheel")

    def key(self) -> None:
        key, modifier = self.rng.choice(KEYS)
        target = self.rng.choice([self.window, self.window.canvas] + ([self.view()] if self.view() else []))
        self.qtbot.keyClick(target, key, modifier)
        self._count("key")

    def resize(self) -> None:
        window = self.window
        if window.presentation:  # a full-screen window is not resized by hand: leave presentation first
            self.qtbot.keyClick(window, K.Key_F11)
        window.resize(self.rng.randint(800, 1600), self.rng.randint(600, 1000))
        self._count("resize")

    def next_model(self) -> None:
        self.qtbot.keyClick(self.window, K.Key_M, CTRL)
        self._count("model_switch")

    def step(self) -> None:
        action = self.rng.choices(
            (self.grid_drag, self.view_drag, self.wheel, self.key, self.resize, self.next_model),
            weights=(40, 15, 10, 25, 5, 3))[0]
        action()
        self.pause()

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step()


def test_fuzz_real_window(start_app, qtbot):
    seconds = float(os.environ.get("CNNVIZ_FUZZ_SECONDS", "60"))
    rng = random.Random(SEED)
    errors: list[str] = []
    dialogs: list[str] = []
    previous_hook = sys.excepthook

    def hook(kind, value, tb):
        errors.append(f"{kind.__name__}: {value}")
        previous_hook(kind, value, tb)

    sys.excepthook = hook

    def close_modal():
        # A modal dialog's exec() would block the fuzzer inside qtbot.keyClick: record it and close it.
        modal = QApplication.activeModalWidget()
        if modal is not None:
            dialogs.append(modal.windowTitle() or type(modal).__name__)
            modal.close()

    watchdog = QTimer(interval=200, timeout=close_modal)
    watchdog.start()
    try:
        owner = start_app()
        window = owner.window
        fuzz = Fuzzer(owner, qtbot, rng)
        # Warm-up: a few model switches (each model's geometry, torch's allocator) and a short fuzz phase.
        for _ in range(4):
            fuzz.next_model()
            settle(qtbot, window)
            qtbot.wait(200)
        fuzz.run(min(10.0, seconds / 4))
        rss_before = quiet_rss(qtbot, window)

        fuzz.run(seconds)

        # The end: back to a normal window, the loads finished, one last stroke; its analysis is shown.
        rss_after = quiet_rss(qtbot, window)
        window.clear_canvas()
        canvas = window.canvas
        fuzz.drag(canvas, [canvas.cell_centre(14.0, y).toPoint() for y in (4.0, 10.0, 16.0, 24.0)],
                  Qt.MouseButton.LeftButton)
        assert not canvas.model.is_empty
        snap = settle(qtbot, window)
        assert snap.request_id == window.last_request_id and not snap.empty
        assert snap.predicted is not None
        alive = []
        QTimer.singleShot(0, lambda: alive.append(True))
        qtbot.waitUntil(lambda: bool(alive), timeout=5_000)
        assert window.isVisible()
    finally:
        watchdog.stop()
        sys.excepthook = previous_hook
    print(f"\nfuzz: {seconds:.0f} s, seed {SEED}, actions {fuzz.counts}, "
          f"RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB ({(rss_after / rss_before - 1) * 100:+.1f} %)")
    assert not errors, errors
    assert not dialogs, f"inputs opened modal dialogs: {dialogs}"
    assert sum(fuzz.counts.values()) > 0
    assert rss_after < 1.10 * rss_before, (rss_before, rss_after)
