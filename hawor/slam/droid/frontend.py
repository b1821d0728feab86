"""DROID frontend: initialises on the first ``warmup`` keyframes, then tracks every new keyframe with a
sliding window of edges and drops keyframes that moved too little."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .factor_graph import FactorGraph
from hawor.models.droid import DroidNet
from .video import DepthVideo


@dataclass(frozen=True)
class FrontendConfig:
    """HaWoR's numbers (as its released SLAM settings); thresholds in grid pixels."""

    max_factors: int = 48
    max_age: int = 25
    iters1: int = 4
    iters2: int = 2
    warmup: int = 8
    beta: float = 0.3
    keyframe_thresh: float = 4.0
    thresh: float = 16.0
    window: int = 25
    radius: int = 2
    nms: int = 1
    ba_iters: int = 3
    upsample: bool = True
    corr_impl: str = "volume"  # "alt": no stored correlation volumes (~2.4 GB fewer at 48 edges, ~15 % slower)


class Frontend:
    def __init__(self, net: DroidNet, video: DepthVideo, cfg: FrontendConfig = FrontendConfig()):
        c = net.cfg
        self.video, self.cfg = video, cfg
        self.graph = FactorGraph(video, net.update, max_factors=cfg.max_factors, corr_impl=cfg.corr_impl,
                                 upsample=cfg.upsample, corr_levels=c.corr_levels, corr_radius=c.corr_radius,
                                 upsample_factor=c.upsample_factor, ba_iters=cfg.ba_iters)
        self.initialized = False
        self.t1 = 0

    def __call__(self) -> None:
        """Call after every tracked frame; acts only when the motion filter appended a keyframe."""
        if not self.initialized and self.video.counter == self.cfg.warmup:
            self._initialize()
        elif self.initialized and self.t1 < self.video.counter:
            self._update()

    def _preset_next(self, t1: int, disp: torch.Tensor) -> None:
        v = self.video
        v.reserve(t1 + 1)
        v.poses[t1] = v.poses[t1 - 1]
        v.disps[t1] = disp

    def _initialize(self) -> None:
        c, g = self.cfg, self.graph
        self.t1 = t1 = self.video.counter
        g.add_neighborhood_factors(0, t1, r=3)
        for _ in range(8):
            g.update(1, use_inactive=True)
        # no beta here: the initial proximity pass keeps add_proximity_factors' default (0.25)
        g.add_proximity_factors(0, 0, rad=2, nms=2, thresh=c.thresh, remove=False)
        for _ in range(8):
            g.update(1, use_inactive=True)
        self._preset_next(t1, self.video.disps[t1 - 4:t1].mean())
        self.initialized = True
        g.rm_factors(g.ii < c.warmup - 4, store=True)

    def _update(self) -> None:
        c, g, v = self.cfg, self.graph, self.video
        t1 = v.counter
        g.rm_factors(g.age > c.max_age, store=True)
        g.add_proximity_factors(t1 - 5, max(t1 - c.window, 0), rad=c.radius, nms=c.nms, thresh=c.thresh,
                                beta=c.beta, remove=True)
        for _ in range(c.iters1):
            g.update(None, None, use_inactive=True)
        dev = v.device
        d = v.distance(torch.tensor([t1 - 3], device=dev), torch.tensor([t1 - 2], device=dev), c.beta)
        if float(d) < c.keyframe_thresh:
            g.rm_keyframe(t1 - 2)
            v.counter -= 1
            t1 -= 1
        else:
            for _ in range(c.iters2):
                g.update(None, None, use_inactive=True)
        self._preset_next(t1, v.disps[t1 - 1].mean())
        self.t1 = t1
