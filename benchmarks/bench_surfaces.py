"""Cost of the activation-surface mode against the cube mode, same run, same panel. Prints one JSON object.

    python benchmarks/bench_surfaces.py [--frames N] [--blocks B] [--size 1280x720] [--models tiny,wide]
        [--glmeshitem]

Needs an X server with OpenGL; without DISPLAY it re-runs itself under ``xvfb-run`` (Mesa llvmpipe, as the
tests use). Per model, modes alternate block by block (cubes, surfaces, cubes, ...: --blocks of --frames
strokes) so the drift of a shared machine hits both alike; each figure is the median over every stroke of
that mode:
- apply_ms: CPU time of ScenePanel.apply (recolour; in surface mode also heights and colours per vertex);
- frame_ms: apply + update() + wait for frameSwapped (one stroke as the user sees it);
- upload_kb: bytes uploaded to the GPU in a stroke's frame (cubes + lines + filter cells + surfaces);
- surface_vertices / surface_faces: the surfaces' mesh (faces uploaded once per model, not per stroke);
- ratio_apply, ratio_frame: surface mode / cube mode.
Snapshots come from the analysis engine on three built-in digits (alternated so every frame changes).

--glmeshitem adds, per model, the choice of GL item measured alone in a bare GLViewWidget (the surfaces only,
blocks alternated): SurfaceMesh (heights + colours uploaded per stroke) against pyqtgraph's GLMeshItem
(unshaded, a new MeshData with positions, faces and float colours per stroke): set_ms (CPU per stroke) and
frame_ms, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=15, help="strokes per block")
    parser.add_argument("--blocks", type=int, default=8, help="alternating blocks (half of them per mode)")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--models", default="tiny,wide")
    parser.add_argument("--glmeshitem", action="store_true", help="also compare with pyqtgraph's GLMeshItem")
    args = parser.parse_args()
    from cnnviz_desktop.devtools.gl_bench import frame_waiter, reexec_under_xvfb

    reexec_under_xvfb("bench_surfaces")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    os.environ.setdefault("PYOPENGL_PLATFORM", "glx")

    from PySide6 import QtWidgets

    from cnnviz_desktop.core import weights
    from cnnviz_desktop.devtools.scene_shot import snapshot_for
    from cnnviz_desktop.ui.scene import ScenePanel

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    width, height = (int(v) for v in args.size.lower().split("x"))

    wait_frame = frame_waiter(app)

    panel = ScenePanel()
    if not panel.has_gl:
        sys.exit(f"bench_surfaces: no OpenGL: {panel.fallback_reason}")
    panel.resize(width, height)
    panel.show()
    wait_frame(panel.view)
    from OpenGL import GL

    panel.view.makeCurrent()
    result: dict = {"size": args.size, "frames": args.frames,
                    "renderer": GL.glGetString(GL.GL_RENDERER).decode()}
    panel.view.doneCurrent()

    def uploaded() -> int:
        total = panel.cubes.uploaded_bytes + panel.lines.uploaded_bytes + panel.filter_cells.uploaded_bytes
        if not panel.surface_mode:  # hidden items do not paint: their counters are stale
            return total
        return total + sum(item.uploaded_bytes for item in panel.surface_items.values())

    for name in args.models.split(","):
        loaded = weights.load(name)
        panel.set_surface_mode(False)
        panel.set_model(loaded)
        snaps = [snapshot_for(loaded, d) for d in ("seven", "one", "zero")]
        figures = {m: {"apply": [], "frame": [], "upload": []} for m in ("cubes", "surfaces")}
        for block in range(max(2, args.blocks)):
            mode = ("cubes", "surfaces")[block % 2]
            panel.set_surface_mode(mode == "surfaces")
            for i in range(args.frames + 3):
                t0 = time.perf_counter()
                panel.apply(snaps[i % 3])
                t1 = time.perf_counter()
                wait_frame(panel.view)
                t2 = time.perf_counter()
                if i >= 3:  # warm-up: first uploads, shader compiles
                    figures[mode]["apply"].append((t1 - t0) * 1e3)
                    figures[mode]["frame"].append((t2 - t0) * 1e3)
                    figures[mode]["upload"].append(uploaded())
        med = {m: {k: statistics.median(v) for k, v in f.items()} for m, f in figures.items()}
        grids = [panel.surface_grid(n) for n in panel.surface_items]
        result[name] = {
            "cubes_apply_ms": round(med["cubes"]["apply"], 3),
            "surfaces_apply_ms": round(med["surfaces"]["apply"], 3),
            "cubes_frame_ms": round(med["cubes"]["frame"], 3),
            "surfaces_frame_ms": round(med["surfaces"]["frame"], 3),
            "cubes_upload_kb": round(med["cubes"]["upload"] / 1024, 1),
            "surfaces_upload_kb": round(med["surfaces"]["upload"] / 1024, 1),
            "surface_vertices": sum(g.vertex_count for g in grids),
            "surface_faces": sum(g.face_count for g in grids),
            "surface_geometry_builds": panel.surface_generation,
            "ratio_apply": round(med["surfaces"]["apply"] / med["cubes"]["apply"], 2),
            "ratio_frame": round(med["surfaces"]["frame"] / med["cubes"]["frame"], 2),
        }
    panel.close()
    if args.glmeshitem:
        for name in args.models.split(","):
            result[name]["item_choice"] = compare_items(app, name, width, height, args.frames, wait_frame)
    print(json.dumps(result))


def compare_items(app, name: str, width: int, height: int, frames: int, wait_frame) -> dict:
    """SurfaceMesh vs pyqtgraph's GLMeshItem drawing the same surfaces, in the same view (see the docstring)."""
    import numpy as np
    import pyqtgraph.opengl as gl
    from PySide6 import QtGui

    from cnnviz_desktop.core import surfaces, weights
    from cnnviz_desktop.core.layout import layout
    from cnnviz_desktop.devtools.scene_shot import snapshot_for
    from cnnviz_desktop.ui.gl import SurfaceMesh

    loaded = weights.load(name)
    lay = layout(loaded.arch)
    grids = surfaces.surface_grids(lay)
    snaps = [snapshot_for(loaded, d) for d in ("seven", "one", "zero")]
    view = gl.GLViewWidget()
    view.resize(width, height)
    view.show()
    view.setCameraPosition(pos=QtGui.QVector3D(*lay.center), azimuth=-52, elevation=24,
                           distance=float(np.ptp(lay.centers, axis=0).max()) * 2.2)
    ours = {n: SurfaceMesh() for n in grids}
    theirs = {n: gl.GLMeshItem(smooth=False, shader=None, computeNormals=False) for n in grids}
    for n, g in grids.items():
        ours[n].set_grid(g.base, g.faces, g.direction)
        theirs[n].setMeshData(meshdata=gl.MeshData(vertexes=g.base.copy(), faces=g.faces.astype(np.int32)))
        view.addItem(ours[n])
        view.addItem(theirs[n])
    times: dict[str, dict[str, list[float]]] = {k: {"set": [], "frame": []} for k in ("surfacemesh", "glmeshitem")}
    for block in range(6):
        kind = ("surfacemesh", "glmeshitem")[block % 2]
        for n in grids:
            ours[n].setVisible(kind == "surfacemesh")
            theirs[n].setVisible(kind == "glmeshitem")
        for i in range(frames + 3):
            snap = snaps[i % 3]
            t0 = time.perf_counter()
            for n, g in grids.items():
                act = snap.activations[n]
                heights, rgba = surfaces.surface_heights(g, act), surfaces.surface_colors(g, act)
                if kind == "surfacemesh":
                    ours[n].set_surface(heights, rgba)
                else:
                    theirs[n].setMeshData(meshdata=gl.MeshData(
                        vertexes=surfaces.vertex_positions(g, heights), faces=g.faces.astype(np.int32),
                        vertexColors=rgba.astype(np.float32) / 255.0))
            t1 = time.perf_counter()
            wait_frame(view)
            if i >= 3:
                times[kind]["set"].append((t1 - t0) * 1e3)
                times[kind]["frame"].append((time.perf_counter() - t0) * 1e3)
    view.close()
    med = {k: {m: statistics.median(v) for m, v in t.items()} for k, t in times.items()}
    return {
        "surfacemesh_set_ms": round(med["surfacemesh"]["set"], 3),
        "glmeshitem_set_ms": round(med["glmeshitem"]["set"], 3),
        "surfacemesh_frame_ms": round(med["surfacemesh"]["frame"], 3),
        "glmeshitem_frame_ms": round(med["glmeshitem"]["frame"], 3),
        "ratio_frame_glmeshitem": round(med["glmeshitem"]["frame"] / med["surfacemesh"]["frame"], 2),
    }


if __name__ == "__main__":
    main()
