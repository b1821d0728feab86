"""Gap filling without a learned model: SLERP for rotations, linear for translation and shape."""
from __future__ import annotations

import numpy as np
import torch

from hawor.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from hawor.runs import false_runs
from hawor.world.sequence import HandSequence

#: Default longest gap (frames) that interpolation fills; longer gaps stay NaN (1 s at 30 fps).
DEFAULT_MAX_GAP = 30


def slerp_axis_angle(aa0: torch.Tensor, aa1: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Geodesic interpolation R0 exp(alpha log(R0^T R1)) of rotation vectors (..., 3); alpha (...) in [0, 1]."""
    R0, R1 = axis_angle_to_matrix(aa0), axis_angle_to_matrix(aa1)
    step = matrix_to_axis_angle(R0.transpose(-1, -2) @ R1) * alpha[..., None]
    return matrix_to_axis_angle(R0 @ axis_angle_to_matrix(step))


def interpolate_frames(params: dict[str, np.ndarray], valid: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Values at ``frames`` (M,) int, interpolated from the valid frames around each of them.

    Between two valid frames: rotations (``global_orient`` (N,3), ``hand_pose`` (N,45), axis-angle) by
    SLERP per joint, ``transl`` and ``betas`` linearly. Before the first / after the last valid frame
    the nearest valid frame is copied. Needs at least one valid frame. Returns (M, ...) arrays.
    """
    valid = np.asarray(valid, bool)
    n = len(valid)
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(valid, idx, -1))
    nxt = np.minimum.accumulate(np.where(valid, idx, n)[::-1])[::-1]
    prev = np.where(prev < 0, nxt, prev)
    nxt = np.where(nxt >= n, prev, nxt)
    frames = np.asarray(frames, np.int64)
    a, b = prev[frames], nxt[frames]
    alpha = np.where(b > a, (frames - a) / np.maximum(b - a, 1), 0.0)
    out = {}
    for key in ("transl", "betas"):
        out[key] = params[key][a] + alpha[:, None] * (params[key][b] - params[key][a])
    t_alpha = torch.as_tensor(alpha)[:, None]
    for key in ("global_orient", "hand_pose"):
        aa0 = torch.as_tensor(params[key][a]).reshape(len(frames), -1, 3)
        aa1 = torch.as_tensor(params[key][b]).reshape(len(frames), -1, 3)
        out[key] = slerp_axis_angle(aa0, aa1, t_alpha).reshape(len(frames), -1).numpy()
    return out


def interpolate_gaps(seq: HandSequence, max_gap: int | None = DEFAULT_MAX_GAP) -> HandSequence:
    """Fill the gaps *between* observations that are at most ``max_gap`` frames long (None: any).

    Frames before the first or after the last valid frame are not extrapolated (they stay NaN), and
    a hand that is never seen stays empty. Filled frames are flagged ``infilled``.
    """
    valid = seq.valid
    fill = np.zeros(len(seq), bool)
    for start, end in false_runs(valid):
        interior = start > 0 and end < len(seq)
        if interior and (max_gap is None or end - start <= max_gap):
            fill[start:end] = True
    if not fill.any():
        return seq
    frames = np.flatnonzero(fill)
    params = {k: v.copy() for k, v in seq.params().items()}
    for key, values in interpolate_frames(params, valid, frames).items():
        params[key][frames] = values
    return seq.with_params(infilled=seq.infilled | fill, **params)
