"""Render the 3D scene of a shipped (or saved) model with a drawn digit and save a PNG.

    python -m cnnviz_desktop.devtools.scene_shot --model wide OUT.png [--digit seven] [--size 1600x1000]
        [--view default|front|side|top] [--connections significant|all|none] [--palette default|colorblind]
        [--pick conv2:0,5,5] [--presentation]

Needs an X server with OpenGL (a desktop session, or Xvfb with GLX: ``xvfb-run -a -s "-screen 0
1920x1080x24 +extension GLX" python -m ...``); sets QT_QPA_PLATFORM=xcb and PYOPENGL_PLATFORM=glx when
unset. The image is the GL framebuffer (grabFramebuffer), so it holds exactly what the scene draws.
"""

from __future__ import annotations

import argparse
import os
import sys


def _env() -> None:
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    os.environ.setdefault("PYOPENGL_PLATFORM", "glx")


def snapshot_for(loaded, digit: str = "seven"):
    """An analysis Snapshot of a built-in digit drawn on a fresh canvas."""
    from ..core.analysis import AnalysisRequest, Analyzer
    from ..core.canvas import CanvasModel, builtin_digit

    canvas = CanvasModel()
    for stroke in builtin_digit(digit):
        canvas.begin_stroke(*stroke[0])
        for x, y in stroke[1:]:
            canvas.extend_stroke(x, y)
        canvas.end_stroke()
    return Analyzer(loaded).analyse(AnalysisRequest(1, canvas.pixels.copy()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnviz_desktop.devtools.scene_shot",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("out", help="PNG file to write")
    parser.add_argument("--model", default="tiny", help="shipped model name or a .safetensors path")
    parser.add_argument("--digit", default="seven", choices=("seven", "one", "zero"))
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--view", default="default", choices=("default", "front", "side", "top"))
    parser.add_argument("--connections", default="significant", choices=("significant", "all", "none"))
    parser.add_argument("--palette", default="default", choices=("default", "colorblind"))
    parser.add_argument("--pick", default=None, help="layer:i,j,k of a neuron to pick, e.g. dense1:3")
    parser.add_argument("--presentation", action="store_true")
    args = parser.parse_args(argv)
    _env()

    from PySide6 import QtWidgets

    from ..core import weights
    from ..ui.scene import ScenePanel

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    width, height = (int(v) for v in args.size.lower().split("x"))
    panel = ScenePanel()
    if not panel.has_gl:
        print(f"scene_shot: no OpenGL: {panel.fallback_reason}", file=sys.stderr)
        return 2
    panel.resize(width, height)
    panel.show()
    app.processEvents()
    loaded = weights.load(args.model)
    panel.set_model(loaded)
    panel.set_palette(args.palette)
    panel.set_connection_mode(args.connections)
    panel.set_presentation(args.presentation)
    panel.apply(snapshot_for(loaded, args.digit))
    panel.preset_view(args.view)
    if args.pick:
        layer, _, idx = args.pick.partition(":")
        panel.select_neuron(layer, tuple(int(i) for i in idx.split(",")) if idx else (0,))
    for _ in range(3):
        app.processEvents()
    image = panel.view.grabFramebuffer()
    if not image.save(args.out):
        print(f"scene_shot: could not write {args.out}", file=sys.stderr)
        return 1
    labels = panel.label_rects()
    print(f"{args.out}: {args.model}, {panel.status_text}; {len(labels)} labels drawn")
    panel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
