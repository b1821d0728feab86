"""Synthetic egocentric sequences with exact ground truth.

    from hawor.data.synthetic import generate_sequence
    paths = generate_sequence("out/seq0", seed=0, num_frames=40, width=320, height=240, fps=30.0)
    # paths["video"] -> out/seq0/video.mp4, paths["hands_world"], paths["hands_camera"], paths["camera"], ...

``generate_sequence(out_dir, seed=0, num_frames=150, width=640, height=480, fps=30.0, focal=None,
outputs=("video", "gt"), video_path=None, hand_backend="auto", progress=None, walk=0.0) -> dict[str, Path]``

- focal: pixels; None -> 600 * max(width, height) / 640 (the project's default 600 px at 640x480).
- outputs: any of "video" (H.264 mp4), "gt" (hands_world.npz, hands_camera.npz, camera.npz,
  meta.json), "joints2d" (joints2d.npz), "masks" (masks.npz), "depth" (depth.npz), "manifest"
  (frames/*.jpg + manifest.json + manifest.npz). "gt" is always written.
- video_path: where the video goes (default out_dir/video.mp4); everything else goes to out_dir.
- progress: called with 1 after every rendered frame (e.g. a tqdm bar's ``update``).
- walk: metres (0 to 1.5) the wearer walks up to the table during the clip, hands carried along
  (``camera.walking_offsets``); meta.json lists it among the camera events.

Frames: the world frame is the first camera's frame (T_world_cam[0] = I); the scene frame is
gravity-aligned (z up, floor at z = 0) and camera.npz keeps ``T_scene_world`` to get there.
Ground truth uses the result schema (docs/outputs.md / ARCHITECTURE.md): per hand h in (left, right)
``{h}_global_orient`` (N,3), ``{h}_hand_pose`` (N,45), ``{h}_betas`` (N,10), ``{h}_transl`` (N,3),
``{h}_joints`` (N,21,3), ``{h}_observed`` / ``{h}_infilled`` / ``{h}_valid`` (N,) bool.
hands_world: valid everywhere (the truth exists while a hand is out of view), observed = visible
in the frame (at least 11 of 21 joints project inside the image, in front of the camera).
hands_camera: valid = observed, NaN elsewhere. Left hands use the left hand model. Both also hold
``{h}_joints_unoccluded`` (N,21) bool: the joint projects inside the image and the rendered labels show
its own hand or forearm there (nothing in front of it; :func:`truth.joints_unoccluded`).
joints2d.npz: ``joints_2d`` (N,2,21,2) px (NaN behind the camera), ``bbox`` (N,2,4) xyxy px of the
projected hand vertices clipped to the image (NaN when not observed). masks.npz: ``labels``
(N,H,W) uint8, 0 scene, 1 left hand, 2 right hand, 3 left forearm, 4 right forearm.
depth.npz: ``depth`` (N,H,W) float16 metres along the optical axis.
manifest.json ``{"samples": [...]}`` and manifest.npz (the same, stacked): one sample per observed hand
per frame with ``img_path`` (frames/NNNNNN.jpg, relative to the manifest), ``sequence_id`` (the folder
name), ``frame_id``, ``bbox`` (4,) xyxy px, ``gt_cam_j2d`` (21,2) px, ``gt_cam_full_pose`` (48,)
camera-frame global_orient + hand_pose, ``gt_cam_betas`` (10,), ``gt_j3d_wo_trans`` (21,3) camera-frame
joints minus transl, ``img_center`` (2,), ``img_focal``, ``handedness`` (0 left, 1 right; left
hands are NOT mirrored: their parameters are for the left hand model).

Without rendering: ``simulate(seed, num_frames, width, height, fps, focal, hand_backend, walk)`` returns the whole truth
in memory; ``render_frames(sim)`` yields the frames.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hawor.data.synthetic.appearance import ForearmStub, skin_colors, skin_tone
from hawor.data.synthetic.camera import MAX_WALK_M, CameraPath, head_camera_path, walking_offsets
from hawor.data.synthetic.motion import HandMotion, HandRig, hand_motion
from hawor.data.synthetic.scene import Scene, make_scene
from hawor.data.manifest import estimate_focal
from hawor.data.synthetic.truth import (hand_boxes, joints_unoccluded, manifest_samples, project, write_manifest,
                                        write_truth)
from hawor.errors import HaworInputError
from hawor.hands import HAND_SIDES, HandModel
from hawor.hands.joints import hand_visible
from hawor.io.files import save_npz_atomic
from hawor.render.scene import vertex_normals

OUTPUTS = ("video", "gt", "joints2d", "masks", "depth", "manifest")


@dataclass
class HandTruth:
    """One hand over N frames. Scene-frame wrist/orientation/vertices for rendering, MANO parameters
    and joints in the world frame (first camera) and the camera frame; observed (N,) bool."""

    side: str
    betas: np.ndarray
    hand_pose: np.ndarray
    orient_world: np.ndarray
    transl_world: np.ndarray
    joints_world: np.ndarray
    orient_cam: np.ndarray
    transl_cam: np.ndarray
    joints_cam: np.ndarray
    vertices_scene: np.ndarray
    vertices_cam: np.ndarray
    forearm_scene: np.ndarray
    observed: np.ndarray
    colors: np.ndarray
    forearm_colors: np.ndarray
    motion: HandMotion


@dataclass
class Simulation:
    """Everything about one sequence except the pixels."""

    seed: int
    fps: float
    width: int
    height: int
    K: np.ndarray
    scene: Scene
    camera: CameraPath
    T_world_cam: np.ndarray
    T_scene_world: np.ndarray
    hands: dict
    faces: dict
    forearm_faces: np.ndarray
    lighting: object
    post: dict
    hand_model: str


@functools.lru_cache(maxsize=4)
def _hand_model(side: str, backend: str) -> HandModel:
    return HandModel(side, backend=backend).eval()


def default_focal(width: int, height: int) -> float:
    """600 px at 640x480, scaled with the long side (the rule training assumes for samples without img_focal)."""
    return estimate_focal(width, height)


def _check(num_frames, width, height, fps, focal, outputs, walk=0.0) -> None:
    if int(num_frames) < 2:
        raise HaworInputError(f"num_frames={num_frames}: a sequence needs at least 2 frames.")
    if int(width) < 32 or int(height) < 32:
        raise HaworInputError(f"size {width}x{height}: width and height must be at least 32 pixels.")
    if not fps > 0:
        raise HaworInputError(f"fps={fps}: must be positive (e.g. 30).")
    if focal is not None and not focal > 0:
        raise HaworInputError(f"focal={focal}: must be positive pixels, or None for the default.")
    if not 0 <= walk <= MAX_WALK_M:
        raise HaworInputError(f"walk={walk}: must be 0 to {MAX_WALK_M} metres (the room's depth in front of the "
                              "table); 0 for a wearer who stays at the table.")
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise HaworInputError(f"outputs {sorted(unknown)}: unknown; choose from {OUTPUTS}.")


def simulate(seed: int = 0, num_frames: int = 150, width: int = 640, height: int = 480, fps: float = 30.0,
             focal: float | None = None, hand_backend: str = "auto", walk: float = 0.0) -> Simulation:
    """Scene, camera path, hand motion and ground truth of one sequence (no rendering); ``walk``: metres
    the wearer walks up to the table (:func:`hawor.data.synthetic.camera.walking_offsets`)."""
    _check(num_frames, width, height, fps, focal, (), walk)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(6)]
    rng_scene, rng_camera, rng_hands, rng_skin, rng_light, rng_post = streams
    from hawor.data.synthetic.render import Lighting  # pyrender loads only when a sequence is made

    focal = default_focal(width, height) if focal is None else float(focal)
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    scene = make_scene(rng_scene)
    camera = head_camera_path(rng_camera, scene, int(num_frames), float(fps))
    t = np.arange(int(num_frames)) / float(fps)
    carry, bob = walking_offsets(t, float(walk))
    if walk:
        camera.T_scene_cam[:, :3, 3] += carry + bob
        camera.events.append(("walk", 0.2 * t[-1], 0.8 * t[-1]))
    T_scene_world = camera.T_scene_cam[0].copy()
    T_world_scene = np.linalg.inv(T_scene_world)
    T_world_cam = T_world_scene[None] @ camera.T_scene_cam
    duration = (num_frames - 1) / fps
    betas = np.clip(rng_hands.normal(0, 0.6, 10), -1.5, 1.5)
    meet = None
    if duration >= 4.0 and rng_hands.random() < 0.6:
        start = rng_hands.uniform(0.5, 0.75) * duration
        meet = (start, start + rng_hands.uniform(0.6, 1.0))
    leave = {"left": rng_hands.uniform(0.1, 0.3) * duration, "right": rng_hands.uniform(0.3, 0.5) * duration} \
        if duration >= 3.0 else {"left": None, "right": None}
    tone = skin_tone(rng_skin)
    hands, faces, backend = {}, {}, "open"
    stub = ForearmStub()
    for side in HAND_SIDES:
        model = _hand_model(side, hand_backend)
        backend = model.backend
        hands[side] = _hand_truth(side, model, betas, tone, scene, camera, T_world_scene, K, width, height,
                                  fps, meet, leave[side], rng_hands, rng_skin, stub, carry)
        faces[side] = model.faces
    post = {"blur_sigma": float(rng_post.uniform(0.4, 0.8)), "noise_sigma": float(rng_post.uniform(1.5, 3.0)),
            "noise_seed": int(rng_post.integers(0, 2 ** 31))}
    return Simulation(int(seed), float(fps), int(width), int(height), K, scene, camera, T_world_cam, T_scene_world,
                      hands, faces, stub.faces(), Lighting.random(rng_light), post, backend)


def _hand_truth(side, model: HandModel, betas, tone, scene, camera, T_world_scene, K, width, height, fps, meet,
                leave_at, rng_hands, rng_skin, stub: ForearmStub, carry: np.ndarray) -> HandTruth:
    betas_t = torch.as_tensor(betas, dtype=torch.float32)
    with torch.no_grad():
        rest = model(torch.zeros(3), torch.zeros(45), betas_t)
        wrist_rest = model.wrist_rest(betas_t).double().numpy()
    rig = HandRig.from_rest_joints(side, rest.joints.double().numpy())
    n = len(camera.T_scene_cam)
    motion = hand_motion(rng_hands, rig, scene, n, fps, meet=meet, leave_at=leave_at)
    motion = replace(motion, wrist=motion.wrist + carry, elbow=motion.elbow + carry)  # the arms go with the body
    # MANO rotates about the rest wrist: wrist = transl + wrist_rest, so transl = wrist - wrist_rest.
    R_world = T_world_scene[:3, :3] @ motion.orientation
    wrist_world = motion.wrist @ T_world_scene[:3, :3].T + T_world_scene[:3, 3]
    T_cam_world = np.linalg.inv(T_world_scene[None] @ camera.T_scene_cam)
    R_cam = T_cam_world[:, :3, :3] @ R_world
    wrist_cam = np.einsum("nij,nj->ni", T_cam_world[:, :3, :3], wrist_world) + T_cam_world[:, :3, 3]
    hand_pose = motion.hand_pose
    with torch.no_grad():
        out = model(torch.as_tensor(motion.orientation, dtype=torch.float32),
                    torch.as_tensor(hand_pose, dtype=torch.float32), betas_t.expand(n, 10),
                    torch.as_tensor(motion.wrist - wrist_rest, dtype=torch.float32))
    vertices_scene = out.vertices.double().numpy()
    joints_scene = out.joints.double().numpy()
    T_cam_scene = np.linalg.inv(camera.T_scene_cam)
    joints_world = joints_scene @ T_world_scene[:3, :3].T + T_world_scene[:3, 3]
    joints_cam = np.einsum("nij,nkj->nki", T_cam_scene[:, :3, :3], joints_scene) + T_cam_scene[:, None, :3, 3]
    vertices_cam = np.einsum("nij,nkj->nki", T_cam_scene[:, :3, :3], vertices_scene) + T_cam_scene[:, None, :3, 3]
    observed = hand_visible(project(joints_cam, K), (width, height))
    direction = motion.elbow - motion.wrist
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    thumb_axis = motion.orientation @ rig.frame[:, 2]
    forearm = stub.vertices(motion.wrist, direction, thumb_axis)
    rest_vertices = rest.vertices.double().numpy()
    colors = skin_colors(rng_skin, tone, rest_vertices, vertex_normals(rest_vertices, model.faces), rig.frame[:, 1])
    shade = 0.95 + 0.04 * np.sin(np.arange(forearm.shape[1]) * 1.7)  # faint mottling along the stub
    forearm_colors = np.clip(tone[None] * shade[:, None], 0, 1)
    return HandTruth(side, betas.copy(), hand_pose, Rotation.from_matrix(R_world).as_rotvec(),
                     wrist_world - wrist_rest, joints_world, Rotation.from_matrix(R_cam).as_rotvec(),
                     wrist_cam - wrist_rest, joints_cam, vertices_scene, vertices_cam, forearm, observed, colors,
                     forearm_colors, motion)



class _Grain:
    """Sensor noise: four pre-drawn Gaussian fields, read at a random offset per frame (cheap, deterministic)."""

    def __init__(self, seed: int, sigma: float, height: int, width: int, num_frames: int, margin: int = 16):
        rng = np.random.default_rng(seed)
        fields = np.round(rng.standard_normal((4, height + margin, width + margin, 3), np.float32) * sigma)
        # positive and negative parts as uint8, applied with OpenCV's saturating add/subtract (fast)
        self.up = np.clip(fields, 0, 255).astype(np.uint8)
        self.down = np.clip(-fields, 0, 255).astype(np.uint8)
        self.offsets = rng.integers(0, margin, (num_frames, 2))
        self.height, self.width = height, width

    def __call__(self, index: int, image: np.ndarray) -> np.ndarray:
        dy, dx = self.offsets[index]
        window = (index % 4, slice(dy, dy + self.height), slice(dx, dx + self.width))
        return cv2.subtract(cv2.add(image, self.up[window]), self.down[window])


def render_frames(sim: Simulation, want_labels: bool = False, indices: Iterable[int] | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Yield (rgb (H, W, 3) uint8 with blur and noise, depth (H, W) float32 metres, labels or None) for
    every frame, or for the given frame indices."""
    from hawor.data.synthetic.render import SequenceRenderer

    renderer = SequenceRenderer(sim.width, sim.height, sim.K, sim.scene, sim.lighting)
    grain = _Grain(sim.post["noise_seed"], sim.post["noise_sigma"], sim.height, sim.width, len(sim.T_world_cam))
    hands = [sim.hands[side] for side in HAND_SIDES]
    try:
        for i in range(len(sim.T_world_cam)) if indices is None else indices:
            parts = [(h.vertices_scene[i], sim.faces[h.side], h.colors) for h in hands]
            parts += [(h.forearm_scene[i], sim.forearm_faces, h.forearm_colors) for h in hands]
            rgb, depth, labels = renderer.render(sim.camera.T_scene_cam[i], parts, want_labels)
            rgb = cv2.GaussianBlur(rgb, (0, 0), sim.post["blur_sigma"])
            yield grain(i, rgb), depth, labels
    finally:
        renderer.close()


def generate_sequence(out_dir, seed: int = 0, num_frames: int = 150, width: int = 640, height: int = 480,
                      fps: float = 30.0, focal: float | None = None, outputs: Iterable[str] = ("video", "gt"),
                      video_path=None, hand_backend: str = "auto",
                      progress: Callable[[int], None] | None = None, walk: float = 0.0) -> dict[str, Path]:
    """Render one synthetic sequence and write it with its ground truth (see the module docstring).

    Returns the written paths by name: video, hands_world, hands_camera, camera, meta, and when asked
    joints2d, masks, depth, frames (folder), manifest_json, manifest_npz.
    """
    from hawor.io.video import VideoWriter

    outputs = set(outputs) | {"gt"}
    _check(num_frames, width, height, fps, focal, outputs, walk)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise HaworInputError(f"output folder {out_dir}: exists and is a file; pass a folder path.")
    out_dir.mkdir(parents=True, exist_ok=True)
    sim = simulate(seed, num_frames, width, height, fps, focal, hand_backend, walk)
    paths: dict[str, Path] = {}
    n = int(num_frames)
    depth = np.zeros((n, height, width), np.float16) if "depth" in outputs else None
    labels = np.zeros((n, height, width), np.uint8) if "masks" in outputs else None
    unoccluded = np.zeros((n, len(HAND_SIDES), 21), bool)
    frames_dir = out_dir / "frames"
    image_paths = [f"frames/{i:06d}.jpg" for i in range(n)]
    writer = None
    if "video" in outputs:
        paths["video"] = Path(video_path) if video_path is not None else out_dir / "video.mp4"
        writer = VideoWriter(paths["video"], fps, (width, height))
    if "manifest" in outputs:
        frames_dir.mkdir(exist_ok=True)
        paths["frames"] = frames_dir
    try:
        for i, (rgb, frame_depth, frame_labels) in enumerate(render_frames(sim, want_labels=True)):
            unoccluded[i] = joints_unoccluded(sim, i, frame_labels)
            if writer is not None:
                writer.write(rgb)
            if depth is not None:
                depth[i] = frame_depth
            if labels is not None:
                labels[i] = frame_labels
            if "manifest" in outputs:
                cv2.imwrite(str(out_dir / image_paths[i]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
            if progress is not None:
                progress(1)
    except BaseException:
        if writer is not None:
            writer.close(ok=False)
        raise
    if writer is not None:
        writer.close()
    paths.update(write_truth(sim, out_dir, unoccluded))
    if "joints2d" in outputs:
        joints_2d = np.stack([project(sim.hands[s].joints_cam, sim.K) for s in HAND_SIDES], axis=1)
        paths["joints2d"] = save_npz_atomic(out_dir / "joints2d.npz", joints_2d=joints_2d, bbox=hand_boxes(sim))
    if labels is not None:
        paths["masks"] = save_npz_atomic(out_dir / "masks.npz", labels=labels,
                                         label_names=np.array(["scene", "left_hand", "right_hand", "left_forearm",
                                                               "right_forearm"]))
    if depth is not None:
        paths["depth"] = save_npz_atomic(out_dir / "depth.npz", depth=depth)
    if "manifest" in outputs:
        paths.update(write_manifest(manifest_samples(sim, image_paths, out_dir.name), out_dir))
    return paths
