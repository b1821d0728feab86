"""Convex upsampling, shared by the DROID-SLAM network and Metric3D's decoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def convex_upsample(x: torch.Tensor, mask: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, f*h, f*w): each fine pixel a softmax-weighted mix of a 3x3 coarse neighbourhood.

    mask (N, 9*f*f, h, w): channel k*f*f + a*f + c weights neighbour k (row-major over (dy, dx), zero
    padding at the border) of coarse pixel (y, x) for fine pixel (f*y + a, f*x + c); softmax over k.
    Values are mixed, not rescaled (a disparity stays in coarse units).
    """
    n, c, h, w = x.shape
    weights = mask.view(n, 1, 9, factor, factor, h, w).softmax(dim=2)
    neighbours = F.unfold(x, 3, padding=1).view(n, c, 9, 1, 1, h, w)
    up = (weights * neighbours).sum(dim=2)  # (N, C, f, f, h, w)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(n, c, factor * h, factor * w)
