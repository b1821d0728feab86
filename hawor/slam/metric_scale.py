"""The metric-scale stage: one number turning a :class:`Reconstruction` into metres.

Backends (chosen by the run's backend plan): ``"metric3d"`` (HaWoR's estimator on Metric3D depth of
the keyframes; needs frames that can be read again and keyframe disparities) and ``"hand_anchored"``
(the metric camera-space hands against the map, :mod:`hawor.slam.scale_hand`). When Metric3D cannot
give a scale, the hand-anchored estimate is used and a warning says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hawor.errors import HaworInputError
from hawor.slam.camera import Reconstruction

BACKENDS = ("metric3d", "hand_anchored")


@dataclass
class MetricScale:
    """metric = scale x unscaled; ``method`` says which backend gave it."""

    scale: float
    method: str
    warnings: list[str] = field(default_factory=list)


def frame_reader(frames):
    """read(i) -> RGB frame i when ``frames`` can be read again (a path, a sequence, or a frame source
    with ``reader()``), else None."""
    from pathlib import Path

    if isinstance(frames, (str, Path)):
        from hawor.io.video import VideoReader

        return lambda i: VideoReader(frames).read([int(i)])[0]
    if hasattr(frames, "reader"):
        return frames.reader()
    if isinstance(frames, (list, tuple, np.ndarray)):
        return lambda i: np.asarray(frames[int(i)])
    return None


def metric_scale(recon: Reconstruction, backend: str = "hand_anchored", *, frames=None, hand_masks=None,
                 joints_cam: np.ndarray | None = None, device: str | None = None,
                 metric3d_weights=None) -> MetricScale:
    """The metric scale of ``recon``.

    frames: the video's frames, re-readable (see :func:`frame_reader`), for Metric3D.
    hand_masks: `HandMasks` (True on hand pixels); joints_cam: (N, 2, 21, 3) camera-frame joints,
    metres, NaN where absent (``hand_joints_camera``); device: torch device of Metric3D.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"scale backend '{backend}': expected one of {', '.join(BACKENDS)}")
    warnings = []
    if backend == "metric3d":
        est = _metric3d_scale(recon, frames, hand_masks, device, metric3d_weights)
        if isinstance(est, MetricScale):
            return est
        warnings.append(est)
    from hawor.slam.scale_hand import estimate_hand_scale

    est = estimate_hand_scale(recon.T_world_cam, recon.points_world, recon.observations, recon.intrinsics.K(),
                              recon.intrinsics.size, joints_cam=joints_cam, hand_masks=hand_masks)
    return MetricScale(float(est.scale), est.method, warnings + list(est.warnings))


def _metric3d_scale(recon, frames, hand_masks, device, weights) -> MetricScale | str:
    """The Metric3D scale, or the reason there is none (a warning)."""
    reader = frame_reader(frames)
    if reader is None:
        return "Metric3D needs frames it can read again (a path or a frame source); falling back to the hands"
    if not recon.has_disparity():
        return "Metric3D: the reconstruction has no keyframe disparity; falling back to the hands"
    from hawor.depth.predictor import Metric3DPredictor
    from hawor.depth.scale import estimate_scale_metric3d

    keyframes = np.asarray(recon.keyframes, np.int64)
    size = recon.intrinsics.size
    masks = None if hand_masks is None else (lambda k: hand_masks.resized(int(keyframes[k]), size))
    predictor = Metric3DPredictor.from_weights(weights, device=device or "cpu")
    est = estimate_scale_metric3d(predictor, lambda k: reader(int(keyframes[k])), recon.disps,
                                  recon.intrinsics.focal, masks)
    if est.ok:
        return MetricScale(float(est.scale), "metric3d", list(est.warnings))
    return "Metric3D gave no scale (no scene at arm's reach); falling back to the hands"
