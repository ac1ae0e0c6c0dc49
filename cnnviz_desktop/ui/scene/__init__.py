"""The 3D network scene (see :mod:`.panel`): ``from .scene import ScenePanel`` keeps working."""

from ...core.camera import FOV, PRESET_VIEWS
from ...core.scene_style import CONNECTION_MODES, DEFAULT_LINE_BUDGET
from .panel import ScenePanel
from .view import gl_unavailable_reason

__all__ = ["CONNECTION_MODES", "DEFAULT_LINE_BUDGET", "FOV", "PRESET_VIEWS", "ScenePanel", "gl_unavailable_reason"]
