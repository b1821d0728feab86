"""Trajectory filler: a pose for every frame from the keyframe map (constant-velocity start on SE(3),
then motion-only BA against the two neighbouring keyframes)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .factor_graph import FactorGraph
from .lie import se3_exp, se3_inv, se3_log, se3_mul
from hawor.models.droid import DroidNet
from .video import DepthVideo


def interpolate_poses(video: DepthVideo, tt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keyframe indices k0 (last keyframe at or before t), k1 and constant-velocity poses (M, 7)."""
    n = video.counter
    ts = video.tstamp[:n]
    k0 = (torch.searchsorted(ts, tt.to(ts.dtype), right=True) - 1).clamp(0, n - 1)
    k1 = torch.where(k0 < n - 1, k0 + 1, k0)
    P = video.poses[:n]
    dt = (ts[k1] - ts[k0] + 1e-3).to(P.dtype)
    vel = se3_log(se3_mul(P[k1], se3_inv(P[k0]))) / dt[:, None]
    step = (tt.to(ts.dtype) - ts[k0]).to(P.dtype)
    return k0, k1, se3_mul(se3_exp(vel * step[:, None]), P[k0])


@torch.no_grad()
def fill_trajectory(net: DroidNet, video: DepthVideo, num_frames: int,
                    load_frames: Callable[[Sequence[int]], torch.Tensor], chunk: int = 16,
                    iters: int = 6, ba_iters: int = 3) -> torch.Tensor:
    """World-to-camera poses (num_frames, 7) for every frame.

    load_frames(indices) -> (M, 3, H, W) BGR 0..255 frames (unmasked) at the tracking resolution.
    """
    c = net.cfg
    n = video.counter
    out = []
    for s in range(0, num_frames, chunk):
        idx = list(range(s, min(s + chunk, num_frames)))
        m = len(idx)
        tt = torch.tensor(idx, dtype=torch.float64, device=video.device)
        k0, k1, G = interpolate_poses(video, tt)
        fmaps = net.fnet(net.normalize(load_frames(idx).to(video.device))[None])[0]
        for k in range(m):
            video.append(float(tt[k]), video.intrinsics[0], fmaps[k], pose=G[k], disp=1.0)
        graph = FactorGraph(video, net.update, corr_levels=c.corr_levels, corr_radius=c.corr_radius,
                            upsample_factor=c.upsample_factor, ba_iters=ba_iters)
        new = torch.arange(n, n + m, device=video.device)
        graph.add_factors(k0, new)
        graph.add_factors(k1, new)
        for _ in range(iters):
            graph.update(n, n + m, motion_only=True)
        out.append(video.poses[n:n + m].clone())
        video.counter -= m
    return torch.cat(out)
