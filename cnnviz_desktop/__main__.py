"""Entry point of the ``cnnviz`` GUI (also ``python -m cnnviz_desktop``).

Environment variables that select Qt and OpenGL back-ends must be set before PySide6, pyqtgraph or
PyOpenGL are imported, so this module parses arguments and sets them first, then hands over to app.py.
"""

from __future__ import annotations

import argparse
import math
import os
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnviz", description="Draw a digit and watch a small CNN read it, live, in 3D.")
    p.add_argument("--model", default=None, metavar="NAME|PATH",
                   help="shipped model (tiny, wide) or a .safetensors file (default: the last one used, else tiny)")
    p.add_argument("--presentation", action="store_true", help="start full screen with large, high-contrast text")
    p.add_argument("--self-test", action="store_true",
                   help="open the window, draw a built-in digit, wait for its analysis, print one JSON line, exit")
    p.add_argument("--screenshot", metavar="PATH", help="with --self-test: save a screenshot of the window")
    p.add_argument("--no-gl", action="store_true", help="do not create the 3D view (for broken OpenGL drivers)")
    p.add_argument("--replay", metavar="FILE",
                   help="open the window, draw every drawing of a drawings JSON file through the mouse input path, "
                        "wait for each analysed frame, print one line per drawing (label, prediction), exit")
    p.add_argument("--replay-speed", type=replay_speed, default=math.inf, metavar="N|max",
                   help="with --replay: 1 draws at the strokes' original pace, 2 twice as fast, ...; default max: "
                        "no waiting, a few input events per event-loop turn, since a script need not be real-time")
    p.add_argument("--json", action="store_true",
                   help="with --replay: one JSON object per line (index, label, predicted, probabilities)")
    p.add_argument("--version", action="version", version=_version())
    return p


def replay_speed(text: str) -> float:
    """--replay-speed: 'max' (math.inf) or a positive number (1 = the original pace)."""
    if text.strip().lower() == "max":
        return math.inf
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (speed > 0 and math.isfinite(speed)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed: give a positive number (1 = original pace, "
                                         "2 = twice as fast) or 'max'")
    return speed


def read_replay_file(args: argparse.Namespace) -> int:
    """Read and check the --replay file BEFORE any window opens: its drawings go to ``args.replay_drawings``.
    Returns 0, or 2 after one 'error: ...' line on stderr for a missing or malformed file."""
    from .core.drawings import read_drawings
    from .core.errors import CnnvizError

    try:
        drawings = read_drawings(args.replay)
        if not drawings:
            raise CnnvizError(f"{args.replay} holds no drawings: nothing to replay")
    except CnnvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.replay_drawings = drawings
    return 0


def _version() -> str:
    from . import __version__

    return f"cnnviz {__version__}"


def configure_environment() -> None:
    """Pick Qt/OpenGL back-ends before any Qt or GL import."""
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    on_x11 = platform.startswith("xcb") or (not platform and os.environ.get("DISPLAY")
                                            and not os.environ.get("WAYLAND_DISPLAY"))
    if on_x11:
        # PyOpenGL would otherwise guess EGL on some sessions and fail to find Qt's GLX context.
        os.environ.setdefault("PYOPENGL_PLATFORM", "glx")


def configure_qt_attributes() -> None:
    """Qt application attributes to set before the QApplication exists (after configure_environment).

    A drawing app needs every pointer position the windowing system delivered, so Qt's merging of queued
    mouse and tablet moves is turned off here, and again once the QApplication exists (app.run), because
    the X11 platform plugin switches it back on while the application is built.
    """
    from .ui.canvas import keep_every_pointer_event

    keep_every_pointer_event()


def prewarm_torch() -> None:
    """Start importing torch (about 2-3 s) on a background thread now, while Qt builds the window on this
    one; the model loader then finds it (nearly) ready. Import errors surface later, in the loader."""
    import threading

    def work() -> None:
        try:
            from .core import weights  # noqa: F401  (imports torch and safetensors)
        except Exception:  # reported properly when the loader imports it again
            pass

    threading.Thread(target=work, name="cnnviz-torch-prewarm", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.screenshot and not args.self_test:
        parser().error("--screenshot needs --self-test")
    if args.replay and args.self_test:
        parser().error("--replay and --self-test are two different runs: choose one")
    if (args.json or args.replay_speed != math.inf) and not args.replay:
        parser().error("--json and --replay-speed go with --replay FILE")
    if args.replay and read_replay_file(args):
        return 2
    configure_environment()
    configure_qt_attributes()
    prewarm_torch()
    from .app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
