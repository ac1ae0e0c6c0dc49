"""Shared test settings.

- Data tests read CNNVIZ_MNIST_DIR; they skip when it is unset, unless CNNVIZ_REQUIRE_DATA=1 (CI) makes
  a missing folder a failure.
- GUI tests (tests/ui, tests/e2e) need an X server with OpenGL: pytest-xvfb starts Xvfb (+GLX) for the
  session and Qt must use the xcb platform ('offscreen' has no OpenGL context).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
os.environ.setdefault("PYOPENGL_PLATFORM", "glx")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _require_data() -> bool:
    return os.environ.get("CNNVIZ_REQUIRE_DATA", "") == "1"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    value = os.environ.get("CNNVIZ_MNIST_DIR", "").strip()
    if not value:
        if _require_data():
            pytest.fail("CNNVIZ_REQUIRE_DATA=1 but CNNVIZ_MNIST_DIR is not set")
        pytest.skip("MNIST not available: set CNNVIZ_MNIST_DIR to the folder with the IDX files")
    path = Path(value)
    if not (path / "t10k-images-idx3-ubyte.gz").is_file() and not (path / "t10k-images-idx3-ubyte").is_file():
        if _require_data():
            pytest.fail(f"CNNVIZ_REQUIRE_DATA=1 but {path} holds no MNIST test files")
        pytest.skip(f"MNIST not found in {path}")
    return path


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from cnnviz_desktop.core import mnist

    return mnist.load(mnist_dir, "test")


@pytest.fixture(scope="session")
def tiny():
    from cnnviz_desktop.core import weights

    return weights.load("tiny")


@pytest.fixture(scope="session")
def wide():
    from cnnviz_desktop.core import weights

    return weights.load("wide")


def pytest_runtest_setup(item):
    """GUI tests need a display: without one they fail in CI and skip elsewhere, with a reason."""
    parts = Path(str(item.fspath)).parts
    if ("ui" in parts or "e2e" in parts) and not os.environ.get("DISPLAY"):
        message = "no X display for GUI tests: install Debian's xvfb (pytest-xvfb starts it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
