"""ink_share: the share of Grad-CAM's positive mass on (dilated) ink."""

import numpy as np
import pytest

from cnnviz_desktop.core.metrics import dilate, ink_share


def test_dilate_grows_by_one_pixel_in_eight_directions():
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    assert dilate(mask, 1).sum() == 9
    assert dilate(mask, 2).sum() == 25
    assert dilate(mask, 0).sum() == 1


def test_ink_share_counts_positive_mass_on_dilated_ink():
    image = np.zeros((6, 6), np.float32)
    image[1, 1] = 1.0  # ink at (1, 1); dilated: rows/cols 0-2
    cam = np.zeros((6, 6), np.float32)
    cam[2, 2] = 3.0   # on the dilated ink
    cam[5, 5] = 1.0   # off the ink
    cam[0, 0] = -10.0  # negative mass is not counted
    assert ink_share(image, cam) == pytest.approx(0.75)


def test_no_positive_cell_gives_none_and_shapes_must_match():
    image = np.ones((4, 4), np.float32)
    assert ink_share(image, -np.ones((4, 4), np.float32)) is None
    with pytest.raises(ValueError, match="same 2-D shape"):
        ink_share(image, np.ones((3, 4), np.float32))
