"""Camera maths of the 3D scene: view / projection matrices, THE projection to screen pixels, picking, framing.

Pure numpy (no Qt). The conventions are pyqtgraph's ``GLViewWidget`` (euler rotation method), so a
:class:`Camera` here and the widget's ``opts`` describe the same picture:

- world: z up; the camera sits at ``center + distance * (cos(el) cos(az), cos(el) sin(az), sin(el))``
  (azimuth and elevation in degrees) and looks at ``center``;
- ``fov`` is the horizontal field of view in degrees; the vertical one follows from the aspect ratio;
- screen pixels: (0, 0) is the top-left corner of the view, x to the right, y down.

Every screen position in the scene (picking, ``screen_position``, label placement) goes through
:func:`project`, so they can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# name -> (azimuth, elevation) in degrees. 'default' looks at the maps' faces from the front-left and
# above: the maps read as faces (about 44 degrees off their normal; the old -40/18 was 54 degrees, with
# the maps two thirds their size) while each layer steps up and right from the one before it, so that
# (with layout's layer gaps) no map hides behind another: every cube of every map is the nearest one
# at its own screen position for tiny and wide (measured on a z-buffer of the cube squares).
PRESET_VIEWS: dict[str, tuple[float, float]] = {
    "default": (-52.0, 24.0),
    "front": (-90.0, 0.0),
    "side": (0.0, 0.0),
    "top": (0.0, 89.9),
}
FOV = 22.0  # degrees, horizontal, pyqtgraph's opts['fov'] (narrow: the far layers shrink less)


@dataclass(frozen=True)
class Camera:
    """An orbit camera: look at ``center`` from ``distance`` (world units) at azimuth/elevation (degrees)."""

    center: tuple[float, float, float]
    distance: float
    azimuth: float
    elevation: float
    fov: float = FOV

    def position(self) -> np.ndarray:
        """(3,) float64 world position of the eye."""
        return np.asarray(self.center, np.float64) + self.distance * _back(self.azimuth, self.elevation)


def _back(azimuth: float, elevation: float) -> np.ndarray:
    """(3,) unit vector from the look-at point towards the eye."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def _rotation(angle_deg: float, axis: tuple[float, float, float]) -> np.ndarray:
    """(4, 4) right-handed rotation about ``axis`` (as QMatrix4x4.rotate)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    x, y, z = a
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    r = np.eye(4)
    r[:3, :3] = [
        [c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
        [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
        [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)],
    ]
    return r


def _translation(x: float, y: float, z: float) -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = (x, y, z)
    return t


def view_matrix(camera: Camera) -> np.ndarray:
    """(4, 4) float64 world -> eye matrix (column vectors), equal to pyqtgraph's ``viewMatrix()``."""
    cx, cy, cz = (float(v) for v in camera.center)
    return (_translation(0.0, 0.0, -camera.distance)
            @ _rotation(camera.elevation - 90.0, (1.0, 0.0, 0.0))
            @ _rotation(camera.azimuth + 90.0, (0.0, 0.0, -1.0))
            @ _translation(-cx, -cy, -cz))


def projection_matrix(fov: float, width: float, height: float, distance: float) -> np.ndarray:
    """(4, 4) float64 eye -> clip perspective matrix of a width x height view, equal to pyqtgraph's
    ``projectionMatrix()`` (near = distance / 1000, far = distance * 1000)."""
    near, far = distance * 0.001, distance * 1000.0
    r = near * math.tan(0.5 * math.radians(fov))
    t = r * height / max(width, 1e-9)
    p = np.zeros((4, 4))
    p[0, 0] = near / r
    p[1, 1] = near / t
    p[2, 2] = -(far + near) / (far - near)
    p[2, 3] = -2.0 * far * near / (far - near)
    p[3, 2] = -1.0
    return p


def mvp_matrix(camera: Camera, width: float, height: float) -> np.ndarray:
    """(4, 4) float64 world -> clip matrix of ``camera`` in a width x height view."""
    return projection_matrix(camera.fov, width, height, camera.distance) @ view_matrix(camera)


@dataclass(frozen=True)
class Projection:
    """Screen positions of N world points.

    xy: (N, 2) float64 pixels from the view's top-left corner (x right, y down);
    depth: (N,) float64 clip w, i.e. the distance in front of the eye along the view axis (world units);
    front: (N,) bool, the point is in front of the eye (xy is meaningless otherwise).
    """

    xy: np.ndarray
    depth: np.ndarray
    front: np.ndarray


def project(points: np.ndarray, mvp: np.ndarray, width: float, height: float) -> Projection:
    """Project (N, 3) world points with a (4, 4) world -> clip matrix into a width x height view (pixels).

    The one projection of the scene: picking, ``ScenePanel.screen_position`` and label placement use it.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    m = np.asarray(mvp, np.float64)
    clip = pts @ m[:3, :3].T + m[:3, 3]
    w = pts @ m[3, :3] + m[3, 3]
    front = w > 1e-6
    ws = np.where(front, w, 1.0)
    x = (clip[:, 0] / ws + 1.0) * 0.5 * width
    y = (1.0 - clip[:, 1] / ws) * 0.5 * height
    return Projection(np.stack([x, y], axis=1), w, front)


def focal_pixels(fov: float, width: float) -> float:
    """Pixels per world unit at eye depth 1 (an object of size s at depth w spans s * focal / w pixels)."""
    return 0.5 * width / math.tan(0.5 * math.radians(fov))


def pick(points: np.ndarray, sizes: np.ndarray, mvp: np.ndarray, fov: float, width: float, height: float,
         x: float, y: float, tolerance: float = 1.0) -> int | None:
    """Index of the cube (centre ``points`` (N, 3), edge ``sizes`` (N,), world units) under pixel (x, y),
    the nearest to the eye when several are, or None. ``tolerance`` pixels are added to each cube's half
    size so that tiny far cubes stay pickable."""
    proj = project(points, mvp, width, height)
    ws = np.where(proj.front, proj.depth, 1.0)
    radius = 0.5 * np.asarray(sizes, np.float64) * focal_pixels(fov, width) / ws + tolerance
    hit = proj.front & (np.abs(proj.xy[:, 0] - x) <= radius) & (np.abs(proj.xy[:, 1] - y) <= radius)
    candidates = np.flatnonzero(hit)
    if candidates.size == 0:
        return None
    return int(candidates[np.argmin(proj.depth[candidates])])


def frame(points: np.ndarray, azimuth: float, elevation: float, width: float, height: float,
          pads: np.ndarray | None = None, margin: float = 8.0, fov: float = FOV,
          start: np.ndarray | None = None) -> Camera:
    """The camera at (azimuth, elevation) that fits every point, plus its pixel extent, in the view.

    points: (N, 3) world points that must be visible (cube centres, label anchors, ...).
    pads: optional (N, 4) pixels (left, right, top, bottom) that the thing drawn at a point reaches
        beyond its projection (e.g. a label's rectangle around its anchor); 0 when None.
    width, height: the view in pixels (its aspect ratio decides whether width or height limits).
    margin: pixels kept free at every edge of the view.
    start: (3,) first guess of the look-at point (default: the points' bounding-box centre).

    Returns the closest camera (smallest distance) at which everything fits with the footprint centred
    in the view: distance by bisection for a given centre, then the centre moves to the middle of the
    footprint; three rounds.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    width, height = max(float(width), 1.0), max(float(height), 1.0)
    pad = np.zeros((pts.shape[0], 4)) if pads is None else np.asarray(pads, np.float64).reshape(-1, 4).copy()
    # A pad larger than most of the view cannot be honoured at any distance: cap it.
    pad[:, :2] = np.minimum(pad[:, :2], 0.35 * width)
    pad[:, 2:] = np.minimum(pad[:, 2:], 0.35 * height)
    back = _back(azimuth, elevation)
    right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    if np.linalg.norm(right) < 1e-6:  # looking straight down: pyqtgraph's screen-right for this azimuth
        az = math.radians(azimuth)
        right = np.array([-math.sin(az), math.cos(az), 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    tan_x = math.tan(math.radians(fov) / 2.0)
    tan_y = tan_x * height / width
    # Pads and margins in normalised device units (the view spans -1 .. 1 each way).
    lft = (pad[:, 0] + margin) * 2.0 / width
    rgt = (pad[:, 1] + margin) * 2.0 / width
    top = (pad[:, 2] + margin) * 2.0 / height
    bot = (pad[:, 3] + margin) * 2.0 / height
    if pts.size == 0:
        return Camera(tuple(float(v) for v in (start if start is not None else (0, 0, 0))), 10.0,
                      azimuth, elevation, fov)
    center = (pts.min(axis=0) + pts.max(axis=0)) / 2.0 if start is None else np.asarray(start, np.float64)

    def ndc(c: np.ndarray, d: float):
        rel = pts - c
        z = d - rel @ back
        if np.any(z <= 1e-3 * d):
            return None
        return (rel @ right) / (z * tan_x), (rel @ up) / (z * tan_y)

    def fits(c: np.ndarray, d: float) -> bool:
        e = ndc(c, d)
        if e is None:
            return False
        nx, ny = e
        return bool(np.all(nx - lft >= -1.0) and np.all(nx + rgt <= 1.0)
                    and np.all(ny + top <= 1.0) and np.all(ny - bot >= -1.0))

    scale = float(np.ptp(pts, axis=0).max()) or 1.0
    dist = scale
    for _ in range(4):
        lo, hi = scale * 1e-3, scale * 1e3
        for _ in range(48):
            mid = math.sqrt(lo * hi)
            if fits(center, mid):
                hi = mid
            else:
                lo = mid
        dist = hi
        e = ndc(center, dist)
        if e is None:
            break
        nx, ny = e
        cx = ((nx - lft).min() + (nx + rgt).max()) / 2.0
        cy = ((ny - bot).min() + (ny + top).max()) / 2.0
        center = center + right * cx * dist * tan_x + up * cy * dist * tan_y
    # The last recentring can push an extreme point out by a hair: back off until it fits.
    for _ in range(40):
        if fits(center, dist):
            break
        dist *= 1.01
    return Camera(tuple(float(v) for v in center), float(dist), float(azimuth), float(elevation), float(fov))
