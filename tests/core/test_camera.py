"""Camera maths (no Qt): the one projection, picking, and framing that keeps the whole network in view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnviz_desktop.core import camera as cam
from cnnviz_desktop.core.architecture import ARCHITECTURES
from cnnviz_desktop.core.layout import layout

SIZES = [(800, 600), (1024, 768), (1366, 768), (1920, 1080)]


def test_the_look_at_point_projects_to_the_view_centre_and_axes_point_the_right_way():
    c = cam.Camera((3.0, -2.0, 1.0), 50.0, azimuth=-90.0, elevation=0.0)  # eye on -y, looking along +y
    np.testing.assert_allclose(c.position(), (3.0, -52.0, 1.0), atol=1e-9)
    mvp = cam.mvp_matrix(c, 800, 600)
    p = cam.project(np.array([[3.0, -2.0, 1.0], [13.0, -2.0, 1.0], [3.0, -2.0, 11.0], [3.0, -100.0, 1.0]]),
                    mvp, 800, 600)
    np.testing.assert_allclose(p.xy[0], (400.0, 300.0), atol=1e-6)
    assert p.xy[1, 0] > 400 and abs(p.xy[1, 1] - 300) < 1e-6  # +x is screen right from the front
    assert p.xy[2, 1] < 300 and abs(p.xy[2, 0] - 400) < 1e-6  # +z is screen up
    np.testing.assert_allclose(p.depth[0], 50.0)
    assert list(p.front) == [True, True, True, False]  # the last point is behind the eye


def test_horizontal_fov_spans_the_view_width():
    c = cam.Camera((0.0, 0.0, 0.0), 10.0, azimuth=-90.0, elevation=0.0, fov=30.0)
    half = 10.0 * math.tan(math.radians(15.0))  # world half-width visible at the look-at distance
    p = cam.project(np.array([[half, 0.0, 0.0]]), cam.mvp_matrix(c, 1000, 500), 1000, 500)
    assert p.xy[0, 0] == pytest.approx(1000.0)
    assert cam.focal_pixels(30.0, 1000) * half / 10.0 == pytest.approx(500.0)


def test_pick_returns_the_cube_nearest_to_the_eye():
    c = cam.Camera((0.0, 0.0, 0.0), 40.0, azimuth=-90.0, elevation=0.0)
    centers = np.array([[0.0, 10.0, 0.0], [0.0, -5.0, 0.0], [8.0, 0.0, 0.0]])  # two on the view axis
    sizes = np.array([1.0, 1.0, 1.0])
    mvp = cam.mvp_matrix(c, 800, 600)
    assert cam.pick(centers, sizes, mvp, c.fov, 800, 600, 400, 300) == 1
    x, y = cam.project(centers[2:], mvp, 800, 600).xy[0]
    assert cam.pick(centers, sizes, mvp, c.fov, 800, 600, x + 1, y - 1) == 2
    assert cam.pick(centers, sizes, mvp, c.fov, 800, 600, 5, 5) is None


def _framed_points(lay):
    anchors = np.array([b.label_anchor for b in lay.layers.values()] + [p for _, p in lay.unit_labels])
    return np.concatenate([lay.centers, lay.filter_centers, anchors]), anchors


@pytest.mark.parametrize("name", ["tiny", "wide"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_default_framing_keeps_every_cube_and_label_anchor_in_view(name, size):
    lay = layout(ARCHITECTURES[name])
    points, anchors = _framed_points(lay)
    # Labels reach 60 px left and right of their anchors and 10 px up and down.
    pads = np.zeros((points.shape[0], 4))
    pads[-anchors.shape[0]:] = (60.0, 60.0, 10.0, 10.0)
    w, h = size
    camera = cam.frame(points, *cam.PRESET_VIEWS["default"], w, h, pads=pads, margin=8.0)
    xy = cam.project(points, cam.mvp_matrix(camera, w, h), w, h)
    assert xy.front.all()
    x, y = xy.xy[:, 0], xy.xy[:, 1]
    assert (x - pads[:, 0] >= 8.0 - 1e-6).all() and (x + pads[:, 1] <= w - 8.0 + 1e-6).all()
    assert (y - pads[:, 2] >= 8.0 - 1e-6).all() and (y + pads[:, 3] <= h - 8.0 + 1e-6).all()
    # ... and it is framed tightly (the network is not a speck in the middle): it spans most of one axis.
    span_x = (x + pads[:, 1]).max() - (x - pads[:, 0]).min()
    span_y = (y + pads[:, 3]).max() - (y - pads[:, 2]).min()
    assert max(span_x / (w - 16), span_y / (h - 16)) > 0.97


@pytest.mark.parametrize("view", list(cam.PRESET_VIEWS))
def test_every_preset_frames_the_network(view):
    lay = layout(ARCHITECTURES["wide"])
    points, _ = _framed_points(lay)
    camera = cam.frame(points, *cam.PRESET_VIEWS[view], 1366, 768)
    xy = cam.project(points, cam.mvp_matrix(camera, 1366, 768), 1366, 768)
    assert xy.front.all()
    assert (xy.xy >= 0).all() and (xy.xy[:, 0] <= 1366).all() and (xy.xy[:, 1] <= 768).all()


def test_default_view_shows_the_maps_as_faces_not_slivers():
    """The angle between the view direction and the maps' normal (+y, the data flow) is well under 60
    degrees (a map's width is foreshortened by less than half) but not 0 (the layers would hide each
    other); the camera looks a little down on the network."""
    azimuth, elevation = cam.PRESET_VIEWS["default"]
    back = cam.Camera((0, 0, 0), 1.0, azimuth, elevation).position()
    off_normal = math.degrees(math.acos(-back[1]))
    assert 20.0 < off_normal < 55.0
    assert 5.0 < elevation < 35.0


def test_framing_uses_the_aspect_ratio():
    """fov is horizontal (pyqtgraph's): at the same width, a flatter view has a narrower vertical angle,
    so once height is the limit the camera must step back; in a tall view the width limits."""
    lay = layout(ARCHITECTURES["tiny"])
    points, _ = _framed_points(lay)
    flat = cam.frame(points, *cam.PRESET_VIEWS["default"], 1920, 500)
    square = cam.frame(points, *cam.PRESET_VIEWS["default"], 1920, 1920)
    assert flat.distance > square.distance * 1.3
    tall = cam.frame(points, *cam.PRESET_VIEWS["default"], 1920, 3000)
    assert tall.distance == pytest.approx(square.distance, rel=0.02)
