"""Cost of the 3D scene per stroke: apply a snapshot, then render a frame. Prints one JSON object.

    python benchmarks/bench_scene.py [--frames N] [--size 1280x720] [--models tiny,wide,big,gapfc]

Needs an X server with OpenGL. Without DISPLAY the script re-runs itself under
``xvfb-run -a -s "-screen 0 1280x720x24 +extension GLX"`` (Debian's xvfb package), the setup the
tests use (Mesa llvmpipe, software rendering).

Measured in one run, each as the median over --frames frames, the window at --size:
- empty_frame_ms: an empty pyqtgraph GLViewWidget, update() until frameSwapped (the baseline),
  measured around every block below (that block's ratios use its own baseline) and overall.
- per model (tiny, wide, and 'big': the scale target of issue 14, a random-weight network of the family
  with conv (32, 64) and dense (128,): 37,306 neurons, 2,659,072 connections; any ``name=C1/C2:D1``
  spec such as ``huge=48/64:256`` adds another) and connection mode ('significant' default, 'all'):
  apply_ms: CPU time of ScenePanel.apply (recolour; no GL work happens there);
  frame_ms: apply + update() + wait for frameSwapped (the user-visible cost of one stroke);
  redraw_ms: a frame with nothing changed (an expose, a hover);
  orbit_ms: a frame after the camera orbited 0.35 degrees (auto-rotate, a drag): in 'all' mode this
    is the one frame that draws every grey line again (a stroke reuses them, see LineBatch);
  upload_kb: bytes uploaded to the GPU in the stroke's frame;
  lines_drawn: significant lines drawn (the per-layer budget, line_budget_per_layer, follows the view's
    diagonal: 600 at 1600x1000, 500 at 1366x768) plus, in 'all' mode, every other edge;
  label_place_ms: CPU time of one label placement (project the anchors, place without collisions;
    a frame with an unchanged camera reuses the last placement);
  ratio_frame: frame_ms / empty_frame_ms, ratio_redraw: redraw_ms / empty_frame_ms, ratio_frame_min: the
  fastest stroke frame / the fastest empty frame of the block;
  neurons, cubes (fewer when a layer is drawn aggregated), aggregated_layers, set_model_ms (geometry
  build + first frame, once per model), set_model_rss_mb (resident memory it added; the first model
  also pays for the GL driver's buffers, a cached layout costs nothing the second time).
Snapshots come from the analysis engine on three built-in digits (alternated so every frame changes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def _rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


def _model(spec: str, weights):
    """One --models entry as a weights.LoadedModel (cnnviz_desktop.devtools.bench_models)."""
    from cnnviz_desktop.devtools.bench_models import load_model

    return load_model(spec)


def main() -> None:
    from cnnviz_desktop.devtools.bench_models import HELP

    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--models", default="tiny,wide,big,gapfc", help=HELP)
    args = parser.parse_args()
    from cnnviz_desktop.devtools.gl_bench import frame_waiter, reexec_under_xvfb

    reexec_under_xvfb("bench_scene")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    os.environ.setdefault("PYOPENGL_PLATFORM", "glx")

    from PySide6 import QtWidgets
    import pyqtgraph.opengl as gl

    from cnnviz_desktop.core import weights
    from cnnviz_desktop.devtools.scene_shot import snapshot_for
    from cnnviz_desktop.ui.scene import ScenePanel

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    width, height = (int(v) for v in args.size.lower().split("x"))

    wait_frame = frame_waiter(app)

    def timed_frames(view, before=None, frames: int | None = None, warmup: int = 5) -> list[float]:
        out = []
        for i in range((frames or args.frames) + warmup):
            start = time.perf_counter()
            if before is not None:
                before(i)
            wait_frame(view)
            if i >= warmup:  # warm-up: first uploads, shader compiles
                out.append((time.perf_counter() - start) * 1e3)
        return out

    empty = gl.GLViewWidget()
    empty.resize(width, height)
    empty_runs: list[float] = []

    def empty_frames() -> list[float]:
        """Frames of the empty view, shown alone (the panel hidden) for a moment."""
        panel.hide()
        empty.show()
        wait_frame(empty)
        out = timed_frames(empty, frames=max(5, args.frames // 2), warmup=3)
        empty.hide()
        panel.show()
        wait_frame(panel.view)
        empty_runs.extend(out)
        return out

    result: dict = {"size": args.size, "frames": args.frames, "renderer": None, "empty_frame_ms": None}
    panel = ScenePanel()
    if not panel.has_gl:
        sys.exit(f"bench_scene: no OpenGL: {panel.fallback_reason}")
    panel.resize(width, height)
    panel.show()
    wait_frame(panel.view)
    from OpenGL import GL

    panel.view.makeCurrent()
    result["renderer"] = GL.glGetString(GL.GL_RENDERER).decode()
    panel.view.doneCurrent()

    for name in args.models.split(","):
        loaded = _model(name, weights)
        name = loaded.arch.name
        panel.set_connection_mode("significant")  # the app's default: the model switch, not 'all' lines
        rss_before = _rss_mb()
        t0 = time.perf_counter()
        panel.set_model(loaded)
        wait_frame(panel.view)  # the first upload of the geometry
        set_model_ms = (time.perf_counter() - t0) * 1e3
        rss_mb = _rss_mb() - rss_before
        snaps = [snapshot_for(loaded, d) for d in ("seven", "one", "zero")]
        for mode in ("significant", "all"):
            panel.set_connection_mode(mode)
            apply_ms: list[float] = []

            def do_apply(i: int) -> None:
                t0 = time.perf_counter()
                panel.apply(snaps[i % 3])
                apply_ms.append((time.perf_counter() - t0) * 1e3)

            # The empty baseline is measured right before and after each block (the load of a shared
            # machine drifts; one baseline at the start made the ratios swing by +-40%).
            empty_block = empty_frames()
            frame = timed_frames(panel.view, do_apply)
            upload = panel.cubes.uploaded_bytes + panel.lines.uploaded_bytes + panel.filter_cells.uploaded_bytes
            redraw = timed_frames(panel.view)
            orbit = timed_frames(panel.view, lambda i: panel.view.orbit(0.35, 0.0), max(3, args.frames // 5), 1)
            place_ms = []
            mvp, vw, vh = panel._mvp()
            for _ in range(20):
                panel.overlay._placement_key = None  # force a fresh placement
                t0 = time.perf_counter()
                panel.overlay.place(mvp, vw, vh, panel.view.devicePixelRatioF())
                place_ms.append((time.perf_counter() - t0) * 1e3)
            panel.reset_view()
            empty_block += empty_frames()
            empty_ms = statistics.median(empty_block)
            med = statistics.median(frame)
            red = statistics.median(redraw)
            result[f"{name}_{mode}"] = {
                "cubes": panel.layout_.cube_count,
                "neurons": panel.layout_.neuron_count,
                "aggregated_layers": sorted(panel.layout_.aggregation),
                "set_model_ms": round(set_model_ms, 1),
                "set_model_rss_mb": round(rss_mb, 1),
                "edges": panel.layout_.edge_count,
                "lines_drawn": panel.lines.segment_count("shown") + panel.lines.segment_count("base"),
                "line_budget_per_layer": panel.line_budget,
                "apply_ms": round(statistics.median(apply_ms[5:]), 3),
                "frame_ms": round(med, 3),
                "redraw_ms": round(red, 3),
                "orbit_ms": round(statistics.median(orbit), 3),
                "upload_kb": round(upload / 1024, 1),
                "label_place_ms": round(statistics.median(place_ms), 3),
                "empty_frame_ms": round(empty_ms, 3),
                "ratio_frame": round(med / empty_ms, 2),
                "ratio_redraw": round(red / empty_ms, 2),
                # The fastest frame over the fastest empty frame of the block: on a shared, loaded
                # machine the least disturbed pair, steadier than the medians' ratio.
                "ratio_frame_min": round(min(frame) / min(empty_block), 2),
            }
    panel.close()
    empty.close()
    result["empty_frame_ms"] = round(statistics.median(empty_runs), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
