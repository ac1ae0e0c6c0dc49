"""Where shipped files live, in a source checkout and inside a PyInstaller bundle."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def bundle_root() -> Path:
    """The directory holding ``weights/`` and ``resources/``: the checkout, or the frozen bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[2]


def weights_dir() -> Path:
    return bundle_root() / "weights"


def resources_dir() -> Path:
    return bundle_root() / "resources"


def mnist_dir_from_env() -> Path | None:
    """``$CNNVIZ_MNIST_DIR`` if set and non-empty."""
    value = os.environ.get("CNNVIZ_MNIST_DIR", "").strip()
    return Path(value) if value else None
