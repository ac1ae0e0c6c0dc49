"""Regenerate the README's window screenshots with the app's own --self-test (it draws a built-in 7
through the mouse path and grabs the window once its analysed frame is on screen).

    python -m cnnviz_desktop.devtools.window_shots [OUT_DIR]   (default: resources/screenshots)

Each shot runs on a private virtual screen of its size (xvfb-run with GLX) with fresh settings:
window_1366x768.png, window_1920x1080.png and window_presentation_1024x768.png.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHOTS = (
    ("window_1366x768.png", (1366, 768), []),
    ("window_1920x1080.png", (1920, 1080), []),
    ("window_presentation_1024x768.png", (1024, 768), ["--presentation"]),
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "resources" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, (w, h), extra in SHOTS:
        with tempfile.TemporaryDirectory() as data:
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
