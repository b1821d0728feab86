"""Temporal attention over a window of frames: HaWoR's IAM (``st_module``) and PAM (``motion_module``).

Each input sequence is embedded (``l1``), gets a fixed sinusoid position table, runs through post-norm
PyTorch Transformer encoder layers and is read out (``l2``); IAM adds a residual to the input channels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TemporalConfig:
    """Sizes of one temporal attention module. Defaults are the released IAM (``st_module``)."""

    in_dim: int = 1283
    out_dim: int = 1280
    hdim: int = 512
    nlayer: int = 6
    nhead: int = 4
    dim_feedforward: int = 1024
    residual: bool = True
    pe_max_len: int = 100
    layer_norm_eps: float = 1e-5


def sinusoid_table(max_len: int, dim: int) -> torch.Tensor:
    """Standard sin/cos position table (max_len, 1, dim), float32: even channels sin, odd cos."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)[:, : dim // 2]
    return table.unsqueeze(1)


class PositionalEncoding(nn.Module):
    """Adds the stored sinusoid table ``pe`` (max_len, 1, dim) to (B, T, dim) sequences.

    The table is a checkpoint buffer computed in float32 by the official code; it is loaded, not recomputed.
    """

    def __init__(self, dim: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1], 0].to(x.dtype)


class TemporalAttention(nn.Module):
    """Sequences (B, T, in_dim) -> (B, T, out_dim); with ``residual`` adds ``x[..., :out_dim]``."""

    def __init__(self, cfg: TemporalConfig):
        super().__init__()
        self.cfg = cfg
        self.l1 = nn.Linear(cfg.in_dim, cfg.hdim)
        self.l2 = nn.Linear(cfg.hdim, cfg.out_dim)
        self.pos_embedding = PositionalEncoding(cfg.hdim, cfg.pe_max_len)
        layer = nn.TransformerEncoderLayer(
            cfg.hdim, cfg.nhead, dim_feedforward=cfg.dim_feedforward, dropout=0.1, activation="gelu",
            layer_norm_eps=cfg.layer_norm_eps, batch_first=True, norm_first=False,
        )
        self.trans = nn.TransformerEncoder(layer, cfg.nlayer, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, in_dim), T <= pe_max_len -> (B, T, out_dim)."""
        y = self.l2(self.trans(self.pos_embedding(self.l1(x))))
        if self.cfg.residual:
            y = y + x[..., : self.cfg.out_dim]
        return y
