"""Light checks of the packaging files. The bundle itself is built and smoke-tested by
``python3 -m cnnviz_desktop.bootstrap build`` (.ci/build_bundle), never inside pytest.

The spec is Python run by PyInstaller (which the test environment does not install), so these tests read it
with ``ast`` and execute only its pure helper functions.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "cnnviz.spec"
DESKTOP = ROOT / "resources" / "cnnviz.desktop"


@pytest.fixture(scope="module")
def spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(), filename=str(SPEC))


def _assigned(tree: ast.Module, name: str) -> ast.AST:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    raise AssertionError(f"{name} is not assigned at the top level of cnnviz.spec")


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _spec_function(tree: ast.Module, name: str, namespace: dict):
    """Compile one top-level function of the spec into ``namespace`` and return it."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            exec(compile(ast.Module(body=[node], type_ignores=[]), str(SPEC), "exec"), namespace)
            return namespace[name]
    raise AssertionError(f"cnnviz.spec defines no {name}()")


def _spec_augment(tree: ast.Module, name: str) -> ast.AST:
    """The value of ``name += [...]`` at the top level of the spec (empty list if there is none)."""
    for node in tree.body:
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return ast.List(elts=[], ctx=ast.Load())


def _call(tree: ast.Module, func: str) -> ast.Call:
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == func]
    assert len(calls) == 1, f"expected one {func}(...) in cnnviz.spec"
    return calls[0]


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value)
    raise AssertionError(f"{name}= not given")


def test_spec_is_a_one_folder_build_named_cnnviz(spec_tree):
    exe, collect = _call(spec_tree, "EXE"), _call(spec_tree, "COLLECT")
    assert _keyword(exe, "exclude_binaries") is True  # one folder: binaries go to COLLECT
    assert _keyword(exe, "strip") is False and _keyword(collect, "strip") is False
    assert ast.literal_eval(_assigned(spec_tree, "NAME")) == "cnnviz"


def test_spec_data_files_hold_weights_and_resources_but_no_screenshots(spec_tree, tmp_path):
    data_files = _spec_function(spec_tree, "data_files", {"Path": Path, "ROOT": ROOT})
    real = data_files()
    names = {(Path(src).relative_to(ROOT).as_posix(), dest) for src, dest in real}
    for weight in sorted((ROOT / "weights").glob("*.safetensors")) + sorted((ROOT / "weights").glob("*.json")):
        assert (weight.relative_to(ROOT).as_posix(), "weights") in names
    # the precomputed PCA/t-SNE maps of the embeddings view
    assert {("weights/tiny.embedding.npz", "weights"), ("weights/wide.embedding.npz", "weights")} <= names
    assert ("resources/icons/cnnviz.png", "resources/icons") in names
    assert ("resources/cnnviz.desktop", "resources") in names
    assert not [n for n, _ in names if n.startswith("resources/screenshots/") or n.endswith(".py")]

    # the same function on a fake tree: screenshots, caches and scripts are left out
    for rel in ("weights/a.safetensors", "weights/a.json", "weights/a.embedding.npz", "weights/notes.txt",
                "weights/other.npz", "resources/style.qss",
                "resources/screenshots/main.png", "resources/icons/cnnviz.png", "resources/icons/make_icon.py",
                "resources/icons/__pycache__/x.pyc"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    fake = _spec_function(spec_tree, "data_files", {"Path": Path, "ROOT": tmp_path})()
    got = sorted((Path(src).relative_to(tmp_path).as_posix(), dest) for src, dest in fake)
    assert got == [("resources/icons/cnnviz.png", "resources/icons"), ("resources/style.qss", "resources"),
                   ("weights/a.embedding.npz", "weights"), ("weights/a.json", "weights"),
                   ("weights/a.safetensors", "weights")]


def test_spec_hidden_imports_and_excludes(spec_tree):
    hidden = _strings(_assigned(spec_tree, "HIDDEN_IMPORTS"))
    for module in ("OpenGL.platform.glx", "OpenGL.platform.egl", "OpenGL.arrays", "PySide6.QtOpenGL",
                   "PySide6.QtOpenGLWidgets", "pyqtgraph.opengl"):
        assert module in hidden
    excludes = set(_strings(_assigned(spec_tree, "OTHER_EXCLUDES")))
    assert {"pytest", "captum", "matplotlib"} <= excludes
    assert "sympy" not in excludes  # torch.jit.trace needs it
    torch_excludes = _strings(_assigned(spec_tree, "TORCH_EXCLUDES"))
    for needed in ("torch", "torch.jit", "torch.fx", "torch.autograd", "torch.nn", "torch.func", "torch.optim",
                   "torch._dynamo", "torch._inductor", "torch.distributed", "torch.testing"):
        assert needed not in torch_excludes
    qt_excludes = _strings(_assigned(spec_tree, "QT_EXCLUDES"))
    assert not {"QtCore", "QtGui", "QtWidgets", "QtOpenGL", "QtOpenGLWidgets", "QtSvg"} & set(qt_excludes)


def test_spec_bundles_what_the_embeddings_import(spec_tree):
    """openTSNE, and every scipy/scikit-learn module a t-SNE imports, survive the excludes (measured here: the
    modules loaded after core.embedding.self_check() ran a small t-SNE)."""
    hidden = _strings(_assigned(spec_tree, "HIDDEN_IMPORTS"))
    assert "openTSNE" in hidden
    excludes = set()
    for name in ("QT_EXCLUDES", "TORCH_EXCLUDES", "OTHER_EXCLUDES", "SCIPY_SKLEARN_EXCLUDES"):
        excludes |= set(_strings(_assigned(spec_tree, name)))
    probe = ("import json, sys\n"
             "from cnnviz_desktop.core import embedding\n"
             "assert embedding.self_check()['ok']\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('openTSNE', 'scipy', 'sklearn'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"openTSNE.tsne", "scipy.sparse", "scipy.spatial", "sklearn.decomposition"} <= set(loaded)
    blocked = [m for m in loaded if any(m == e or m.startswith(e + ".") for e in excludes)]
    assert not blocked, f"excluded but imported by a t-SNE: {blocked}"


def test_spec_drops_tests_and_translations_and_strips_only_libtorch(spec_tree):
    namespace = {
        "fnmatch": fnmatch,
        "DROP_PATTERNS": ast.literal_eval(_assigned(spec_tree, "DROP_PATTERNS")) + ["torch/bin/*"]
        + ast.literal_eval(_spec_augment(spec_tree, "DROP_PATTERNS")),
        "KEEP_PATTERNS": ast.literal_eval(_assigned(spec_tree, "KEEP_PATTERNS")),
    }
    dropped = _spec_function(spec_tree, "dropped", namespace)
    for dest in ("torch/test/test_api", "torch/bin/test_jit", "torch/bin/protoc", "torch/lib/libtorchbind_test.so",
                 "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/plugins/sqldrivers/libqsqlite.so",
                 "torch/include/ATen/ATen.h", "scipy/sparse/tests/test_base.py", "scipy/sparse/linalg/tests/x.py",
                 "sklearn/datasets/data/iris.csv", "sklearn/neighbors/tests/test_kd_tree.py"):
        assert dropped(dest), dest
    for dest in ("torch/bin/torch_shm_manager", "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so",
                 "torch/lib/libgomp.so.1", "torch/__init__.py", "PySide6/Qt/plugins/platforms/libqxcb.so",
                 "PySide6/Qt/plugins/platforms/libqwayland.so",
                 "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
                 "PySide6/Qt/plugins/imageformats/libqsvg.so", "PySide6/Qt/lib/libQt6OpenGLWidgets.so.6",
                 "numpy.libs/libscipy_openblas64_-ff651d7f.so", "weights/tiny.safetensors",
                 "weights/wide.embedding.npz", "scipy/sparse/_base.py", "scipy.libs/libscipy_openblas-6cdc3b4a.so",
                 "sklearn/neighbors/_kd_tree.cpython-311-x86_64-linux-gnu.so",
                 "openTSNE/_tsne.cpython-311-x86_64-linux-gnu.so"):
        assert not dropped(dest), dest
    assert ast.literal_eval(_assigned(spec_tree, "STRIP_PATTERNS")) == ["torch/lib/libtorch_*.so"]


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(DESKTOP.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def test_desktop_file_has_the_required_keys():
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "cnnviz"
    assert entry["Icon"] == "cnnviz"
    assert entry["Name"]
    assert entry["Terminal"] == "false"
    categories = entry["Categories"].split(";")
    assert entry["Categories"].endswith(";") and {"Education", "Science"} <= set(categories)


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils not installed")
def test_desktop_file_validates():
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    errors = [line for line in (result.stdout + result.stderr).splitlines() if ": error:" in line]
    assert result.returncode == 0 and not errors, result.stdout + result.stderr


def test_icon_png_and_svg():
    from PIL import Image

    with Image.open(ROOT / "resources" / "icons" / "cnnviz.png") as png:
        assert png.size == (256, 256)
        assert png.mode == "RGBA"
        assert png.getpixel((0, 0))[3] == 0 and png.getpixel((128, 128))[3] == 255  # rounded tile on transparency
    svg = ET.parse(ROOT / "resources" / "icons" / "cnnviz.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 256 256"


def test_user_data_dir_is_the_platform_dir_outside_the_bundle(tmp_path, monkeypatch):
    from cnnviz_desktop.core import paths, userdata
    from cnnviz_desktop.core.errors import CnnvizError

    monkeypatch.delenv("CNNVIZ_USER_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    expected = (tmp_path / "share" / "cnnviz").resolve()
    if sys.platform.startswith("linux"):
        assert userdata.user_data_dir() == expected
    path = userdata.user_data_dir()
    root = paths.bundle_root().resolve()
    assert root not in path.parents and path != root
    assert userdata.settings_path().parent == path and userdata.user_weights_dir().parent == path
    assert not path.exists()
    assert userdata.ensure_user_data_dir().is_dir()

    # frozen: the bundle is sys._MEIPASS; a data dir inside it is refused
    bundle = tmp_path / "dist" / "cnnviz" / "_internal"
    bundle.mkdir(parents=True)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert paths.bundle_root() == bundle
    assert bundle.resolve() not in userdata.user_data_dir().parents
    monkeypatch.setenv("XDG_DATA_HOME", str(bundle / "share"))
    if sys.platform.startswith("linux"):
        with pytest.raises(CnnvizError):
            userdata.user_data_dir()
    monkeypatch.setenv("CNNVIZ_USER_DATA", str(tmp_path / "portable"))
    assert userdata.user_data_dir() == (tmp_path / "portable").resolve()


def test_bootstrap_has_a_build_command():
    from cnnviz_desktop import bootstrap

    assert "build" in bootstrap.__doc__
    with pytest.raises(SystemExit) as exit_info:
        bootstrap.main(["build", "--help"])
    assert exit_info.value.code == 0


def test_ci_build_script():
    script = ROOT / ".ci" / "build_bundle"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text and "python3 -m cnnviz_desktop.bootstrap build" in text
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_startup_benchmark_script_parses():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_startup.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--runs" in result.stdout
