"""The two result videos: a world view (hands, camera path and frustum, backdrop; following the wearer
or from one overview point) and a camera view (hands over the input frames). Infilled hands are drawn in
a paler tint of the hand's colour.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from hawor.errors import HaworInputError
from hawor.hands import HandModel
from hawor.io.video import VideoWriter
from hawor.render import Mesh, OffscreenRenderer
from hawor.vis.objects import (HAND_COLORS, checkerboard, checkerboard_image, follow_cameras, frustum,
                               overview_camera, tube)
from hawor.world.assemble import hand_joints, posed_hands
from hawor.world.sequence import HandSequence

MAX_RENDER_SIDE = 1280  # world views of 4K videos are rendered at most this large (speed)
CHUNK = 64  # frames whose meshes are posed in one batch
FRUSTUM_DEPTH = 0.06  # metres, size of the camera marker
VIEWPOINTS = ("follow", "overview")
FOLLOW_SMOOTHING_S = 0.5  # Gaussian sigma of the follow viewpoint: steadies quick glances and turns
TRAIL_S = 3.0  # seconds of camera path drawn behind the wearer in the follow view
DEFAULT_HAND_DEPTH = 0.45  # metres from the camera, when no hand is valid


def render_size(image_size: tuple[int, int], max_side: int = MAX_RENDER_SIDE) -> tuple[int, int]:
    """(W, H) scaled down so the longer side is at most ``max_side``, both even."""
    w, h = image_size
    s = min(1.0, max_side / max(w, h))
    return int(round(w * s / 2) * 2), int(round(h * s / 2) * 2)


def hand_meshes_per_frame(hands: dict[str, HandSequence], models: dict[str, HandModel],
                          frames: np.ndarray) -> Iterator[list[Mesh]]:
    """For each frame index, the valid hands as coloured meshes (batched posing)."""
    for start in range(0, len(frames), CHUNK):
        block = frames[start:start + CHUNK]
        posed = {side: posed_hands(seq, models[side], block)[0] for side, seq in hands.items()}
        for k, t in enumerate(block):
            meshes = []
            for side, seq in hands.items():
                if seq.valid[t]:
                    color = np.asarray(HAND_COLORS[side])
                    if seq.infilled[t]:
                        color = 0.5 * color + 0.5
                    meshes.append(Mesh(posed[side][k], models[side].faces, color=color))
            yield meshes


class WorldView:
    """Renders world-view frames: the hands, the wearer's camera (frustum) and its path, a backdrop.

    Viewpoints: "follow" (default) rides behind and above the wearer's head, smoothed over
    :data:`FOLLOW_SMOOTHING_S`, and draws the last :data:`TRAIL_S` seconds of the camera path, so the
    hands stay large however far the wearer walks; "overview" is one fixed viewpoint that keeps every
    hand and the whole camera path in frame (hands get small when the wearer moves a lot).

    Args:
        hands: world-frame sequences per side; models: hand models per side.
        T_world_cam: (N, 4, 4) camera-to-world poses; K: (3, 3) the video's intrinsics.
        image_size: the video's (W, H); the view is rendered at :func:`render_size` of it.
        viewpoint: one of :data:`VIEWPOINTS`; fps: the video's frame rate (for the smoothing and trail).
    Attributes:
        T_world_view: (N, 4, 4) the viewpoint of each frame (all equal for "overview").
    """

    def __init__(self, hands: dict[str, HandSequence], models: dict[str, HandModel], T_world_cam: np.ndarray,
                 K: np.ndarray, image_size: tuple[int, int], backend: str = "auto", viewpoint: str = "follow",
                 fps: float = 30.0):
        if viewpoint not in VIEWPOINTS:
            raise HaworInputError(f"world viewpoint {viewpoint!r}: choose one of {', '.join(VIEWPOINTS)}.")
        self.hands, self.models, self.T_world_cam, self.K = hands, models, T_world_cam, K
        self.image_size, self.viewpoint = image_size, viewpoint
        self.trail = max(2, int(round(TRAIL_S * fps)))
        self.size = render_size(image_size)
        scale = self.size[0] / image_size[0]
        self.view_K = np.diag([scale * K[0, 0], scale * K[1, 1], 1.0])
        self.view_K[:2, 2] = np.asarray(self.size) / 2
        frames, joints = self._hand_samples()
        points = joints.reshape(-1, 3)
        cams = T_world_cam[:, :3, 3]
        self.board = self._backdrop(np.concatenate([points, cams]))
        self.renderer = OffscreenRenderer(*self.size, backend=backend)
        if viewpoint == "follow":
            self.T_world_view = follow_cameras(T_world_cam, self._hand_depth(frames, joints), FOLLOW_SMOOTHING_S * fps,
                                               self._hands_centre())
            return
        every = np.unique(np.linspace(0, len(T_world_cam) - 1, 50).round().astype(int))
        frusta = np.concatenate([frustum(T_world_cam[t], K, image_size, FRUSTUM_DEPTH).vertices for t in every])
        T_view = overview_camera(points, self.view_K[0, 0], self.size, keep=np.concatenate([cams, frusta]))
        self.T_world_view = np.broadcast_to(T_view, (len(T_world_cam), 4, 4))
        path = tube(cams)
        # The viewpoint is fixed and the backdrop lies behind everything, so backdrop and camera path
        # are rendered once and the moving parts composited over them (halves the cost per frame).
        self.background = self.renderer.render([checkerboard(*self.board)] + ([path] if path is not None else []),
                                               self.view_K, T_view, background=(1.0, 1.0, 1.0)).rgb

    def _hand_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame indices (P,) and joints (P, 21, 3) world frame of both hands over (a subsample of)
        the valid frames."""
        step = max(1, len(self.T_world_cam) // 200)
        frames, joints = [np.zeros(0, np.int64)], [np.zeros((0, 21, 3))]
        for side, seq in self.hands.items():
            valid = np.flatnonzero(seq.valid)[::step][:400]
            if len(valid):
                frames.append(valid)
                joints.append(posed_hands(seq, self.models[side], valid)[1])
        return np.concatenate(frames), np.concatenate(joints)

    def _hands_centre(self) -> np.ndarray:
        """(N, 3) world frame: the mean of the valid hands' joints per frame, NaN where none is valid."""
        joints = np.stack([hand_joints(seq, self.models[side]) for side, seq in self.hands.items()])
        counts = np.isfinite(joints).all(-1).sum(axis=(0, 2))
        mean = np.nansum(joints, axis=(0, 2)) / np.maximum(counts, 1)[:, None]
        return np.where(counts[:, None] > 0, mean, np.nan)

    def _hand_depth(self, frames: np.ndarray, joints: np.ndarray) -> float:
        """Median depth (metres, along the optical axis) of the hands in the wearer's camera."""
        T = self.T_world_cam[frames]
        depth = np.einsum("pkj,pj->pk", joints - T[:, None, :3, 3], T[:, :3, 2])
        depth = depth[np.isfinite(depth)]
        return float(np.clip(np.median(depth), 0.2, 1.0)) if len(depth) else DEFAULT_HAND_DEPTH

    def _backdrop(self, points: np.ndarray) -> tuple:
        """Checkerboard facing the first camera, beyond everything (2 m ahead, as the official viewer):
        the arguments of :func:`checkerboard` (centre, axis u, axis v, half size)."""
        finite = points[np.isfinite(points).all(1)]
        depth = max(2.0, float(np.percentile(finite[:, 2], 98)) + 0.5)
        center = np.array([*np.median(finite[:, :2], axis=0), depth])
        half = max(4.0, 2.5 * float(np.ptp(finite[:, :2], axis=0).max()))
        return center, np.array([0, 1.0, 0]), np.array([1.0, 0, 0]), half  # faces -z

    def _moving_parts(self, t: int) -> tuple[list[Mesh], np.ndarray]:
        """The frame's camera marker (and, following, its recent path) and the image they go over."""
        parts = [frustum(self.T_world_cam[t], self.K, self.image_size, FRUSTUM_DEPTH)]
        if self.viewpoint == "overview":
            return parts, self.background
        trail = tube(self.T_world_cam[max(0, t - self.trail):t + 1, :3, 3])
        background = checkerboard_image(*self.board, self.view_K, self.T_world_view[t], self.size)
        return parts + ([trail] if trail is not None else []), background

    def frames(self, indices: Iterable[int] | None = None) -> Iterator[np.ndarray]:
        """RGB uint8 (H, W, 3) world-view frames, one per video frame index."""
        indices = np.arange(len(self.T_world_cam)) if indices is None else np.asarray(list(indices))
        for t, hands in zip(indices, hand_meshes_per_frame(self.hands, self.models, indices)):
            parts, background = self._moving_parts(t)
            yield self.renderer.render(parts + hands, self.view_K, self.T_world_view[t], background=background).rgb

    def close(self) -> None:
        self.renderer.close()


class CameraView:
    """Renders the hands (camera frame) over the input frames with the video's intrinsics; videos
    larger than :data:`MAX_RENDER_SIDE` are shown downscaled."""

    def __init__(self, hands_cam: dict[str, HandSequence], models: dict[str, HandModel], K: np.ndarray,
                 image_size: tuple[int, int], backend: str = "auto"):
        self.hands, self.models, self.image_size = hands_cam, models, image_size
        self.size = render_size(image_size)
        self.K = np.diag([self.size[0] / image_size[0], self.size[1] / image_size[1], 1.0]) @ K
        self.renderer = OffscreenRenderer(*self.size, backend=backend)

    def frames(self, video_frames: Iterable[np.ndarray], indices: Iterable[int]) -> Iterator[np.ndarray]:
        """Overlay on each (H, W, 3) uint8 frame the hands of the matching frame index."""
        indices = np.asarray(list(indices))
        for frame, hands in zip(video_frames, hand_meshes_per_frame(self.hands, self.models, indices)):
            if tuple(self.size) != tuple(self.image_size):
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
            yield self.renderer.render(hands, self.K, None, background=frame).rgb if hands else frame

    def close(self) -> None:
        self.renderer.close()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int],
                total: int | None = None, desc: str = "render") -> int:
    """Encode RGB frames to H.264 (atomically); returns the number of frames written.

    Frame k is encoded in a second thread while frame k + 1 is rendered (libx264 releases the GIL);
    rendering stays on the calling thread, which owns the GL context.
    """
    with VideoWriter(path, fps, size) as writer, ThreadPoolExecutor(1) as encoder:
        pending = None
        for frame in tqdm(frames, total=total, desc=desc, unit="frame", leave=False):
            frame = np.array(frame)  # renderers reuse their output buffer
            if pending is not None:
                pending.result()
            pending = encoder.submit(writer.write, frame)
        if pending is not None:
            pending.result()
        return writer.frames_written
