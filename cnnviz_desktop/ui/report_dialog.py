"""The 'Report misclassification' dialog: which digit it really is (keys 0-9) and why the network got it
wrong (a common reason from a list, plus free text)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QVBoxLayout, QWidget,
)

REASONS = (
    "Wrong digit predicted",
    "Unusual handwriting style",
    "Digit too thin or too thick",
    "Digit off-centre or too small",
    "Looks like another digit",
    "Other",
)


class ReportDialog(QDialog):
    """Ask for the true digit and a reason. After exec() == Accepted: ``label`` (0-9), ``reason`` (the
    chosen reason, with the details appended after ': ' when given) and ``note`` (the details)."""

    def __init__(self, predicted: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Report misclassification")
        self.setObjectName("ReportDialog")
        layout = QVBoxLayout(self)
        said = f"The network read <b>{predicted}</b>." if predicted is not None else "The network read nothing."
        intro = QLabel(f"{said} Which digit did you draw? Press its key (0-9) or click it.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        digits = QHBoxLayout()
        self.digit_group = QButtonGroup(self)
        self.digit_group.setExclusive(True)
        self.digit_buttons: list[QPushButton] = []
        for d in range(10):
            button = QPushButton(str(d))
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            button.setMinimumWidth(28)
            button.setToolTip(f"The drawing is a {d} (key {d})")
            self.digit_group.addButton(button, d)
            self.digit_buttons.append(button)
            digits.addWidget(button)
        layout.addLayout(digits)
        form = QGridLayout()
        form.addWidget(QLabel("Reason:"), 0, 0)
        self.reason_box = QComboBox()
        self.reason_box.addItems(REASONS)
        self.reason_box.setToolTip("Why the network got it wrong (choose the closest)")
        form.addWidget(self.reason_box, 0, 1)
        form.addWidget(QLabel("Details:"), 1, 0)
        self.details = QLineEdit()
        self.details.setPlaceholderText("optional: say more in your own words")
        form.addWidget(self.details, 1, 1)
        layout.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText("Save report")
        self.save_button.setEnabled(False)
        layout.addWidget(self.buttons)
        self.digit_group.idToggled.connect(lambda _id, _on: self._sync())
        self.label: int | None = None
        self.reason = ""
        self.note = ""
        self.reason_box.setFocus()

    def _sync(self) -> None:
        self.save_button.setEnabled(self.digit_group.checkedId() >= 0)

    def set_digit(self, digit: int) -> None:
        self.digit_buttons[digit].setChecked(True)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        text = event.text()
        if len(text) == 1 and text.isdigit() and not self.details.hasFocus():
            self.set_digit(int(text))
            return
        super().keyPressEvent(event)

    def accept(self) -> None:
        if self.digit_group.checkedId() < 0:
            return
        self.label = self.digit_group.checkedId()
        self.note = self.details.text().strip()
        choice = self.reason_box.currentText()
        self.reason = f"{choice}: {self.note}" if self.note else choice
        super().accept()
