"""What the renderer draws: meshes, lights, camera conversions and the result record.

Colours are sRGB in [0, 1] (uint8 is accepted and divided by 255). Both backends shade in linear
light and write sRGB (gamma 2.2), the way pyrender's PBR shader does, so a colour given here is the
colour a lit surface facing the key light shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hawor.errors import HaworInputError

GAMMA = 2.2
# OpenCV camera axes (x right, y down, z forward) -> OpenGL camera axes (x right, y up, z backward).
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Mesh:
    """A triangle mesh in world coordinates.

    Attributes:
        vertices: (V, 3) float, metres, world frame.
        faces: (F, 3) int, counter-clockwise seen from outside.
        color: (3,) flat RGB or (V, 3) per-vertex RGB, sRGB in [0, 1] or uint8.
        smooth: interpolate vertex normals (True) or shade each face flat (False).
        metallic, roughness: texture-less PBR material (pyrender backend; the fallback is Lambertian).
    """

    vertices: np.ndarray
    faces: np.ndarray
    color: np.ndarray | tuple = (0.8, 0.8, 0.8)
    smooth: bool = True
    metallic: float = 0.0
    roughness: float = 0.7

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise HaworInputError(f"mesh vertices of shape {self.vertices.shape}: expected (V, 3) metres.")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise HaworInputError(f"mesh faces of shape {self.faces.shape}: expected (F, 3) vertex indices.")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise HaworInputError(f"mesh faces index vertices 0..{self.faces.max()} but the mesh has "
                                  f"{len(self.vertices)} vertices; pass faces that match the vertices.")
        self.color = _as_unit_rgb(self.color, len(self.vertices))

    def vertex_colors(self) -> np.ndarray:
        """(V, 3) sRGB in [0, 1]."""
        if self.color.ndim == 1:
            return np.broadcast_to(self.color, self.vertices.shape)
        return self.color


@dataclass
class Lights:
    """Key + fill directional lights fixed to the camera, plus ambient light.

    Directions are the way the light travels, in the OpenCV camera frame; intensities use pyrender's
    units (a white Lambertian surface facing a light of intensity pi reflects its full colour).
    """

    key_intensity: float = 3.0
    key_direction_cam: tuple = (0.35, 0.55, 0.75)   # from upper left, behind the camera
    fill_intensity: float = 1.2
    fill_direction_cam: tuple = (-0.6, -0.2, 0.75)  # from the right, slightly below
    ambient: float = 0.25

    def directions(self) -> list[tuple[float, np.ndarray]]:
        """[(intensity, unit direction (3,) camera frame)] of the directional lights."""
        out = []
        for intensity, direction in ((self.key_intensity, self.key_direction_cam),
                                     (self.fill_intensity, self.fill_direction_cam)):
            d = np.asarray(direction, dtype=np.float64)
            out.append((float(intensity), d / np.linalg.norm(d)))
        return out


@dataclass
class RenderResult:
    """rgb (H, W, 3) uint8; depth (H, W) float32 metres along the optical axis, 0 where empty;
    masks (N, H, W) bool, one per mesh in the order given (None unless asked)."""

    rgb: np.ndarray
    depth: np.ndarray
    masks: np.ndarray | None = None
    backend: str = field(default="")


def _as_unit_rgb(color, num_vertices: int) -> np.ndarray:
    c = np.asarray(color)
    scale = 255.0 if c.dtype == np.uint8 else 1.0
    c = c.astype(np.float64) / scale
    if c.shape == (4,) or (c.ndim == 2 and c.shape[1] == 4):
        c = c[..., :3]
    if c.shape != (3,) and c.shape != (num_vertices, 3):
        raise HaworInputError(f"mesh color of shape {np.shape(color)}: expected (3,) or ({num_vertices}, 3) RGB.")
    return np.clip(c, 0.0, 1.0)


def validate_camera(K, T_world_cam) -> tuple[np.ndarray, np.ndarray]:
    """Check and return K (3, 3) and T_world_cam (4, 4) (identity when None) as float64."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise HaworInputError(f"intrinsics K of shape {K.shape}: expected a (3, 3) matrix with positive focal lengths.")
    T = np.eye(4) if T_world_cam is None else np.asarray(T_world_cam, dtype=np.float64)
    if T.shape != (4, 4):
        raise HaworInputError(f"camera pose T_world_cam of shape {T.shape}: expected (4, 4) camera-to-world.")
    return K, T


def background_image(background, height: int, width: int) -> np.ndarray:
    """A colour ((3,) floats in [0, 1] or uint8) or an (H, W, 3) image (uint8, or floats in [0, 1])
    -> (H, W, 3) uint8 sRGB."""
    bg = np.asarray(background)
    if bg.ndim == 3:
        if bg.shape != (height, width, 3):
            raise HaworInputError(f"background image of shape {bg.shape}: expected ({height}, {width}, 3) RGB.")
        if bg.dtype == np.uint8:
            return np.ascontiguousarray(bg)
        return np.clip(bg * 255.0 + 0.5, 0, 255).astype(np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = np.round(_as_unit_rgb(bg, 1) * 255.0).astype(np.uint8)
    return image


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a mesh."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def to_linear(rgb: np.ndarray) -> np.ndarray:
    return np.power(rgb, GAMMA)


def to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    return (np.power(np.clip(linear, 0.0, 1.0), 1.0 / GAMMA) * 255.0 + 0.5).astype(np.uint8)
