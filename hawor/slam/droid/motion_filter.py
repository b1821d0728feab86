"""Motion filter: a frame becomes a keyframe candidate when the network's flow to the last
candidate is large enough (mean |delta| over the grid > thresh, in grid pixels)."""
from __future__ import annotations

import torch

from .corr import CorrBlock
from hawor.models.droid import DroidNet
from .projective import coords_grid
from .video import DepthVideo


class MotionFilter:
    def __init__(self, net: DroidNet, video: DepthVideo, thresh: float = 2.4):
        self.net, self.video, self.thresh = net, video, thresh
        self.fmap = self.hidden = self.inp = None

    @torch.no_grad()
    def track(self, tstamp: float, image_bgr: torch.Tensor, intrinsics: torch.Tensor, mask: torch.Tensor) -> bool:
        """image_bgr (3, H, W) 0..255 with hand pixels already black; intrinsics (4,) full resolution;
        mask (h, w) hand coverage of the grid. Returns whether the frame was appended."""
        cfg = self.net.cfg
        x = self.net.normalize(image_bgr[None, None])
        fmap = self.net.fnet(x)
        if self.video.counter > 0:
            h, w = fmap.shape[-2:]
            coords0 = coords_grid(h, w, fmap.dtype, fmap.device)[None, None]
            corr = CorrBlock(self.fmap, fmap, cfg.corr_levels, cfg.corr_radius)(coords0)
            motion = torch.zeros(1, 1, 4, h, w, dtype=fmap.dtype, device=fmap.device)
            _, delta, _ = self.net.update(self.hidden, self.inp, corr, motion)
            if float(delta.norm(dim=-1).mean()) <= self.thresh:
                return False
        hidden, inp = self.net.context(x)
        first = self.video.counter == 0
        self.video.append(tstamp, intrinsics / cfg.upsample_factor, fmap[0, 0], hidden[0, 0], inp[0, 0], mask,
                          pose=self.video.poses.new_tensor([0, 0, 0, 0, 0, 0, 1]) if first else None,
                          disp=1.0 if first else None)
        self.fmap, self.hidden, self.inp = fmap, hidden, inp
        return True
