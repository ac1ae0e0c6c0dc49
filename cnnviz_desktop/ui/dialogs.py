"""Dialogs of the main window."""

from __future__ import annotations

import html
import json

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout


def model_card_dialog(parent, model) -> QDialog:
    """The model card of a LoadedModel: summary, the card as JSON, a Close button."""
    dialog = QDialog(parent)
    dialog.setWindowTitle(f"Model card: {model.arch.name}")
    layout = QVBoxLayout(dialog)
    card = model.card if isinstance(model.card, dict) else {}
    training = card.get("training_data")
    images = training.get("images", "?") if isinstance(training, dict) else "?"
    if card.get("source"):  # an imported model (cnnviz-train import): where it came from, not how it was trained
        origin = html.escape(str(card["source"]))
    else:
        origin = (f"trained on {images} images for {card.get('epochs', '?')} epochs "
                  f"(seed {card.get('seed', '?')})")
    summary = QLabel(
        f"<b>{html.escape(model.arch.name)}</b>: {model.model.parameter_count():,} parameters<br>"
        f"layers: <tt>{html.escape(model.arch.spec)}</tt><br>"
        f"test accuracy: <b>{card.get('test_accuracy', 'unknown')}</b> on {card.get('test_n', '?')} images<br>"
        f"{origin}<br>file: {html.escape(str(model.path))}")
    summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    summary.setWordWrap(True)
    layout.addWidget(summary)
    text = QPlainTextEdit(json.dumps(card, indent=2) if card else "This weight file has no model card.")
    text.setReadOnly(True)
    layout.addWidget(text, 1)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(QSize(560, 520).boundedTo(parent.size()))
    return dialog
