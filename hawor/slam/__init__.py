"""Camera stage: per-frame camera-to-world poses, intrinsics and metric scale of a video.

`estimate_camera` picks the backend: masked DROID-SLAM when its weights are present ("auto"/"droid"),
otherwise the weight-free classical pipeline (masked KLT keyframes + pycolmap mapping + PnP), and
the metric scale from the camera-space hands (`scale_hand`). The result records what ran and why.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from hawor.errors import HaworInputError
from hawor.geometry import default_intrinsics
from hawor.slam.trajectory import CameraTrajectory, SparseDisparities

log = logging.getLogger(__name__)

MIN_FRAMES = 10
BACKENDS = ("auto", "classical", "droid")


def droid_available() -> bool:
    """True when DROID-SLAM's weights (weights/external/droid.pth) are present and its code importable."""
    from hawor.weights import weight_path

    if not weight_path("droid").is_file():
        return False
    try:
        from hawor.slam.droid import run_droid_slam  # noqa: F401
    except ImportError:
        return False
    return True


def estimate_camera(video: str | Path | Iterable[np.ndarray], K: np.ndarray | None = None, *,
                    image_size: tuple[int, int] | None = None, hand_masks=None,
                    hands: Mapping[str, np.ndarray] | None = None, backend: str = "auto",
                    scale: float | str = "auto", options=None) -> CameraTrajectory:
    """Camera trajectory of a video.

    Args:
        video: a video file path, or RGB uint8 (H, W, 3) frames (a list or any iterable).
        K: (3, 3) intrinsics at the video's resolution; default focal 600 px, centre principal point.
        image_size: (W, H), needed with K=None when `video` is an iterable of frames.
        hand_masks: `hawor.slam.masks.HandMasks` (True on hand pixels); built from `hands` when None.
        hands: camera-space hands in the hands_camera.npz layout (`{h}_global_orient`, `{h}_hand_pose`,
            `{h}_betas`, `{h}_transl`, NaN where absent); used for the masks and the metric scale.
        backend: "auto" (DROID when droid.pth is present, else classical), "classical" or "droid".
        scale: "auto" (hand-anchored, see `scale_hand`) or a number to use as the metric scale.
        options: `hawor.slam.classical.ClassicalOptions` for the classical backend.
    Returns:
        CameraTrajectory with metric T_world_cam (N, 4, 4), K, scale, keyframes, method and warnings.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"camera backend '{backend}': expected one of {', '.join(BACKENDS)}")
    frames, image_size = _frames_and_size(video, image_size, K)
    K = default_intrinsics(image_size) if K is None else np.asarray(K, np.float64)
    if K.shape != (3, 3):
        raise HaworInputError(f"intrinsics K has shape {K.shape}, expected (3, 3)")
    if hand_masks is None and hands is not None:
        from hawor.slam.masks import HandMasks
        from hawor.slam.classical import ClassicalOptions, work_size

        # masks are only read at the tracking resolution, so they are rasterised there
        long_side = (options or ClassicalOptions()).work_long_side
        wk, hk = work_size(image_size[0], image_size[1], long_side)
        K_mask = K.copy()
        K_mask[0] *= wk / image_size[0]
        K_mask[1] *= hk / image_size[1]
        hand_masks = HandMasks.from_hands(hands, K_mask, (wk, hk))
    chosen, why = _choose_backend(backend)
    start = time.perf_counter()
    if chosen == "droid":
        from hawor.slam.droid import run_droid_slam

        traj = run_droid_slam(frames, K, hand_masks=hand_masks)
        unscaled = _droid_map(traj, image_size)
    else:
        from hawor.slam.classical import estimate_classical

        unscaled = estimate_classical(frames, K, hand_masks=hand_masks, options=options)
        traj = CameraTrajectory(unscaled.T_world_cam, K, 1.0, unscaled.keyframes,
                                disps=keyframe_disparities(unscaled, image_size), timings=dict(unscaled.timings))
    traj.warnings = list(unscaled.warnings)
    n = len(traj)
    if n < MIN_FRAMES:
        traj.warnings.insert(0, f"the video has only {n} frames (< {MIN_FRAMES}): too short to estimate camera "
                             "motion; identity camera poses")
        traj.T_world_cam = np.tile(np.eye(4), (n, 1, 1))
    scale_start = time.perf_counter()
    s, scale_method, scale_warnings = _metric_scale(scale, traj, unscaled, frames, K, image_size, hand_masks, hands)
    traj.timings["scale"] = time.perf_counter() - scale_start
    traj.T_world_cam = traj.T_world_cam.copy()
    traj.T_world_cam[:, :3, 3] *= s
    traj.scale = s
    traj.warnings += scale_warnings
    traj.method = f"{chosen} ({why}); scale: {scale_method}"
    log.info("camera: %s in %.1f s", traj.method, time.perf_counter() - start)
    for w in traj.warnings:
        log.warning("camera: %s", w)
    return traj


def _frames_and_size(video, image_size, K):
    if isinstance(video, (str, Path)):
        from hawor.io.video import probe_video

        path = Path(video)
        if not path.is_file():
            raise HaworInputError(f"video {path} does not exist; pass an existing video file")
        return path, tuple(probe_video(path).size)
    if isinstance(video, np.ndarray) and video.ndim == 4:
        return video, (video.shape[2], video.shape[1])
    if image_size is None and K is not None:
        image_size = (int(round(2 * K[0][2])), int(round(2 * K[1][2])))
    if image_size is None:
        video = list(video)
        if not video:
            raise HaworInputError("the video has no frames")
        image_size = (np.asarray(video[0]).shape[1], np.asarray(video[0]).shape[0])
    return video, tuple(image_size)


def _choose_backend(backend: str) -> tuple[str, str]:
    if backend == "classical":
        return "classical", "requested"
    if droid_available():
        return "droid", "droid.pth present"
    if backend == "droid":
        from hawor.weights import weight_path

        raise HaworInputError(f"camera backend 'droid' needs the DROID-SLAM weights at {weight_path('droid')}; "
                              "download droid.pth there or use backend='classical'")
    return "classical", "no droid.pth"


def _metric_scale(scale, traj: CameraTrajectory, unscaled, frames, K, image_size, hand_masks, hands):
    """(scale, method, warnings): a given number; Metric3D when its weights are present and the frames
    can be read again; else the hand-anchored estimate (`scale_hand`)."""
    from hawor.slam.scale_hand import estimate_hand_scale, hand_joints_camera

    if not isinstance(scale, str):
        s = float(scale)
        if not s > 0:
            raise HaworInputError(f"scale {scale}: the metric scale must be a positive number")
        return s, "given", []
    if scale != "auto":
        raise HaworInputError(f"scale '{scale}': expected 'auto' or a positive number")
    warnings = []
    reader = _keyframe_reader(frames, traj.keyframes)
    if reader is not None and traj.disps is not None and _has_disparity(traj.disps):
        from hawor.depth.weights import find_metric3d_weights

        if find_metric3d_weights() is not None:
            from hawor.depth.predictor import Metric3DPredictor
            from hawor.depth.scale import estimate_scale_metric3d

            masks = None if hand_masks is None else (lambda k: hand_masks.resized(int(traj.keyframes[k]), image_size))
            est = estimate_scale_metric3d(Metric3DPredictor.from_weights(), reader, traj.disps, float(K[0, 0]), masks)
            if est.ok:
                return float(est.scale), "metric3d", list(est.warnings)
            warnings.append("Metric3D gave no scale (no scene at arm's reach); falling back to the hands")
    joints = hand_joints_camera(hands) if hands is not None else None
    est = estimate_hand_scale(traj.T_world_cam, unscaled.points_world, unscaled.observations, K, image_size,
                              joints_cam=joints, hand_masks=hand_masks)
    return est.scale, est.method, warnings + est.warnings


def _has_disparity(disps) -> bool:
    """Whether any keyframe disparity is known (without densifying sparse ones)."""
    if isinstance(disps, SparseDisparities):
        return any(len(d) for _, _, d in disps.pixels)
    return bool(len(disps) and np.any(np.asarray(disps) > 0))


def _keyframe_reader(frames, keyframes):
    """read(k) -> RGB frame of keyframe k, when the frames can be read again (a path or a sequence)."""
    if isinstance(frames, Path):
        from hawor.io.video import VideoReader

        cache = {}

        def read(k: int) -> np.ndarray:
            if not cache:  # one decoding pass for all keyframes Metric3D asks for
                cache.update(zip(range(len(keyframes)), VideoReader(frames).read([int(f) for f in keyframes])))
            return cache[k]
        return read
    if isinstance(frames, (list, tuple, np.ndarray)):
        return lambda k: np.asarray(frames[int(keyframes[k])])
    return None


def _droid_map(traj: CameraTrajectory, image_size: tuple[int, int]):
    """The DROID keyframe disparities as sparse map points for the hand-anchored scale."""
    from hawor.slam.classical import ClassicalResult
    from hawor.slam.droid import working_size

    (w1, h1), (w, h) = working_size(*image_size)
    sx, sy = w1 / image_size[0], h1 / image_size[1]
    n = len(traj)
    observations = [(np.zeros((0, 2), np.float32), np.zeros(0, np.int64)) for _ in range(n)]
    points = []
    count = 0
    ys, xs = np.mgrid[2:h:4, 2:w:4]  # every 4th pixel of the working grid is plenty for a median
    K_work = np.array([[traj.K[0, 0] * sx, 0, traj.K[0, 2] * sx], [0, traj.K[1, 1] * sy, traj.K[1, 2] * sy], [0, 0, 1]])
    for k, f in enumerate(np.asarray(traj.keyframes)[: 0 if traj.disps is None else len(traj.disps)]):
        d = traj.disps[k][ys, xs]
        ok = d > 1e-6
        z = 1.0 / d[ok]
        cam = np.stack([(xs[ok] - K_work[0, 2]) / K_work[0, 0] * z, (ys[ok] - K_work[1, 2]) / K_work[1, 1] * z, z], 1)
        points.append(cam @ traj.T_world_cam[f, :3, :3].T + traj.T_world_cam[f, :3, 3])
        xy = np.stack([xs[ok] / sx, ys[ok] / sy], 1).astype(np.float32)
        observations[f] = (xy, np.arange(count, count + len(z)))
        count += len(z)
    pts = np.concatenate(points) if points else np.zeros((0, 3))
    return ClassicalResult(traj.T_world_cam, np.asarray(traj.keyframes, np.int64), pts, observations,
                           np.full(n, "droid", dtype=object), list(traj.warnings))


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
