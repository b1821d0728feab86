"""Point-set alignment: Umeyama (with or without scale) and Procrustes-aligned predictions."""
from __future__ import annotations

import roma
import torch


def umeyama(src: torch.Tensor, dst: torch.Tensor, with_scale: bool = True,
            weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity (or rigid) transform with dst ~= s R src + t.

    Args:
        src, dst: (..., N, 3) corresponding points. weights: optional (..., N) non-negative.
        with_scale: estimate s; otherwise s = 1.
    Returns:
        s (...,), R (..., 3, 3), t (..., 3).
    """
    if with_scale:
        R, t, s = roma.rigid_points_registration(src, dst, weights=weights, compute_scaling=True)
        return s, R, t
    R, t = roma.rigid_points_registration(src, dst, weights=weights, compute_scaling=False)
    return torch.ones_like(t[..., 0]), R, t


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Similarity-align pred (..., N, 3) to gt (..., N, 3) and return the aligned pred (PA-MPJPE)."""
    s, R, t = umeyama(pred, gt, with_scale=True)
    return s[..., None, None] * pred @ R.transpose(-1, -2) + t[..., None, :]
