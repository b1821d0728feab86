"""Hand and camera metrics as published for HaWoR (HOT3D / DexYCB protocol), plus detection figures.

Joints are (N, 21, 3) arrays in metres (OpenPose order); every function returns metres (or the unit
its docstring names) and callers multiply by 1000 for millimetres. Notation: P_t, G_t the predicted and
true joints of frame t, ||.|| the Euclidean norm, mean over the 21 joints unless said otherwise.
An alignment "sim" is the least-squares similarity (s, R, t) of Umeyama; "rigid" fixes s = 1.
"""
from __future__ import annotations

import numpy as np
import torch

from hawor.geometry import procrustes_align, umeyama
from hawor.hands.joints import MIN_VISIBLE_JOINTS

DEFAULT_CHUNK = 100
PCK_THRESHOLDS_M = np.linspace(0.0, 0.05, 51)  # 0..50 mm in 1 mm steps (AUC range of the hand papers)


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float64))


def fit_similarity(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """(s, R (3,3), t (3,)) minimising sum ||s R src_i + t - dst_i||^2 over (M, 3) point pairs.

    A degenerate source (all points equal) has no defined scale: s = 0 maps it onto the mean of dst.
    """
    src, dst = np.asarray(src, np.float64).reshape(-1, 3), np.asarray(dst, np.float64).reshape(-1, 3)
    if with_scale and float(((src - src.mean(0)) ** 2).sum()) < 1e-18:
        return 0.0, np.eye(3), dst.mean(0)
    s, R, t = umeyama(_t(src), _t(dst), with_scale=with_scale)
    return float(s), R.numpy(), t.numpy()


def _apply(s: float, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> np.ndarray:
    return s * np.asarray(points, np.float64) @ R.T + t


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE_t = mean_j ||P_tj - G_tj||. (N, J, 3) -> (N,), no alignment."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1).mean(-1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """PA-MPJPE_t = MPJPE(sim_t(P_t), G_t), sim_t fitted on frame t alone (Procrustes). (N, J, 3) -> (N,).

    Removes position, rotation and size: measures the articulated pose and shape only.
    """
    return mpjpe(procrustes_align(_t(pred), _t(gt)).numpy(), gt)


def _chunks(n: int, chunk: int) -> list[slice]:
    return [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]


def _chunked_aligned_mpjpe(pred, gt, chunk: int, fit_frames: int | None, with_scale: bool) -> np.ndarray:
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    errors = np.empty(len(pred))
    for part in _chunks(len(pred), chunk):
        p, g = pred[part], gt[part]
        fit = slice(0, fit_frames)
        s, R, t = fit_similarity(p[fit], g[fit], with_scale)
        errors[part] = mpjpe(_apply(s, R, t, p), g)
    return errors


def w_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = DEFAULT_CHUNK, with_scale: bool = True) -> np.ndarray:
    """W-MPJPE: the frames are cut into chunks of ``chunk`` (100 as published); in each chunk
    MPJPE_t(sim(P_t), G_t) with one sim fitted on the joints of the chunk's *first two* frames, so drift
    and scale error over the chunk count in full. (N, J, 3) -> (N,)."""
    return _chunked_aligned_mpjpe(pred, gt, chunk, 2, with_scale)


def wa_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = DEFAULT_CHUNK, with_scale: bool = True) -> np.ndarray:
    """WA-MPJPE: as W-MPJPE but the chunk's sim is fitted on *all* its frames (trajectory shape error).
    (N, J, 3) -> (N,)."""
    return _chunked_aligned_mpjpe(pred, gt, chunk, None, with_scale)


def wa_aligned(pred: np.ndarray, gt: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """The prediction after each chunk's all-frames similarity (the WA-MPJPE alignment). (N, J, 3)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    out = np.empty_like(pred)
    for part in _chunks(len(pred), chunk):
        out[part] = _apply(*fit_similarity(pred[part], gt[part]), pred[part])
    return out


def accel_error(pred: np.ndarray, gt: np.ndarray, fps: float) -> np.ndarray:
    """Acceleration error, m/s^2: mean_j ||a(P)_tj - a(G)_tj|| with the second difference
    a(X)_t = (X_{t+1} - 2 X_t + X_{t-1}) * fps^2 (the published figure multiplies by 30^2 at 30 fps).
    (N, J, 3) -> (N - 2,). Frames must be consecutive."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    second = lambda x: x[2:] - 2 * x[1:-1] + x[:-2]  # noqa: E731
    return np.linalg.norm(second(pred) - second(gt), axis=-1).mean(-1) * fps ** 2


def jitter(pred: np.ndarray, fps: float) -> np.ndarray:
    """Jitter, m/s^3: mean_j ||X_{t+3} - 3 X_{t+2} + 3 X_{t+1} - X_t|| * fps^3 (third difference; smoothness
    of the prediction alone, no ground truth). (N, J, 3) -> (N - 3,)."""
    x = np.asarray(pred, np.float64)
    third = x[3:] - 3 * x[2:-1] + 3 * x[1:-2] - x[:-3]
    return np.linalg.norm(third, axis=-1).mean(-1) * fps ** 3


def rte(pred_root: np.ndarray, gt_root: np.ndarray) -> np.ndarray:
    """Root translation error, %: ||rigid(p_t) - g_t|| / L * 100, rigid fitted on the whole (N, 3)
    root trajectory, L = sum_t ||g_{t+1} - g_t|| the true path length. (N, 3) -> (N,); NaN if L = 0."""
    p, g = np.asarray(pred_root, np.float64), np.asarray(gt_root, np.float64)
    length = np.linalg.norm(np.diff(g, axis=0), axis=-1).sum()
    aligned = _apply(*fit_similarity(p, g, with_scale=False), p)
    return np.linalg.norm(aligned - g, axis=-1) / length * 100 if length > 0 else np.full(len(p), np.nan)


def camera_alignment(T_world_cam_pred: np.ndarray, T_world_cam_gt: np.ndarray, with_scale: bool = True
                     ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Align predicted camera centres (N, 4, 4 camera-to-world) onto the true ones.

    Returns (s, R, t, residuals (N,) metres). ``s`` with scale is the Sim3 alignment scale: a clean
    metric prediction k times too large gets s = 1/k; noise on a path that barely moves pulls s
    towards 0 (s = covariance / variance of the prediction), so read it with :func:`path_length_ratio`.
    """
    p, g = np.asarray(T_world_cam_pred, np.float64)[:, :3, 3], np.asarray(T_world_cam_gt, np.float64)[:, :3, 3]
    s, R, t = fit_similarity(p, g, with_scale)
    return s, R, t, np.linalg.norm(_apply(s, R, t, p) - g, axis=-1)


def camera_ate(T_world_cam_pred: np.ndarray, T_world_cam_gt: np.ndarray, with_scale: bool = True) -> float:
    """ATE, metres: sqrt(mean_t ||align(c_t) - g_t||^2) over camera centres. with_scale=True is the
    published ATE-S (Sim3, scale-free); False is the metric SE3 ATE. A static prediction under Sim3
    collapses to the true mean, so its ATE is the spread of the true path."""
    return float(np.sqrt((camera_alignment(T_world_cam_pred, T_world_cam_gt, with_scale)[3] ** 2).mean()))


def path_length_ratio(T_world_cam_pred: np.ndarray, T_world_cam_gt: np.ndarray) -> float:
    """Metric-scale error as a ratio: sum_t ||c_{t+1} - c_t|| of the predicted camera centres over the
    same for the true ones (1.0 = right metric scale, 1.44 = 44 % too large); NaN for a static truth."""
    true = _path_length(T_world_cam_gt)
    return _path_length(T_world_cam_pred) / true if true > 0 else float("nan")


def _path_length(T_world_cam: np.ndarray) -> float:
    centres = np.asarray(T_world_cam, np.float64)[:, :3, 3]
    return float(np.linalg.norm(np.diff(centres, axis=0), axis=-1).sum())


def camera_rpe(T_world_cam_pred: np.ndarray, T_world_cam_gt: np.ndarray, delta: int = 1) -> tuple[float, float]:
    """Relative pose error over frame pairs (t, t + delta): with D = inv(G_t^-1 G_{t+d}) (P_t^-1 P_{t+d}),
    returns (RMSE of ||trans(D)|| in metres, mean rotation angle of D in degrees). Metric (no scale)."""
    P, G = np.asarray(T_world_cam_pred, np.float64), np.asarray(T_world_cam_gt, np.float64)
    rel = lambda T: np.linalg.inv(T[:-delta]) @ T[delta:]  # noqa: E731
    D = np.linalg.inv(rel(G)) @ rel(P)
    trans = np.linalg.norm(D[:, :3, 3], axis=-1)
    cos = np.clip((np.trace(D[:, :3, :3], axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    return float(np.sqrt((trans ** 2).mean())), float(np.degrees(np.arccos(cos)).mean())


def pck(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray = PCK_THRESHOLDS_M) -> np.ndarray:
    """PCK(d) = share of joints of all frames with ||PA(P)_tj - G_tj|| <= d, per threshold d (metres),
    after per-frame Procrustes as in the camera-space hand benchmarks. (N, J, 3) -> (len(thresholds),)."""
    dist = np.linalg.norm(procrustes_align(_t(pred), _t(gt)).numpy() - np.asarray(gt, np.float64), axis=-1)
    return (dist.reshape(-1)[None] <= np.asarray(thresholds)[:, None]).mean(-1)


def auc(curve: np.ndarray, thresholds: np.ndarray = PCK_THRESHOLDS_M) -> float:
    """Area under a PCK curve, normalised by the threshold range (trapezoid rule): 1.0 = every joint
    within the smallest threshold."""
    thresholds = np.asarray(thresholds, np.float64)
    widths = np.diff(thresholds)
    return float(((curve[1:] + curve[:-1]) / 2 * widths).sum() / (thresholds[-1] - thresholds[0]))


def detection_rates(observed: np.ndarray, visible: np.ndarray) -> dict:
    """Per hand: recall = |observed & visible| / |visible| (share of the frames the hand is visible in
    the ground truth that the result observed), precision = |observed & visible| / |observed|.
    NaN where the denominator is 0."""
    observed, visible = np.asarray(observed, bool), np.asarray(visible, bool)
    hits = int((observed & visible).sum())
    return {"recall": hits / visible.sum() if visible.any() else float("nan"),
            "precision": hits / observed.sum() if observed.any() else float("nan")}


def handedness_swaps(centres_pred: dict, centres_gt: dict, observed: dict, visible: dict) -> dict:
    """Frames where a predicted hand sits on the other true hand, per side.

    centres_*: {side: (N, 2)} image positions (pixels) of each hand's mean joint (NaN in the truth
    where it has no position); observed/visible: {side: (N,) bool}. Frame t counts for side h when h
    was observed, the other hand o is visible and h's centre is nearer to the true o than to the true h.
    The true h's position counts whether or not h is visible: a hand cut by the image border, with
    too few joints inside to count as visible, is still where it is, and a detection of its fingers
    is not a swap. Where the truth has no position for h, a detection of h beside a visible o is one.
    """
    swaps = {}
    for side, other in (("left", "right"), ("right", "left")):
        own = np.linalg.norm(centres_pred[side] - centres_gt[side], axis=-1)
        cross = np.linalg.norm(centres_pred[side] - centres_gt[other], axis=-1)
        own = np.where(np.isfinite(own), own, np.inf)
        hit = np.asarray(observed[side], bool) & np.asarray(visible[other], bool) & (cross < own)
        swaps[side] = int(hit.sum())
    return swaps


def camera_points(joints_world: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """(N, K, 3) world-frame points (metres) -> camera frame, given (N, 4, 4) camera-to-world poses."""
    T_cam_world = np.linalg.inv(np.asarray(T_world_cam, np.float64))
    return np.einsum("nij,nkj->nki", T_cam_world[:, :3, :3], joints_world) + T_cam_world[:, None, :3, 3]


def _centres_px(joints_world: np.ndarray, T_world_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    centre = camera_points(joints_world, T_world_cam).mean(1)
    z = np.where(centre[:, 2] > 1e-6, centre[:, 2], np.nan)
    return centre[:, :2] / z[:, None] * np.diag(K)[:2] + np.asarray(K)[:2, 2]


def evaluate_world(pred, gt, sides=("left", "right"), chunk: int = DEFAULT_CHUNK, fps: float | None = None) -> dict:
    """Compare a result with ground truth stored under the same keys (``{h}_joints`` world frame,
    ``{h}_valid``, ``{h}_observed`` = visible in the image in the ground truth; optionally ``T_world_cam``,
    ``K``, ``fps``); both may be npz files or dicts with the same frame count.

    Per hand:
      - world figures over frames valid in both: ``w_mpjpe_mm``, ``wa_mpjpe_mm``, ``accel_error_m_s2``
        (on the WA-aligned prediction, consecutive valid frames only), ``jitter_m_s3``, ``rte_pct``,
        ``frames`` compared and ``world_coverage`` (= frames / frames valid in the ground truth);
      - camera-space figures over frames observed in the result and visible in the ground truth:
        ``pa_mpjpe_mm``, ``auc`` (PCK 0-50 mm after Procrustes), ``cam_mpjpe_mm`` (no alignment; needs
        ``T_world_cam`` in both), ``observed_frames``;
      - ``observed_fraction`` (= detection recall; NaN for a hand never visible), ``precision``; where
        the truth holds ``{h}_joints_unoccluded`` (N, 21) (the generator's), ``observed_fraction_unoccluded``:
        the recall over the visible frames in which at least MIN_VISIBLE_JOINTS (11) joints are also not
        hidden behind something else (``unoccluded_frames`` of them): a hand behind the other arm counts as
        visible, yet no detector can see it;
      - ``handedness_swaps`` (needs both ``K``s and ``T_world_cam``s).
    Camera (both hold ``T_world_cam``): ``camera_ate_m`` (Sim3, = ATE-S), ``camera_ate_se3_m``,
    ``sim3_scale`` (the Sim3 alignment's s, applied to the prediction), ``path_length_ratio`` (predicted /
    true camera path length), ``rpe_trans_m`` and ``rpe_rot_deg`` (1-frame pairs).
    """
    fps = float(fps or (gt["fps"] if "fps" in gt else pred["fps"] if "fps" in pred else 30.0))
    has_cam = "T_world_cam" in gt and "T_world_cam" in pred and len(gt["T_world_cam"]) == len(pred["T_world_cam"])
    out: dict = {}
    for side in sides:
        key = f"{side}_joints"
        if key not in gt or key not in pred:
            continue
        pj, gj = np.asarray(pred[key], np.float64), np.asarray(gt[key], np.float64)
        gt_valid = np.asarray(gt[f"{side}_valid"], bool)
        visible = np.asarray(gt[f"{side}_observed"], bool) if f"{side}_observed" in gt else gt_valid
        observed = np.asarray(pred[f"{side}_observed"], bool)
        both = gt_valid & np.asarray(pred[f"{side}_valid"], bool)
        seen = observed & visible & both
        rates = detection_rates(observed, visible)
        row = {"frames": int(both.sum()), "world_coverage": float(both.sum() / max(int(gt_valid.sum()), 1)),
               "observed_frames": int(seen.sum()), "observed_fraction": float(rates["recall"]),
               "precision": float(rates["precision"])}
        if f"{side}_joints_unoccluded" in gt:
            unoccluded = visible & (np.asarray(gt[f"{side}_joints_unoccluded"]).sum(-1) >= MIN_VISIBLE_JOINTS)
            row["unoccluded_frames"] = int(unoccluded.sum())
            row["observed_fraction_unoccluded"] = float(detection_rates(observed, unoccluded)["recall"])
        if both.sum() >= 2:
            p, g = pj[both], gj[both]
            row.update({"w_mpjpe_mm": 1000 * float(w_mpjpe(p, g, chunk).mean()),
                        "wa_mpjpe_mm": 1000 * float(wa_mpjpe(p, g, chunk).mean()),
                        "rte_pct": float(np.nanmean(rte(p[:, 0], g[:, 0])))})
            runs = _segments(both, chunk)
            aligned = wa_aligned(p, g, chunk)
            acc = [accel_error(aligned[r], g[r], fps) for r in runs if r.stop - r.start >= 3]
            jit = [jitter(p[r], fps) for r in runs if r.stop - r.start >= 4]
            if acc:
                row["accel_error_m_s2"] = float(np.concatenate(acc).mean())
            if jit:
                row["jitter_m_s3"] = float(np.concatenate(jit).mean())
        if both.sum() >= 2 and not seen.any():
            row["pa_mpjpe_mm"] = float("nan")  # valid only where the ground truth says invisible: undefined
        if seen.any():
            row["pa_mpjpe_mm"] = 1000 * float(pa_mpjpe(pj[seen], gj[seen]).mean())
            row["auc"] = auc(pck(pj[seen], gj[seen]))
            if has_cam:
                row["cam_mpjpe_mm"] = 1000 * float(mpjpe(camera_points(pj[seen], pred["T_world_cam"][seen]),
                                                         camera_points(gj[seen], gt["T_world_cam"][seen])).mean())
        out[side] = row
    if has_cam:
        s, _, _, residual = camera_alignment(pred["T_world_cam"], gt["T_world_cam"], True)
        out["camera_ate_m"] = float(np.sqrt((residual ** 2).mean()))
        out["camera_ate_se3_m"] = camera_ate(pred["T_world_cam"], gt["T_world_cam"], with_scale=False)
        out["sim3_scale"] = s
        out["path_length_ratio"] = path_length_ratio(pred["T_world_cam"], gt["T_world_cam"])
        out["rpe_trans_m"], out["rpe_rot_deg"] = camera_rpe(pred["T_world_cam"], gt["T_world_cam"])
        if "K" in gt and "K" in pred and all(f"{h}_joints" in gt and f"{h}_joints" in pred for h in ("left", "right")):
            out["handedness_swaps"] = _swaps(pred, gt)
    return out


def _segments(mask: np.ndarray, chunk: int) -> list[slice]:
    """Slices into the compressed array ``x[mask]`` of frames that are consecutive in time and share an
    alignment chunk (so no difference spans a gap or a chunk boundary)."""
    frames = np.flatnonzero(mask)
    position = np.arange(len(frames))
    breaks = np.flatnonzero((np.diff(frames) > 1) | (position[1:] % chunk == 0)) + 1
    bounds = np.concatenate([[0], breaks, [len(frames)]])
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _swaps(pred, gt) -> dict:
    centres, observed, visible = {}, {}, {}
    for name, data in (("pred", pred), ("gt", gt)):
        centres[name] = {h: _centres_px(np.asarray(data[f"{h}_joints"], np.float64), data["T_world_cam"], data["K"])
                         for h in ("left", "right")}
    for h in ("left", "right"):
        visible[h] = np.asarray(gt[f"{h}_observed"], bool) & np.isfinite(centres["gt"][h]).all(-1)
        observed[h] = np.asarray(pred[f"{h}_observed"], bool) & np.isfinite(centres["pred"][h]).all(-1)
        centres["pred"][h] = np.nan_to_num(centres["pred"][h], nan=1e9)
    return handedness_swaps(centres["pred"], centres["gt"], observed, visible)
