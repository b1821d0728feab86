"""Camera-space hands + camera trajectory -> world-space hands (and back).

A rigid motion (R, t) applied to a posed MANO hand changes only its root rotation and ``transl``.
MANO rotates about the wrist joint j0 = transl + J0(beta), so the wrist moves to R j0 + t and

    global_orient' = R global_orient,    transl' = R (transl + J0(beta)) + t - J0(beta)

(HaWoR rotates about the wrist, docs/outputs.md). The same rule maps world -> canonical frames in the
infiller. Finger poses and betas never change.
"""
from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch

from hawor.errors import HaworInternalError
from hawor.geometry import axis_angle_to_matrix, invert_transform, matrix_to_axis_angle
from hawor.hands import HandModel
from hawor.world.sequence import HandSequence


def rigid_transform_hand(R: torch.Tensor, t: torch.Tensor, root: torch.Tensor, transl: torch.Tensor,
                         wrist_rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move posed hands by p -> R p + t.

    Args:
        R: (..., 3, 3), t: (..., 3) the rigid motion (frame a -> frame b).
        root: (..., 3, 3) root rotation in frame a. transl: (..., 3) MANO transl in frame a, metres.
        wrist_rest: (..., 3) J0(beta), the wrist of the shaped hand at zero pose.
    Returns:
        root (..., 3, 3) and transl (..., 3) in frame b.
    """
    wrist = transl + wrist_rest
    return R @ root, (R @ wrist[..., None])[..., 0] + t - wrist_rest


def transform_sequence(seq: HandSequence, T_b_a: np.ndarray, hand_model: HandModel) -> HandSequence:
    """Map a hand sequence from frame a to frame b with per-frame poses T_b_a (N, 4, 4).

    Frames that are not valid stay NaN; observed/infilled flags are kept.
    """
    valid = seq.valid
    out = {k: v.copy() for k, v in seq.params().items()}
    if valid.any():
        T = torch.as_tensor(np.asarray(T_b_a, np.float64)[valid])
        betas = torch.as_tensor(seq.betas[valid])
        root, transl = rigid_transform_hand(
            T[:, :3, :3], T[:, :3, 3], axis_angle_to_matrix(torch.as_tensor(seq.global_orient[valid])),
            torch.as_tensor(seq.transl[valid]), wrist_rest(hand_model, betas))
        out["global_orient"][valid] = matrix_to_axis_angle(root).numpy()
        out["transl"][valid] = transl.numpy()
    return seq.with_params(**out)


def camera_to_world(seq_cam: HandSequence, T_world_cam: np.ndarray, hand_model: HandModel) -> HandSequence:
    """Camera-frame sequence + per-frame camera-to-world poses (N, 4, 4) metres -> world-frame sequence."""
    _check_length(seq_cam, T_world_cam)
    return transform_sequence(seq_cam, T_world_cam, hand_model)


def world_to_camera(seq_world: HandSequence, T_world_cam: np.ndarray, hand_model: HandModel) -> HandSequence:
    """Inverse of :func:`camera_to_world` (used for infilled frames in the camera-frame result)."""
    _check_length(seq_world, T_world_cam)
    T_cam_world = invert_transform(torch.as_tensor(np.asarray(T_world_cam, np.float64))).numpy()
    return transform_sequence(seq_world, T_cam_world, hand_model)


def wrist_rest(hand_model: HandModel, betas: torch.Tensor) -> torch.Tensor:
    """J0(beta) (..., 3) in the dtype of ``betas``."""
    with torch.no_grad():
        return hand_model.wrist_rest(betas).to(betas.dtype)


PARAM_NAMES = ("global_orient", "hand_pose", "betas", "transl")


def pose_blocks(params: Mapping[str, np.ndarray], hand_model: HandModel,
                block: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The one way a hand sequence is posed: a block of frames at a time, so memory stays bounded.

    params: global_orient (N, 3), hand_pose (N, 45), betas (N, 10), transl (N, 3) (axis-angle,
    metres); frames with a NaN are not posed. Yields, per block of up to ``block`` frames in order,
    vertices (b, 778, 3) and joints (b, 21, 3) float64 metres in the frame of transl, NaN where not posed.
    """
    arrays = [np.asarray(params[k], np.float64) for k in PARAM_NAMES]
    dtype = hand_model.layer.v_template.dtype
    for start in range(0, len(arrays[0]), block):
        p = [a[start:start + block] for a in arrays]
        ok = np.all([np.isfinite(a).all(1) for a in p], axis=0)
        vertices = np.full((len(ok), 778, 3), np.nan)
        joints = np.full((len(ok), 21, 3), np.nan)
        if ok.any():
            with torch.no_grad():
                out = hand_model(*(torch.as_tensor(a[ok], dtype=dtype) for a in p[:3]),
                                 transl=torch.as_tensor(p[3][ok], dtype=dtype))
            vertices[ok], joints[ok] = out.vertices.double().numpy(), out.joints.double().numpy()
        yield vertices, joints


def posed_hands(seq: HandSequence, hand_model: HandModel, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (M, 778, 3) and joints (M, 21, 3) metres at ``frames`` (M,) in the sequence's frame;
    NaN on frames that are not valid."""
    frames = np.asarray(frames, np.int64)
    params = {k: v[frames] for k, v in seq.params().items() if k in PARAM_NAMES}
    parts = list(pose_blocks(params, hand_model, block=max(len(frames), 1)))
    if not parts:
        return np.zeros((0, 778, 3)), np.zeros((0, 21, 3))
    return parts[0]


def hand_joints(seq: HandSequence, hand_model: HandModel) -> np.ndarray:
    """21 OpenPose joints (N, 21, 3) metres in the sequence's frame; NaN on invalid frames."""
    parts = [joints for _, joints in pose_blocks(seq.params(), hand_model)]
    return np.concatenate(parts) if parts else np.zeros((0, 21, 3))


def _check_length(seq: HandSequence, T: np.ndarray) -> None:
    if len(T) != len(seq):
        raise HaworInternalError(f"{seq.side} hand has {len(seq)} frames but the camera trajectory has {len(T)} poses")
