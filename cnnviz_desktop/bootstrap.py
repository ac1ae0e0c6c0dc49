"""One-command set-up (standard library only: it runs before anything is installed).

    python3 -m cnnviz_desktop.bootstrap run  [cnnviz arguments]   install everything, launch the app
    python3 -m cnnviz_desktop.bootstrap test [pytest arguments]   install everything, run all tests headless
    python3 -m cnnviz_desktop.bootstrap build [--skip-build]     build dist/cnnviz/ (PyInstaller), smoke-test it

Both create (or reuse) a virtual environment in ``.venv`` (override with ``CNNVIZ_VENV``), install
``requirements.txt`` and the package in one pip resolver run (torch pinned to the CPU build), and, when
run as root on Debian, install the system packages Qt and the virtual X server need.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
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
    if not args:  # the whole suite: check the layers (import-linter) and the style (ruff) first
        bin_dir = python.parent
        for name, cmd in (("import contracts", [str(bin_dir / "lint-imports")]),
                          ("ruff", [str(bin_dir / "ruff"), "check", "cnnviz_desktop", "tests", "benchmarks"])):
            say(f"checking {name}")
            code = subprocess.call(cmd, cwd=ROOT, env=env)
            if code:
                say(f"{name} failed (exit {code})")
                return code
    return subprocess.call([str(python), "-m", "pytest", *args], cwd=ROOT, env=env)


# --- build: the one-folder bundle (cnnviz.spec) and its frozen smoke test ------------------------------------------

PYINSTALLER = "pyinstaller==6.22.3"
BUNDLE_MAX_MB = 760  # override with CNNVIZ_BUNDLE_MAX_MB; 740 MB measured with openTSNE, scipy and sklearn
SMOKE_TIMEOUT_S = 180  # a --self-test that takes longer has hung
TRACEBACK_GRACE_S = 15  # after a traceback on stderr (an exception inside a Qt slot leaves the app running)
XVFB_SERVER_ARGS = "-screen 0 1600x1000x24 +extension GLX +render -nolisten tcp"
# (arguments after --self-test, name of the check)
SMOKE_RUNS = [([], "default"), (["--model", "wide"], "wide"), (["--presentation"], "presentation")]
# Files the bundle must hold (relative to dist/cnnviz/_internal) and files it must not.
BUNDLE_REQUIRED_FILES = [
    "weights/tiny.safetensors", "weights/tiny.json", "weights/wide.safetensors", "weights/wide.json",
    "weights/tiny.embedding.npz", "weights/wide.embedding.npz",
    "resources/icons/cnnviz.png", "resources/cnnviz.desktop",
    "torch/bin/torch_shm_manager", "torch/__init__.py", "torch/lib/libtorch_cpu.so",
    "PySide6/QtOpenGL.abi3.so", "PySide6/QtOpenGLWidgets.abi3.so",
    "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
]
BUNDLE_FORBIDDEN_PATHS = ["resources/screenshots", "torch/test", "torch/include", "PySide6/Qt/translations"]
# Modules the frozen PYZ must hold: those imported dynamically (importlib, PyOpenGL's platform choice).
BUNDLE_REQUIRED_MODULES = [
    "cnnviz_desktop.app", "cnnviz_desktop.core.userdata", "OpenGL.platform.glx", "OpenGL.platform.egl",
    "OpenGL.arrays.numpymodule", "pyqtgraph.opengl", "pyqtgraph.opengl.GLViewWidget", "pyqtgraph.opengl.shaders",
    "pyqtgraph.opengl.items.GLMeshItem", "pyqtgraph.opengl.items.GLLinePlotItem",
    "pyqtgraph.opengl.items.GLScatterPlotItem", "sympy", "safetensors.torch", "platformdirs",
    "openTSNE.tsne", "openTSNE.affinity", "scipy.sparse", "scipy.spatial", "sklearn.decomposition",
]
BUNDLE_FORBIDDEN_MODULES = ["pytest", "captum", "matplotlib", "tkinter", "PyInstaller"]

_PYZ_LISTING = """
import json, sys
from PyInstaller.archive.readers import CArchiveReader
pkg = CArchiveReader(sys.argv[1])
names = set()
for name, entry in pkg.toc.items():
    if entry[-1] == "z":
        names.update(pkg.open_embedded_archive(name).toc)
print(json.dumps(sorted(names)))
"""


def _ensure_pyinstaller(python: Path) -> None:
    wanted = PYINSTALLER.split("==")[1]
    found = subprocess.run([str(python), "-c", "import PyInstaller; print(PyInstaller.__version__)"],
                           capture_output=True, text=True)
    if found.returncode == 0 and found.stdout.strip() == wanted:
        return
    say(f"installing {PYINSTALLER} into {venv_dir()}")
    subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", PYINSTALLER],
                   check=True)


def _bundle_mb(bundle: Path) -> int:
    """Disk usage like ``du -sm`` (allocated blocks, symlinks not followed)."""
    out = subprocess.run(["du", "-sm", str(bundle)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def _check_bundle_contents(python: Path, bundle: Path) -> list[str]:
    problems = []
    internal = bundle / "_internal"
    for rel in BUNDLE_REQUIRED_FILES:
        if not (internal / rel).exists():
            problems.append(f"missing from the bundle: _internal/{rel}")
    for rel in BUNDLE_FORBIDDEN_PATHS:
        if (internal / rel).exists():
            problems.append(f"should not be in the bundle: _internal/{rel}")
    listing = subprocess.run([str(python), "-c", _PYZ_LISTING, str(bundle / "cnnviz")], capture_output=True,
                             text=True)
    if listing.returncode != 0:
        return problems + [f"cannot list the bundled modules: {listing.stderr.strip()[-500:]}"]
    modules = set(json.loads(listing.stdout))
    problems += [f"module missing from the bundle: {m}" for m in BUNDLE_REQUIRED_MODULES if m not in modules]
    problems += [f"test-only module in the bundle: {m}" for m in BUNDLE_FORBIDDEN_MODULES
                 if m in modules or any(n.startswith(m + ".") for n in modules)]
    return problems


def _smoke(exe: Path, extra: list[str], name: str, shots: Path) -> tuple[bool, str]:
    """Run the frozen app's --self-test under Xvfb with an environment that cannot see the build venv."""
    with tempfile.TemporaryDirectory(prefix="cnnviz-smoke-") as tmp:
        tmp_path = Path(tmp)
        for sub in ("home", "data", "runtime"):
            (tmp_path / sub).mkdir(mode=0o700)
        shot = shots / f"{name}.png"
        shot.unlink(missing_ok=True)
        env = {  # env -i: no VIRTUAL_ENV, PYTHONPATH, LD_LIBRARY_PATH, QT_*, ...
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",  # as on any desktop; without it Qt warns about the C locale
            "HOME": str(tmp_path / "home"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
        cmd = ["xvfb-run", "-a", "-s", XVFB_SERVER_ARGS, str(exe), "--self-test", *extra, "--screenshot", str(shot)]
        started = time.perf_counter()
        # Own session, so a hung app is killed together with xvfb-run's X server.
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        out: list[str] = []
        err: list[str] = []
        readers = [threading.Thread(target=lambda s=stream, b=buf: b.extend(s), daemon=True)
                   for stream, buf in ((proc.stdout, out), (proc.stderr, err))]
        for reader in readers:
            reader.start()
        # An exception inside a Qt slot is printed and the event loop goes on, so --self-test would never finish:
        # give up TRACEBACK_GRACE_S after a traceback appears, and SMOKE_TIMEOUT_S in any case.
        killed = ""
        traceback_at = None
        while proc.poll() is None:
            now = time.perf_counter()
            if traceback_at is None and any("Traceback (most recent call last)" in line for line in list(err)):
                traceback_at = now
            if traceback_at is not None and now - traceback_at > TRACEBACK_GRACE_S:
                killed = f"killed {TRACEBACK_GRACE_S} s after an uncaught exception"
            elif now - started > SMOKE_TIMEOUT_S:
                killed = f"killed after {SMOKE_TIMEOUT_S} s without exiting"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        proc.wait()
        for reader in readers:
            reader.join(timeout=10)
        stdout, stderr = "".join(out), "".join(err)
        if killed:
            return False, f"{name}: {killed}; stdout: {stdout[-500:]!r}\n{name}: stderr tail:\n{stderr[-3000:]}"
        result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
        seconds = time.perf_counter() - started
        report = None
        for line in result.stdout.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                report = value
        lines = [f"{name}: exit {result.returncode} after {seconds:.1f} s; JSON: {json.dumps(report)}"]
        ok = result.returncode == 0 and report is not None
        if report is not None and report.get("history") != "ok":  # the frozen sqlite3 saved and read a drawing
            lines.append(f"{name}: the history check did not pass: {report.get('history')!r}")
            ok = False
        if shot.is_file() and shot.stat().st_size > 0:
            lines.append(f"{name}: screenshot {shot}")
        else:
            lines.append(f"{name}: no screenshot written to {shot}")
            ok = False
        if not ok:
            lines.append(f"{name}: stderr tail:\n{result.stderr[-3000:]}")
        leaked = sorted(p.name for p in (tmp_path / "data").iterdir())
        if leaked and leaked != ["cnnviz"]:
            lines.append(f"{name}: note: wrote to XDG_DATA_HOME outside cnnviz/: {leaked}")
        return ok, "\n".join(lines)


def build(args: list[str]) -> int:
    """Build dist/cnnviz/ with PyInstaller (cnnviz.spec), then smoke-test the frozen app under Xvfb."""
    import argparse

    parser = argparse.ArgumentParser(prog="bootstrap build", description=build.__doc__)
    parser.add_argument("--skip-build", action="store_true", help="only check and smoke-test the existing bundle")
    parser.add_argument("--no-smoke", action="store_true", help="build only; do not run the frozen app")
    options = parser.parse_args(args)

    ensure_debian_packages(APT_TEST)
    python = ensure_venv()
    bundle = ROOT / "dist" / "cnnviz"
    exe = bundle / "cnnviz"
    if not options.skip_build:
        _ensure_pyinstaller(python)
        say("building dist/cnnviz with PyInstaller (about 3-5 minutes)")
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "PyInstaller", "--clean", "--noconfirm", "--log-level", "WARN",
                        "--distpath", str(ROOT / "dist"), "--workpath", str(ROOT / "build"),
                        str(ROOT / "cnnviz.spec")], check=True, cwd=ROOT)
        say(f"PyInstaller finished in {time.perf_counter() - started:.0f} s")
    if not exe.is_file():
        say(f"no bundle at {exe}")
        return 1

    failures = _check_bundle_contents(python, bundle)
    size_mb = _bundle_mb(bundle)
    limit = int(os.environ.get("CNNVIZ_BUNDLE_MAX_MB") or BUNDLE_MAX_MB)
    if size_mb > limit:
        failures.append(f"bundle is {size_mb} MB, over the {limit} MB budget (CNNVIZ_BUNDLE_MAX_MB)")
    if not options.no_smoke:
        if not shutil.which("xvfb-run"):
            failures.append("xvfb-run not found: install Debian's xvfb and xauth to smoke-test the bundle")
        else:
            shots = ROOT / "build" / "smoke"
            shots.mkdir(parents=True, exist_ok=True)
            for extra, name in SMOKE_RUNS:
                ok, text = _smoke(exe, extra, name, shots)
                say(text)
                if not ok:
                    failures.append(f"frozen smoke test '{name}' failed")
    print(json.dumps({"bundle": str(bundle), "bundle_mb": size_mb, "budget_mb": limit, "failures": failures}),
          flush=True)
    for failure in failures:
        say("FAILED: " + failure)
    if failures:
        return 1
    say(f"bundle OK: {bundle} ({size_mb} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": run, "test": test, "build": build}
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
