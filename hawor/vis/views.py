"""The two result videos: a world view (hands, camera path and frustum, backdrop) and a camera view
(hands over the input frames). Infilled hands are drawn in a paler tint of the hand's colour.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from hawor.hands import HandModel
from hawor.io.video import VideoWriter
from hawor.render import Mesh, OffscreenRenderer
from hawor.vis.objects import HAND_COLORS, checkerboard, frustum, overview_camera, tube
from hawor.world.assemble import posed_hands
from hawor.world.sequence import HandSequence

MAX_RENDER_SIDE = 1280  # world views of 4K videos are rendered at most this large (speed)
CHUNK = 64  # frames whose meshes are posed in one batch
FRUSTUM_DEPTH = 0.06  # metres, size of the camera marker


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
    """Renders world-view frames from a fixed viewpoint that keeps hands and camera path in frame.

    Args:
        hands: world-frame sequences per side; models: hand models per side.
        T_world_cam: (N, 4, 4) camera-to-world poses; K: (3, 3) the video's intrinsics.
        image_size: the video's (W, H); the view is rendered at :func:`render_size` of it.
    """

    def __init__(self, hands: dict[str, HandSequence], models: dict[str, HandModel], T_world_cam: np.ndarray,
                 K: np.ndarray, image_size: tuple[int, int], backend: str = "auto"):
        self.hands, self.models, self.T_world_cam, self.K = hands, models, T_world_cam, K
        self.image_size = image_size
        self.size = render_size(image_size)
        scale = self.size[0] / image_size[0]
        self.view_K = np.diag([scale * K[0, 0], scale * K[1, 1], 1.0])
        self.view_K[:2, 2] = np.asarray(self.size) / 2
        points = self._hand_points()
        cams = T_world_cam[:, :3, 3]
        every = np.unique(np.linspace(0, len(T_world_cam) - 1, 50).round().astype(int))
        frusta = np.concatenate([frustum(T_world_cam[t], K, image_size, FRUSTUM_DEPTH).vertices for t in every])
        self.T_world_view = overview_camera(points, self.view_K[0, 0], self.size, keep=np.concatenate([cams, frusta]))
        static = [self._backdrop(np.concatenate([points, cams]))]
        path = tube(T_world_cam[:, :3, 3])
        if path is not None:
            static.append(path)
        self.renderer = OffscreenRenderer(*self.size, backend=backend)
        # The viewpoint is fixed and the backdrop lies behind everything, so backdrop and camera path
        # are rendered once and the moving parts composited over them (halves the cost per frame).
        self.background = self.renderer.render(static, self.view_K, self.T_world_view, background=(1.0, 1.0, 1.0)).rgb

    def _hand_points(self) -> np.ndarray:
        """Joints of both hands over (a subsample of) the valid frames, (P, 3) world frame."""
        step = max(1, len(self.T_world_cam) // 200)
        parts = [np.zeros((0, 3))]
        for side, seq in self.hands.items():
            frames = np.flatnonzero(seq.valid)[::step]
            if len(frames):
                parts.append(posed_hands(seq, self.models[side], frames[:400])[1].reshape(-1, 3))
        return np.concatenate(parts)

    def _backdrop(self, points: np.ndarray) -> Mesh:
        """Checkerboard facing the first camera, beyond everything (2 m ahead, as the official viewer)."""
        finite = points[np.isfinite(points).all(1)]
        depth = max(2.0, float(np.percentile(finite[:, 2], 98)) + 0.5)
        center = np.array([*np.median(finite[:, :2], axis=0), depth])
        half = max(4.0, 2.5 * float(np.ptp(finite[:, :2], axis=0).max()))
        return checkerboard(center, np.array([0, 1.0, 0]), np.array([1.0, 0, 0]), half)  # faces -z

    def frames(self, indices: Iterable[int] | None = None) -> Iterator[np.ndarray]:
        """RGB uint8 (H, W, 3) world-view frames, one per video frame index."""
        indices = np.arange(len(self.T_world_cam)) if indices is None else np.asarray(list(indices))
        for t, hands in zip(indices, hand_meshes_per_frame(self.hands, self.models, indices)):
            cam = frustum(self.T_world_cam[t], self.K, self.image_size, FRUSTUM_DEPTH)
            yield self.renderer.render([cam] + hands, self.view_K, self.T_world_view, background=self.background).rgb

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
