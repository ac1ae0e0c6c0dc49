"""A minimal, Qt-free observer: ``Event`` holds callbacks and calls them in order on ``emit``.

The session (core/session.py) announces its changes through these, so it is tested without Qt and the
views subscribe to it the same way whatever toolkit renders them. Callbacks run synchronously in the
emitting thread (the session is only used from the GUI thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """A list of callbacks. ``connect(fn)`` adds one (returns fn), ``disconnect(fn)`` removes it,
    ``emit(*args)`` calls each with ``args``. A callback connected twice is called once."""

    __slots__ = ("_callbacks", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def emit(self, *args: Any) -> None:
        for callback in tuple(self._callbacks):
            callback(*args)

    def __len__(self) -> int:
        return len(self._callbacks)
