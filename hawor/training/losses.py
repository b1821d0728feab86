"""Training losses, weighted by LOSS_WEIGHTS (the official key names; the official loss types are not released, docs/training.md says which we chose).

With ``mean`` reduction over every element:

- KEYPOINTS_2D: L1 between predicted and true 2D joints in normalised crop coordinates
  ((pixel - crop centre) / crop side, so the crop spans -0.5..0.5), weighted by the joint's label
  confidence (0 for unlabelled joints). Predictions: the hand model's joints + the translation from the
  crop camera, projected with the sample's focal length and principal point.
- KEYPOINTS_3D: L1 between wrist-relative 3D joints (joint 0 subtracted from both), metres.
- GLOBAL_ORIENT, HAND_POSE: MSE between rotation matrices (root; 15 finger joints), after PAM.
- BETAS: MSE between shape coefficients.
L1 for keypoints and MSE for parameters follow HaMeR, from which HaWoR's training is adapted.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from hawor.geometry import BOX_SCALE_UNIT
from hawor.models.hawor_regressor import HaworOutput

TERMS = ("KEYPOINTS_2D", "KEYPOINTS_3D", "GLOBAL_ORIENT", "HAND_POSE", "BETAS")
_MIN_DEPTH = 0.01  # metres; keeps early, wild camera predictions from dividing by ~0


def predicted_keypoints(out: HaworOutput, batch: Mapping[str, torch.Tensor], hand_model: nn.Module
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted joints (B, T, 21, 3) metres without translation and their 2D positions (B, T, 21, 2) in
    normalised crop coordinates, in the (mirrored, for left hands) image the network saw."""
    rotmat = out.pred_rotmat.float()
    joints = hand_model(rotmat[:, :, 0], rotmat[:, :, 1:], out.pred_shape.float()).joints
    points = joints + out.trans_full.float()[:, :, None]
    depth = points[..., 2:3].clamp(min=_MIN_DEPTH)
    pixels = points[..., :2] / depth * batch["focal"][..., None, None] + batch["img_center"][:, :, None]
    side = BOX_SCALE_UNIT * batch["scale"][..., None, None]
    return joints, (pixels - batch["center"][:, :, None]) / side


def compute_losses(out: HaworOutput, batch: Mapping[str, torch.Tensor], hand_model: nn.Module,
                   weights: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor,
                                                          torch.Tensor]:
    """Weighted total, the unweighted terms by LOSS_WEIGHTS name, predicted joints and 2D keypoints."""
    joints, j2d = predicted_keypoints(out, batch, hand_model)
    conf = batch["j2d_conf"][..., None]
    rotmat = out.pred_rotmat.float()
    terms = {
        "KEYPOINTS_2D": (conf * (j2d - batch["j2d"]).abs()).sum() / (2 * conf.sum()).clamp(min=1.0),
        "KEYPOINTS_3D": ((joints - joints[..., :1, :]) - (batch["j3d"] - batch["j3d"][..., :1, :])).abs().mean(),
        "GLOBAL_ORIENT": ((rotmat[:, :, 0] - batch["rotmat"][:, :, 0]) ** 2).mean(),
        "HAND_POSE": ((rotmat[:, :, 1:] - batch["rotmat"][:, :, 1:]) ** 2).mean(),
        "BETAS": ((out.pred_shape.float() - batch["betas"]) ** 2).mean(),
    }
    total = sum(float(weights.get(name, 0.0)) * value for name, value in terms.items())
    return total, terms, joints, j2d
