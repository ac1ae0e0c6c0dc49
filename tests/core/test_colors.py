"""Colour maps: LUT shapes, zero handling, diverging symmetry, palettes."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz_desktop.core import colors


@pytest.mark.parametrize("palette", colors.PALETTES)
def test_luts(palette):
    for lut in (colors.activation_lut(palette), colors.signed_lut(palette)):
        assert lut.shape == (256, 4) and lut.dtype == np.uint8
        assert not lut.flags.writeable
    assert np.array_equal(colors.activation_lut(palette)[0], colors.INACTIVE)


def test_activation_map_blue_green_red_and_grey_zero():
    rgba = colors.activation_colors(np.array([0.0, 0.01, 0.5, 1.0], np.float32), scale=1.0)
    assert rgba.shape == (4, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[0], colors.INACTIVE)
    low, mid, high = rgba[1, :3].astype(int), rgba[2, :3].astype(int), rgba[3, :3].astype(int)
    assert low.argmax() == 2 and mid.argmax() == 1 and high.argmax() == 0  # blue, green, red
    assert high.sum() > low.sum()  # brighter for stronger


def test_activation_scale_defaults_to_max_and_handles_all_zero():
    v = np.array([[0.0, 2.0], [4.0, 1.0]], np.float32)
    np.testing.assert_array_equal(colors.activation_index(v), colors.activation_index(v / 4.0, 1.0))
    assert colors.activation_index(v)[1, 0] == 255
    z = colors.activation_colors(np.zeros(5, np.float32))
    assert np.all(z == colors.INACTIVE)


def test_signed_map_is_diverging():
    lut = colors.signed_lut("default")
    assert lut[0, 2] > lut[0, 0]  # negative: blue
    assert lut[255, 0] > lut[255, 2]  # positive: red
    assert lut[127, :3].min() > 230 and lut[128, :3].min() > 230  # zero: white
    idx = colors.signed_index(np.array([-1.0, 0.0, 1.0, 5.0], np.float32), 1.0)
    assert idx.tolist()[0] == 0 and idx.tolist()[2] == 255 and idx.tolist()[3] == 255
    assert idx[1] in (127, 128)


def test_colorblind_palettes_avoid_red_green():
    act = colors.activation_lut("colorblind")[1:].astype(int)
    sig = colors.signed_lut("colorblind").astype(int)
    # No strongly green-dominant entries (green is the confusable hue).
    assert not np.any((act[:, 1] > act[:, 0] + 40) & (act[:, 1] > act[:, 2] + 40))
    assert sig[255, 0] > sig[255, 2] and sig[255, 1] > 100  # positive end is orange, not pure red


def test_out_parameter_and_unknown_palette():
    out = np.zeros((3, 4), np.uint8)
    res = colors.signed_colors(np.array([-1, 0, 1], np.float32), 1.0, "colorblind", out=out)
    assert res is out and out.any()
    with pytest.raises(ValueError):
        colors.activation_lut("rainbow")


def test_signed_overlay_alpha_carries_strength():
    v = np.array([[-2.0, 0.0, 1.0]], np.float32)
    rgba = colors.signed_overlay(v, 2.0)
    assert rgba.shape == (1, 3, 4)
    assert rgba[0, 1, 3] == 0 and rgba[0, 0, 3] > rgba[0, 2, 3] > 0
