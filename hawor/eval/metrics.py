"""World-space hand and camera metrics (HaWoR protocol, reference §8).

Joint errors are per frame, in the input's units (metres in, metres out; multiply by 1000 for mm):

- MPJPE: mean joint distance, no alignment.
- PA-MPJPE: each frame's joints similarity-aligned (Procrustes: scale, rotation, translation) to the
  ground truth first; measures pose only.
- W-MPJPE: the sequence is cut into chunks (100 frames in the paper); each chunk is similarity-aligned
  with the transform fitted on the joints of its *first two* frames, so drift over the chunk counts.
- WA-MPJPE: each chunk is similarity-aligned with the transform fitted on *all* its joints.
- Camera ATE: RMSE of camera centres after Umeyama alignment of the whole trajectory (with scale:
  ATE-S, the paper's scale-free variant; without: metric ATE).
"""
from __future__ import annotations

import numpy as np
import torch

from hawor.geometry import procrustes_align, umeyama

DEFAULT_CHUNK = 100


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float64))


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pred, gt (N, J, 3) -> (N,) mean joint distance per frame."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1).mean(-1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, J, 3) -> (N,) MPJPE after per-frame similarity alignment of pred to gt."""
    return mpjpe(procrustes_align(_t(pred), _t(gt)).numpy(), gt)


def _chunked_aligned_mpjpe(pred, gt, chunk: int, fit_frames: int | None, with_scale: bool) -> np.ndarray:
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    errors = np.empty(len(pred))
    for start in range(0, len(pred), chunk):
        p, g = _t(pred[start:start + chunk]), _t(gt[start:start + chunk])
        fit = slice(0, fit_frames)
        s, R, t = umeyama(p[fit].reshape(-1, 3), g[fit].reshape(-1, 3), with_scale=with_scale)
        aligned = s * p @ R.T + t
        errors[start:start + chunk] = mpjpe(aligned.numpy(), g.numpy())
    return errors


def w_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = DEFAULT_CHUNK, with_scale: bool = True) -> np.ndarray:
    """(N, J, 3) -> (N,) errors after aligning each chunk on its first two frames."""
    return _chunked_aligned_mpjpe(pred, gt, chunk, 2, with_scale)


def wa_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = DEFAULT_CHUNK, with_scale: bool = True) -> np.ndarray:
    """(N, J, 3) -> (N,) errors after aligning each chunk on all of its frames."""
    return _chunked_aligned_mpjpe(pred, gt, chunk, None, with_scale)


def camera_ate(T_world_cam_pred: np.ndarray, T_world_cam_gt: np.ndarray, with_scale: bool = True) -> float:
    """Absolute trajectory error: RMSE of camera centres (N, 4, 4) camera-to-world after Umeyama alignment."""
    p, g = _t(T_world_cam_pred)[:, :3, 3], _t(T_world_cam_gt)[:, :3, 3]
    if with_scale and float(((p - p.mean(0)) ** 2).sum()) < 1e-18:
        residual = (g - g.mean(0)).numpy()  # a static estimate: the best similarity collapses it to a point
    else:
        s, R, t = umeyama(p, g, with_scale=with_scale)
        residual = (s * p @ R.T + t - g).numpy()
    return float(np.sqrt((residual ** 2).sum(-1).mean()))


def evaluate_world(pred, gt, sides=("left", "right"), chunk: int = DEFAULT_CHUNK) -> dict:
    """Compare a result with ground truth stored under the same keys (``{h}_joints``, ``{h}_valid``,
    ``{h}_observed`` = visible in the image, optionally ``T_world_cam``); both may be npz files or dicts.

    Per hand, over frames valid in both: W-MPJPE, WA-MPJPE and PA-MPJPE (mean, mm), the number of
    frames compared and ``observed_fraction`` (frames the result observed / frames the hand is visible
    in the ground truth). Camera ATE (with scale, metres) when both hold ``T_world_cam``.
    """
    out: dict = {}
    for side in sides:
        key = f"{side}_joints"
        if key not in gt or key not in pred:
            continue
        gt_valid = np.asarray(gt[f"{side}_valid"], bool)
        visible = np.asarray(gt[f"{side}_observed"], bool) if f"{side}_observed" in gt else gt_valid
        both = gt_valid & np.asarray(pred[f"{side}_valid"], bool)
        row = {"frames": int(both.sum()),
               "observed_fraction": float((np.asarray(pred[f"{side}_observed"], bool) & visible).sum()
                                          / max(int(visible.sum()), 1))}
        if both.sum() >= 2:
            p, g = np.asarray(pred[key], np.float64)[both], np.asarray(gt[key], np.float64)[both]
            row.update({"w_mpjpe_mm": 1000 * float(w_mpjpe(p, g, chunk).mean()),
                        "wa_mpjpe_mm": 1000 * float(wa_mpjpe(p, g, chunk).mean()),
                        "pa_mpjpe_mm": 1000 * float(pa_mpjpe(p, g).mean())})
        out[side] = row
    if "T_world_cam" in gt and "T_world_cam" in pred and len(gt["T_world_cam"]) == len(pred["T_world_cam"]):
        out["camera_ate_m"] = camera_ate(pred["T_world_cam"], gt["T_world_cam"], with_scale=True)
    return out
