"""Settings persistence: the session's key/value store on QSettings, in one documented place.

Rule: settings live in ``<user data folder>/settings.ini`` (core/userdata.settings_path: the platform's data
folder, or ``$CNNVIZ_USER_DATA``), beside everything else the app writes. Each change is written at once and
alone (``set_value`` then ``sync``), and QSettings merges what other instances wrote meanwhile, so two
windows open at the same time never overwrite each other's choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings


class QtSettingsStore:
    """core.session.SettingsStore on a QSettings object (an INI file)."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    @classmethod
    def open(cls, path: Path | None = None) -> tuple[QtSettingsStore, str | None]:
        """The store at ``path`` (default: the user data folder's settings.ini) and a problem sentence
        if it cannot be written (then changes last only for this session)."""
        from ..core.errors import CnnvizError
        from ..core.userdata import settings_path

        problem = None
        try:
            path = path or settings_path()
            path.parent.mkdir(parents=True, exist_ok=True)
        except (OSError, CnnvizError) as exc:
            problem = f"settings cannot be saved ({exc}); changes last until you quit"
        settings = QSettings(str(path), QSettings.Format.IniFormat)
        store = cls(settings)
        if problem is None and not store.writable():
            problem = f"settings cannot be saved to {path} (the folder is read-only); changes last until you quit"
        return store, problem

    def writable(self) -> bool:
        return self.settings.isWritable()

    def value(self, key: str, default: Any = None) -> Any:
        return self.settings.value(key, default)

    def set_value(self, key: str, value: Any) -> None:
        self.settings.setValue(key, value)
        self.settings.sync()
