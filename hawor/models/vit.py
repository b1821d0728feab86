"""ViT image encoder of the HaWoR regressor (ViTPose-H layout, as in HaMeR/HaWoR).

Differences from a plain timm ViT, all needed for the official weights: the patch convolution has
zero padding, there is no class token, and the class-token slot 0 of ``pos_embed`` is added to every
patch token on top of its own slot. The blocks are timm's pre-norm ``Block``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import nn


@dataclass
class ViTConfig:
    """Sizes of the image encoder. Defaults are the released ViT-H/16."""

    img_size: tuple[int, int] = (256, 192)  # (H, W) of the image the encoder sees
    patch_size: int = 16
    patch_padding: int = 2
    in_chans: int = 3
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_hidden: int = 5120
    qkv_bias: bool = True
    layernorm_eps: float = 1e-6

    @property
    def token_grid(self) -> tuple[int, int]:
        """(Hp, Wp) token grid produced by the padded patch convolution."""
        h, w = self.img_size
        pad, p = self.patch_padding, self.patch_size
        return (h + 2 * pad - p) // p + 1, (w + 2 * pad - p) // p + 1


class PatchEmbed(nn.Module):
    """Padded, non-overlapping patch convolution: (N, C, H, W) -> (N, Hp*Wp, D), row-major tokens."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        p = cfg.patch_size
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=p, stride=p, padding=cfg.patch_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """Image encoder: normalised crops (N, 3, H, W) -> feature map (N, D, Hp, Wp)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        grid_h, grid_w = cfg.token_grid
        mlp_ratio = cfg.mlp_hidden / cfg.embed_dim
        if int(cfg.embed_dim * mlp_ratio) != cfg.mlp_hidden:
            raise ValueError(f"mlp_hidden {cfg.mlp_hidden} is not reachable from embed_dim {cfg.embed_dim}")
        self.patch_embed = PatchEmbed(cfg)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid_h * grid_w + 1, cfg.embed_dim))
        norm = partial(nn.LayerNorm, eps=cfg.layernorm_eps)
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, mlp_ratio=mlp_ratio, qkv_bias=cfg.qkv_bias, norm_layer=norm)
            for _ in range(cfg.depth)
        )
        self.last_norm = norm(cfg.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) normalised -> features (N, D, Hp, Wp)."""
        if tuple(images.shape[-2:]) != tuple(self.cfg.img_size):
            raise ValueError(f"ViT expects images of size {self.cfg.img_size}, got {tuple(images.shape[-2:])}")
        x = self.patch_embed(images)
        # The official encoder adds the class-token slot to every patch token instead of prepending a token.
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        x = self.last_norm(x)
        grid_h, grid_w = self.cfg.token_grid
        return x.transpose(1, 2).reshape(x.shape[0], -1, grid_h, grid_w)
