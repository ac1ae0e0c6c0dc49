"""Qt-free core: networks, weights, preprocessing, analysis, layout, colours, MNIST.

Nothing in this package may import PySide6 or pyqtgraph (a test enforces it).
"""
