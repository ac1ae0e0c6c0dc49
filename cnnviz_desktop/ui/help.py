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

SHORTCUTS = [
    ("Drawing", [("Left / right button", "draw / erase"), ("Delete", "clear"), ("Ctrl+Z", "undo stroke"),
                 ("Ctrl+Shift+Z, Ctrl+Y", "redo stroke"), ("[  ]", "brush smaller / larger")]),
    ("Grad-CAM", [("H", "show / hide the overlay"), ("B", "both channels"), ("0 - 9", "isolate channel k"),
                  ("C / Shift+C", "next / previous channel"), ("M", "Grad-CAM / HiResCAM"),
                  ("Ctrl+0 - Ctrl+9", "explain digit k"), ("P", "explain the prediction"),
                  ("Ctrl+Up / Ctrl+Down", "overlay opacity")]),
    ("3D view", [("Left drag", "rotate"), ("Right or middle drag", "pan"), ("Wheel", "zoom"), ("R", "reset view"),
                 ("F5 / F6 / F7", "front / side / top"), ("A", "auto-rotate"), ("L", "connections: significant / all / none")]),
    ("Window", [("F11", "presentation mode"), ("F1 or ?", "this overlay"), ("Ctrl+M", "next model"),
                ("Ctrl+O / Ctrl+S", "open image / save drawing"), ("Ctrl+Q", "quit")]),
]


def how_to_use_widget(parent: QWidget | None = None) -> QTextBrowser:
    browser = QTextBrowser(parent)
    browser.setHtml(HOW_TO_USE)
    browser.setOpenExternalLinks(False)
    browser.setAccessibleName("How to use")
    return browser


class ShortcutOverlay(QWidget):
    """A translucent sheet over the window listing every shortcut; any key or click closes it."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Keyboard shortcuts")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(60, 40, 60, 40)
        title = QLabel("Keyboard shortcuts  (press any key to close)")
        title.setStyleSheet("color: white; font-weight: bold;")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(28)
        grid.setVerticalSpacing(6)
        outer.addLayout(grid)
        outer.addStretch(1)
        self._labels = [title]
        for column, (group, rows) in enumerate(SHORTCUTS):
            head = QLabel(group)
            head.setStyleSheet("color: #ffb040; font-weight: bold;")
            grid.addWidget(head, 0, column * 2, 1, 2)
            self._labels.append(head)
            for row, (keys, what) in enumerate(rows, start=1):
                k, w = QLabel(keys), QLabel(what)
                k.setStyleSheet("color: white; font-weight: bold;")
                w.setStyleSheet("color: #d8dce4;")
                grid.addWidget(k, row, column * 2)
                grid.addWidget(w, row, column * 2 + 1)
                self._labels += [k, w]
        self.hide()
        parent.installEventFilter(self)

    def set_scale(self, factor: float) -> None:
        for label in self._labels:
            font = QFont(label.font())
            font.setPointSizeF(self.parent().font().pointSizeF() * factor)
            label.setFont(font)

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
        else:
            self.setGeometry(self.parent().rect())
            self.show()
            self.raise_()
            self.setFocus()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.parent() and event.type() == QEvent.Type.Resize and self.isVisible():
            self.setGeometry(self.parent().rect())
        return False

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(8, 10, 14, 225))
        painter.end()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        self.hide()
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.hide()
        event.accept()
