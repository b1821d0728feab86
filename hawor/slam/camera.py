"""The camera stage: an unscaled reconstruction (per-frame poses, keyframes and their disparities).

Both backends return one :class:`Reconstruction`: masked DROID-SLAM (``"droid"``) and the
weight-free classical pipeline (masked KLT keyframes + pycolmap mapping + PnP, ``"classical"``).
Which one runs is decided by the run's backend plan (:mod:`hawor.pipeline.plan`); the metric scale
is its own stage (:mod:`hawor.slam.metric_scale`). :func:`estimate_camera` chains the two.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from hawor.errors import HaworInputError
from hawor.geometry import Intrinsics
from hawor.slam.trajectory import CameraTrajectory, SparseDisparities

log = logging.getLogger(__name__)

MIN_FRAMES = 10
BACKENDS = ("classical", "droid")


@dataclass
class Reconstruction:
    """An unscaled camera reconstruction of a video, whichever backend made it.

    Attributes:
        T_world_cam: (N, 4, 4) camera-to-world, unscaled; world = first camera.
        intrinsics: the full-resolution camera.
        keyframes: (K,) int64 frame indices. disps: (K, h, w) unscaled keyframe disparity at DROID's
            working size (0 = unknown), an array or `SparseDisparities`.
        points_world: (P, 3) unscaled map points; observations: per frame (xy (M, 2) full-resolution
            pixels, point index (M,)) — what the hand-anchored scale reads.
        backend: "classical" or "droid". warnings, timings: for the run summary.
    """

    T_world_cam: np.ndarray
    intrinsics: Intrinsics
    keyframes: np.ndarray
    disps: np.ndarray | SparseDisparities | None
    points_world: np.ndarray
    observations: list[tuple[np.ndarray, np.ndarray]]
    backend: str
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.T_world_cam)

    def has_disparity(self) -> bool:
        """Whether any keyframe disparity is known (without densifying sparse ones)."""
        if self.disps is None:
            return False
        if isinstance(self.disps, SparseDisparities):
            return any(len(d) for _, _, d in self.disps.pixels)
        return bool(len(self.disps) and np.any(np.asarray(self.disps) > 0))

    def scaled(self, scale: float, method: str, warnings: list[str] = ()) -> CameraTrajectory:
        """The metric trajectory (translations times ``scale``)."""
        T = np.array(self.T_world_cam, np.float64)
        T[:, :3, 3] *= scale
        return CameraTrajectory(T, self.intrinsics.K(), float(scale), np.asarray(self.keyframes, np.int64),
                                f"{self.backend}; scale: {method}", self.warnings + list(warnings),
                                self.disps, dict(self.timings))


def hand_masks_for(hands: Mapping[str, np.ndarray], intrinsics: Intrinsics, hand_models: Mapping | None = None,
                   options=None, background: bool = False):
    """Hand masks at the classical tracking resolution (where they are read) from camera-space hands
    in the hands_camera.npz layout; ``hand_models``: the run's {side: HandModel}; ``background``:
    drawn in a background thread while the caller goes on (`HandMasks.from_vertices`)."""
    from hawor.slam.classical import ClassicalOptions, work_size
    from hawor.slam.masks import HandMasks

    long_side = (options or ClassicalOptions()).work_long_side
    work = intrinsics.scaled(work_size(*intrinsics.size, long_side))
    return HandMasks.from_hands(hands, work.K(), work.size, hand_models=hand_models, background=background)


def reconstruct(frames, intrinsics: Intrinsics, backend: str = "classical", *, hand_masks=None, options=None,
                device: str | None = None) -> Reconstruction:
    """The unscaled reconstruction of ``frames`` (a video path, or RGB uint8 (H, W, 3) frames: a list,
    an array or a frame source that can be iterated again).

    backend: "classical" or "droid"; hand_masks: `hawor.slam.masks.HandMasks` (True on hand pixels);
    options: `ClassicalOptions`; device: torch device of the DROID network.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"camera backend '{backend}': expected one of {', '.join(BACKENDS)}")
    if backend == "droid":
        from hawor.slam.droid import run_droid_slam

        traj = run_droid_slam(frames, intrinsics.K(), hand_masks=hand_masks, device=device)
        recon = _droid_reconstruction(traj, intrinsics)
    else:
        from hawor.slam.classical import estimate_classical

        result = estimate_classical(frames, intrinsics.K(), hand_masks=hand_masks, options=options)
        recon = Reconstruction(result.T_world_cam, intrinsics, np.asarray(result.keyframes, np.int64),
                               keyframe_disparities(result, intrinsics.size), result.points_world,
                               result.observations, "classical", list(result.warnings), dict(result.timings))
    n = len(recon)
    if n < MIN_FRAMES:
        recon.warnings.insert(0, f"the video has only {n} frames (< {MIN_FRAMES}): too short to estimate camera "
                              "motion; identity camera poses")
        recon.T_world_cam = np.tile(np.eye(4), (n, 1, 1))
    return recon


def estimate_camera(video: str | Path | Iterable[np.ndarray], K: np.ndarray | None = None, *,
                    image_size: tuple[int, int] | None = None, hand_masks=None,
                    hands: Mapping[str, np.ndarray] | None = None, backend: str = "classical",
                    scale: float | str = "hand_anchored", options=None, hand_models: Mapping | None = None,
                    device: str | None = None) -> CameraTrajectory:
    """Metric camera trajectory of a video: :func:`reconstruct` then :func:`metric_scale`.

    Args:
        video: a video file path, or RGB uint8 (H, W, 3) frames (a list, an array or a re-iterable source).
        K: (3, 3) intrinsics at the video's resolution; default focal 600 px, centre principal point.
        image_size: (W, H), needed with an iterable of frames that has no ``size``.
        hand_masks: `hawor.slam.masks.HandMasks` (True on hand pixels); built from `hands` when None.
        hands: camera-space hands in the hands_camera.npz layout; used for the masks and the scale.
        backend: "classical" or "droid". scale: "hand_anchored", "metric3d" or a positive number.
        hand_models: {side: HandModel} posing `hands` (default: the resolved default hand model).
    Returns:
        CameraTrajectory with metric T_world_cam (N, 4, 4), K, scale, keyframes, method and warnings.
    """
    from hawor.slam.metric_scale import metric_scale

    frames, image_size = _frames_and_size(video, image_size)
    intrinsics = Intrinsics.default(image_size) if K is None else Intrinsics.from_K(K, image_size)
    if hand_masks is None and hands is not None:
        hand_masks = hand_masks_for(hands, intrinsics, hand_models, options)
    start = time.perf_counter()
    recon = reconstruct(frames, intrinsics, backend, hand_masks=hand_masks, options=options, device=device)
    if isinstance(scale, str):
        from hawor.slam.scale_hand import hand_joints_camera

        joints = hand_joints_camera(hands, hand_models) if hands is not None else None
        est = metric_scale(recon, scale, frames=frames, hand_masks=hand_masks, joints_cam=joints, device=device)
        s, method, warnings = est.scale, est.method, est.warnings
    else:
        s, method, warnings = float(scale), "given", []
        if not s > 0:
            raise HaworInputError(f"scale {scale}: the metric scale must be a positive number")
    traj = recon.scaled(s, method, warnings)
    log.info("camera: %s in %.1f s", traj.method, time.perf_counter() - start)
    return traj


def _frames_and_size(video, image_size):
    if isinstance(video, (str, Path)):
        from hawor.io.video import probe_video

        path = Path(video)
        if not path.is_file():
            raise HaworInputError(f"video {path} does not exist; pass an existing video file")
        return path, tuple(probe_video(path).size)
    if isinstance(video, np.ndarray) and video.ndim == 4:
        return video, (video.shape[2], video.shape[1])
    if image_size is None and hasattr(video, "size"):
        image_size = video.size
    if image_size is None:
        video = list(video)
        if not video:
            raise HaworInputError("the video has no frames")
        image_size = (np.asarray(video[0]).shape[1], np.asarray(video[0]).shape[0])
    return video, tuple(image_size)


def _droid_reconstruction(traj: CameraTrajectory, intrinsics: Intrinsics) -> Reconstruction:
    """DROID's keyframe disparities also as sparse map points, for the hand-anchored scale."""
    from hawor.slam.droid import working_size

    (w1, h1), (w, h) = working_size(*intrinsics.size)
    work = intrinsics.scaled((w1, h1))
    sx, sy = w1 / intrinsics.size[0], h1 / intrinsics.size[1]
    n = len(traj)
    observations = [(np.zeros((0, 2), np.float32), np.zeros(0, np.int64)) for _ in range(n)]
    points = []
    count = 0
    ys, xs = np.mgrid[2:h:4, 2:w:4]  # every 4th pixel of the working grid is plenty for a median
    for k, f in enumerate(np.asarray(traj.keyframes)[: 0 if traj.disps is None else len(traj.disps)]):
        d = traj.disps[k][ys, xs]
        ok = d > 1e-6
        z = 1.0 / d[ok]
        cam = np.stack([(xs[ok] - work.cx) / work.fx * z, (ys[ok] - work.cy) / work.fy * z, z], 1)
        points.append(cam @ traj.T_world_cam[f, :3, :3].T + traj.T_world_cam[f, :3, 3])
        xy = np.stack([xs[ok] / sx, ys[ok] / sy], 1).astype(np.float32)
        observations[f] = (xy, np.arange(count, count + len(z)))
        count += len(z)
    pts = np.concatenate(points) if points else np.zeros((0, 3))
    return Reconstruction(traj.T_world_cam, intrinsics, np.asarray(traj.keyframes, np.int64), traj.disps, pts,
                          observations, "droid", list(traj.warnings), dict(traj.timings))


def keyframe_disparities(result, image_size: tuple[int, int]) -> SparseDisparities:
    """(K, h, w) sparse unscaled disparity of the keyframes at DROID's working size (0 = unknown)."""
    from hawor.slam.droid import working_size

    (w1, h1), (w, h) = working_size(*image_size)
    sx, sy = w1 / image_size[0], h1 / image_size[1]
    pixels = []
    for f in result.keyframes:
        xy, pidx = result.observations[f]
        T_cw = np.linalg.inv(result.T_world_cam[f])
        z = result.points_world[pidx] @ T_cw[2, :3] + T_cw[2, 3]
        x = np.floor(xy[:, 0] * sx).astype(np.int64)
        y = np.floor(xy[:, 1] * sy).astype(np.int64)
        ok = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        pixels.append((y[ok], x[ok], (1.0 / z[ok]).astype(np.float32)))
    return SparseDisparities((h, w), pixels)
