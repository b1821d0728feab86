"""DROID's factor graph: edges between keyframes, their GRU states, targets and confidences.

An edge (i -> j) predicts where the pixels of keyframe i land in j (``target``, grid pixels) with a
confidence (``weight``); dense BA then moves poses and disparities to agree. HaWoR's masking: the
confidence is zeroed wherever the *source* keyframe's hand mask is > 0, after the update operator.
"""
from __future__ import annotations

import torch

from .ba import bundle_adjust
from .corr import CorrBlock, correlation_pyramid, lookup_pyramid
from hawor.models.droid import UpdateModule, upsample_disp
from .projective import coords_grid
from .video import DepthVideo

MOTION_CLAMP = 64.0


class FactorGraph:
    """Active edges (with GRU state and, in "volume" mode, stored correlation pyramids) and inactive
    edges kept as fixed measurements. ``corr_impl="alt"`` recomputes correlation at every update
    (backend; also a memory-light frontend: the volumes take ~50 MB per edge at 512x384)."""

    def __init__(self, video: DepthVideo, update_op: UpdateModule, max_factors: int = -1,
                 corr_impl: str = "volume", upsample: bool = False, corr_levels: int = 4, corr_radius: int = 3,
                 upsample_factor: int = 8, ba_iters: int = 3, alt_chunk: int = 8):
        self.video, self.update_op = video, update_op
        self.max_factors, self.corr_impl, self.upsample = max_factors, corr_impl, upsample
        self.corr_levels, self.corr_radius, self.upsample_factor = corr_levels, corr_radius, upsample_factor
        self.ba_iters, self.alt_chunk = ba_iters, alt_chunk
        dev, (h, w) = video.device, (video.h, video.w)
        long = dict(dtype=torch.long, device=dev)
        self.ii, self.jj, self.age = (torch.zeros(0, **long) for _ in range(3))
        self.net = torch.zeros(0, video.nets.shape[1], h, w, device=dev)
        self.inp = torch.zeros_like(self.net)
        self.target = torch.zeros(0, h, w, 2, device=dev)
        self.weight = torch.zeros(0, h, w, 2, device=dev)
        self.corr: CorrBlock | None = None
        self.ii_inac, self.jj_inac = torch.zeros(0, **long), torch.zeros(0, **long)
        self.target_inac, self.weight_inac = torch.zeros_like(self.target), torch.zeros_like(self.weight)
        self.damping = 1e-6 * torch.ones_like(video.disps)
        self.coords0 = coords_grid(h, w, device=dev)

    # ---- edge bookkeeping -----------------------------------------------------------------------------

    def add_factors(self, ii, jj, remove: bool = False) -> None:
        """Add new edges (pairs already present are dropped); over ``max_factors`` the oldest active
        edges are moved to the inactive set when ``remove`` is set."""
        dev = self.video.device
        ii = torch.as_tensor(ii, dtype=torch.long, device=dev).reshape(-1)
        jj = torch.as_tensor(jj, dtype=torch.long, device=dev).reshape(-1)
        seen = set(zip(torch.cat([self.ii, self.ii_inac]).tolist(), torch.cat([self.jj, self.jj_inac]).tolist()))
        new = []
        for pair in zip(ii.tolist(), jj.tolist()):
            if pair not in seen:
                seen.add(pair)
                new.append(pair)
        if not new:
            return
        ii, jj = torch.tensor(new, device=dev).T.contiguous()
        if self.max_factors > 0 and len(self.ii) + len(ii) > self.max_factors and remove:
            n_keep = max(self.max_factors - len(ii), 0)
            order = torch.argsort(self.age, stable=True)  # youngest first
            drop = torch.ones(len(self.ii), dtype=torch.bool, device=dev)
            drop[order[:n_keep]] = False
            self.rm_factors(drop, store=True)
        v = self.video
        self.ii, self.jj = torch.cat([self.ii, ii]), torch.cat([self.jj, jj])
        self.age = torch.cat([self.age, torch.zeros_like(ii)])
        self.net = torch.cat([self.net, v.nets[ii]])
        self.inp = torch.cat([self.inp, v.inps[ii]])
        if self.corr_impl == "volume":
            block = CorrBlock(v.fmaps[ii][None], v.fmaps[jj][None], self.corr_levels, self.corr_radius)
            self.corr = block if self.corr is None else CorrBlock.cat([self.corr, block])
        target, _ = v.reproject(ii, jj)
        self.target = torch.cat([self.target, target])
        self.weight = torch.cat([self.weight, torch.zeros_like(target)])

    def rm_factors(self, mask: torch.Tensor, store: bool = False) -> None:
        if store:
            self.ii_inac = torch.cat([self.ii_inac, self.ii[mask]])
            self.jj_inac = torch.cat([self.jj_inac, self.jj[mask]])
            self.target_inac = torch.cat([self.target_inac, self.target[mask]])
            self.weight_inac = torch.cat([self.weight_inac, self.weight[mask]])
        keep = ~mask
        for name in ("ii", "jj", "age", "net", "inp", "target", "weight"):
            setattr(self, name, getattr(self, name)[keep])
        if self.corr is not None:
            self.corr = self.corr.select(keep)

    def rm_keyframe(self, k: int) -> None:
        """Drop keyframe k: slot k+1 moves to k, edges touching k go, higher indices shift down."""
        self.video.copy_slot(k + 1, k)
        touch = (self.ii_inac == k) | (self.jj_inac == k)
        self.ii_inac, self.jj_inac = self.ii_inac[~touch], self.jj_inac[~touch]
        self.target_inac, self.weight_inac = self.target_inac[~touch], self.weight_inac[~touch]
        self.ii_inac = self.ii_inac - (self.ii_inac > k).long()
        self.jj_inac = self.jj_inac - (self.jj_inac > k).long()
        self.rm_factors((self.ii == k) | (self.jj == k), store=False)
        self.ii = self.ii - (self.ii > k).long()
        self.jj = self.jj - (self.jj > k).long()

    def add_neighborhood_factors(self, t0: int, t1: int, r: int = 3) -> None:
        """All ordered pairs in [t0, t1) with 1 <= |i - j| <= r."""
        ii, jj = torch.meshgrid(torch.arange(t0, t1), torch.arange(t0, t1), indexing="ij")
        d = (ii - jj).abs()
        keep = (d > 0) & (d <= r)
        self.add_factors(ii[keep], jj[keep])

    def add_proximity_factors(self, t0: int = 0, t1: int = 0, rad: int = 2, nms: int = 2, beta: float = 0.25,
                              thresh: float = 16.0, remove: bool = False) -> None:
        """Temporal edges to the rad+1 previous keyframes plus the closest (by frame distance) pairs
        i in [t0, t), j in [t1, t) with non-maximum suppression around existing and chosen edges."""
        t = self.video.counter
        nj = t - t1
        ii, jj = torch.meshgrid(torch.arange(t0, t), torch.arange(t1, t), indexing="ij")
        ii, jj = ii.reshape(-1), jj.reshape(-1)
        dev = self.video.device
        d = self.video.distance(ii.to(dev), jj.to(dev), beta).cpu() if len(ii) else torch.zeros(0)
        d[(ii - rad) < jj] = float("inf")
        d[d > 100] = float("inf")

        def suppress(i: int, j: int) -> None:
            span = max(min(abs(i - j) - 2, nms), 0)
            for di in range(-span, span + 1):
                for dj in range(-span, span + 1):
                    i1, j1 = i + di, j + dj
                    if abs(di) + abs(dj) <= span and t0 <= i1 < t and t1 <= j1 < t:
                        d[(i1 - t0) * nj + (j1 - t1)] = float("inf")

        existing = zip(torch.cat([self.ii, self.ii_inac]).tolist(), torch.cat([self.jj, self.jj_inac]).tolist())
        for i, j in existing:
            suppress(i, j)
        edges = []
        for i in range(t0, t):
            for j in range(max(i - rad - 1, 0), i):
                edges += [(i, j), (j, i)]
                if t1 <= j < t:
                    d[(i - t0) * nj + (j - t1)] = float("inf")
        for k in torch.argsort(d).tolist():
            if d[k] > thresh:
                continue
            if self.max_factors > 0 and len(edges) > self.max_factors:
                break
            i, j = int(ii[k]), int(jj[k])
            edges += [(i, j), (j, i)]
            suppress(i, j)
        if edges:
            e = torch.tensor(edges)
            self.add_factors(e[:, 0], e[:, 1], remove)

    # ---- updates --------------------------------------------------------------------------------------

    def _motion(self, coords1: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(E, 4, h, w) motion features: induced flow and residual, clamped to +-64."""
        m = torch.cat([coords1 - self.coords0, target - coords1], -1).clamp(-MOTION_CLAMP, MOTION_CLAMP)
        return m.permute(0, 3, 1, 2)

    def _grow_damping(self) -> None:
        extra = len(self.video.disps) - len(self.damping)
        if extra > 0:
            self.damping = torch.cat([self.damping, 1e-6 * torch.ones_like(self.video.disps[:extra])])

    def _masked(self, weight: torch.Tensor, ii: torch.Tensor) -> torch.Tensor:
        """HaWoR: confidence 0 where the source keyframe's hand mask is > 0."""
        return weight * (self.video.masks[ii] <= 0)[..., None].to(weight.dtype)

    def _ba(self, t0: int, t1: int | None, itrs: int, lm: float, ep: float, use_inactive: bool,
            motion_only: bool, EP: float) -> None:
        ii, jj, target, weight = self.ii, self.jj, self.target, self.weight
        if use_inactive and len(self.ii_inac):
            keep = (self.ii_inac >= t0 - 3) & (self.jj_inac >= t0 - 3)
            ii, jj = torch.cat([self.ii_inac[keep], ii]), torch.cat([self.jj_inac[keep], jj])
            target = torch.cat([self.target_inac[keep], target])
            weight = torch.cat([self.weight_inac[keep], weight])
        v = self.video
        if t1 is None:
            t1 = int(max(ii.max(), jj.max())) + 1
        n = max(v.counter, t1)
        eta = 0.2 * self.damping[:n] + EP
        poses, disps = bundle_adjust(v.poses[:n], v.disps[:n], v.K, target, weight, eta, ii, jj, t0, t1,
                                     iters=itrs, lm=lm, ep=ep, motion_only=motion_only)
        v.poses[:n], v.disps[:n] = poses, disps

    def _upsample(self, ix: torch.Tensor, upmask: torch.Tensor) -> None:
        v = self.video
        v.disps_up[ix] = upsample_disp(v.disps[ix][None], upmask, self.upsample_factor)[0]

    @torch.no_grad()
    def update(self, t0: int | None = None, t1: int | None = None, itrs: int | None = None,
               use_inactive: bool = False, EP: float = 1e-7, motion_only: bool = False) -> None:
        """One network pass over all active edges followed by ``itrs`` BA iterations (frontend, filler)."""
        itrs = self.ba_iters if itrs is None else itrs
        self._grow_damping()
        coords1, _ = self.video.reproject(self.ii, self.jj)
        if self.corr is not None:
            corr = self.corr(coords1[None])
        else:
            corr = self._lookup_alt(self.ii, self.jj, coords1)[None]
        motion = self._motion(coords1, self.target)[None]
        net, delta, weight, eta, upmask = self.update_op(self.net[None], self.inp[None], corr, motion,
                                                         self.ii, self.jj)
        self.net = net[0]
        self.target = coords1 + delta[0]
        self.weight = self._masked(weight[0], self.ii)
        ix = torch.unique(self.ii)
        self.damping[ix] = eta[0]
        if t0 is None:
            t0 = max(1, int(self.ii.min()) + 1)
        self._ba(t0, t1, itrs, 1e-4, 0.1, use_inactive, motion_only, EP)
        if self.upsample:
            self._upsample(ix, upmask[0])
        self.age += 1

    def _lookup_alt(self, ii, jj, coords1) -> torch.Tensor:
        """Correlation features without stored volumes: pyramids built per few edges, then discarded."""
        f = self.video.fmaps
        out = []
        for s in range(0, len(ii), self.alt_chunk):
            sl = slice(s, s + self.alt_chunk)
            levels = correlation_pyramid(f[ii[sl]][None], f[jj[sl]][None], self.corr_levels)
            out.append(lookup_pyramid(levels, coords1[sl], self.corr_radius))
        return torch.cat(out)

    @torch.no_grad()
    def update_lowmem(self, steps: int = 8, source_chunk: int = 8) -> None:
        """Backend update: edges processed in groups of source frames, then one BA over all edges."""
        v = self.video
        t = v.counter
        self._grow_damping()
        for _ in range(steps):
            coords1, _ = v.reproject(self.ii, self.jj)
            for s in range(0, int(self.ii.max()) + 1, source_chunk):
                sel = (self.ii >= s) & (self.ii < s + source_chunk)
                if not bool(sel.any()):
                    continue
                ii, jj = self.ii[sel], self.jj[sel]
                corr = self._lookup_alt(ii, jj, coords1[sel])
                motion = self._motion(coords1[sel], self.target[sel])
                net, delta, weight, eta, upmask = self.update_op(self.net[sel][None], self.inp[sel][None],
                                                                 corr[None], motion[None], ii, jj)
                self.net[sel] = net[0]
                self.target[sel] = coords1[sel] + delta[0]
                self.weight[sel] = self._masked(weight[0], ii)
                ix = torch.unique(ii)
                self.damping[ix] = eta[0]
                if self.upsample:
                    self._upsample(ix, upmask[0])
            self._ba(1, t, 2, 1e-5, 1e-2, False, False, 1e-7)
            self.age += 1

    def reprojection_error(self) -> float:
        """Mean |target - reprojection| over active edges and pixels (grid pixels, unweighted)."""
        coords1, _ = self.video.reproject(self.ii, self.jj)
        return float((self.target - coords1).norm(dim=-1).mean()) if len(self.ii) else 0.0
