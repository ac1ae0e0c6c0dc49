"""Composition root: build the model, the worker and the window, and connect them.

(Foundation stage: a minimal window that shows the loaded model. The main window replaces it.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CNNViz Desktop")
    app.setOrganizationName("CNNViz")
    window = QMainWindow()
    window.setWindowTitle("CNNViz Desktop")
    label = QLabel("Loading the network ...")
    label.setMargin(24)
    window.setCentralWidget(label)
    window.resize(640, 360)
    window.show()
    app.processEvents()
    status = {"code": 0}

    def load() -> None:
        from .core import weights
        from .core.errors import CnnvizError

        try:
            loaded = weights.load(args.model or "tiny")
        except CnnvizError as exc:
            if args.self_test:
                print(f"error: {exc}", file=sys.stderr)
                status["code"] = 2
                app.quit()
                return
            QMessageBox.critical(window, "Cannot load the model", str(exc))
            label.setText(f"No model loaded.\n{exc}")
            return
        label.setText(f"Model: {loaded.name} ({loaded.model.parameter_count():,} parameters)\n{loaded.path}")
        if args.self_test:
            print(json.dumps({"model": loaded.name, "seconds_to_window": round(time.perf_counter() - started, 3)}))
            app.quit()

    QTimer.singleShot(0, load)
    code = app.exec()
    return status["code"] or code
