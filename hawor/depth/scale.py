"""HaWoR's metric scale of a monocular SLAM map from Metric3D depth.

Per keyframe the SLAM depth (1/disparity) is aligned to Metric3D's metric depth on non-hand
pixels at arm's reach (0.4-0.7 m): ratio medians, then a Geman-McClure refinement. The scale
is the median over keyframes, so metric depth ~= scale * SLAM depth and metric camera
translation = scale * SLAM translation. If a keyframe has no usable pixel the band is widened
by 0.1 m on each side and kept widened for the following keyframes (the official behaviour).
Metric3D is run on a bounded, evenly spaced subset of keyframes (`max_keyframes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.optimize import minimize

from hawor.depth.predictor import Metric3DPredictor
from hawor.errors import HaworInputError

NEAR_M, FAR_M, SIGMA_M, WIDEN_STEP_M = 0.4, 0.7, 0.5, 0.1
MEDIAN_ITERS = 10
MAX_WIDENINGS = 100
DEFAULT_MAX_KEYFRAMES = 16


@dataclass
class ScaleEstimate:
    """Metric scale of a SLAM map.

    scale: metric / SLAM units (NaN when no keyframe gave one); per_keyframe: (M,) scale of
    each used keyframe (NaN where it failed); keyframes: (M,) positions in the keyframe list;
    near, far: the depth band (metres) after any widening.
    """

    scale: float
    per_keyframe: np.ndarray
    keyframes: np.ndarray
    near: float
    far: float
    method: str = "metric3d"
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.scale) and self.scale > 0)


def _lower_median(values: np.ndarray) -> float:
    # torch.median semantics (the lower of the two middle values), as in the official estimator.
    if values.size == 0:
        return float("nan")
    return float(np.partition(values, (values.size - 1) // 2)[(values.size - 1) // 2])


def _geman_mcclure_fit(slam_depth: np.ndarray, pred_depth: np.ndarray, start: float, sigma: float) -> float:
    """argmin_s mean rho(s * slam - pred), rho(r) = sigma^2 r^2 / (sigma^2 + r^2), BFGS from start."""
    s2 = sigma * sigma

    def loss(x):
        r = x[0] * slam_depth - pred_depth
        d = s2 + r * r
        return np.mean(s2 * r * r / d), np.array([np.mean(2 * s2 * s2 * r / (d * d) * slam_depth)])

    return float(minimize(loss, np.array([start]), jac=True, method="BFGS").x[0])


def keyframe_scale(pred_depth: np.ndarray, slam_disp: np.ndarray, keep: np.ndarray,
                   near: float = NEAR_M, far: float = FAR_M, sigma: float = SIGMA_M) -> float:
    """Scale s with pred ~= s / slam_disp on one keyframe; NaN when no pixel qualifies.

    pred_depth (H, W) metres; slam_disp (H, W) SLAM inverse depth; keep (H, W) bool (non-hand).
    Pixels with a non-positive or non-finite depth or disparity are never used.
    """
    if not (pred_depth.shape == slam_disp.shape == keep.shape):
        raise HaworInputError(f"metric scale: depth {pred_depth.shape}, disparity {slam_disp.shape} and "
                              f"mask {keep.shape} must have the same (H, W).")
    pred = pred_depth.astype(np.float64).ravel()
    disp = slam_disp.astype(np.float64).ravel()
    valid = keep.ravel() & np.isfinite(pred) & (pred > 0) & np.isfinite(disp) & (disp > 0)
    pred, slam = pred[valid], 1.0 / disp[valid]
    ratio = pred / slam
    in_band = (pred > near) & (pred < far)
    scale = _lower_median(ratio[in_band])
    for _ in range(MEDIAN_ITERS):
        scaled = scale * slam
        selected = in_band & (scaled > 0) & (scaled < far)
        scale = _lower_median(ratio[selected])
    if not np.isfinite(scale):
        return float("nan")
    return _geman_mcclure_fit(slam[selected], pred[selected], scale, sigma)


def robust_metric_scale(pred_depths: Sequence[np.ndarray], slam_disps: Sequence[np.ndarray],
                        keep_masks: Sequence[np.ndarray], near: float = NEAR_M, far: float = FAR_M,
                        sigma: float = SIGMA_M) -> ScaleEstimate:
    """Median over keyframes of `keyframe_scale`, widening the band on failure (kept widened).

    pred_depths, slam_disps, keep_masks: K maps each, (H, W) metres / SLAM inverse depth / bool.
    """
    scales, notes = [], []
    for pred, disp, keep in zip(pred_depths, slam_disps, keep_masks, strict=True):
        value = keyframe_scale(pred, disp, keep, near, far, sigma)
        widenings = 0
        while not np.isfinite(value) and widenings < MAX_WIDENINGS:
            near, far, widenings = near - WIDEN_STEP_M, far + WIDEN_STEP_M, widenings + 1
            value = keyframe_scale(pred, disp, keep, near, far, sigma)
        if not np.isfinite(value):
            notes.append(f"keyframe {len(scales)}: no usable non-hand pixel, skipped")
        scales.append(value)
    per_keyframe = np.asarray(scales, dtype=np.float64)
    finite = per_keyframe[np.isfinite(per_keyframe)]
    scale = float(np.median(finite)) if finite.size else float("nan")
    if not finite.size:
        notes.append("no keyframe gave a metric scale")
    return ScaleEstimate(scale, per_keyframe, np.arange(len(scales)), near, far, warnings=notes)


def select_scale_keyframes(num_keyframes: int, max_keyframes: int | None = DEFAULT_MAX_KEYFRAMES) -> np.ndarray:
    """Evenly spaced keyframe positions, at most `max_keyframes` (None: all, as HaWoR)."""
    if max_keyframes is None or num_keyframes <= max_keyframes:
        return np.arange(num_keyframes)
    if max_keyframes < 1:
        raise HaworInputError(f"metric scale: max_keyframes must be >= 1 or None, got {max_keyframes}.")
    return np.unique(np.round(np.linspace(0, num_keyframes - 1, max_keyframes)).astype(np.int64))


def non_hand_mask(hand_mask: np.ndarray | None, size_hw: tuple[int, int]) -> np.ndarray:
    """(H0, W0) hand mask (True/nonzero = hand) -> (H, W) bool of pixels to keep.

    Resized as HaWoR does: uint8, OpenCV bilinear, kept where the result is < 0.5.
    """
    if hand_mask is None:
        return np.ones(size_hw, dtype=bool)
    resized = cv2.resize(np.asarray(hand_mask).astype(np.uint8), (size_hw[1], size_hw[0]),
                         interpolation=cv2.INTER_LINEAR)
    return resized < 0.5


def estimate_scale_metric3d(predictor: Metric3DPredictor, read_keyframe: Callable[[int], np.ndarray],
                            disps: np.ndarray, focal: float,
                            hand_mask: Callable[[int], np.ndarray | None] | None = None,
                            max_keyframes: int | None = DEFAULT_MAX_KEYFRAMES) -> ScaleEstimate:
    """HaWoR's metric scale for a SLAM run (Metric3D on at most `max_keyframes` keyframes).

    predictor: Metric3D on single frames (`Metric3DPredictor.from_weights()`);
    read_keyframe(k): the original frame of keyframe k (k = 0..K-1), RGB uint8 (H0, W0, 3);
    only the selected keyframes are read. disps: (K, H, W) SLAM keyframe disparity at the SLAM
    working size, unscaled (0 where unknown), an array or anything indexed like one. focal: px at the original resolution.
    hand_mask(k): (H0, W0) bool, True on hand pixels (None: no hands). max_keyframes: evenly
    spaced subset size (None: every keyframe, the official behaviour).
    Returns a ScaleEstimate (metric = scale * SLAM units); check `.ok` before using `.scale`.
    """
    if not hasattr(disps, "shape"):
        disps = np.asarray(disps)
    if disps.ndim != 3 or len(disps) == 0:  # an array or hawor.slam.trajectory.SparseDisparities
        raise HaworInputError(f"metric scale: disps must be (K, H, W) keyframe disparities, got shape {disps.shape}.")
    chosen = select_scale_keyframes(len(disps), max_keyframes)
    size_hw = disps.shape[1:]
    preds = [predictor.predict_resized(read_keyframe(int(k)), focal, size_hw) for k in chosen]
    keeps = [non_hand_mask(None if hand_mask is None else hand_mask(int(k)), size_hw) for k in chosen]
    result = robust_metric_scale(preds, disps[chosen], keeps)
    result.keyframes = chosen
    return result
