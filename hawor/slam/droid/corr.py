"""All-pairs correlation pyramid and its windowed bilinear lookup (DROID's CorrBlock), in plain torch."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def correlation_volume(fmap1: torch.Tensor, fmap2: torch.Tensor) -> torch.Tensor:
    """fmap1, fmap2 (B, N, C, h, w) -> (B*N, h, w, h, w): <f1(p), f2(q)> with each map divided by 4."""
    b, n, c, h, w = fmap1.shape
    f1 = (fmap1 / 4.0).reshape(b * n, c, h * w)
    f2 = (fmap2 / 4.0).reshape(b * n, c, h * w)
    return torch.bmm(f1.transpose(1, 2), f2).reshape(b * n, h, w, h, w)


def correlation_pyramid(fmap1: torch.Tensor, fmap2: torch.Tensor, num_levels: int = 4) -> list[torch.Tensor]:
    """Level 0 = correlation_volume; level l+1 = 2x2 average pool (floor) over the target axes.

    Returns a list of (B*N, h, w, h_l, w_l) tensors.
    """
    vol = correlation_volume(fmap1, fmap2)
    m, h, w = vol.shape[:3]
    levels = [vol]
    for _ in range(num_levels - 1):
        prev = levels[-1]
        pooled = F.avg_pool2d(prev.reshape(m * h * w, 1, *prev.shape[-2:]), 2, stride=2)
        levels.append(pooled.reshape(m, h, w, *pooled.shape[-2:]))
    return levels


def _window_grid(centre: torch.Tensor, radius: int, size_hw: tuple[int, int]) -> torch.Tensor:
    """Normalised grid (M, 2r+1, 2r+1, 2); entry [m, a, b] = centre + (a - r, b - r) (x-major taps).

    Uses the align_corners=False normalisation, which also covers 1-pixel levels (the
    align_corners=True form divides by size - 1); the sampled values are the same.
    """
    d = torch.arange(-radius, radius + 1, dtype=centre.dtype, device=centre.device)
    x = centre[:, 0, None, None] + d[:, None]
    y = centre[:, 1, None, None] + d[None, :]
    x, y = torch.broadcast_tensors(x, y)
    h_l, w_l = size_hw
    return torch.stack([(2 * x + 1) / w_l - 1, (2 * y + 1) / h_l - 1], -1)


def lookup_pyramid(pyramid: list[torch.Tensor], coords: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Bilinear (2r+1)^2 windows of every level around coords / 2^l, zero outside.

    pyramid: list of (M, h, w, h_l, w_l); coords (M, h, w, 2) target-frame 1/8 pixels (x, y).
    Returns (M, L*(2r+1)^2, h, w), levels concatenated, channel a*(2r+1)+b with a the x offset.
    """
    m, h, w = coords.shape[:3]
    out = []
    centre = coords.reshape(m * h * w, 2)
    for lvl, vol in enumerate(pyramid):
        h_l, w_l = vol.shape[-2:]
        grid = _window_grid(centre / 2 ** lvl, radius, (h_l, w_l)).to(vol.dtype)
        taps = F.grid_sample(vol.reshape(m * h * w, 1, h_l, w_l), grid, mode="bilinear",
                             padding_mode="zeros", align_corners=False)
        out.append(taps.reshape(m, h, w, -1))
    return torch.cat(out, -1).permute(0, 3, 1, 2)


class CorrBlock:
    """Correlation pyramid of a batch of edges; call with coords to get the 196 lookup planes.

    fmap1, fmap2: (B, E, C, h, w) source and target features of each edge.
    """

    def __init__(self, fmap1: torch.Tensor, fmap2: torch.Tensor, num_levels: int = 4, radius: int = 3):
        self.batch = fmap1.shape[:2]
        self.radius = radius
        self.levels = correlation_pyramid(fmap1, fmap2, num_levels)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """coords (B, E, h, w, 2) -> (B, E, L*(2r+1)^2, h, w)."""
        out = lookup_pyramid(self.levels, coords.flatten(0, 1), self.radius)
        return out.unflatten(0, self.batch)

    def select(self, keep: torch.Tensor) -> "CorrBlock":
        """Keep edges by boolean mask or index (over the E axis, batch size 1)."""
        new = CorrBlock.__new__(CorrBlock)
        new.radius = self.radius
        new.levels = [lvl[keep] for lvl in self.levels]
        new.batch = (1, new.levels[0].shape[0])
        return new

    @staticmethod
    def cat(blocks: list["CorrBlock"]) -> "CorrBlock":
        new = CorrBlock.__new__(CorrBlock)
        new.radius = blocks[0].radius
        new.levels = [torch.cat(parts, 0) for parts in zip(*(b.levels for b in blocks))]
        new.batch = (1, new.levels[0].shape[0])
        return new
