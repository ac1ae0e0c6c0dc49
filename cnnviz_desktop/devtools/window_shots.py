"""Regenerate the README's window screenshots with the app's own --self-test (it draws a built-in 7
through the mouse path and grabs the window once its analysed frame is on screen).

    python -m cnnviz_desktop.devtools.window_shots [OUT_DIR] [--only NAME ...]   (default: resources/screenshots)

Each shot runs on a private virtual screen of its size (xvfb-run with GLX) with fresh settings:
window_1366x768.png, window_1920x1080.png and window_presentation_1024x768.png, and the explanation views that
update per stroke (feature maps, filters, saliency) opened beside the drawn 7 at 1366x768 (the settings say which
views are open, as a user's remembered window would).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHOTS = (
    ("window_1366x768.png", (1366, 768), [], {}),
    ("window_1920x1080.png", (1920, 1080), [], {}),
    ("window_presentation_1024x768.png", (1024, 768), ["--presentation"], {}),
    ("view_feature_maps.png", (1366, 768), [], {"feature_maps": True}),
    ("view_filters.png", (1366, 768), [], {"filters": True}),
    ("view_saliency.png", (1366, 768), [], {"saliency": True}),
)


def open_views(data: str, docks: dict) -> None:
    """Fresh settings in ``data`` that open ``docks`` (view id -> shown), as the window remembers them."""
    from PySide6.QtCore import QSettings

    settings = QSettings(str(Path(data) / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("window/docks", json.dumps(docks))
    settings.sync()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = set(argv[argv.index("--only") + 1:]) if "--only" in argv else None
    argv = argv[:argv.index("--only")] if "--only" in argv else argv
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "resources" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, (w, h), extra, docks in SHOTS:
        if only is not None and name not in only:
            continue
        with tempfile.TemporaryDirectory() as data:
            if docks:
                open_views(data, docks)
            env = dict(os.environ, CNNVIZ_USER_DATA=data)
            env.pop("DISPLAY", None)
            cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {w}x{h}x24 +extension GLX +render -nolisten tcp",
                   sys.executable, "-m", "cnnviz_desktop", "--self-test", "--screenshot", str(out / name), *extra]
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        if result.returncode:
            failures += 1
            print(f"{name}: failed: {result.stderr.strip()[-400:]}", file=sys.stderr)
            continue
        report = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{out / name}: {report['layout']['window']} scene share {report['layout']['scene_share']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
