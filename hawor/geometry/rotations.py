"""Rotation conversions (torch, batched, differentiable).

Every function accepts any number of leading batch dimensions. Quaternion functions name their
component order: ``wxyz`` (scalar first, the HaWoR code base) or ``xyzw`` (scalar last, roma/scipy/TUM).
Conversions between axis-angle, matrices and quaternions delegate to roma; the two 6D layouts and
the left/right mirror are specific to HaWoR, so they are written here.
"""
from __future__ import annotations

import roma
import torch
import torch.nn.functional as F

_MIRROR_AXIS_ANGLE = (1.0, -1.0, -1.0)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (..., 3) radians -> rotation matrices (..., 3, 3)."""
    return roma.rotvec_to_rotmat(axis_angle)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> rotation vectors (..., 3), angle in [0, pi]."""
    return roma.rotmat_to_rotvec(R)


def quat_xyzw_to_wxyz(q_xyzw: torch.Tensor) -> torch.Tensor:
    """Reorder quaternions (..., 4) from (x, y, z, w) to (w, x, y, z)."""
    return roma.quat_xyzw_to_wxyz(q_xyzw)


def quat_wxyz_to_xyzw(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Reorder quaternions (..., 4) from (w, x, y, z) to (x, y, z, w)."""
    return roma.quat_wxyz_to_xyzw(q_wxyz)


def quat_xyzw_to_matrix(q_xyzw: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., 4) in (x, y, z, w) order, normalised here -> matrices (..., 3, 3)."""
    return roma.unitquat_to_rotmat(F.normalize(q_xyzw, dim=-1))


def quat_wxyz_to_matrix(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., 4) in (w, x, y, z) order, normalised here -> matrices (..., 3, 3)."""
    return quat_xyzw_to_matrix(quat_wxyz_to_xyzw(q_wxyz))


def matrix_to_quat_xyzw(R: torch.Tensor) -> torch.Tensor:
    """Matrices (..., 3, 3) -> unit quaternions (..., 4) in (x, y, z, w) order."""
    return roma.rotmat_to_unitquat(R)


def matrix_to_quat_wxyz(R: torch.Tensor) -> torch.Tensor:
    """Matrices (..., 3, 3) -> unit quaternions (..., 4) in (w, x, y, z) order."""
    return quat_xyzw_to_wxyz(matrix_to_quat_xyzw(R))


def axis_angle_to_quat_wxyz(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (..., 3) -> unit quaternions (..., 4) in (w, x, y, z) order."""
    return quat_xyzw_to_wxyz(roma.rotvec_to_unitquat(axis_angle))


def _gram_schmidt_columns(a1: torch.Tensor, a2: torch.Tensor) -> torch.Tensor:
    # F.normalize (eps 1e-12) is what the official networks use; keeping it makes outputs bit-comparable.
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """The regressor's 6D layout (HMR2) (..., 6) -> matrices (..., 3, 3).

    x[..., 0:3] is the first column a1 and x[..., 3:6] the second column a2 before Gram-Schmidt;
    the matrix has columns (b1, b2, b1 x b2).
    """
    return _gram_schmidt_columns(x[..., 0:3], x[..., 3:6])


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Matrices (..., 3, 3) -> the regressor's 6D layout (..., 6): first column, then second column."""
    return torch.cat((R[..., :, 0], R[..., :, 1]), dim=-1)


def rot6d_rowmajor_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """The infiller's 6D layout (..., 6) -> matrices (..., 3, 3).

    The 6 numbers are the first two columns of R read row by row: (R00, R01, R10, R11, R20, R21),
    so a1 = x[0, 2, 4] and a2 = x[1, 3, 5].
    """
    return _gram_schmidt_columns(x[..., 0::2], x[..., 1::2])


def matrix_to_rot6d_rowmajor(R: torch.Tensor) -> torch.Tensor:
    """Matrices (..., 3, 3) -> the infiller's 6D layout (..., 6) = R[..., :, :2] flattened row-major."""
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def mirror_axis_angle(axis_angle: torch.Tensor) -> torch.Tensor:
    """Mirror rotations (..., 3) across the x = 0 plane: (x, y, z) -> (x, -y, -z).

    Turns a right-hand rotation seen in a horizontally flipped image into the left hand's rotation
    (and back: applying it twice is the identity).
    """
    return axis_angle * axis_angle.new_tensor(_MIRROR_AXIS_ANGLE)


def mirror_matrix(R: torch.Tensor) -> torch.Tensor:
    """Mirror rotation matrices (..., 3, 3): M R M with M = diag(-1, 1, 1) (same as mirror_axis_angle)."""
    sign = R.new_tensor((-1.0, 1.0, 1.0))
    return R * sign[:, None] * sign[None, :]
