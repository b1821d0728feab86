"""Frame rendering for the synthetic sequences: one persistent pyrender scene per sequence.

hawor.render.OffscreenRenderer draws untextured meshes and rebuilds its scene per call; a synthetic
sequence needs image textures everywhere and runs at video rate, so the static room is uploaded
once here and only the hand and forearm meshes change from frame to frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hawor.render.gl_backend import acquire_renderer, light_pose_gl, release_renderer  # first: numpy-2 shim
from hawor.render.scene import CV_TO_GL, vertex_normals

import pyrender  # noqa: E402  (after the shim)

from hawor.data.synthetic.scene import Scene, TexturedMesh  # noqa: E402
from hawor.data.synthetic.shading import LambertPrograms  # noqa: E402
from hawor.errors import HaworInputError  # noqa: E402

# Segmentation colours: background / static scene black, then one pure colour per dynamic part.
PART_LABELS = ("left_hand", "right_hand", "left_forearm", "right_forearm")
_SEG_COLORS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)


def _nearest_label_of_corner() -> np.ndarray:
    """Label of the nearest segmentation colour for each corner of the RGB cube (index r + 2 g + 4 b)."""
    corners = np.array([[(i & 1) * 255, (i >> 1 & 1) * 255, (i >> 2 & 1) * 255] for i in range(8)], np.int32)
    return ((corners[:, None] - _SEG_COLORS[None].astype(np.int32)) ** 2).sum(-1).argmin(1).astype(np.uint8)


_CORNER_LABELS = _nearest_label_of_corner()


def seg_labels(seg: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 segmentation render -> (H, W) uint8 labels (0 = scene, k = PART_LABELS[k - 1]).

    The colours are corners of the RGB cube and the single-sampled render draws them pure, so each
    channel is rounded to 0 or 255 and the corner looked up (a corner outside the palette, which an
    anti-aliased edge could give, takes its nearest colour). The palette distance of every pixel gave
    the same labels on rendered clips at 0.1 s per 640x480 frame, as long as rendering it."""
    bits = seg > 127
    return _CORNER_LABELS[bits[..., 0] + 2 * bits[..., 1].astype(np.uint8) + 4 * bits[..., 2].astype(np.uint8)]


@dataclass
class Lighting:
    """Scene-fixed soft lighting: key and fill directional lights (travel directions, scene frame) + ambient."""

    key_direction: np.ndarray
    key_intensity: float
    fill_direction: np.ndarray
    fill_intensity: float
    ambient: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Lighting":
        key = np.array([rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.6), -1.0])
        fill = np.array([rng.uniform(-1, 1), rng.uniform(-1.0, -0.3), -rng.uniform(0.2, 0.8)])
        return cls(key / np.linalg.norm(key), float(rng.uniform(2.6, 3.6)), fill / np.linalg.norm(fill),
                   float(rng.uniform(0.9, 1.5)), float(rng.uniform(0.3, 0.45)))


def _light_pose(direction: np.ndarray) -> np.ndarray:
    """Pose of a pyrender directional light travelling along ``direction`` (scene frame)."""
    # gl_backend builds the pose from an OpenCV-camera direction it maps through CV_TO_GL (an involution)
    return light_pose_gl(CV_TO_GL[:3, :3] @ direction)


def _textured(mesh: TexturedMesh) -> pyrender.Mesh:
    normals = vertex_normals(mesh.vertices.astype(np.float64), mesh.faces)
    sampler = pyrender.Sampler(magFilter=9729, minFilter=9987, wrapS=10497, wrapT=10497)  # linear, mipmaps, repeat
    texture = pyrender.Texture(source=mesh.texture, source_channels="RGB", sampler=sampler)
    material = pyrender.MetallicRoughnessMaterial(baseColorTexture=texture, metallicFactor=0.0,
                                                  roughnessFactor=mesh.roughness)
    primitive = pyrender.Primitive(positions=mesh.vertices.astype(np.float32), normals=normals.astype(np.float32),
                                   texcoord_0=mesh.uv.astype(np.float32), indices=mesh.faces.astype(np.uint32),
                                   material=material, mode=4)
    return pyrender.Mesh([primitive])


def _colored(vertices: np.ndarray, faces: np.ndarray, colors_linear: np.ndarray, roughness: float) -> pyrender.Mesh:
    normals = vertex_normals(vertices, faces)
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0,
                                                  roughnessFactor=roughness)
    rgba = np.concatenate([colors_linear, np.ones((len(colors_linear), 1))], axis=1).astype(np.float32)
    primitive = pyrender.Primitive(positions=vertices.astype(np.float32), normals=normals.astype(np.float32),
                                   color_0=rgba, indices=faces.astype(np.uint32), material=material, mode=4)
    return pyrender.Mesh([primitive])


class _KeyedNode(pyrender.Node):
    """A node hashed by a fixed key. pyrender draws meshes, and passes lights to the shader, in the
    iteration order of sets of nodes; with the default id-based hashes that order changes from run to
    run (the winner between equal depths where two meshes touch; the order in which the two lights'
    shading is summed, which rounded one pixel of a frame one grey level differently in about one
    process in four), and identical seeds would give different pixels."""

    def __init__(self, key: int, **kwargs):
        super().__init__(**kwargs)
        self._key = key

    def __hash__(self) -> int:
        return self._key


class SequenceRenderer:
    """Renders one scene from moving cameras with moving hands (scene frame, OpenCV camera poses).

    Args:
        width, height: image size, pixels.
        K: (3, 3) intrinsics.
        scene: the static textured scene.
        lighting: scene-fixed lights.
    """

    def __init__(self, width: int, height: int, K: np.ndarray, scene: Scene, lighting: Lighting):
        try:
            self._renderer, is_new = acquire_renderer(width, height, kind="lambert")
        except Exception as exc:  # no EGL / GL driver: any failure here means "no context"
            raise HaworInputError(f"synthetic rendering needs OpenGL through EGL ({type(exc).__name__}: {exc}); "
                                  "install Mesa's EGL (libegl1, libgl1-mesa-dri) and keep "
                                  "PYOPENGL_PLATFORM=egl (import hawor sets it).") from exc
        if is_new:
            self._renderer._renderer._program_cache = LambertPrograms()  # pyrender has no public hook for shaders
        self.scene = pyrender.Scene(bg_color=[0.5, 0.5, 0.5, 1.0], ambient_light=[lighting.ambient] * 3)
        self._static = [_KeyedNode(k, mesh=_textured(mesh)) for k, mesh in enumerate(scene.meshes)]
        for node in self._static:
            self.scene.add_node(node)
        camera = pyrender.IntrinsicsCamera(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], znear=0.02, zfar=30.0)
        self._camera = self.scene.add(camera)
        for k, (direction, intensity) in enumerate(((lighting.key_direction, lighting.key_intensity),
                                                    (lighting.fill_direction, lighting.fill_intensity))):
            light = pyrender.DirectionalLight(color=np.ones(3), intensity=intensity)
            self.scene.add_node(_KeyedNode(500 + k, light=light, matrix=_light_pose(direction)))
        self._dynamic: list = []
        self._first_render_single_sampled()

    def _first_render_single_sampled(self) -> None:
        # pyrender allocates 4x multisampled buffers on its first render; llvmpipe spends over half of a
        # frame on them, and the frames are blurred afterwards anyway, so allocate them single-sampled.
        import pyrender.renderer as gl_module

        original = gl_module.glRenderbufferStorageMultisample
        gl_module.glRenderbufferStorageMultisample = lambda target, samples, fmt, w, h: original(target, 0, fmt, w, h)
        try:
            self._renderer.render(self.scene)
        finally:
            gl_module.glRenderbufferStorageMultisample = original

    def render(self, T_scene_cam: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
               want_labels: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Render one frame.

        Args:
            T_scene_cam: (4, 4) camera-to-scene pose, OpenCV axes.
            parts: [(vertices (V, 3) scene frame, faces (F, 3), sRGB colours (V, 3))] in PART_LABELS order.
            want_labels: also return the part label image.
        Returns:
            rgb (H, W, 3) uint8, depth (H, W) float32 metres (z along the optical axis), and labels
            (H, W) uint8 (0 = scene, k = PART_LABELS[k - 1]) or None.
        """
        for node in self._dynamic:
            self.scene.remove_node(node)
        self._dynamic = [_KeyedNode(1000 + k, mesh=_colored(v, f, np.square(c), 0.55))  # colours: gamma 2
                         for k, (v, f, c) in enumerate(parts)]
        for node in self._dynamic:
            self.scene.add_node(node)
        self.scene.set_pose(self._camera, T_scene_cam @ CV_TO_GL)
        rgb, depth = self._renderer.render(self.scene)
        labels = self._labels() if want_labels else None
        return rgb, depth.astype(np.float32), labels

    def _labels(self) -> np.ndarray:
        colors = {node: _SEG_COLORS[0] for node in self._static}
        colors.update({node: _SEG_COLORS[1 + k] for k, node in enumerate(self._dynamic)})
        seg, _ = self._renderer.render(self.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=colors)
        return seg_labels(seg)

    def close(self) -> None:
        if self._renderer is not None:
            release_renderer(self._renderer, kind="lambert")
            self._renderer = None
