"""Offscreen mesh rendering (bottom layer): pyrender through EGL, or a pure-numpy rasteriser.

See :class:`OffscreenRenderer` for the API; :class:`Mesh` and :class:`Lights` describe the scene.
"""
from hawor.render.renderer import BACKENDS, OffscreenRenderer
from hawor.render.scene import Lights, Mesh, RenderResult

__all__ = ["BACKENDS", "Lights", "Mesh", "OffscreenRenderer", "RenderResult"]
