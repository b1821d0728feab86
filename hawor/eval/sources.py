"""Where the world error comes from: W-/WA-MPJPE again with one part of each predicted hand taken from the truth.

Each part replaces, in every frame where both the result and the truth hold the hand, one thing of the
predicted hand by the truth's and leaves the rest as predicted:

- ``orientation``: the joints turned about the predicted wrist by the rotation that best maps the
  predicted palm (wrist and the four finger bases) onto the true palm;
- ``wrist``: the joints moved so that the wrist is the true one (pose and orientation kept);
- ``size``: the joints scaled about the wrist to the true wrist-to-middle-finger-base length;
- ``filled``: the frames that the gap filling made (``{side}_infilled``) replaced by the truth;
- ``placement``: orientation, wrist and size together, so that only the finger articulation is predicted.

A large drop says that the part carries the error. W-MPJPE fits each chunk on the hand of its first two
frames, so the hand's orientation there turns the whole chunk (docs/performance.md, "What limits the
world figures").
"""
from __future__ import annotations

import numpy as np
import torch

from hawor.eval.metrics import w_mpjpe, wa_mpjpe
from hawor.geometry import umeyama
from hawor.hands.joints import OPENPOSE_JOINT_NAMES, PALM_JOINTS

PARTS = ("orientation", "wrist", "size", "filled", "placement")
MIDDLE_BASE = OPENPOSE_JOINT_NAMES.index("middle1")


def with_true_part(pred: np.ndarray, gt: np.ndarray, part: str, infilled: np.ndarray | None = None) -> np.ndarray:
    """(N, 21, 3) predicted joints with ``part`` (one of :data:`PARTS`) taken from ``gt`` (N, 21, 3), both in
    metres in one frame. Frames where either holds NaN are returned as predicted. ``infilled`` (N,) bool is
    needed for ``filled``."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    out = pred.copy()
    both = np.isfinite(pred).all((1, 2)) & np.isfinite(gt).all((1, 2))
    p, g = pred[both], gt[both]
    wrist = p[:, :1]
    if part == "orientation":
        palm = list(PALM_JOINTS)
        _, R, _ = umeyama(torch.as_tensor(p[:, palm]), torch.as_tensor(g[:, palm]), with_scale=False)
        out[both] = np.einsum("nij,nkj->nki", R.numpy(), p - wrist) + wrist
    elif part == "wrist":
        out[both] = p - wrist + g[:, :1]
    elif part == "size":
        ratio = _palm_length(g) / _palm_length(p)
        out[both] = (p - wrist) * ratio[:, None, None] + wrist
    elif part == "placement":
        return with_true_part(with_true_part(with_true_part(pred, gt, "size"), gt, "orientation"), gt, "wrist")
    elif part == "filled":
        if infilled is None:
            raise ValueError("the part 'filled' needs the result's infilled mask")
        swap = both & np.asarray(infilled, bool)
        out[swap] = gt[swap]
    else:
        raise ValueError(f"unknown part '{part}': choose one of {', '.join(PARTS)}")
    return out


def _palm_length(joints: np.ndarray) -> np.ndarray:
    """(N, 21, 3) -> (N,) wrist-to-middle-finger-base distance."""
    return np.linalg.norm(joints[:, MIDDLE_BASE] - joints[:, 0], axis=-1)


def error_sources(pred: dict, gt: dict, sides=("left", "right"), chunk: int = 100) -> dict:
    """Per hand, W-/WA-MPJPE (mm) of the result and of the result with each of :data:`PARTS` taken from the
    truth, over the frames valid in both (as :func:`hawor.eval.metrics.evaluate_world`):
    ``{side: {"result" | part: {"w_mpjpe_mm", "wa_mpjpe_mm"}}}``. ``pred``/``gt`` hold ``{side}_joints``
    (N, 21, 3) world frame and ``{side}_valid``; ``pred`` may hold ``{side}_infilled`` (else no ``filled``)."""
    out = {}
    for side in sides:
        key = f"{side}_joints"
        if key not in pred or key not in gt:
            continue
        both = np.asarray(gt[f"{side}_valid"], bool) & np.asarray(pred[f"{side}_valid"], bool)
        if both.sum() < 2:
            continue
        pj, gj = np.asarray(pred[key], np.float64)[both], np.asarray(gt[key], np.float64)[both]
        infilled = pred.get(f"{side}_infilled")
        filled = None if infilled is None else np.asarray(infilled, bool)[both]
        variants = {"result": pj} | {part: with_true_part(pj, gj, part, filled) for part in PARTS
                                     if part != "filled" or filled is not None}
        out[side] = {name: {"w_mpjpe_mm": 1000 * float(w_mpjpe(j, gj, chunk).mean()),
                            "wa_mpjpe_mm": 1000 * float(wa_mpjpe(j, gj, chunk).mean())} for name, j in variants.items()}
    return out
