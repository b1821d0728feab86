"""DROID backend: global refinement over all keyframes at termination (HaWoR: 7 then 12 steps)."""
from __future__ import annotations

from dataclasses import dataclass

from .factor_graph import FactorGraph
from hawor.models.droid import DroidNet
from .video import DepthVideo


@dataclass(frozen=True)
class BackendConfig:
    steps: tuple[int, ...] = (7, 12)
    thresh: float = 22.0
    radius: int = 2
    nms: int = 3
    beta: float = 0.3
    upsample: bool = True


def run_backend(net: DroidNet, video: DepthVideo, cfg: BackendConfig = BackendConfig()) -> list[float]:
    """Each run: normalise the scale gauge, build a fresh proximity graph over all keyframes with
    on-the-fly correlation, run ``steps`` low-memory updates. Returns the reprojection error per run."""
    c = net.cfg
    errors = []
    for steps in cfg.steps:
        video.normalize()
        graph = FactorGraph(video, net.update, max_factors=16 * video.counter, corr_impl="alt",
                            upsample=cfg.upsample, corr_levels=c.corr_levels, corr_radius=c.corr_radius,
                            upsample_factor=c.upsample_factor)
        graph.add_proximity_factors(rad=cfg.radius, nms=cfg.nms, thresh=cfg.thresh, beta=cfg.beta)
        if len(graph.ii) == 0:
            break
        graph.update_lowmem(steps=steps)
        errors.append(graph.reprojection_error())
    return errors
