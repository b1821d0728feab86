"""pyrender (OpenGL through EGL) backend of :class:`hawor.render.OffscreenRenderer`.

``import hawor`` sets PYOPENGL_PLATFORM=egl before pyrender loads; Mesa's llvmpipe serves it on a CPU.
"""
from __future__ import annotations

import numpy as np

if not hasattr(np, "infty"):  # pyrender 0.1.45 still uses np.infty, removed in numpy 2
    np.infty = np.inf

import pyrender  # noqa: E402

from hawor.render.scene import CV_TO_GL, Lights, Mesh, to_linear, vertex_normals  # noqa: E402

_SEG_FLAGS = pyrender.RenderFlags.SEG | pyrender.RenderFlags.SKIP_CULL_FACES
# black (background) then the seven other corners of the RGB cube
_PURE = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=np.uint8) * 255


# pyrender's delete() calls eglTerminate on the shared display, which kills every other live context
# in the process. So contexts are never deleted: released renderers wait in this pool for reuse.
_IDLE_RENDERERS: dict[tuple[int, int, str], list] = {}


def acquire_renderer(width: int, height: int, kind: str = "default") -> tuple["pyrender.OffscreenRenderer", bool]:
    """A pyrender OffscreenRenderer of this size from the pool, or a new one.

    ``kind`` keeps renderers that callers customised (e.g. their shader programs) apart.
    Returns (renderer, is_new). Give it back with :func:`release_renderer`, never ``delete()`` it.
    """
    idle = _IDLE_RENDERERS.get((width, height, kind))
    if idle:
        return idle.pop(), False
    return pyrender.OffscreenRenderer(width, height), True


def release_renderer(renderer: "pyrender.OffscreenRenderer", kind: str = "default") -> None:
    """Return a renderer from :func:`acquire_renderer` to the pool."""
    key = (int(renderer.viewport_width), int(renderer.viewport_height), kind)
    _IDLE_RENDERERS.setdefault(key, []).append(renderer)


class GLBackend:
    """Holds one EGL context and framebuffer of a fixed size (pooled per size, see above)."""

    name = "egl"

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._renderer, _ = acquire_renderer(width, height)

    def close(self) -> None:
        if self._renderer is not None:
            release_renderer(self._renderer)
            self._renderer = None

    def render(self, meshes: list[Mesh], K: np.ndarray, T_world_cam: np.ndarray, lights: Lights,
               want_masks: bool):
        """-> (sRGB premultiplied (H, W, 3) uint8, coverage (H, W) uint8, depth (H, W) float32, masks | None)."""
        scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[lights.ambient] * 3)
        nodes = [scene.add(_to_pyrender(mesh)) for mesh in meshes]
        cam_pose = T_world_cam @ CV_TO_GL
        camera = pyrender.IntrinsicsCamera(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], znear=0.01, zfar=1000.0)
        scene.add(camera, pose=cam_pose)
        for intensity, direction_cam in lights.directions():
            scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=intensity),
                      pose=cam_pose @ light_pose_gl(direction_cam))
        color, depth = self._renderer.render(scene, flags=pyrender.RenderFlags.RGBA)
        masks = self._masks(scene, nodes, depth) if want_masks else None
        # pyrender writes sRGB, and MSAA resolves edge pixels against the transparent clear colour,
        # so rgb comes premultiplied by its coverage (alpha)
        return color[..., :3], color[..., 3], depth, masks

    def _masks(self, scene, nodes, depth) -> np.ndarray:
        # Pure colours (components 0 or 255) survive MSAA edge blending: a half-covered pixel is nearer
        # black than any other pure colour. Seven per pass; meshes of other passes are drawn black.
        masks = np.zeros((len(nodes),) + depth.shape, dtype=bool)
        for start in range(0, len(nodes), len(_PURE) - 1):
            group = range(start, min(start + len(_PURE) - 1, len(nodes)))
            colors = {node: _PURE[0] for node in nodes}
            colors.update({nodes[i]: _PURE[1 + i - start] for i in group})
            seg, _ = self._renderer.render(scene, flags=_SEG_FLAGS, seg_node_map=colors)
            bits = seg > 127  # nearest pure colour; _PURE[i] has bits (i >> 2, i >> 1, i) & 1
            label = 4 * bits[..., 0] + 2 * bits[..., 1] + bits[..., 2]
            for i in group:
                masks[i] = (label == 1 + i - start) & (depth > 0)
        return masks


def _to_pyrender(mesh: Mesh) -> pyrender.Mesh:
    vertices, faces = mesh.vertices, mesh.faces
    colors = to_linear(mesh.vertex_colors())
    if not mesh.smooth:  # flat shading: every face gets its own three vertices and normal
        vertices, colors, faces = vertices[faces].reshape(-1, 3), colors[faces].reshape(-1, 3), \
            np.arange(faces.size).reshape(-1, 3)
    normals = vertex_normals(vertices, faces)
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                  metallicFactor=mesh.metallic, roughnessFactor=mesh.roughness)
    rgba = np.concatenate([colors, np.ones((len(colors), 1))], axis=1).astype(np.float32)
    primitive = pyrender.Primitive(positions=vertices.astype(np.float32), normals=normals.astype(np.float32),
                                   color_0=rgba, indices=faces.astype(np.uint32), material=material, mode=4)
    return pyrender.Mesh([primitive])


def light_pose_gl(direction_cam: np.ndarray) -> np.ndarray:
    """Pose (in the OpenGL camera frame) of a directional light shining along ``direction_cam`` (OpenCV)."""
    d = CV_TO_GL[:3, :3] @ direction_cam
    z = -d  # pyrender's directional light shines along its node's -z
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose
