"""CNNViz Desktop: draw a digit and watch a small convolutional network read it, live, in 3D.

This package must stay importable with the standard library alone: ``python3 -m
cnnviz_desktop.bootstrap`` runs before any dependency is installed.
"""

__version__ = "0.1.0"
