"""Temporal attention over a window of frames: HaWoR's IAM (``st_module``) and PAM (``motion_module``).

Each input sequence is embedded (``l1``), gets a fixed sinusoid position table, runs through post-norm
PyTorch Transformer encoder layers and is read out (``l2``); IAM adds a residual to the input channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hawor.models.layers import SinusoidalPositionalEncoding


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


class TemporalAttention(nn.Module):
    """Sequences (B, T, in_dim) -> (B, T, out_dim); with ``residual`` adds ``x[..., :out_dim]``."""

    def __init__(self, cfg: TemporalConfig):
        super().__init__()
        self.cfg = cfg
        self.l1 = nn.Linear(cfg.in_dim, cfg.hdim)
        self.l2 = nn.Linear(cfg.hdim, cfg.out_dim)
        # The stored sinusoid table (pe_max_len, 1, hdim) is a checkpoint buffer: loaded, not recomputed.
        self.pos_embedding = SinusoidalPositionalEncoding(cfg.hdim, cfg.pe_max_len)
        layer = nn.TransformerEncoderLayer(
            cfg.hdim, cfg.nhead, dim_feedforward=cfg.dim_feedforward, dropout=0.1, activation="gelu",
            layer_norm_eps=cfg.layer_norm_eps, batch_first=False, norm_first=False,
        )
        self.trans = nn.TransformerEncoder(layer, cfg.nlayer, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, in_dim), T <= pe_max_len -> (B, T, out_dim)."""
        seq_first = self.l1(x).transpose(0, 1)
        y = self.l2(self.trans(self.pos_embedding(seq_first)).transpose(0, 1))
        if self.cfg.residual:
            y = y + x[..., : self.cfg.out_dim]
        return y
