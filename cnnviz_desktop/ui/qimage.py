"""numpy arrays -> QImage without sharing memory.

QImage(buffer, ...) makes Qt borrow the numpy buffer; with PySide6 6.12 that path corrupted a
reference count ('none_dealloc' aborts seen in the test suite). Copying into memory the QImage owns
costs microseconds at our sizes and has no lifetime rules.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_qimage(array: np.ndarray) -> QImage:
    """(H, W) uint8 -> Grayscale8; (H, W, 4) uint8 RGBA -> RGBA8888. The QImage owns a copy."""
    array = np.asarray(array, dtype=np.uint8)
    if array.ndim == 2:
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif array.ndim == 3 and array.shape[2] == 4:
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        raise ValueError(f"expected (H, W) or (H, W, 4) uint8, got {array.shape}")
    h, w = array.shape[:2]
    image = QImage(w, h, fmt)
    stride = image.bytesPerLine()
    target = np.frombuffer(image.bits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    target[:, : w * channels] = array.reshape(h, w * channels)
    return image
