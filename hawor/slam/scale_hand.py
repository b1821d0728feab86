"""Metric scale without Metric3D, anchored on the metric camera-space hands (this project's weight-free replacement for Metric3D).

The camera-space hands are metric (MANO size and the focal length fix their depth). Scene points seen
just around a hand's silhouette lie on what the hand touches, at the hand's depth, or further back
where it hovers, so per frame the ratio (depth of the nearest hand joint) / (unscaled point depth)
estimates the scale or falls short of it; the frames are combined by :func:`contact_scale` (a high
percentile of the upper of two well-separated groups of frames, else their median) and checked
against world-motion consistency (hands should not move with the camera's translation).
Fallbacks, in order: world-motion consistency, the arm's-reach scene-depth prior (0.55 m).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import cv2
import numpy as np

from hawor.geometry import Intrinsics
from hawor.slam.masks import mask_box

ARM_REACH_DEPTH_M = 0.55  # HaWoR's 0.4-0.7 m "scene at arm's reach" window, centred
SCALE_BOUNDS = (1e-4, 1e4)


@dataclass
class ScaleEstimate:
    """Metric scale (metric = scale x unscaled) and how it was obtained."""

    scale: float
    method: str  # "hand_anchored", "world_motion", "depth_prior" or "none"
    num_frames: int = 0
    num_points: int = 0
    motion_scale: float = float("nan")  # the world-motion estimate, for the run summary
    warnings: list[str] = field(default_factory=list)


def hand_joints_camera(hands: Mapping[str, np.ndarray], hand_models: Mapping | None = None) -> np.ndarray:
    """(N, 2, 21, 3) camera-frame joints (left, right), metres, NaN where a hand is absent.

    Uses `{h}_joints` when present (hands_camera.npz), else poses the run's `hand_models`
    ({side: HandModel}; default: the default hand model of each side) on the parameters.
    """
    from hawor.slam.masks import default_hand_models
    from hawor.world.assemble import PARAM_NAMES, pose_blocks

    sides = ("left", "right")
    n = next(len(hands[k]) for k in hands if k.endswith(("_joints", "_global_orient")))
    out = np.full((n, 2, 21, 3), np.nan)
    to_pose = [s for s in sides if f"{s}_joints" not in hands and f"{s}_global_orient" in hands]
    models = default_hand_models(to_pose, hand_models) if to_pose else {}
    for k, side in enumerate(sides):
        if f"{side}_joints" in hands:
            out[:, k] = np.asarray(hands[f"{side}_joints"], np.float64)
        elif side in to_pose:
            params = {name: hands[f"{side}_{name}"] for name in PARAM_NAMES}
            out[:, k] = np.concatenate([j for _, j in pose_blocks(params, models[side])])
    return out


def hand_anchored_ratios(T_world_cam: np.ndarray, points_world: np.ndarray, observations, joints_cam: np.ndarray,
                         hand_masks, K: np.ndarray, image_size: tuple[int, int], ring_fraction: float = 0.35,
                         near_fraction: float = 0.5,
                         frames: np.ndarray | None = None) -> list[np.ndarray]:
    """Per frame of ``frames`` (default all), the ratios hand-joint depth / unscaled point depth of map
    points in the ring around the hands (dilated silhouette minus silhouette), each point paired with
    its nearest hand joint; an empty array for a frame without any.
    (Weighting the ring's lower half up, as first tried, biased the scale high on the
    synthetic sequences: below a hand a downward-looking camera sees nearer table.)

    T_world_cam: (N, 4, 4) unscaled; points_world: (P, 3) unscaled; observations: per frame (xy (M, 2)
    pixels, point index (M,)); joints_cam: (N, 2, 21, 3) metres, NaN where absent; hand_masks: HandMasks;
    K (3, 3) of the full image of image_size (W, H).
    ring_fraction: ring width as a fraction of the hand's image size; near_fraction: points farther
    than this fraction of the hand's image size from every hand joint are ignored.
    """
    frames = np.arange(len(T_world_cam)) if frames is None else frames
    out = []
    for f in frames:
        out.append(np.zeros(0))
        xy, pidx = observations[f]
        joints = joints_cam[f].reshape(-1, 3)
        joints = joints[np.isfinite(joints).all(1) & (joints[:, 2] > 0.05)]
        if len(xy) == 0 or len(joints) == 0 or hand_masks is None or f >= len(hand_masks):
            continue
        mask = hand_masks.mask(f)  # at the masks' own resolution; pixels are scaled to it
        if not mask.any():
            continue
        to_mask = np.array([mask.shape[1], mask.shape[0]]) / np.asarray(image_size, np.float64)
        uv = Intrinsics.from_K(K, image_size).project(joints)
        extent = float(np.max(np.ptp(uv * to_mask, axis=0))) if len(uv) > 1 else 10.0
        xi = np.clip((xy[:, 0] * to_mask[0]).astype(int), 0, mask.shape[1] - 1)
        yi = np.clip((xy[:, 1] * to_mask[1]).astype(int), 0, mask.shape[0] - 1)
        sel = _ring(mask, max(2.0, ring_fraction * extent))[yi, xi]
        if not sel.any():
            continue
        T_cw = np.linalg.inv(T_world_cam[f])
        depth = points_world[pidx[sel]] @ T_cw[2, :3] + T_cw[2, 3]
        d2 = ((xy[sel, None, :] - uv[None]) ** 2).sum(-1)
        nearest = np.argmin(d2, axis=1)
        # only points beside the hand itself: the masks may include forearms, whose surroundings
        # lie elsewhere in depth
        close = d2[np.arange(len(d2)), nearest] <= (near_fraction * extent / to_mask[0]) ** 2
        ok = (depth > 1e-6) & close
        out[-1] = joints[nearest[ok], 2] / depth[ok]
    return out


def _ring(mask: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) bool: pixels outside `mask` within `radius` pixels of it (OpenCV's 3x3 chamfer distance).

    The distance transform runs on the mask's box grown by the radius only: a chamfer distance's
    shortest path stays in the box of its two ends, so the values there are those of the whole
    frame, at a fraction of the cost. The chamfer step of 0.955 px reads axis-aligned distances
    short, hence the margin of radius / 0.955."""
    y0, y1, x0, x1 = mask_box(mask, int(np.ceil(radius / 0.955)) + 2)
    dist = cv2.distanceTransform((~mask[y0:y1, x0:x1]).view(np.uint8), cv2.DIST_L2, 3)
    ring = np.zeros(mask.shape, bool)
    ring[y0:y1, x0:x1] = (dist > 0) & (dist <= radius)
    return ring


# The surface beside a lifted hand lies behind it, and a walking wearer's hands hover over a floor 1-1.5 m
# away: such frames only lower the ratio. Where the frames fall into two groups far apart (a walk, then
# work at the table: 0.2-0.4 and 0.7-1.0 of the true scale), the upper group is where the hands met a
# surface; otherwise the median frame is kept. On 22 generated clips (10 at a table, 9 walking, 3 more
# at a table) this read 16 within 15 % of the truth, the median frame 10 and the 80th percentile 14;
# on 8 clips not used to choose, 4, 4 and 5, its walks nearer the truth and two maps that change their
# own scale beyond any one value (docs/performance.md, "A walking wearer").
OUTLIER_FACTOR = 4.0  # frames this far above the median frame are set aside (hands fitted off their silhouette)
MIN_FRAME_RATIOS = 3
GROUP_SEPARATION = 3.0  # the groups' means apart by this many within-group standard deviations (log ratios)
MIN_UPPER_SHARE = 0.1  # and the upper group holds at least this share of the frames
# The upper group also holds the frames of hands coming down onto the surface, which read low, while a frame
# reads above the scale only where something stands in front of the hand: its median read 0.93 of the true
# scale on 40 walking clips (23 within 15 %), this percentile 0.97 (31); 11 of 14 table clips either way.
UPPER_PERCENTILE = 65.0


def contact_scale(ratios: list[np.ndarray]) -> float:
    """The scale read where the hands meet what is beside them, from per-frame ratios.

    Each frame with at least MIN_FRAME_RATIOS ratios gives its median. Frames above OUTLIER_FACTOR x the
    median frame are set aside (one clip had 30 frames 5-8x above the rest). The log medians are split
    in two at the largest between-group variance (Otsu): if the upper group holds MIN_UPPER_SHARE of the
    frames and lies GROUP_SEPARATION within-group standard deviations above the lower, its
    UPPER_PERCENTILE is the scale, else the median of all. NaN without frames.

    ratios: per frame, hand-anchored ratios (:func:`hand_anchored_ratios`).
    """
    medians = np.array([np.median(r) for r in ratios if len(r) >= MIN_FRAME_RATIOS])
    if len(medians) == 0:
        return float("nan")
    log = np.sort(np.log(medians[medians <= OUTLIER_FACTOR * np.median(medians)]))
    if len(log) < 2:
        return float(np.exp(np.median(log)))
    k = _otsu_split(log)
    low, high = log[:k], log[k:]
    spread = np.sqrt((low.var() * len(low) + high.var() * len(high)) / len(log))
    if len(high) >= MIN_UPPER_SHARE * len(log) and high.mean() - low.mean() > GROUP_SEPARATION * spread:
        return float(np.exp(np.percentile(high, UPPER_PERCENTILE)))
    return float(np.exp(np.median(log)))


def _otsu_split(values: np.ndarray) -> int:
    """k splitting sorted (N >= 2,) values into [:k] and [k:] with the largest between-group variance,
    each group at least 5 % of them (at least one value)."""
    n = len(values)
    edge = max(1, n // 20)
    k = np.arange(edge, n - edge + 1)
    low_sum = np.cumsum(values)[k - 1]
    between = k * (n - k) * (low_sum / k - (values.sum() - low_sum) / (n - k)) ** 2
    return int(k[np.argmax(between)])


SCALE_WINDOW = 30  # frames per window of the scale-consistency check
MIN_WINDOW_POINTS = 50
MIN_WINDOW_FRAMES = 10
MAX_WINDOW_SPREAD = 3.0  # windows agreeing within this factor share one scale


def disagreeing_windows(ratios: list[np.ndarray], window: int = SCALE_WINDOW) -> np.ndarray | None:
    """The median hand-anchored ratio of each window of ``window`` frames, when the windows disagree
    by more than ``MAX_WINDOW_SPREAD``; else None. The run warns then: the unscaled map may change
    its own scale over the video (a map broken on a head turn was 8x off after it, rendered clip).
    Scaling each stretch by its own value was tried and not kept: it helped 4 of 28 rendered clips,
    hurt 3 and the bundled example.

    ratios: per frame, hand-anchored ratios (:func:`hand_anchored_ratios`). Only windows with at least
    ``MIN_WINDOW_POINTS`` ratios from ``MIN_WINDOW_FRAMES`` frames count (thinner ones, 10 ratios from
    5 frames, once gave a 100x outlier); hands lifted off the table move a window by tens of percent.
    Returns (K,) in window order.
    """
    medians = []
    for start in range(0, len(ratios), window):
        part = [r for r in ratios[start:start + window] if len(r)]
        pooled = np.concatenate([np.zeros(0), *part])
        if len(pooled) >= MIN_WINDOW_POINTS and len(part) >= MIN_WINDOW_FRAMES:
            medians.append(np.median(pooled))
    medians = np.asarray(medians)
    if len(medians) < 2 or medians.max() / medians.min() <= MAX_WINDOW_SPREAD:
        return None
    return medians


def world_motion_scale(T_world_cam: np.ndarray, joints_cam: np.ndarray, step: int = 6) -> tuple[float, float]:
    """Scale s >= 0 that makes world wrists move least (Huber IRLS); returns (s, conditioning).

    World wrist p_w(t) = R(t) p_c(t) + s c(t) with c the unscaled camera centre. Conditioning is the
    camera's k-frame translation relative to the hands' k-frame motion; below ~1 the estimate is weak.
    """
    R, c = T_world_cam[:, :3, :3], T_world_cam[:, :3, 3]
    a_list, b_list = [], []
    for k in range(2):
        wrist = joints_cam[:, k, 0]
        rp = np.einsum("nij,nj->ni", R, wrist)
        t0 = np.arange(len(c) - step)
        ok = np.isfinite(rp[t0]).all(1) & np.isfinite(rp[t0 + step]).all(1)
        a_list.append(rp[t0 + step][ok] - rp[t0][ok])
        b_list.append(c[t0 + step][ok] - c[t0][ok])
    a, b = np.concatenate(a_list), np.concatenate(b_list)
    if len(a) < 5 or np.sum(b ** 2) < 1e-12:
        return float("nan"), 0.0
    w = np.ones(len(a))
    s = 0.0
    for _ in range(10):
        s = max(0.0, -np.sum(w * np.sum(a * b, 1)) / np.sum(w * np.sum(b * b, 1)))
        res = np.linalg.norm(a + s * b, axis=1)
        delta = max(np.median(res), 1e-6)
        w = np.where(res <= delta, 1.0, delta / res)
    conditioning = float(np.median(np.linalg.norm(s * b, axis=1)) / max(np.median(np.linalg.norm(a, axis=1)), 1e-9))
    return float(s), conditioning


def depth_prior_scale(T_world_cam: np.ndarray, points_world: np.ndarray, observations, image_size) -> float:
    """Scale that puts the median depth of lower-central scene points at arm's reach (0.55 m)."""
    w, h = image_size
    depths = []
    for f, (xy, pidx) in enumerate(observations):
        sel = (xy[:, 1] > h / 2) & (np.abs(xy[:, 0] - w / 2) < w / 4)
        if not sel.any():
            continue
        T_cw = np.linalg.inv(T_world_cam[f])
        d = points_world[pidx[sel]] @ T_cw[2, :3] + T_cw[2, 3]
        depths.append(d[d > 0])
    depths = np.concatenate(depths) if depths else np.zeros(0)
    return float(ARM_REACH_DEPTH_M / np.median(depths)) if len(depths) else float("nan")


def estimate_hand_scale(T_world_cam: np.ndarray, points_world: np.ndarray, observations, K: np.ndarray,
                        image_size: tuple[int, int], joints_cam: np.ndarray | None = None, hand_masks=None,
                        min_points: int = 20) -> ScaleEstimate:
    """Metric scale of an unscaled trajectory (see the module docstring for the order of methods).

    T_world_cam: (N, 4, 4) unscaled camera-to-world; points_world: (P, 3) unscaled map points;
    observations: per frame (xy (M, 2) full-resolution pixels, point index (M,)); K: (3, 3);
    joints_cam: (N, 2, 21, 3) metric camera-frame hand joints (NaN where absent); hand_masks: HandMasks.
    """
    warn: list[str] = []
    motion, cond = (float("nan"), 0.0)
    if joints_cam is not None:
        motion, cond = world_motion_scale(T_world_cam, joints_cam)
        aligned = hand_anchored_ratios(T_world_cam, points_world, observations, joints_cam, hand_masks, K, image_size)
        per_frame = [r for r in aligned if len(r) >= MIN_FRAME_RATIOS]
        count = int(sum(len(r) for r in per_frame))
        if count >= min_points:
            s = contact_scale(aligned)
            varying = disagreeing_windows(aligned)
            if varying is not None:
                warn.append(f"the hand-anchored scale varies from {varying.min():.3g} to {varying.max():.3g} across "
                            f"windows of {SCALE_WINDOW} frames: either the hands hover over farther surfaces for a "
                            "while (a wearer walking reads 2-4x low there), or the unscaled map changes its own scale "
                            "over the video, and then metric camera distances are uncertain (one scale is applied)")
            elif np.isfinite(motion) and cond > 1.0 and not 0.5 < s / max(motion, 1e-12) < 2.0:
                warn.append(f"hand-anchored scale {s:.4g} and world-motion scale {motion:.4g} disagree by more "
                            "than 2x; the hand-anchored value is used")
            return ScaleEstimate(_bounded(s), "hand_anchored", len(per_frame), count, motion, warn)
        warn.append(f"only {count} scene points around the hands; hand-anchored scale unavailable")
        if np.isfinite(motion) and motion > 0 and cond > 1.0:
            return ScaleEstimate(_bounded(motion), "world_motion", motion_scale=motion, warnings=warn)
    s = depth_prior_scale(T_world_cam, points_world, observations, image_size)
    if np.isfinite(s) and s > 0:
        warn.append("metric scale from the arm's-reach depth prior (median lower-central scene depth = "
                    f"{ARM_REACH_DEPTH_M} m); expect errors of tens of percent")
        return ScaleEstimate(_bounded(s), "depth_prior", motion_scale=motion, warnings=warn)
    warn.append("no metric cue (no hands near scene points, no map points): scale 1 (arbitrary units)")
    return ScaleEstimate(1.0, "none", motion_scale=motion, warnings=warn)


def _bounded(s: float) -> float:
    return float(np.clip(s, *SCALE_BOUNDS))
