"""SE(3) and Sim(3) on packed tensors, in DROID's (lietorch's) conventions.

Packed layouts (last axis):
    SE3  (..., 7) = (tx, ty, tz, qx, qy, qz, qw)          quaternion real part last
    Sim3 (..., 8) = (tx, ty, tz, qx, qy, qz, qw, s)       s > 0, acts as x -> s R x + t
Tangent vectors put translation first: se(3) (..., 6) = (rho, phi), sim(3) (..., 7) = (rho, phi, sigma)
with s = exp(sigma). Retractions are on the left: G <- Exp(xi) * G.

Written by hand: the PyPI "lietorch" is an unrelated package, no Lie-group library is among the
project's dependencies, and each operation here is a few lines (tested against matrix exponentials).
"""
from __future__ import annotations

import torch

from hawor.geometry import make_transform, matrix_to_quat_xyzw, quat_xyzw_to_matrix

_SMALL_ANGLE2 = 1e-8


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) matrix [v]x with [v]x w = v x w."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*v.shape[:-1], 3, 3)


# ---- quaternions (x, y, z, w) -------------------------------------------------------------------

def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (..., 4) xyzw quaternions."""
    av, aw = a[..., :3], a[..., 3:]
    bv, bw = b[..., :3], b[..., 3:]
    v = aw * bv + bw * av + torch.cross(av, bv, dim=-1)
    w = aw * bw - (av * bv).sum(-1, keepdim=True)
    return torch.cat([v, w], -1)


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([-q[..., :3], q[..., 3:]], -1)


def quat_rotate(q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Rotate points x (..., 3) by unit quaternions q (..., 4)."""
    qv, qw = q[..., :3], q[..., 3:]
    t = 2.0 * torch.cross(qv, x, dim=-1)
    return x + qw * t + torch.cross(qv, t, dim=-1)


def so3_exp(phi: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) -> unit quaternion (..., 4) xyzw."""
    theta2 = (phi * phi).sum(-1, keepdim=True)
    theta = theta2.clamp_min(_SMALL_ANGLE2).sqrt()
    small = theta2 < _SMALL_ANGLE2
    half_sinc = torch.where(small, 0.5 - theta2 / 48.0, torch.sin(0.5 * theta) / theta)
    w = torch.where(small, 1.0 - theta2 / 8.0, torch.cos(0.5 * theta))
    return torch.cat([half_sinc * phi, w], -1)


def so3_log(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion (..., 4) xyzw -> axis-angle (..., 3) with angle in [0, pi]."""
    q = torch.where(q[..., 3:] < 0, -q, q)
    v, w = q[..., :3], q[..., 3:]
    n2 = (v * v).sum(-1, keepdim=True)
    n = n2.clamp_min(1e-30).sqrt()
    small = n2 < 1e-12
    factor = torch.where(small, 2.0 / w - 2.0 * n2 / (3.0 * w ** 3), 2.0 * torch.atan2(n, w) / n)
    return factor * v


def _left_jacobian_so3(phi: torch.Tensor) -> torch.Tensor:
    """V(phi) = I + (1 - cos t)/t^2 [phi]x + (t - sin t)/t^3 [phi]x^2, (..., 3, 3)."""
    theta2 = (phi * phi).sum(-1)[..., None, None]
    theta = theta2.clamp_min(_SMALL_ANGLE2).sqrt()
    small = theta2 < _SMALL_ANGLE2
    a = torch.where(small, 0.5 - theta2 / 24.0, (1 - torch.cos(theta)) / theta2.clamp_min(_SMALL_ANGLE2))
    b = torch.where(small, 1.0 / 6.0 - theta2 / 120.0,
                    (theta - torch.sin(theta)) / (theta2 * theta).clamp_min(1e-30))
    K = skew(phi)
    eye = torch.eye(3, dtype=phi.dtype, device=phi.device)
    return eye + a * K + b * (K @ K)


def _left_jacobian_so3_inv(phi: torch.Tensor) -> torch.Tensor:
    theta2 = (phi * phi).sum(-1)[..., None, None]
    theta = theta2.clamp_min(_SMALL_ANGLE2).sqrt()
    small = theta2 < _SMALL_ANGLE2
    half = 0.5 * theta
    c = torch.where(small, 1.0 / 12.0 + theta2 / 720.0,
                    (1 - half * torch.cos(half) / torch.sin(half).clamp_min(1e-30)) / theta2.clamp_min(_SMALL_ANGLE2))
    K = skew(phi)
    eye = torch.eye(3, dtype=phi.dtype, device=phi.device)
    return eye - 0.5 * K + c * (K @ K)


# ---- SE(3) ------------------------------------------------------------------------------------------

def se3_identity(*shape: int, dtype=torch.float32, device=None) -> torch.Tensor:
    g = torch.zeros(*shape, 7, dtype=dtype, device=device)
    g[..., 6] = 1.0
    return g


def se3_exp(xi: torch.Tensor) -> torch.Tensor:
    """(..., 6) (rho, phi) -> (..., 7): Exp = (V(phi) rho, exp(phi))."""
    rho, phi = xi[..., :3], xi[..., 3:]
    t = (_left_jacobian_so3(phi) @ rho[..., None])[..., 0]
    return torch.cat([t, so3_exp(phi)], -1)


def se3_log(g: torch.Tensor) -> torch.Tensor:
    """(..., 7) -> (..., 6) (rho, phi), inverse of se3_exp."""
    phi = so3_log(g[..., 3:7])
    rho = (_left_jacobian_so3_inv(phi) @ g[..., :3, None])[..., 0]
    return torch.cat([rho, phi], -1)


def se3_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Composition a * b (apply b first)."""
    q = quat_mul(a[..., 3:7], b[..., 3:7])
    t = quat_rotate(a[..., 3:7], b[..., :3]) + a[..., :3]
    return torch.cat([t, q], -1)


def se3_inv(g: torch.Tensor) -> torch.Tensor:
    qi = quat_conj(g[..., 3:7])
    return torch.cat([-quat_rotate(qi, g[..., :3]), qi], -1)


def se3_act(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply g (..., 7) to points x (..., 3): R x + t."""
    return quat_rotate(g[..., 3:7], x) + g[..., :3]


def se3_act4(g: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Apply g to homogeneous points X (..., 4) = (x, y, z, h): (R x + h t, h)."""
    xyz = quat_rotate(g[..., 3:7], X[..., :3]) + X[..., 3:] * g[..., :3]
    return torch.cat([xyz, X[..., 3:]], -1)


def se3_adjoint(g: torch.Tensor) -> torch.Tensor:
    """(..., 6, 6) Ad(g) = [[R, [t]x R], [0, R]] for (rho, phi) tangents: g Exp(xi) g^-1 = Exp(Ad xi)."""
    R = quat_xyzw_to_matrix(g[..., 3:7])
    top = torch.cat([R, skew(g[..., :3]) @ R], -1)
    bottom = torch.cat([torch.zeros_like(R), R], -1)
    return torch.cat([top, bottom], -2)


def se3_to_matrix(g: torch.Tensor) -> torch.Tensor:
    """(..., 7) -> (..., 4, 4)."""
    return make_transform(quat_xyzw_to_matrix(g[..., 3:7]), g[..., :3])


def se3_from_matrix(T: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) rigid transform -> (..., 7), quaternion with w >= 0."""
    q = matrix_to_quat_xyzw(T[..., :3, :3])
    return torch.cat([T[..., :3, 3], torch.where(q[..., 3:] < 0, -q, q)], -1)


def se3_retract(xi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Left retraction Exp(xi) * g."""
    return se3_mul(se3_exp(xi), g)


# ---- Sim(3) ------------------------------------------------------------------------------------------

def _sim3_generator(rho_phi_sigma: torch.Tensor) -> torch.Tensor:
    rho, phi, sigma = rho_phi_sigma[..., :3], rho_phi_sigma[..., 3:6], rho_phi_sigma[..., 6]
    A = skew(phi) + sigma[..., None, None] * torch.eye(3, dtype=phi.dtype, device=phi.device)
    return A, rho


def _sim3_W(A: torch.Tensor) -> torch.Tensor:
    """W = int_0^1 exp(u A) du via the block exponential exp([[A, I], [0, 0]]) (Van Loan).

    Used instead of the closed form, whose four small-angle/small-scale branches are error-prone.
    """
    n = A.shape[:-2]
    M = torch.zeros(*n, 6, 6, dtype=A.dtype, device=A.device)
    M[..., :3, :3] = A
    M[..., :3, 3:] = torch.eye(3, dtype=A.dtype, device=A.device)
    return torch.linalg.matrix_exp(M)[..., :3, 3:]


def sim3_exp(xi: torch.Tensor) -> torch.Tensor:
    """(..., 7) (rho, phi, sigma) -> (..., 8)."""
    A, rho = _sim3_generator(xi)
    t = (_sim3_W(A) @ rho[..., None])[..., 0]
    return torch.cat([t, so3_exp(xi[..., 3:6]), torch.exp(xi[..., 6:7])], -1)


def sim3_log(g: torch.Tensor) -> torch.Tensor:
    """(..., 8) -> (..., 7), inverse of sim3_exp."""
    phi = so3_log(g[..., 3:7])
    sigma = torch.log(g[..., 7:8])
    A, _ = _sim3_generator(torch.cat([torch.zeros_like(phi), phi, sigma], -1))
    rho = torch.linalg.solve(_sim3_W(A), g[..., :3, None])[..., 0]
    return torch.cat([rho, phi, sigma], -1)


def sim3_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    q = quat_mul(a[..., 3:7], b[..., 3:7])
    t = a[..., 7:8] * quat_rotate(a[..., 3:7], b[..., :3]) + a[..., :3]
    return torch.cat([t, q, a[..., 7:8] * b[..., 7:8]], -1)


def sim3_inv(g: torch.Tensor) -> torch.Tensor:
    qi = quat_conj(g[..., 3:7])
    si = 1.0 / g[..., 7:8]
    return torch.cat([-si * quat_rotate(qi, g[..., :3]), qi, si], -1)


def sim3_act(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply g (..., 8) to points x (..., 3): s R x + t."""
    return g[..., 7:8] * quat_rotate(g[..., 3:7], x) + g[..., :3]


def sim3_to_matrix(g: torch.Tensor) -> torch.Tensor:
    """(..., 8) -> (..., 4, 4) with top-left block s R."""
    return make_transform(quat_xyzw_to_matrix(g[..., 3:7]), g[..., :3], g[..., 7])
