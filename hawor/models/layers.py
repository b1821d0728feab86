"""Building blocks shared by several networks."""
from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalPositionalEncoding(nn.Module):
    """Adds a stored sin/cos table ``pe`` (max_len, 1, d_model): sin on even, cos on odd channels.

    The frequency of channel pair k is 10000^(-2k/d_model). The table is a buffer because the official
    checkpoints store it (in float32); loading it keeps outputs bit-comparable.
    """

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.1):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * freq)
        pe[:, 0, 1::2] = torch.cos(position * freq[: d_model // 2])
        self.register_buffer("pe", pe)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, B, d_model) sequence-first."""
        return self.dropout(x + self.pe[: x.shape[0]])
