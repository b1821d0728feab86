"""DROID's projective geometry on the 1/8 grid: inverse-depth points, edge reprojection, frame distance.

Poses are packed SE3 (..., 7) **world-to-camera**; an edge (i -> j) uses G_ij = G_j G_i^-1.
Intrinsics are (fx, fy, cx, cy) of the grid (full-resolution values / 8). Disparity = inverse depth.
"""
from __future__ import annotations

import torch

from .lie import se3_act4, se3_inv, se3_mul

MIN_DEPTH_PY = 0.2
MIN_DEPTH_BA = 0.25


def coords_grid(h: int, w: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(h, w, 2) pixel coordinates (x, y)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=dtype, device=device),
                          torch.arange(w, dtype=dtype, device=device), indexing="ij")
    return torch.stack([x, y], -1)


def inverse_project(disps: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """disps (..., h, w), intrinsics (..., 4) -> homogeneous points (..., h, w, 4) = (X̄, 1, d)."""
    h, w = disps.shape[-2:]
    fx, fy, cx, cy = (intrinsics[..., k, None, None] for k in range(4))
    xy = coords_grid(h, w, disps.dtype, disps.device)
    x = (xy[..., 0] - cx) / fx
    y = (xy[..., 1] - cy) / fy
    return torch.stack(torch.broadcast_tensors(x, y, torch.ones_like(x), disps), -1)


def project(points: torch.Tensor, intrinsics: torch.Tensor, min_depth: float = MIN_DEPTH_PY) -> torch.Tensor:
    """(..., h, w, 4) homogeneous camera points -> pixels (..., h, w, 2); Z < min_depth replaced by 1."""
    fx, fy, cx, cy = (intrinsics[..., k, None, None] for k in range(4))
    z = points[..., 2]
    z = torch.where(z < min_depth, torch.ones_like(z), z)
    return torch.stack([fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy], -1)


def relative_poses(poses: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor) -> torch.Tensor:
    """poses (N, 7) world-to-camera -> G_ij = G_j G_i^-1, (E, 7)."""
    return se3_mul(poses[jj], se3_inv(poses[ii]))


def transform_points(poses, disps, intrinsics, ii, jj):
    """Points of frame i carried into frame j: (E, h, w, 4) homogeneous, plus G_ij (E, 7)."""
    Gij = relative_poses(poses, ii, jj)
    X = inverse_project(disps[ii], intrinsics[ii])
    return se3_act4(Gij[:, None, None, :], X), Gij


def reproject(poses, disps, intrinsics, ii, jj) -> tuple[torch.Tensor, torch.Tensor]:
    """Reprojection of every pixel of i into j: coords (E, h, w, 2) and validity (E, h, w) float."""
    X1, _ = transform_points(poses, disps, intrinsics, ii, jj)
    coords = project(X1, intrinsics[jj])
    valid = (X1[..., 2] > MIN_DEPTH_PY).to(disps.dtype)
    return coords, valid


def induced_flow(poses, disps, intrinsics, ii, jj) -> torch.Tensor:
    """Reprojection minus the pixel grid, (E, h, w, 2)."""
    coords, _ = reproject(poses, disps, intrinsics, ii, jj)
    return coords - coords_grid(*disps.shape[-2:], disps.dtype, disps.device)


def frame_distance(poses, disps, intrinsics, ii, jj, beta: float = 0.3, chunk: int = 256) -> torch.Tensor:
    """Directed flow magnitude D(i -> j) in grid pixels (E,): beta * full flow + (1 - beta) * translation-only
    flow, averaged over valid pixels; 1000 when the weighted valid fraction is below 0.75."""
    out = []
    for s in range(0, len(ii), chunk):
        i, j = ii[s:s + chunk], jj[s:s + chunk]
        X1, Gij = transform_points(poses, disps, intrinsics, i, j)
        X0 = inverse_project(disps[i], intrinsics[i])
        grid = coords_grid(*disps.shape[-2:], disps.dtype, disps.device)
        full = project(X1, intrinsics[j], min_depth=MIN_DEPTH_BA) - grid
        Xt = X0.clone()
        Xt[..., :3] = X0[..., :3] + X0[..., 3:] * Gij[:, None, None, :3]
        trans = project(Xt, intrinsics[j], min_depth=MIN_DEPTH_BA) - grid
        v_full = (X1[..., 2] > MIN_DEPTH_BA).to(disps.dtype)
        v_trans = (Xt[..., 2] > MIN_DEPTH_BA).to(disps.dtype)
        num = (beta * full.norm(dim=-1) * v_full + (1 - beta) * trans.norm(dim=-1) * v_trans).sum((1, 2))
        den = (beta * v_full + (1 - beta) * v_trans).sum((1, 2))
        frac = den / (disps.shape[-1] * disps.shape[-2])
        d = num / den.clamp_min(1e-12)
        out.append(torch.where(frac < 0.75, torch.full_like(d, 1000.0), d))
    return torch.cat(out) if out else poses.new_zeros(0)


def bidirectional_distance(poses, disps, intrinsics, ii, jj, beta: float = 0.3) -> torch.Tensor:
    """0.5 (D(i -> j) + D(j -> i)), (E,)."""
    both = frame_distance(poses, disps, intrinsics, torch.cat([ii, jj]), torch.cat([jj, ii]), beta)
    return 0.5 * (both[:len(ii)] + both[len(ii):])
