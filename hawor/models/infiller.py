"""HaWoR motion infiller: a masked-attention transformer over a two-hand motion window.

The network (a CMIB-style ``TransformerModel``) reads a window of T <= ``seq_len`` frames, each frame
the concatenation [left 109 | right 109] of per-hand features (3 canonical translation, 10 betas,
6D root, 15 x 6D fingers; the infiller's row-major 6D layout), plus a per-frame "observed" channel.
It predicts the whole window (absolute values, not residuals). Two stages:

1. a masked stage: ``nlayers`` pre-norm attention + feed-forward rounds in which every query may
   only attend to observed key frames, then a LayerNorm;
2. a standard post-norm ``nn.TransformerEncoder`` (GELU) over all frames, then a linear decoder.

Module and parameter names follow the official checkpoint (``infiller.pt`` keeps them under
``transformer_encoder_state_dict``), so ``load_state_dict`` works on it unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hawor.models.layers import SinusoidalPositionalEncoding

#: Per-hand feature width: 3 transl + 10 betas + 6 root 6D + 15 x 6 finger 6D.
HAND_FEATURES = 3 + 10 + 16 * 6


@dataclass(frozen=True)
class InfillerConfig:
    """Constructor values; the defaults are the released model's (official names)."""

    seq_len: int = 120
    input_dim: int = 2 * HAND_FEATURES
    d_model: int = 384
    nhead: int = 8
    d_hid: int = 2048
    nlayers: int = 8
    dropout: float = 0.05
    out_dim: int = 2 * HAND_FEATURES

    @classmethod
    def from_dict(cls, values: dict) -> "InfillerConfig":
        """Build from a dict with (at least) the official constructor keys; other keys are ignored."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: values[k] for k in names if k in values})

    @classmethod
    def from_state_dict(cls, state: dict, nhead: int = 8, dropout: float = 0.05) -> "InfillerConfig":
        """Sizes read off the tensor shapes of an official-layout state dict (the head count is not
        visible in any shape, so it is an argument)."""
        pe = state["pos_embedding.pe"]
        layers = {k.split(".")[1] for k in state if k.startswith("att_layers.")}
        return cls(seq_len=pe.shape[0], d_model=pe.shape[-1], input_dim=state["input_layer.weight"].shape[1] - 1,
                   out_dim=state["decoder.weight"].shape[0], d_hid=state["pff_layers.0.network.0.weight"].shape[0],
                   nlayers=len(layers), nhead=nhead, dropout=dropout)


class MaskedMultiHeadAttention(nn.Module):
    """Pre-norm self-attention whose keys can be hidden by a boolean mask.

    Two deliberate reproductions of the released model: scores are scaled by 1/sqrt(d_model) (not
    1/sqrt(head_dim)), and the residual starts from the *normalised* input (returns LN(x) + attn).
    """

    def __init__(self, d_model: int, nhead: int, dropout: float):
        super().__init__()
        self.nhead = nhead
        self.d_model = d_model
        self.layer_norm = nn.LayerNorm(d_model)
        self.q_linear = nn.Linear(d_model, d_model, bias=False)
        self.k_linear = nn.Linear(d_model, d_model, bias=False)
        self.v_linear = nn.Linear(d_model, d_model, bias=False)
        self.out_linear = nn.Linear(d_model, d_model, bias=False)
        self.attn_dropout = nn.Dropout(dropout)
        self.out_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """x: (B, T, d) batch-first; hidden: (B, 1, T, T) bool, True = key frame not visible."""
        b, t, _ = x.shape
        h = self.layer_norm(x)

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.nhead, -1).transpose(1, 2)  # (B, heads, T, d_head)

        q, k, v = heads(self.q_linear(h)), heads(self.k_linear(h)), heads(self.v_linear(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_model)
        scores = scores.masked_fill(hidden, float("-inf"))
        attn = self.attn_dropout(torch.softmax(scores, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, t, self.d_model)
        return h + self.out_dropout(self.out_linear(out))


class PositionwiseFeedForward(nn.Module):
    """Pre-norm ReLU MLP with a residual: x + W2 ReLU(W1 LN(x))."""

    def __init__(self, d_model: int, d_hid: int, dropout: float):
        super().__init__()
        self.layer_norm = nn.LayerNorm(d_model)
        self.network = nn.Sequential(
            nn.Linear(d_model, d_hid), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_hid, d_model), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.network(self.layer_norm(x))


class MotionInfiller(nn.Module):
    """The infiller network (official ``TransformerModel`` with the masked attention stage)."""

    def __init__(self, config: InfillerConfig = InfillerConfig()):
        super().__init__()
        self.config = c = config
        self.input_layer = nn.Linear(c.input_dim + 1, c.d_model)
        self.pos_embedding = SinusoidalPositionalEncoding(c.d_model, c.seq_len)
        self.att_layers = nn.ModuleList(MaskedMultiHeadAttention(c.d_model, c.nhead, c.dropout) for _ in range(c.nlayers))
        self.pff_layers = nn.ModuleList(PositionwiseFeedForward(c.d_model, c.d_hid, c.dropout) for _ in range(c.nlayers))
        self.layer_norm = nn.LayerNorm(c.d_model)
        layer = nn.TransformerEncoderLayer(c.d_model, c.nhead, c.d_hid, c.dropout, activation="gelu")
        self.transformer_encoder = nn.TransformerEncoder(layer, c.nlayers, enable_nested_tensor=False)
        self.decoder = nn.Linear(c.d_model, c.out_dim)

    def forward_intermediates(
        self, src: torch.Tensor, data_mask: torch.Tensor, atten_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Run the network and keep every stage's output.

        Args:
            src: (T, B, input_dim) sequence-first window, T <= seq_len.
            data_mask: (T, B, 1) 1.0 for observed frames, 0.0 for frames to fill.
            atten_mask: (B, 1, T, T) bool, True where a key frame is hidden from a query.
        Returns:
            ``input_proj``, ``after_pos``, ``masked_stage_out``, ``encoder_out`` (T, B, d_model) and
            ``output`` (T, B, out_dim).
        """
        out = {"input_proj": self.input_layer(torch.cat([src, data_mask], dim=-1))}
        out["after_pos"] = x = self.pos_embedding(out["input_proj"])
        x = x.transpose(0, 1)
        for attention, feed_forward in zip(self.att_layers, self.pff_layers):
            x = feed_forward(attention(x, atten_mask))
        out["masked_stage_out"] = x = self.layer_norm(x).transpose(0, 1)
        out["encoder_out"] = x = self.transformer_encoder(x)
        out["output"] = self.decoder(x)
        return out

    def forward(self, src: torch.Tensor, data_mask: torch.Tensor, atten_mask: torch.Tensor) -> torch.Tensor:
        """(T, B, input_dim) window -> (T, B, out_dim) filled window; arguments as in
        :meth:`forward_intermediates` (the official ``src_mask`` argument is unused there and dropped)."""
        return self.forward_intermediates(src, data_mask, atten_mask)["output"]


def observed_attention_mask(observed: torch.Tensor) -> torch.Tensor:
    """(T, B) bool observed flags -> (B, 1, T, T) bool mask hiding every unobserved key frame."""
    t = observed.shape[0]
    return (~observed.T)[:, None, None, :].expand(-1, 1, t, t)
