"""Dialogs of the main window."""

from __future__ import annotations

import json

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout


def model_card_dialog(parent, model) -> QDialog:
    """The model card of a LoadedModel: summary, the card as JSON, a Close button."""
    dialog = QDialog(parent)
    dialog.setWindowTitle(f"Model card: {model.arch.name}")
    layout = QVBoxLayout(dialog)
    card = model.card
    summary = QLabel(
        f"<b>{model.arch.name}</b>: {model.model.parameter_count():,} parameters<br>"
        f"test accuracy: <b>{card.get('test_accuracy', 'unknown')}</b> on {card.get('test_n', '?')} images<br>"
        f"trained on {card.get('training_data', {}).get('images', '?')} images for {card.get('epochs', '?')} "
        f"epochs (seed {card.get('seed', '?')})<br>file: {model.path}")
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
