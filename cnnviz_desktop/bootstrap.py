"""One-command set-up (standard library only: it runs before anything is installed).

    python3 -m cnnviz_desktop.bootstrap run  [cnnviz arguments]   install everything, launch the app
    python3 -m cnnviz_desktop.bootstrap test [pytest arguments]   install everything, run all tests headless

Both create (or reuse) a virtual environment in ``.venv`` (override with ``CNNVIZ_VENV``), install
``requirements.txt`` and the package in one pip resolver run (torch pinned to the CPU build), and, when
run as root on Debian, install the system packages Qt and the virtual X server need.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Qt 6's xcb platform plugin and Mesa's software OpenGL.
APT_RUNTIME = [
    "libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
    "libxcb-render-util0", "libxcb-xinerama0", "libxcb-xkb1", "libxcb-shape0", "libxcb-randr0",
    "libegl1", "libgl1", "libgl1-mesa-dri", "libfontconfig1", "libdbus-1-3", "fonts-dejavu-core",
]
# The virtual X server for headless GUI tests, and xdotool for screenshots with input.
APT_TEST = APT_RUNTIME + ["xvfb", "xauth", "xdotool"]


def say(message: str) -> None:
    print(f"[cnnviz bootstrap] {message}", file=sys.stderr, flush=True)


def venv_dir() -> Path:
    return Path(os.environ.get("CNNVIZ_VENV") or ROOT / ".venv")


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def missing_debian_packages(packages: list[str]) -> list[str]:
    if not shutil.which("dpkg-query"):
        return []
    missing = []
    for name in packages:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        if "install ok installed" not in result.stdout:
            missing.append(name)
    return missing


def ensure_debian_packages(packages: list[str]) -> None:
    missing = missing_debian_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("these Debian packages seem to be missing: " + " ".join(missing))
        say("install them with: sudo apt-get install -y " + " ".join(missing))
        return
    say("installing Debian packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    digest.update(str(ROOT).encode())
    return digest.hexdigest()


def ensure_venv() -> Path:
    """Create the venv and install everything in one resolver run, unless already up to date."""
    python = venv_python()
    stamp_file = venv_dir() / ".cnnviz-installed"
    if python.exists() and stamp_file.is_file() and stamp_file.read_text() == _stamp():
        return python
    if not python.exists():
        say(f"creating virtual environment {venv_dir()}")
        venv.EnvBuilder(with_pip=True, clear=False).create(venv_dir())
    say("installing Python packages (torch CPU build, PySide6-Essentials, pyqtgraph, ...)")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-r", str(ROOT / "requirements.txt"), "-e", str(ROOT)],
        check=True,
    )
    stamp_file.write_text(_stamp())
    return python


def gui_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    return env


def run(args: list[str]) -> int:
    ensure_debian_packages(APT_RUNTIME)
    python = ensure_venv()
    return subprocess.call([str(python), "-m", "cnnviz_desktop", *args], env=gui_env())


def test(args: list[str]) -> int:
    ensure_debian_packages(APT_TEST)
    python = ensure_venv()
    env = gui_env()
    # GUI tests need OpenGL, which exists only on xcb under Xvfb (pytest-xvfb starts it), never 'offscreen'.
    env["QT_QPA_PLATFORM"] = "xcb"
    shared_mnist = ROOT.parent / "shared" / "data" / "mnist"
    if shared_mnist.is_dir():
        env.setdefault("CNNVIZ_MNIST_DIR", str(shared_mnist))
    return subprocess.call([str(python), "-m", "pytest", *args], cwd=ROOT, env=env)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": run, "test": test}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](argv[1:])
    except subprocess.CalledProcessError as exc:
        say(f"set-up step failed (exit {exc.returncode}): {' '.join(map(str, exc.cmd))}")
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
