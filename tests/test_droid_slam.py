"""Masked DROID-SLAM loop: end to end on a tiny clip (random weights), hand masking, helpers."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hawor.errors import HaworInputError
from hawor.slam.droid import DroidNet, DroidNetConfig, DroidSlamConfig, run_droid_slam, working_size
from hawor.slam.droid.backend import BackendConfig
from hawor.slam.droid.factor_graph import FactorGraph
from hawor.slam.droid.filler import interpolate_poses
from hawor.geometry import umeyama
from hawor.slam.droid.lie import se3_exp, se3_inv, se3_log, se3_mul, se3_to_matrix
from hawor.slam.droid.projective import coords_grid, reproject
from hawor.slam.droid.slam import DroidSlam, resize_mask
from hawor.slam.droid.video import DepthVideo

TINY = DroidNetConfig(encoder_width=8, fnet_dim=16, cnet_dim=32, hidden_dim=16)


@pytest.fixture(autouse=True)
def one_thread():
    # many small tensor ops: thread synchronisation would dominate on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _clip(n=10, h=96, w=128):
    """A textured plane seen by a translating camera, hands as a black-box region in the corner."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur((rng.random((300, 400, 3)) * 255).astype(np.uint8), (0, 0), 2)
    frames = np.stack([texture[40 + 3 * t:40 + 3 * t + h, 50 + 6 * t:50 + 6 * t + w] for t in range(n)])
    masks = np.zeros((n, h, w), bool)
    masks[:, h // 2:, w // 2:] = True
    return frames, masks


def test_whole_loop_on_a_tiny_clip():
    torch.manual_seed(0)
    frames, masks = _clip()
    n, h, w = frames.shape[:3]
    K = np.array([[100.0, 0, w / 2], [0, 100.0, h / 2], [0, 0, 1]])
    net = DroidNet(TINY).eval()
    cfg = DroidSlamConfig(target_pixels=h * w, filter_thresh=-1.0, backend=BackendConfig(steps=(2, 3)),
                          filler_iters=3)
    traj = run_droid_slam(list(frames), K, masks, net=net, config=cfg, device="cpu")
    assert traj.T_world_cam.shape == (n, 4, 4)
    assert np.isfinite(traj.T_world_cam).all()
    R = traj.T_world_cam[:, :3, :3]
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-6)
    assert np.allclose(traj.T_world_cam[:, 3], [0, 0, 0, 1])
    assert traj.scale == 1.0 and np.array_equal(traj.K, K)
    kf = traj.keyframes
    assert kf[0] == 0 and (np.diff(kf) > 0).all() and kf[-1] < n and len(kf) >= 2
    assert traj.disps.shape == (len(kf), h, w) and (traj.disps > 0).all()
    assert "droid" in traj.method


class OracleUpdate(torch.nn.Module):
    """Stands in for the update operator: exact flow revisions from known poses and depth, confidence 1."""

    def __init__(self, poses, disps, intrinsics):
        super().__init__()
        self.slam: list[DroidSlam] = []  # set once the SLAM state exists (a list keeps it out of the module tree)
        self.poses, self.disps, self.intrinsics = poses, disps, intrinsics

    def forward(self, net, inp, corr, motion, ii=None, jj=None):
        e, _, h, w = net.shape[1:]
        if ii is None:  # motion filter: every frame is a candidate anyway (filter_thresh < 0)
            return net, torch.zeros(1, e, h, w, 2), torch.ones(1, e, h, w, 2)
        video = self.slam[0].video
        ti, tj = video.tstamp[ii].round().long(), video.tstamp[jj].round().long()
        target, _ = reproject(self.poses, self.disps, self.intrinsics.expand(len(self.poses), 4), ti, tj)
        coords1 = coords_grid(h, w) + motion[0, :, :2].permute(0, 2, 3, 1)
        u = len(torch.unique(ii))
        return (net, (target - coords1)[None], torch.ones(1, e, h, w, 2), torch.full((1, u, h, w), 0.01),
                torch.zeros(1, u, 576, h, w))


def test_loop_with_ideal_flow_recovers_the_trajectory():
    """Frontend (keyframe dropping included), backend and filler with exact correspondences: the
    trajectory comes back up to a similarity, also with hand cells masked."""
    n, H, W = 12, 96, 128
    h, w = H // 8, W // 8
    g = torch.Generator().manual_seed(0)
    disps = 1.0 / (2.0 + 2.0 * torch.rand(n, h, w, generator=g))
    xi = torch.zeros(n, 6)
    xi[:, 0] = 0.3 * torch.arange(n)
    xi[:, 1] = 0.05 * torch.sin(0.5 * torch.arange(n))
    xi[:, 4] = 0.02 * torch.arange(n)
    poses = se3_exp(xi)  # world-to-camera
    intr = torch.tensor([100.0, 100.0, W / 2, H / 2])
    net = DroidNet(TINY).eval()
    net.update = oracle = OracleUpdate(poses, disps, intr / 8)
    slam = DroidSlam(net, (H, W), intr, DroidSlamConfig(filter_thresh=-1.0))
    oracle.slam.append(slam)
    frames = torch.randint(0, 256, (n, 3, H, W), generator=g).float()
    mask = torch.zeros(h, w)
    mask[6:, 8:] = 1.0
    for t in range(n):
        slam.track(t, frames[t], mask)
    kf = slam.video.tstamp[:slam.video.counter].tolist()
    assert kf[0] == 0 and len(kf) < n  # slow stretches were dropped as keyframes
    est, errors = slam.terminate(n, lambda idx: frames[idx])
    T_est = se3_to_matrix(se3_inv(est.double()))
    T_true = se3_to_matrix(se3_inv(poses.double()))
    s, R, t = umeyama(T_est[:, :3, 3], T_true[:, :3, 3])
    ate = (s * T_est[:, :3, 3] @ R.T + t - T_true[:, :3, 3]).norm(dim=-1)
    path = (T_true[1:, :3, 3] - T_true[:-1, :3, 3]).norm(dim=-1).sum()
    assert ate.max() < 1e-4 * path
    R_err = R @ T_est[:, :3, :3] @ T_true[:, :3, :3].transpose(1, 2)
    assert torch.allclose(R_err, torch.eye(3, dtype=R_err.dtype).expand_as(R_err), atol=1e-5)
    assert len(errors) == 2


def test_too_short_or_bad_input_raises():
    net = DroidNet(TINY).eval()
    frames, _ = _clip(n=1)
    K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])
    cfg = DroidSlamConfig(target_pixels=96 * 128)
    with pytest.raises(HaworInputError, match="at least 2"):
        run_droid_slam(list(frames), K, net=net, config=cfg, device="cpu")
    with pytest.raises(HaworInputError, match="64 px"):
        run_droid_slam([np.zeros((16, 400, 3), np.uint8)] * 3, K, net=net, config=cfg, device="cpu")
    with pytest.raises(HaworInputError, match="RGB uint8"):
        run_droid_slam([np.zeros((96, 128), np.uint8)] * 3, K, net=net, config=cfg, device="cpu")


def test_confidence_is_zero_on_source_hand_cells():
    torch.manual_seed(1)
    net = DroidNet(TINY).eval()
    video = DepthVideo(8, 12, TINY.fnet_dim, TINY.hidden_dim, buffer=4)
    imgs = torch.randint(0, 256, (1, 3, 3, 64, 96)).float()
    with torch.no_grad():
        fmaps, hidden, inp = net.extract_features(imgs)
    for k in range(3):
        mask = torch.zeros(8, 12)
        mask[k:k + 3, 2 * k:2 * k + 4] = 1.0
        video.append(float(k), torch.tensor([10.0, 10.0, 6.0, 4.0]), fmaps[0, k], hidden[0, k], inp[0, k], mask)
    graph = FactorGraph(video, net.update, corr_levels=TINY.corr_levels, upsample=True)
    graph.add_factors([0, 1, 2, 1], [1, 0, 1, 2])
    # the memory-light correlation (backend) equals the stored-volume lookup
    alt = FactorGraph(video, net.update, corr_impl="alt", alt_chunk=3)
    coords = torch.rand(4, 8, 12, 2) * torch.tensor([12.0, 8.0])
    assert torch.allclose(alt._lookup_alt(graph.ii, graph.jj, coords), graph.corr(coords[None])[0], atol=1e-6)
    graph.update(t0=1)
    for e, i in enumerate(graph.ii.tolist()):
        hand = video.masks[i] > 0
        assert (graph.weight[e][hand] == 0).all()
        assert (graph.weight[e][~hand] > 0).all()
    assert (video.disps_up[:3] > 0).all()


def test_mask_resize_and_working_size():
    m = np.zeros((64, 64), bool)
    m[9, 9] = True  # one pixel: any coverage marks the coarse cell
    small = resize_mask(m, (8, 8))
    assert small[1, 1] and small.sum() <= 4
    assert not resize_mask(np.zeros((64, 64), bool), (8, 8)).any()
    assert working_size(1920, 1080)[1] == (584, 328)
    assert working_size(1408, 1408)[1] == (440, 440)
    assert working_size(640, 480) == ((512, 384), (512, 384))


def test_filler_starts_from_constant_velocity():
    video = DepthVideo(8, 8, 4, 4, buffer=4)
    xi = torch.tensor([0.4, 0.0, 0.2, 0.0, 0.3, 0.0])
    for t, pose in ((0.0, se3_exp(torch.zeros(6))), (4.0, se3_exp(xi))):
        video.append(t, torch.ones(4), torch.zeros(4, 8, 8), pose=pose)
    k0, k1, G = interpolate_poses(video, torch.tensor([0.0, 2.0, 4.0, 6.0], dtype=torch.float64))
    assert k0.tolist() == [0, 0, 1, 1] and k1.tolist() == [1, 1, 1, 1]
    half = se3_log(se3_mul(G[1], se3_inv(video.poses[0])))
    assert torch.allclose(half, xi * 2 / (4 + 1e-3), atol=1e-6)
    # last keyframe: k1 == k0, so the velocity is float32 round-off of log(identity) / 1e-3
    assert torch.allclose(G[3], video.poses[1], atol=1e-3)
