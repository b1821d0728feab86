"""Rigid (SE3) and similarity (Sim3) transforms as 4x4 matrices (torch, batched).

``T_a_b`` maps points from frame b to frame a: p_a = R p_b + t. A Sim3 is stored as a 4x4 whose
upper-left block is s R.
"""
from __future__ import annotations

import torch


def make_transform(R: torch.Tensor, t: torch.Tensor, scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """R (..., 3, 3), t (..., 3), optional scale (...,) -> T (..., 4, 4) with upper block s R."""
    T = torch.zeros(*R.shape[:-2], 4, 4, dtype=R.dtype, device=R.device)
    sR = R if scale is None else R * torch.as_tensor(scale, dtype=R.dtype)[..., None, None]
    T[..., :3, :3] = sR
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def invert_transform(T: torch.Tensor) -> torch.Tensor:
    """Inverse of SE3 or Sim3 matrices (..., 4, 4)."""
    sR = T[..., :3, :3]
    s2 = (sR[..., 0, :] ** 2).sum(-1)  # squared scale: rows of s R have norm s
    sR_inv = sR.transpose(-1, -2) / s2[..., None, None]
    return make_transform(sR_inv, -(sR_inv @ T[..., :3, 3:4])[..., 0])


def compose_transforms(T_a_b: torch.Tensor, T_b_c: torch.Tensor) -> torch.Tensor:
    """T_a_c = T_a_b T_b_c (..., 4, 4)."""
    return T_a_b @ T_b_c


def apply_transform(T: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply T (..., 4, 4) to points (..., N, 3) -> (..., N, 3)."""
    return points @ T[..., :3, :3].transpose(-1, -2) + T[..., None, :3, 3]
