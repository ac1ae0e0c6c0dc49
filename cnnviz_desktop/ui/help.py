"""In-app help: the 'How to use' panel and the keyboard shortcut overlay (F1 or ?)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

HOW_TO_USE = """
<h2>How to use CNNViz</h2>
<h3>Draw</h3>
<ul>
<li><b>Left button</b> draws, <b>right button</b> erases, on the 28&times;28 grid (top left). A pen's pressure
sets the stroke width; touch works too. <b>[</b> and <b>]</b> change the brush size.</li>
<li><b>Delete</b> clears, <b>Ctrl+Z</b> / <b>Ctrl+Shift+Z</b> undo and redo whole strokes.</li>
<li>Every change is analysed at once: the bars (top right) show the network's probability for each digit.</li>
</ul>
<h3>The 3D network</h3>
<ul>
<li><b>Left drag</b> rotates, <b>right drag</b> (or middle drag) pans, the <b>wheel</b> zooms. <b>R</b> resets the
view; <b>F5</b>/<b>F6</b>/<b>F7</b> show it from the front, the side and above; <b>A</b> rotates it slowly.</li>
<li>One cube per neuron. Colour = activation: <span style="color:#3c64ff">blue</span> &rarr;
<span style="color:#3cdc50">green</span> &rarr; <span style="color:#ff4030">red</span> from low to high, brighter
for stronger; dark grey = inactive (zero after ReLU).</li>
<li>Lines = connections, coloured by their <b>contribution</b> (source activation &times; weight):
<span style="color:#4a78ff">blue</span> pulls the target neuron down, <b>white</b> little, <span
style="color:#ff4a3a">red</span> pushes it up. Only the significant ones are lit (the strongest few into each
neuron); <b>L</b> switches between significant, all and none.</li>
<li>The small 3&times;3 grids beside each convolution are its learned filters (red positive, blue negative
weights): the patterns that layer looks for.</li>
<li>Click a neuron to see its value and its incoming connections; its receptive field is outlined on the
drawing grid.</li>
</ul>
<h3>Grad-CAM: what the network looked at</h3>
<ul>
<li>The overlay on the drawing shows which parts pushed the network <span style="color:#ff4a3a">towards</span>
(red) or <span style="color:#4a78ff">against</span> (blue) the explained digit. <b>H</b> shows or hides it.</li>
<li>It is computed on the last convolution block after ReLU and max-pooling (5&times;5 cells per channel) because
exactly those cells feed the classifier: every coloured cell really reaches the output. Each cell covers a
patch of the input, so the map is coarse.</li>
<li>Under the grid, the legend says what red and blue mean for this drawing, and the thumbnails show every
channel's map next to their sum at once (click one to put it on the grid). <b>Shift+click</b> a second probability
bar to ask 'why A rather than B': the map then explains logit A minus logit B.</li>
<li><b>B</b> shows both channels together (their sum: the tug-of-war); <b>0</b>&ndash;<b>9</b> isolate one channel
(C / Shift+C step
through them). The tiny network has only two channels in that layer, so it must build every digit from two
feature maps. In the shipped tiny network one of them mostly answers to <i>blank paper</i>: it is high where
there is no ink, so a red area over empty cells means 'the absence of ink here speaks for this digit' (a 7 is
a 7 partly because its lower left is empty). A single channel's map is all red or all blue, because after ReLU
its cells are never negative and one gradient
weight scales the whole map.</li>
<li>Click a bar (or <b>Ctrl+0</b>&ndash;<b>Ctrl+9</b>) to explain another digit: 'why 3?' even when the network says
8. Click it again (or <b>P</b>) to go back to the prediction.</li>
<li><b>M</b> switches to HiResCAM (gradient &times; activation per cell), which follows the network's actual
computation more faithfully than Grad-CAM's channel averages: comparing both is part of the lesson.</li>
</ul>
<h3>Limits</h3>
<p>The tiny network is deliberately small so that every neuron can be shown; it misreads unusual shapes. The
<b>wide</b> model (Model menu) is more accurate and shows how the picture scales.</p>
<h3>For the lecture hall</h3>
<p><b>F11</b> switches presentation mode: full screen, large text, thicker lines, high contrast and a slow
rotation. View &rarr; Colour-blind-safe palette changes every map.</p>
"""

def shortcut_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """The overlay's rows, generated from the action table and the view registry (one source of keys)."""
    from .actions import help_rows
    from .views import VIEWS

    view_rows = [("Window", v.key, f"show / hide the {v.label} view") for v in VIEWS if v.key]
    return help_rows(view_rows)


def how_to_use_widget(parent: QWidget | None = None) -> QTextBrowser:
    browser = QTextBrowser(parent)
    browser.setHtml(HOW_TO_USE)
    browser.setOpenExternalLinks(False)
    browser.setAccessibleName("How to use")
    return browser


class ShortcutOverlay(QWidget):
    """A translucent sheet over the window listing every shortcut; any key or click closes it.

    Groups are laid out in as many columns as fit the window (4, 2 or 1), so no cell is ever cut."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Keyboard shortcuts")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(30, 20, 30, 20)
        self.title = QLabel("Keyboard shortcuts  (press any key to close)")
        self.title.setStyleSheet("color: white; font-weight: bold;")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.title)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(36)
        self.grid.setVerticalSpacing(14)
        outer.addLayout(self.grid)
        outer.addStretch(1)
        self.groups: list[QWidget] = []
        self.labels: list[QLabel] = [self.title]
        for group, rows in shortcut_rows():
            box = QWidget()
            table = QGridLayout(box)
            table.setContentsMargins(0, 0, 0, 0)
            table.setHorizontalSpacing(14)
            table.setVerticalSpacing(3)
            head = QLabel(group)
            head.setStyleSheet("color: #ffb040; font-weight: bold;")
            table.addWidget(head, 0, 0, 1, 2)
            self.labels.append(head)
            for row, (keys, what) in enumerate(rows, start=1):
                k, w = QLabel(keys), QLabel(what)
                k.setStyleSheet("color: white; font-weight: bold;")
                w.setStyleSheet("color: #d8dce4;")
                table.addWidget(k, row, 0, Qt.AlignmentFlag.AlignTop)
                table.addWidget(w, row, 1, Qt.AlignmentFlag.AlignTop)
                self.labels += [k, w]
            self.groups.append(box)
        self.columns = 0
        self.hide()
        parent.installEventFilter(self)

    def set_scale(self, factor: float) -> None:
        for label in self.labels:
            font = QFont(label.font())
            font.setPointSizeF(self.parent().font().pointSizeF() * factor)
            label.setFont(font)

    def _arrange(self) -> None:
        """Place the groups in the most columns whose natural width fits the window."""
        for box in self.groups:
            self.grid.removeWidget(box)
        available = self.parent().width() - 60
        widths = [box.sizeHint().width() for box in self.groups]
        spacing = self.grid.horizontalSpacing()
        for columns in (4, 2, 1):
            rows = [widths[i:i + columns] for i in range(0, len(widths), columns)]
            col_widths = [max(r[c] for r in rows if c < len(r)) for c in range(columns)]
            if sum(col_widths) + spacing * (columns - 1) <= available or columns == 1:
                break
        self.columns = columns
        for i, box in enumerate(self.groups):
            self.grid.addWidget(box, i // columns, i % columns, Qt.AlignmentFlag.AlignTop)

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
        else:
            self._arrange()
            self.setGeometry(self.parent().rect())
            self.show()
            self.raise_()
            self.setFocus()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.parent() and event.type() == QEvent.Type.Resize and self.isVisible():
            self._arrange()
            self.setGeometry(self.parent().rect())
        return False

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(8, 10, 14, 232))
        painter.end()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        self.hide()
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.hide()
        event.accept()
