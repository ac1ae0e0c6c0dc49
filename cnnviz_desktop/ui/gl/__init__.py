"""Batched OpenGL items of the 3D scene, one per module (as pyqtgraph keeps one item per file):

- :mod:`.boxes`: :class:`InstancedBoxes`, every neuron cube (or filter cell) in one draw call;
- :mod:`.lines`: :class:`LineBatch`, connection lines in layers, drawn beneath the maps, plus the
  picked neuron's highlight drawn over them (:class:`HighlightLines`);
- :mod:`.overlay`: :class:`OverlayItem`, labels placed in screen space each frame without collisions
  (see core.labels) and the 2D panels (status, legend, info), as cached textures;
- :mod:`.surfaces`: :class:`SurfaceMesh`, one layer's activation surfaces (every channel) in one draw call.

Only public pyqtgraph API is used (GLGraphicsItem, the view's matrices); shaders need OpenGL 3.3.
"""

from ._common import MIN_GL_VERSION, is_compatibility_profile
from .boxes import InstancedBoxes
from .lines import HighlightLines, LineBatch
from .overlay import Label, OverlayItem, render_text_panel
from .surfaces import SurfaceMesh

__all__ = [
           "MIN_GL_VERSION",
           "HighlightLines",
           "InstancedBoxes",
           "Label",
           "LineBatch",
           "OverlayItem",
           "SurfaceMesh",
           "is_compatibility_profile",
           "render_text_panel",
]
