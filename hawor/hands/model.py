"""The hand model used by every part of the project: MANO when its files are present, else the open hand.

Both backends are MANO-format files skinned by smplx (linear blend skinning with pose correctives), so
one code path serves both. Outputs follow the project's conventions: 21 joints in OpenPose order
(16 skeleton joints + 5 fingertip vertices) and a watertight mesh (wrist opening closed).
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import lbs
from smplx.utils import Struct
from torch import nn

from hawor.errors import HaworInputError
from hawor.geometry import axis_angle_to_matrix
from hawor.hands.joints import FINGERTIP_VERTEX_IDS, MANO_TO_OPENPOSE, WRIST_CLOSING_FACES
from hawor.hands.mano_io import read_mano_file
from hawor.weights import weight_path

log = logging.getLogger(__name__)
BACKENDS = ("auto", "mano", "open")
_announced: set[str] = set()


@dataclass
class HandOutput:
    """vertices (..., 778, 3) and joints (..., 21, 3, OpenPose order), metres, in the frame of transl."""

    vertices: torch.Tensor
    joints: torch.Tensor


def resolve_backend(backend: str = "auto") -> str:
    """'mano' when both official MANO files exist (or when asked), else 'open'; said once in the log.

    One MANO file without the other is an error rather than a silent switch to the open hand.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"hand model '{backend}': unknown; choose one of {BACKENDS}.")
    if backend != "auto":
        return backend
    present = {side: weight_path(f"mano_{side}").is_file() for side in ("right", "left")}
    if any(present.values()) and not all(present.values()):
        have, lack = sorted(present, key=lambda side: not present[side])
        raise HaworInputError(f"hand model: MANO's {have} hand is at {weight_path(f'mano_{have}')} but its {lack} "
                              f"hand is not at {weight_path(f'mano_{lack}')}. Fix: put both MANO files there, "
                              "or choose the open hand (--hand_model open).")
    chosen = "mano" if all(present.values()) else "open"
    if chosen not in _announced:
        _announced.add(chosen)
        reason = "MANO files found" if chosen == "mano" else (
            f"no MANO files at {weight_path('mano_right')} / {weight_path('mano_left')}")
        log.info("hand model: %s (%s)", chosen, reason)
    return chosen


def model_file(side: str, backend: str) -> Path:
    """Path of the model file for a side ('left'/'right') and a resolved backend ('mano'/'open')."""
    if backend == "open":
        from hawor.hands.open_hand import ensure_open_hand

        path = weight_path(f"open_hand_{side}")
        ensure_open_hand(path.parent)  # (re)generates a missing or stale file
        return path
    return weight_path(f"mano_{side}")


class HandModel(nn.Module):
    """Skinned MANO-format hand for one side.

    Args:
        side: "right" or "left".
        backend: "auto" (MANO if present, else the open hand), "mano" or "open".
        model_path: an explicit MANO-format file (.pkl or .npz) instead of the default locations.
    """

    def __init__(self, side: str = "right", backend: str = "auto", model_path: str | Path | None = None):
        super().__init__()
        if side not in ("left", "right"):
            raise HaworInputError(f"hand side '{side}': expected 'left' or 'right'.")
        self.side = side
        self.backend = "file" if model_path is not None else resolve_backend(backend)
        path = Path(model_path) if model_path is not None else model_file(side, self.backend)
        data = read_mano_file(path)
        if self.backend == "mano" and side == "left":
            # MANO_LEFT.pkl's shape blend shapes have the wrong x sign (smplx issue #48).
            data["shapedirs"] = np.array(data["shapedirs"], copy=True)
            data["shapedirs"][:, 0, :] *= -1
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 shape coefficients
            self.layer = smplx.MANO(str(path), is_rhand=side == "right", data_struct=Struct(**data),
                                    use_pca=False, flat_hand_mean=True, num_betas=10)
        closing = data.get("wrist_closing_faces", WRIST_CLOSING_FACES)
        closing = np.asarray(closing, dtype=np.int64)
        if side == "left":
            closing = closing[:, [0, 2, 1]]
        self.faces = np.concatenate([np.asarray(data["f"], dtype=np.int64), closing], axis=0)
        self.register_buffer("tip_ids", torch.tensor(FINGERTIP_VERTEX_IDS), persistent=False)
        self.register_buffer("openpose_order", torch.tensor(MANO_TO_OPENPOSE), persistent=False)

    def wrist_rest(self, betas: torch.Tensor) -> torch.Tensor:
        """Wrist joint (..., 3) of the shaped hand at zero pose and zero transl, metres.

        Rotating the hand about its wrist needs this offset: MANO rotates about joint 0, which sits at
        transl + wrist_rest(betas).
        """
        layer = self.layer
        shaped = layer.v_template + torch.einsum("...l,vcl->...vc", betas.to(layer.shapedirs.dtype), layer.shapedirs)
        return torch.einsum("v,...vc->...c", layer.J_regressor[0], shaped)

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor | None = None) -> HandOutput:
        """Pose and shape the hand.

        Args:
            global_orient: (..., 3) axis-angle or (..., 3, 3) matrix, root rotation.
            hand_pose: (..., 45) or (..., 15, 3) axis-angle, or (..., 15, 3, 3) matrices, MANO joint order.
            betas: (..., 10) shape coefficients.
            transl: (..., 3) metres, added after skinning; zero when None.
        Returns:
            HandOutput with vertices (..., 778, 3) and joints (..., 21, 3).
        """
        batch_shape = betas.shape[:-1]
        root = _as_matrices(global_orient, 1, batch_shape)
        fingers = _as_matrices(hand_pose, 15, batch_shape)
        pose = torch.cat([root, fingers], dim=-3).reshape(-1, 16, 3, 3)
        layer = self.layer
        dtype = layer.v_template.dtype
        vertices, skeleton = lbs(betas.reshape(-1, betas.shape[-1]).to(dtype), pose.to(dtype), layer.v_template,
                                 layer.shapedirs, layer.posedirs, layer.J_regressor, layer.parents,
                                 layer.lbs_weights, pose2rot=False)
        joints = torch.cat([skeleton, vertices[:, self.tip_ids]], dim=1)[:, self.openpose_order]
        if transl is not None:
            offset = transl.reshape(-1, 1, 3).to(dtype)
            vertices, joints = vertices + offset, joints + offset
        return HandOutput(vertices.reshape(*batch_shape, -1, 3), joints.reshape(*batch_shape, 21, 3))


def _as_matrices(rotations: torch.Tensor, num_joints: int, batch_shape: torch.Size) -> torch.Tensor:
    """Rotations for ``num_joints`` joints -> (*batch_shape, J, 3, 3).

    Accepted: axis-angle (*batch, J*3) or (*batch, J, 3); matrices (*batch, J, 3, 3), or (*batch, 3, 3)
    for a single joint. The batch shape (from betas) settles the (3, 3) ambiguity.
    """
    trailing = tuple(rotations.shape[len(batch_shape):])
    if trailing in ((num_joints, 3, 3), (3, 3)) and (num_joints == 1 or trailing[0] == num_joints):
        return rotations.reshape(*batch_shape, num_joints, 3, 3)
    if trailing in ((num_joints * 3,), (num_joints, 3)):
        return axis_angle_to_matrix(rotations.reshape(*batch_shape, num_joints, 3))
    raise ValueError(f"rotations of shape {tuple(rotations.shape)} for batch {tuple(batch_shape)}: expected "
                     f"{num_joints} axis-angles or rotation matrices per item")
