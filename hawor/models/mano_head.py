"""MANO head of the HaWoR regressor: one query token cross-attending to the image tokens (HMR2.0 style).

Written by hand because the checkpoint's key names (``to_qkv``, ``to_kv``, ``to_q``, ``to_out.0``,
``net.0``/``net.3``) and the un-normalised cross-attention context have no timm equivalent.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class HeadConfig:
    """Sizes of the MANO head. Defaults are the released head."""

    num_tokens: int = 1
    token_dim: int = 1
    dim: int = 1024
    depth: int = 6
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 1024
    context_dim: int = 1280
    layernorm_eps: float = 1e-5
    npose: int = 96  # 16 joints x 6D
    nshape: int = 10
    ncam: int = 3


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, H*d) -> (B, H, N, d)."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, d) -> (B, N, H*d)."""
    return x.transpose(1, 2).flatten(2)


def _out_projection(inner_dim: int, dim: int, heads: int, dim_head: int) -> nn.Module:
    # The official layer skips the projection when a single head already has the model width.
    if heads == 1 and dim_head == dim:
        return nn.Identity()
    return nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(0.0))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = _out_projection(heads * dim_head, dim, heads, dim_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, 2 * heads * dim_head, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = _out_projection(heads * dim_head, dim, heads, dim_head)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = _split_heads(self.to_q(x), self.heads)
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    """x + fn(LayerNorm(x), *context): the context (cross-attention keys/values) is not normalised."""

    def __init__(self, dim: int, fn: nn.Module, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.fn = fn

    def forward(self, x: torch.Tensor, *context: torch.Tensor) -> torch.Tensor:
        return x + self.fn(self.norm(x), *context)


class CrossAttnTransformer(nn.Module):
    """``depth`` layers of [self-attention, cross-attention, MLP], each pre-norm with a residual."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        eps = cfg.layernorm_eps
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(cfg.dim, SelfAttention(cfg.dim, cfg.heads, cfg.dim_head), eps),
                PreNorm(cfg.dim, CrossAttention(cfg.dim, cfg.context_dim, cfg.heads, cfg.dim_head), eps),
                PreNorm(cfg.dim, FeedForward(cfg.dim, cfg.mlp_dim), eps),
            ])
            for _ in range(cfg.depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for self_attn, cross_attn, mlp in self.layers:
            x = mlp(cross_attn(self_attn(x), context))
        return x


class TokenDecoder(nn.Module):
    """Query tokens from a zero input, embedded, plus a learned position embedding, then cross-attention."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.to_token_embedding = nn.Linear(cfg.token_dim, cfg.dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, cfg.num_tokens, cfg.dim))
        self.transformer = CrossAttnTransformer(cfg)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context (N, L, context_dim) -> tokens (N, num_tokens, dim)."""
        zeros = context.new_zeros(context.shape[0], self.cfg.num_tokens, self.cfg.token_dim)
        tokens = self.to_token_embedding(zeros) + self.pos_embedding
        return self.transformer(tokens, context)


def default_mean_params(cfg: HeadConfig) -> dict[str, torch.Tensor]:
    """Initial pose/shape/camera when no mean-parameter file is given: identity 6D, zero shape, cam (4, 0, 0)."""
    identity_6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    return {
        "pose": identity_6d.repeat(cfg.npose // 6),
        "shape": torch.zeros(cfg.nshape),
        "cam": torch.tensor([4.0, 0.0, 0.0])[: cfg.ncam],
    }


class ManoHead(nn.Module):
    """Image features (N, C, Hp, Wp) -> pose 6D (N, npose), betas (N, nshape), weak-perspective cam (N, 3).

    The three read-outs are added to the mean parameters ``init_hand_pose``, ``init_betas``, ``init_cam``
    (persistent buffers; the checkpoint overwrites them). ``mean_params`` holds ``pose``/``shape``/``cam``
    arrays as in ``mano_mean_params.npz``.
    """

    def __init__(self, cfg: HeadConfig, mean_params: dict | None = None):
        super().__init__()
        self.cfg = cfg
        mean = default_mean_params(cfg) if mean_params is None else mean_params
        self.register_buffer("init_hand_pose", torch.as_tensor(mean["pose"], dtype=torch.float32).reshape(1, cfg.npose))
        self.register_buffer("init_betas", torch.as_tensor(mean["shape"], dtype=torch.float32).reshape(1, cfg.nshape))
        self.register_buffer("init_cam", torch.as_tensor(mean["cam"], dtype=torch.float32).reshape(1, cfg.ncam))
        self.transformer = TokenDecoder(cfg)
        self.decpose = nn.Linear(cfg.dim, cfg.npose)
        self.decshape = nn.Linear(cfg.dim, cfg.nshape)
        self.deccam = nn.Linear(cfg.dim, cfg.ncam)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """features (N, C, Hp, Wp) -> (pose6d (N, npose), betas (N, nshape), cam (N, ncam) = (s, tx, ty))."""
        context = features.flatten(2).transpose(1, 2)
        token = self.transformer(context)[:, 0]
        pose = self.decpose(token) + self.init_hand_pose
        betas = self.decshape(token) + self.init_betas
        cam = self.deccam(token) + self.init_cam
        return pose, betas, cam
