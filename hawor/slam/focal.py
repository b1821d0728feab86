"""The focal-length stage: the focal length the run uses, and how it was found.

Given (``--img_focal``) it is used as is. Otherwise it is estimated from the video's own rotation:
KLT keyframes at a low resolution (the classical front-end's tracker, without hand masks: the
homography's RANSAC drops the hands), the homography between successive keyframes, and the focal
length that makes them rotations (:mod:`hawor.geometry.self_calibration`). When the video does not
pin it down (too little rotation, too few pairs, or halves of the pairs disagreeing) the official
demo's 600 px is used, with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np

from hawor.geometry import DEFAULT_FOCAL
from hawor.geometry.self_calibration import fit_focal

WORK_LONG_SIDE = 320  # pixels: rotation needs no detail, and tracking stays cheap
MAX_FRAMES = 900  # the first 30 s at 30 frames/s hold enough head turns
MIN_PAIRS = 8
PAIR_SPAN = 3  # each keyframe is paired with this many following keyframes
MIN_INLIERS = 40
MIN_SHARPNESS = 1.5  # the median residual at 0.7 f or 1.4 f must exceed the minimum by this factor
MAX_HALVES_SPREAD = 0.1  # the focal of the even and of the odd pairs may differ by this fraction
FOCAL_RANGE = (0.3, 3.0)  # searched focal / long side: fields of view of 118 down to 19 degrees


@dataclass
class FocalEstimate:
    """focal: pixels at the video's resolution; source: "given", "estimated" or "default";
    detail: how (for summary.json); pairs: homographies used."""

    focal: float
    source: str
    detail: str
    pairs: int = 0
    warnings: list[str] = field(default_factory=list)


def keyframe_homographies(frames: Iterable[np.ndarray], long_side: int = WORK_LONG_SIDE,
                          max_frames: int = MAX_FRAMES) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Homographies (P, 3, 3) between KLT keyframes of the first ``max_frames`` RGB frames, in pixels
    of the tracking size; returns (H, tracking size (w, h), full size (W, H))."""
    from hawor.slam.classical import grey_frames
    from hawor.slam.keyframes import KLTTracker, TrackerOptions

    tracker = KLTTracker(TrackerOptions(max_corners=200, keyframe_motion=0.05, max_keyframe_gap=10**6))
    full = work = None
    for k, (grey, full) in enumerate(grey_frames(frames, long_side)):
        if k >= max_frames:
            break
        work = (grey.shape[1], grey.shape[0])
        tracker.push(grey)
    result, out = tracker.result, []
    keyframes = result.keyframes
    for k, a in enumerate(keyframes):
        for b in keyframes[k + 1:k + 1 + PAIR_SPAN]:  # wider pairs turn more: f shows more clearly
            fa, fb = result.frames[a], result.frames[b]
            _, ia, ib = np.intersect1d(fa.ids, fb.ids, return_indices=True)
            if len(ia) < MIN_INLIERS:
                break
            H, inliers = cv2.findHomography(fa.xy[ia], fb.xy[ib], cv2.RANSAC, 1.0, maxIters=300)
            if H is not None and inliers.sum() >= MIN_INLIERS and inliers.mean() >= 0.6:
                out.append(H)
    return np.asarray(out, np.float64).reshape(-1, 3, 3), work or (0, 0), full or (0, 0)


def estimate_focal(frames: Iterable[np.ndarray], given: float | None = None, *,
                   max_frames: int = MAX_FRAMES) -> FocalEstimate:
    """The run's focal length: ``given`` (pixels) when not None, else estimated from ``frames`` (RGB
    uint8 (H, W, 3)), else DEFAULT_FOCAL with a warning saying why."""
    if given is not None:
        return FocalEstimate(float(given), "given", "--img_focal")
    H, work, full = keyframe_homographies(frames, max_frames=max_frames)
    reason = f"only {len(H)} keyframe pairs with a clean homography (need {MIN_PAIRS})"
    if len(H) >= MIN_PAIRS:
        long_side = max(work)
        fit = fit_focal(H, (work[0] / 2, work[1] / 2), (FOCAL_RANGE[0] * long_side, FOCAL_RANGE[1] * long_side))
        spread = abs(fit.halves[0] - fit.halves[1]) / fit.focal
        edge = not FOCAL_RANGE[0] * 1.05 < fit.focal / long_side < FOCAL_RANGE[1] / 1.05
        detail = (f"{fit.pairs} of {len(H)} keyframe pairs turning 4 degrees or more, halves {spread:.1%} apart, "
                  f"sharpness {fit.sharpness:.1f}")
        if fit.pairs >= MIN_PAIRS and fit.sharpness >= MIN_SHARPNESS and spread <= MAX_HALVES_SPREAD and not edge:
            return FocalEstimate(fit.focal * full[0] / work[0], "estimated", f"rotation self-calibration: {detail}",
                                 fit.pairs)
        reason = f"the video does not pin it down ({detail}): the camera turns too little"
    warning = (f"focal length not given and not estimable: {reason}; assumed {DEFAULT_FOCAL:g} px as the official "
               "demo does. Fix: pass --img_focal (pixels) for metric hands")
    return FocalEstimate(DEFAULT_FOCAL, "default", reason, len(H), [warning])


__all__ = ["FocalEstimate", "estimate_focal", "keyframe_homographies"]
