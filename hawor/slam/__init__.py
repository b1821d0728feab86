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
from hawor.slam.trajectory import CameraTrajectory

log = logging.getLogger(__name__)

MIN_FRAMES = 10
BACKENDS = ("auto", "classical", "droid")


def default_intrinsics(image_size: tuple[int, int], focal: float = 600.0) -> np.ndarray:
    """K (3, 3) with the principal point at the image centre (HaWoR's rule; 600 px when unknown)."""
    w, h = image_size
    return np.array([[focal, 0.0, w / 2], [0.0, focal, h / 2], [0.0, 0.0, 1.0]])


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
        traj.method = f"droid ({why})" + (f", {traj.method}" if traj.method else "")
        return traj
    traj = _classical(frames, K, image_size, hand_masks, hands, scale, options)
    traj.method = f"classical ({why}); {traj.method}"
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


def _classical(frames, K, image_size, hand_masks, hands, scale, options) -> CameraTrajectory:
    from hawor.slam.classical import estimate_classical
    from hawor.slam.scale_hand import estimate_hand_scale, hand_joints_camera

    result = estimate_classical(frames, K, hand_masks=hand_masks, options=options)
    n = len(result.T_world_cam)
    warnings = list(result.warnings)
    if n < MIN_FRAMES:
        warnings.insert(0, f"the video has only {n} frames (< {MIN_FRAMES}): too short to estimate camera "
                        "motion; identity camera poses")
        result.T_world_cam = np.tile(np.eye(4), (n, 1, 1))
    if isinstance(scale, str):
        if scale != "auto":
            raise HaworInputError(f"scale '{scale}': expected 'auto' or a positive number")
        joints = hand_joints_camera(hands) if hands is not None else None
        est = estimate_hand_scale(result.T_world_cam, result.points_world, result.observations, K, image_size,
                                  joints_cam=joints, hand_masks=hand_masks)
        s, scale_method = est.scale, f"scale: {est.method}"
        warnings += est.warnings
    else:
        s = float(scale)
        if not s > 0:
            raise HaworInputError(f"scale {scale}: the metric scale must be a positive number")
        scale_method = "scale: given"
    T = result.T_world_cam.copy()
    T[:, :3, 3] *= s
    return CameraTrajectory(T, K, s, result.keyframes, scale_method, warnings,
                            disps=keyframe_disparities(result, image_size))


def droid_image_size(width: int, height: int) -> tuple[int, int]:
    """DROID's working size (w, h): area-preserving resize to 384*512 pixels, cropped to multiples of 8."""
    f = np.sqrt(384 * 512 / (width * height))
    w1, h1 = int(width * f), int(height * f)
    return w1 - w1 % 8, h1 - h1 % 8


def keyframe_disparities(result, image_size: tuple[int, int]) -> np.ndarray:
    """(K, h, w) float32 sparse unscaled disparity of the keyframes at DROID's working size (0 = unknown)."""
    w1, h1 = droid_image_size(*image_size)
    disps = np.zeros((len(result.keyframes), h1, w1), np.float32)
    sx, sy = w1 / image_size[0], h1 / image_size[1]
    for k, f in enumerate(result.keyframes):
        xy, pidx = result.observations[f]
        if len(pidx) == 0:
            continue
        T_cw = np.linalg.inv(result.T_world_cam[f])
        z = result.points_world[pidx] @ T_cw[2, :3] + T_cw[2, 3]
        x = np.floor(xy[:, 0] * sx).astype(int)
        y = np.floor(xy[:, 1] * sy).astype(int)
        ok = (z > 0) & (x >= 0) & (x < w1) & (y >= 0) & (y < h1)
        disps[k, y[ok], x[ok]] = 1.0 / z[ok]
    return disps
