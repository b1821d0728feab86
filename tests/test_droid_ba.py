"""DROID geometry: Lie groups, projective ops and dense BA against a synthetic scene with ground truth."""
from __future__ import annotations

import torch

from hawor.slam.droid import lie
from hawor.slam.droid.ba import bundle_adjust
from hawor.slam.droid.projective import bidirectional_distance, frame_distance, reproject

from test_droid_slam import one_thread  # noqa: F401  (autouse fixture: tiny tensors run single-threaded)

D = torch.float64


def _hat6(xi):
    A = torch.zeros(*xi.shape[:-1], 4, 4, dtype=xi.dtype)
    A[..., :3, :3] = lie.skew(xi[..., 3:6])
    A[..., :3, 3] = xi[..., :3]
    return A


def test_se3_exp_matches_matrix_exponential_and_log_inverts():
    g = torch.Generator().manual_seed(0)
    xi = torch.randn(64, 6, generator=g, dtype=D)
    xi[:, 3:] *= 2.5 / xi[:, 3:].norm(dim=-1, keepdim=True).clamp_min(2.5)  # log returns angles in [0, pi]
    xi[:8, 3:] *= 1e-6  # small-angle branch
    xi[8:16, 3:] *= 3.0 / xi[8:16, 3:].norm(dim=-1, keepdim=True)  # near pi
    T = lie.se3_to_matrix(lie.se3_exp(xi))
    assert torch.allclose(T, torch.linalg.matrix_exp(_hat6(xi)), atol=1e-12)
    assert torch.allclose(lie.se3_log(lie.se3_exp(xi)), xi, atol=1e-9)


def test_se3_group_operations_agree_with_matrices():
    g = torch.Generator().manual_seed(1)
    a, b = lie.se3_exp(torch.randn(2, 32, 6, generator=g, dtype=D))
    Ta, Tb = lie.se3_to_matrix(a), lie.se3_to_matrix(b)
    assert torch.allclose(lie.se3_to_matrix(lie.se3_mul(a, b)), Ta @ Tb, atol=1e-12)
    assert torch.allclose(lie.se3_to_matrix(lie.se3_inv(a)), torch.linalg.inv(Ta), atol=1e-12)
    x = torch.randn(32, 3, generator=g, dtype=D)
    assert torch.allclose(lie.se3_act(a, x), (Ta[:, :3, :3] @ x[..., None])[..., 0] + Ta[:, :3, 3], atol=1e-12)
    back = lie.se3_from_matrix(Ta)
    assert torch.allclose(back[:, :3], a[:, :3], atol=1e-12)
    assert torch.allclose(back[:, 3:], a[:, 3:] * torch.sign(a[:, 6:7]), atol=1e-12)
    # adjoint: a Exp(xi) a^-1 = Exp(Ad(a) xi)
    xi = torch.randn(32, 6, generator=g, dtype=D)
    lhs = lie.se3_mul(lie.se3_mul(a, lie.se3_exp(xi)), lie.se3_inv(a))
    rhs = lie.se3_exp((lie.se3_adjoint(a) @ xi[..., None])[..., 0])
    assert torch.allclose(lie.se3_to_matrix(lhs), lie.se3_to_matrix(rhs), atol=1e-10)


def test_sim3_exp_log_compose_inverse_act():
    g = torch.Generator().manual_seed(2)
    xi = torch.randn(32, 7, generator=g, dtype=D)
    xi[:, 3:6] *= 2.5 / xi[:, 3:6].norm(dim=-1, keepdim=True).clamp_min(2.5)
    xi[:4, 3:] *= 1e-7
    A = _hat6(xi[:, :6])
    A[:, :3, :3] += xi[:, 6, None, None] * torch.eye(3, dtype=D)
    assert torch.allclose(lie.sim3_to_matrix(lie.sim3_exp(xi)), torch.linalg.matrix_exp(A), atol=1e-11)
    assert torch.allclose(lie.sim3_log(lie.sim3_exp(xi)), xi, atol=1e-9)
    a, b = lie.sim3_exp(xi[:16]), lie.sim3_exp(xi[16:])
    Ta, Tb = lie.sim3_to_matrix(a), lie.sim3_to_matrix(b)
    assert torch.allclose(lie.sim3_to_matrix(lie.sim3_mul(a, b)), Ta @ Tb, atol=1e-11)
    assert torch.allclose(lie.sim3_to_matrix(lie.sim3_inv(a)), torch.linalg.inv(Ta), atol=1e-11)
    x = torch.randn(16, 3, generator=g, dtype=D)
    assert torch.allclose(lie.sim3_act(a, x), (Ta[:, :3, :3] @ x[..., None])[..., 0] + Ta[:, :3, 3], atol=1e-11)


def _scene(n=5, h=12, w=16, seed=0):
    """Random depth maps and poses; ideal targets from the known geometry for every ordered pair."""
    g = torch.Generator().manual_seed(seed)
    intr = torch.tensor([20.0, 20.0, 8.0, 6.0], dtype=D)
    disps = 1.0 / (2.0 + 2.0 * torch.rand(n, h, w, generator=g, dtype=D))
    xi = torch.cat([0.2 * torch.randn(n, 3, generator=g, dtype=D), 0.05 * torch.randn(n, 3, generator=g, dtype=D)], 1)
    xi[0] = 0.0
    poses = lie.se3_exp(xi)
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = ii != jj
    ii, jj = ii[keep], jj[keep]
    targets, valid = reproject(poses, disps, intr.expand(n, 4), ii, jj)
    assert bool(valid.all())
    return poses, disps, intr, targets, ii, jj, g


def _pose_error(a, b):
    return lie.se3_log(lie.se3_mul(a, lie.se3_inv(b))).norm(dim=-1).max().item()


def test_dense_ba_recovers_ground_truth_poses_and_depth():
    poses, disps, intr, targets, ii, jj, g = _scene()
    n, t0 = len(poses), 2  # two fixed poses hold the gauge, scale included
    start = poses.clone()
    start[t0:] = lie.se3_mul(lie.se3_exp(0.03 * torch.randn(n - t0, 6, generator=g, dtype=D)), poses[t0:])
    d0 = disps * (1 + 0.05 * torch.randn(disps.shape, generator=g, dtype=D))
    weights = torch.ones(*targets.shape, dtype=D)
    eta = torch.full_like(disps, 1e-7)
    assert _pose_error(start, poses) > 1e-2
    est, d = bundle_adjust(start, d0, intr, targets, weights, eta, ii, jj, t0, n, iters=8)
    rel = lie.se3_log(lie.se3_mul(est, lie.se3_inv(poses)))[t0:].norm(dim=-1) / lie.se3_log(poses[t0:]).norm(dim=-1)
    assert rel.max() < 1e-3
    assert ((d - disps) / disps).abs().max() < 1e-3


def test_dense_ba_masked_weights_and_motion_only():
    poses, disps, intr, targets, ii, jj, g = _scene(seed=3)
    n = len(poses)
    start = poses.clone()
    start[1:] = lie.se3_mul(lie.se3_exp(0.02 * torch.randn(n - 1, 6, generator=g, dtype=D)), poses[1:])
    weights = torch.ones(*targets.shape, dtype=D)
    weights[:, :6] = 0.0  # half of every source frame masked (as hand pixels are)
    bad = targets.clone()
    bad[:, :6] += 5.0 * torch.randn(bad[:, :6].shape, generator=g, dtype=D)  # garbage where the weight is 0
    eta = torch.full_like(disps, 1e-7)
    est, d = bundle_adjust(start, disps, intr, bad, weights, eta, ii, jj, 1, n, iters=8, motion_only=True)
    assert torch.equal(d, disps.clamp_min(1e-3))
    assert _pose_error(est, poses) < 1e-6


def test_frame_distance_is_flow_magnitude():
    n, h, w = 2, 12, 16
    intr = torch.tensor([20.0, 20.0, 8.0, 6.0], dtype=D).expand(n, 4)
    disps = torch.full((n, h, w), 0.5, dtype=D)
    poses = lie.se3_identity(n, dtype=D)
    poses[1, 0] = 0.1  # pure x translation: flow = fx * t * d = 1 px/8 everywhere, full and translation-only
    d = bidirectional_distance(poses, disps, intr, torch.tensor([0]), torch.tensor([1]), beta=0.3)
    assert torch.allclose(d, torch.tensor([1.0], dtype=D))
    poses[1, 2] = -5.0  # 0 -> 1 puts everything behind the camera (D = 1000); 1 -> 0 stays valid
    both = frame_distance(poses, disps, intr, torch.tensor([0, 1]), torch.tensor([1, 0]), beta=0.3)
    assert both[0].item() == 1000.0 and both[1].item() < 10.0
    d = bidirectional_distance(poses, disps, intr, torch.tensor([0]), torch.tensor([1]), beta=0.3)
    assert torch.allclose(d, both.mean())
