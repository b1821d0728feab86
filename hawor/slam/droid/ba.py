"""Dense bundle adjustment over poses and inverse depths (DROID's ``ba`` kernel), batched in torch.

Per edge e = (i -> j) and pixel p the residual target_e(p) - pi(G_ij (X̄_p, d_i(p))) is weighted by
0.001 * confidence (0 where the reprojected depth is below 0.25). The disparity block is diagonal
per pixel, so it is eliminated with the Schur complement; the reduced pose system gets
Levenberg-Marquardt damping (ep + lm * diag) and is solved with a dense Cholesky in float64.
Poses before ``t0`` are fixed (gauge); poses are updated by left retraction G <- Exp(dxi) G.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .lie import se3_act4, se3_adjoint, se3_inv, se3_mul, se3_retract
from .projective import MIN_DEPTH_BA, inverse_project

BA_WEIGHT_SCALE = 0.001
MIN_DISPARITY = 0.001


@dataclass
class EdgeTerms:
    """Linearisation of all edges: pose blocks, per-pixel disparity terms (P = h*w pixels)."""

    H: torch.Tensor    # (E, 12, 12) [i, j] pose Hessian blocks
    g: torch.Tensor    # (E, 12) gradient J^T W r
    Ei: torch.Tensor   # (E, P, 6) pose i / disparity coupling
    Ej: torch.Tensor   # (E, P, 6) pose j / disparity coupling
    C: torch.Tensor    # (E, P) disparity Hessian
    b: torch.Tensor    # (E, P) disparity gradient


def linearize(poses, disps, intrinsics, targets, weights, ii, jj, chunk: int = 256) -> EdgeTerms:
    """poses (N, 7) world-to-camera, disps (N, h, w), intrinsics (4,) grid (fx, fy, cx, cy),
    targets / weights (E, h, w, 2), ii / jj (E,) -> EdgeTerms. Edges are processed in chunks to bound memory."""
    parts = [_linearize(poses, disps, intrinsics, targets[s:s + chunk], weights[s:s + chunk], ii[s:s + chunk],
                        jj[s:s + chunk]) for s in range(0, len(ii), chunk)]
    return EdgeTerms(*(torch.cat(field) for field in zip(*(vars(p).values() for p in parts))))


def _linearize(poses, disps, intrinsics, targets, weights, ii, jj) -> EdgeTerms:
    fx, fy, cx, cy = intrinsics.unbind(-1)
    Gij = se3_mul(poses[jj], se3_inv(poses[ii]))
    X1 = se3_act4(Gij[:, None, None, :], inverse_project(disps[ii], intrinsics.expand(len(ii), 4)))
    X, Y, Z, h = X1.flatten(1, 2).unbind(-1)                    # (E, P)
    valid = Z > MIN_DEPTH_BA
    d = 1.0 / torch.where(valid, Z, torch.ones_like(Z))
    r = targets.flatten(1, 2) - torch.stack([fx * X * d + cx, fy * Y * d + cy], -1)
    w = BA_WEIGHT_SCALE * weights.flatten(1, 2) * valid[..., None]
    zero = torch.zeros_like(X)
    Ju = fx * torch.stack([h * d, zero, -h * X * d * d, -X * Y * d * d, 1 + X * X * d * d, -Y * d], -1)
    Jv = fy * torch.stack([zero, h * d, -h * Y * d * d, -(1 + Y * Y * d * d), X * Y * d * d, X * d], -1)
    Jj = torch.stack([Ju, Jv], -2)                               # (E, P, 2, 6)
    Ji = -Jj @ se3_adjoint(Gij)[:, None]
    t = Gij[:, None, :3]
    Jd = torch.stack([fx * (t[..., 0] * d - t[..., 2] * X * d * d), fy * (t[..., 1] * d - t[..., 2] * Y * d * d)], -1)
    J = torch.cat([Ji, Jj], -1).flatten(1, 2)                    # (E, 2P, 12)
    wJ = w.flatten(1, 2)[..., None] * J
    H = wJ.transpose(1, 2) @ J
    g = (wJ * r.flatten(1, 2)[..., None]).sum(1)
    wJd = w * Jd
    return EdgeTerms(H=H, g=g, Ei=(wJd[..., None] * Ji).sum(2), Ej=(wJd[..., None] * Jj).sum(2),
                     C=(wJd * Jd).sum(-1), b=(wJd * r).sum(-1))


def _scatter_blocks(n: int, rows, cols, blocks) -> torch.Tensor:
    """Sum 6x6 blocks into a dense (6n, 6n) matrix; index n is a dump slot for fixed poses."""
    full = blocks.new_zeros(n + 1, n + 1, 6, 6)
    full.index_put_((rows, cols), blocks, accumulate=True)
    return full[:n, :n].permute(0, 2, 1, 3).reshape(6 * n, 6 * n)


def _scatter_vec(n: int, rows, vecs) -> torch.Tensor:
    full = vecs.new_zeros(n + 1, 6).index_add_(0, rows, vecs)
    return full[:n].reshape(6 * n)


def _solve_damped(A: torch.Tensor, rhs: torch.Tensor, lm: float, ep: float) -> torch.Tensor:
    """(A + diag(ep + lm diag A)) x = rhs in float64; a failed factorisation gives x = 0."""
    A = A.double()
    A = A + torch.diag(ep + lm * torch.diagonal(A))
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) != 0:
        return torch.zeros_like(rhs)
    return torch.cholesky_solve(rhs.double()[:, None], L)[:, 0].to(rhs.dtype)


def _group_couplings(terms: EdgeTerms, ki, mi, mj, n: int, K: int):
    """Pose/disparity couplings summed per (disparity frame, free pose) and padded per disparity frame.

    Each edge couples its source disparity frame with pose i (Ei) and pose j (Ej). Returns Eg
    (K, G, P, 6) and pose_g (K, G) free-pose index of every slot (n = padding / fixed pose).
    """
    disp_of, pose_of = torch.cat([ki, ki]), torch.cat([mi, mj])
    E_all = torch.cat([terms.Ei, terms.Ej])
    free = pose_of < n
    ukey, slot = torch.unique(disp_of[free] * (n + 1) + pose_of[free], return_inverse=True)
    E_slot = E_all.new_zeros(len(ukey), E_all.shape[1], 6).index_add_(0, slot, E_all[free])
    slot_disp, slot_pose = ukey // (n + 1), ukey % (n + 1)
    counts = torch.bincount(slot_disp, minlength=K)
    pos = torch.arange(len(ukey), device=ki.device) - (torch.cumsum(counts, 0) - counts)[slot_disp]
    G = int(counts.max()) if len(ukey) else 0
    Eg = E_all.new_zeros(K, G, E_all.shape[1], 6)
    Eg[slot_disp, pos] = E_slot
    pose_g = torch.full((K, G), n, dtype=torch.long, device=ki.device)
    pose_g[slot_disp, pos] = slot_pose
    return Eg, pose_g


def _pose_index(k: torch.Tensor, t0: int, t1: int) -> torch.Tensor:
    n = t1 - t0
    return torch.where((k >= t0) & (k < t1), k - t0, torch.full_like(k, n))


def ba_step(poses, disps, intrinsics, targets, weights, eta, ii, jj, t0: int, t1: int,
            lm: float = 1e-4, ep: float = 0.1, motion_only: bool = False):
    """One Gauss-Newton step. eta (N, h, w) disparity damping. Returns updated (poses, disps)."""
    n, (h, w) = t1 - t0, disps.shape[-2:]
    terms = linearize(poses, disps, intrinsics, targets, weights, ii, jj)
    mi, mj = _pose_index(ii, t0, t1), _pose_index(jj, t0, t1)
    rows = torch.cat([mi, mi, mj, mj])
    cols = torch.cat([mi, mj, mi, mj])
    Hb = terms.H.unflatten(1, (2, 6)).unflatten(3, (2, 6)).permute(0, 1, 3, 2, 4)  # (E, 2, 2, 6, 6)
    blocks = torch.cat([Hb[:, 0, 0], Hb[:, 0, 1], Hb[:, 1, 0], Hb[:, 1, 1]])
    B = _scatter_blocks(n, rows, cols, blocks)
    v = _scatter_vec(n, torch.cat([mi, mj]), torch.cat([terms.g[:, :6], terms.g[:, 6:]]))
    if motion_only:
        dx = _solve_damped(B, v, lm, ep) if n > 0 else v
        return _retract(poses, dx, t0, t1), disps

    window = torch.arange(t0, t1, device=ii.device)
    kx, kinv = torch.unique(torch.cat([window, ii]), return_inverse=True)
    ki = kinv[len(window):]
    K = len(kx)
    C = terms.C.new_zeros(K, h * w).index_add_(0, ki, terms.C) + eta[kx].flatten(1).to(terms.C.dtype)
    wk = terms.b.new_zeros(K, h * w).index_add_(0, ki, terms.b)
    Q = 1.0 / C

    Eg, pose_g = _group_couplings(terms, ki, mi, mj, n, K)
    G = Eg.shape[1]
    dx = torch.zeros_like(v)
    if n > 0 and G > 0:
        A = Eg.permute(0, 1, 3, 2).reshape(K, G * 6, h * w)
        S = (A * Q[:, None]) @ A.transpose(1, 2)                 # (K, 6G, 6G)
        S = S.reshape(K, G, 6, G, 6).permute(0, 1, 3, 2, 4)
        S = _scatter_blocks(n, pose_g[:, :, None].expand(K, G, G).reshape(-1),
                            pose_g[:, None, :].expand(K, G, G).reshape(-1), S.reshape(-1, 6, 6))
        u = _scatter_vec(n, pose_g.reshape(-1), (A @ (Q * wk)[..., None]).reshape(K * G, 6))
        dx = _solve_damped(B - S, v - u, lm, ep)
    elif n > 0:
        dx = _solve_damped(B, v, lm, ep)

    dx_slots = torch.cat([dx.view(n, 6), dx.new_zeros(1, 6)])
    coupling = (Eg * dx_slots[pose_g][:, :, None, :]).sum((1, 3))  # (K, P)
    dd = Q * (wk - coupling)
    disps = disps.clone()
    disps[kx] = disps[kx] + dd.view(K, h, w).to(disps.dtype)
    return _retract(poses, dx, t0, t1), disps


def _retract(poses, dx, t0, t1):
    if t1 <= t0:
        return poses
    poses = poses.clone()
    poses[t0:t1] = se3_retract(dx.view(t1 - t0, 6).to(poses.dtype), poses[t0:t1])
    return poses


def bundle_adjust(poses, disps, intrinsics, targets, weights, eta, ii, jj, t0: int, t1: int, iters: int = 2,
                  lm: float = 1e-4, ep: float = 0.1, motion_only: bool = False):
    """``iters`` Gauss-Newton steps, then disparities clamped to >= 0.001.

    The back-substitution includes every free pose (the CUDA kernel leaves out the first one).

    poses (N, 7) world-to-camera; disps (N, h, w); intrinsics (4,) grid; targets / weights (E, h, w, 2);
    eta (N, h, w) disparity damping; edges ii, jj (E,); free poses [t0, t1). Returns (poses, disps).
    """
    if len(ii) == 0:
        return poses, disps
    for _ in range(iters):
        poses, disps = ba_step(poses, disps, intrinsics, targets, weights, eta, ii, jj, t0, t1,
                               lm, ep, motion_only)
    return poses, disps.clamp_min(MIN_DISPARITY)
