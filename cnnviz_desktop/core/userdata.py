"""Where the app keeps what the user creates: settings, trained weights, exported images.

Settings (settings.ini) live here too, so ``$CNNVIZ_USER_DATA`` moves all of it at once.
Always the platform's per-user data directory (``platformdirs.user_data_dir('cnnviz', 'CNNViz')``: on Linux
``$XDG_DATA_HOME/cnnviz``, by default ``~/.local/share/cnnviz``), never the checkout or the frozen bundle, which
may be read-only and is replaced on every update. ``$CNNVIZ_USER_DATA`` overrides it (tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir as _platform_user_data_dir

from .errors import CnnvizError
from .paths import bundle_root

APP_NAME = "cnnviz"
APP_AUTHOR = "CNNViz"


def user_data_dir() -> Path:
    """The per-user data directory (not created). Raises CnnvizError if it would lie inside the bundle."""
    override = os.environ.get("CNNVIZ_USER_DATA", "").strip()
    path = Path(override) if override else Path(_platform_user_data_dir(APP_NAME, APP_AUTHOR))
    path = path.expanduser().resolve()
    root = bundle_root().resolve()
    if path == root or root in path.parents:
        raise CnnvizError(f"the user data directory {path} lies inside the application folder {root}; "
                          "set CNNVIZ_USER_DATA or XDG_DATA_HOME to a folder outside it")
    return path


def ensure_user_data_dir() -> Path:
    """``user_data_dir()``, created if missing."""
    path = user_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_weights_dir() -> Path:
    """Where weights the user trains or imports are saved (``<user data>/weights``; not created)."""
    return user_data_dir() / "weights"


def settings_path() -> Path:
    """The settings file (``<user data>/settings.ini``, written by ui/settings.py; not created)."""
    return user_data_dir() / "settings.ini"
