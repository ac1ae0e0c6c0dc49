"""Fixtures that start the real application (window, loader, worker, scene) inside pytest-qt's QApplication."""

from __future__ import annotations

import argparse

import pytest
from PySide6.QtCore import QSettings


def pytest_configure(config):
    """The app's Qt attributes (no motion-event compression), set before pytest-qt creates the QApplication,
    as the app's entry point does; start_app sets them again once it exists, as app.run does (the X11
    platform plugin turns the compression on while the QApplication is built). So tests see the pointer
    input users get."""
    from cnnviz_desktop.__main__ import configure_qt_attributes

    configure_qt_attributes()


def make_args(**overrides) -> argparse.Namespace:
    from cnnviz_desktop.__main__ import parser

    args = parser().parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def start_app(qtbot, qapp, settings):
    """start_app(**args) -> Application, with the model loaded and the first (empty) analysis shown."""
    from cnnviz_desktop.app import Application
    from cnnviz_desktop.ui.canvas import keep_every_pointer_event

    keep_every_pointer_event()
    started = []

    def start(**overrides):
        owner = Application(make_args(**overrides), qapp, settings)
        started.append(owner)
        owner.start()
        qtbot.waitUntil(lambda: owner.window.snapshot is not None, timeout=120_000)
        qtbot.waitExposed(owner.window)
        # Keyboard shortcuts go to the active window, as on a desktop where the user clicked it.
        owner.window.activateWindow()
        qtbot.waitUntil(owner.window.isActiveWindow, timeout=10_000)
        return owner

    yield start
    from PySide6.QtCore import QCoreApplication, QEvent

    for owner in started:
        owner.close()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()
    started.clear()
    # Collect the closed windows' reference cycles here, on the GUI thread: left to the automatic collector they
    # can be freed by a background thread, and deleting Qt widgets there deadlocks (the app itself collects on a
    # GUI timer: app.run).
    import gc

    gc.collect()
