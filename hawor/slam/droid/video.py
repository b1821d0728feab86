"""Keyframe state shared by DROID's motion filter, frontend, backend and filler (DepthVideo)."""
from __future__ import annotations

import torch

from . import projective
from .lie import se3_identity

_SLOTS = ("tstamp", "poses", "disps", "disps_up", "intrinsics", "fmaps", "nets", "inps", "masks")


class DepthVideo:
    """Growable per-keyframe buffers.

    tstamp (N,) frame index; poses (N, 7) world-to-camera (t, q_xyzw); disps (N, h, w) inverse depth
    on the 1/8 grid (init 1); disps_up (N, 8h, 8w); intrinsics (N, 4) grid (fx, fy, cx, cy);
    fmaps / nets / inps (N, C, h, w); masks (N, h, w) hand coverage of the grid cells (> 0 = hand).
    """

    def __init__(self, h: int, w: int, fmap_dim: int, hidden_dim: int, buffer: int = 512,
                 device: str | torch.device = "cpu", upsample_factor: int = 8):
        self.h, self.w, self.counter, self.device = h, w, 0, torch.device(device)
        f = upsample_factor
        kw = dict(device=self.device)
        self.tstamp = torch.zeros(buffer, dtype=torch.float64, **kw)
        self.poses = se3_identity(buffer, **kw)
        self.disps = torch.ones(buffer, h, w, **kw)
        self.disps_up = torch.zeros(buffer, f * h, f * w, **kw)
        self.intrinsics = torch.zeros(buffer, 4, **kw)
        self.fmaps = torch.zeros(buffer, fmap_dim, h, w, **kw)
        self.nets = torch.zeros(buffer, hidden_dim, h, w, **kw)
        self.inps = torch.zeros(buffer, hidden_dim, h, w, **kw)
        self.masks = torch.zeros(buffer, h, w, **kw)

    def reserve(self, needed: int) -> None:
        """Make room for at least ``needed`` slots (the buffers double when full)."""
        size = len(self.tstamp)
        if needed <= size:
            return
        extra = max(needed, 2 * size) - size
        for name in _SLOTS:
            old = getattr(self, name)
            fill = old.new_zeros(extra, *old.shape[1:])
            if name == "poses":
                fill[:, 6] = 1.0
            elif name == "disps":
                fill += 1.0
            setattr(self, name, torch.cat([old, fill]))

    def append(self, tstamp: float, intrinsics, fmap, net=None, inp=None, mask=None, pose=None, disp=None) -> None:
        """Write slot ``counter`` (pose/disparity keep their pre-set values unless given) and advance."""
        k = self.counter
        self.reserve(k + 1)
        self.tstamp[k] = tstamp
        self.intrinsics[k] = intrinsics
        self.fmaps[k] = fmap
        for name, value in (("nets", net), ("inps", inp), ("masks", mask), ("poses", pose), ("disps", disp)):
            if value is not None:
                getattr(self, name)[k] = value
        self.counter += 1

    def copy_slot(self, src: int, dst: int) -> None:
        """Overwrite keyframe ``dst`` with ``src`` (used when a keyframe is dropped)."""
        for name in _SLOTS:
            if name != "disps_up":
                getattr(self, name)[dst] = getattr(self, name)[src]

    @property
    def K(self) -> torch.Tensor:
        """Grid intrinsics of frame 0 (constant intrinsics are assumed), (4,)."""
        return self.intrinsics[0]

    def reproject(self, ii, jj):
        """Current reprojection of frame ii into jj: coords (E, h, w, 2), validity (E, h, w)."""
        n = self.counter
        return projective.reproject(self.poses[:n], self.disps[:n], self.K.expand(n, 4), ii, jj)

    def distance(self, ii, jj, beta: float = 0.3) -> torch.Tensor:
        """Bidirectional frame distance (E,) in grid pixels."""
        n = self.counter
        return projective.bidirectional_distance(self.poses[:n], self.disps[:n], self.K.expand(n, 4), ii, jj, beta)

    def normalize(self) -> None:
        """Divide disparities by their mean and scale pose translations accordingly (monocular gauge)."""
        n = self.counter
        s = self.disps[:n].mean()
        self.disps[:n] /= s
        self.poses[:n, :3] *= s
