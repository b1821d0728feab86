"""Metric3D v2 (ViT variant): DINOv2-reg ViT encoder + RAFT-style depth/normal decoder.

The module tree reproduces the official checkpoint's key layout (`depth_model.encoder.*`,
`depth_model.decoder.*`, ViT blocks as `blocks.0.<i>`), so `metric_depth_vit_large_800k.pth`
loads strictly. Every size comes from `Metric3DConfig`; `Metric3DConfig()` is the ViT-Large
model HaWoR uses, `Metric3DConfig.from_dict` reads a compat fixture's reduced config and
`Metric3DConfig.from_state_dict` reads the sizes a checkpoint's tensors imply (any ViT width and depth).

Input: a normalised image batch (B, 3, H, W) with H, W multiples of 28 (616 x 1064 for the
released model). Output depth is in canonical metres (a camera with focal 1000 px); see
`hawor.depth.preprocess` for HaWoR's pre- and post-processing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from hawor.errors import HaworInputError
from hawor.models.upsampling import convex_upsample

_ENC, _DEC = "depth_model.encoder.", "depth_model.decoder."
# Every released Metric3D ViT (v2-S, v2-L, v2-g) has 64-wide attention heads; shapes do not show the count.
HEAD_WIDTH = 64


@dataclass(frozen=True)
class Metric3DConfig:
    """Sizes of the Metric3D v2 ViT model; the defaults are the released ViT-Large (v2-L)."""

    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_hidden: int = 4096
    num_register_tokens: int = 4
    vit_eps: float = 1e-6
    pretrain_img_size: int = 518
    interpolate_offset: float = 0.1
    # [f0 (1/4), f1 (1/7), E (1/14), E (1/14)] widths of the four token readouts.
    feature_channels: tuple[int, ...] = (256, 512, 1024, 1024)
    # [d0 (unused), d1 (fused 1/4 features), f1, E, E].
    decoder_channels: tuple[int, ...] = (128, 256, 512, 1024, 1024)
    hidden_channels: tuple[int, ...] = (128, 128, 128, 128)
    iters: int = 8
    num_depth_bins: int = 256
    normal_head_width: int = 128
    depth_range: tuple[float, float] = (0.1, 200.0)
    regress_scale: float = 100.0
    decoder_eps: float = 1e-5
    upsample_factor: int = 4
    input_size: tuple[int, int] = (616, 1064)  # (H, W) the frames are fitted into; multiples of 28
    canonical_focal: float = 1000.0

    def __post_init__(self):
        e, f, d = self.embed_dim, self.feature_channels, self.decoder_channels
        problems = []
        if len(f) != 4 or len(d) != 5:
            problems.append("feature_channels needs 4 entries and decoder_channels 5")
        elif not (f[2] == f[3] == d[3] == d[4] == e):
            problems.append(f"feature_channels[2:] and decoder_channels[3:] must equal embed_dim {e}")
        elif f[1] != d[2]:
            problems.append("feature_channels[1] must equal decoder_channels[2]")
        if len(set(self.hidden_channels)) != 1:
            problems.append("hidden_channels must be one width for all GRU levels")
        if self.upsample_factor != 4:
            problems.append("the decoder works at 1/4 of the input: upsample_factor (2**n_downsample) must be 4")
        if e % self.num_heads:
            problems.append("embed_dim must be divisible by num_heads")
        if problems:
            raise HaworInputError(f"Metric3D config: {'; '.join(problems)}.")

    @property
    def hidden(self) -> int:
        return self.hidden_channels[0]

    @classmethod
    def from_dict(cls, cfg: dict) -> "Metric3DConfig":
        """Build from a compat-fixture style dict ({"encoder": {...}, "decoder": {...}, ...})."""
        enc, dec = cfg["encoder"], cfg["decoder"]
        pipe = cfg.get("pipeline", {})
        factor = 2 ** int(dec.get("n_downsample", 2))
        if dec.get("n_gru_layers", 3) != 3 or not dec.get("slow_fast_gru", True):
            raise HaworInputError("Metric3D config: only the 3-level slow-fast GRU decoder is supported.")
        if dec.get("upmask_channels", 9 * factor**2) != 9 * factor**2:
            raise HaworInputError("Metric3D config: upmask_channels must be 9 * (2**n_downsample)**2.")
        input_size = tuple(pipe.get("network_input_hw", cfg.get("model_input_shape", [0, 0, 616, 1064])[2:]))
        return cls(
            patch_size=enc["patch_size"], embed_dim=enc["embed_dim"], depth=enc["depth"],
            num_heads=enc["num_heads"], mlp_hidden=enc["mlp_hidden"],
            num_register_tokens=enc["num_register_tokens"], vit_eps=enc["layernorm_eps"],
            pretrain_img_size=enc["pretrain_img_size"], interpolate_offset=enc["interpolate_offset"],
            feature_channels=tuple(dec["feature_channels"]), decoder_channels=tuple(dec["decoder_channels"]),
            hidden_channels=tuple(dec["hidden_channels"]), iters=dec["iters"],
            num_depth_bins=dec["num_depth_bins"], normal_head_width=dec["normal_head_width"],
            depth_range=tuple(dec["depth_normalize"]), regress_scale=dec["regress_scale"],
            decoder_eps=dec["layernorm2d_eps"], upsample_factor=factor, input_size=input_size,
            canonical_focal=pipe.get("canonical_focal", 1000.0),
        )


    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], base: "Metric3DConfig | None" = None) -> "Metric3DConfig":
        """The sizes a state dict (official key names) was saved with; the rest from ``base`` (default ViT-L).

        Widths, depth, register tokens, patch and pre-training size, channels, bins and GRU width are
        read from tensor shapes; the head count is ``embed_dim // 64`` (at least 1). Raises
        HaworInputError naming the missing key when the dict is not a Metric3D ViT state dict.
        """
        def shape(key: str) -> tuple[int, ...]:
            if key not in state:
                raise HaworInputError(f"Metric3D weights: no '{key}' tensor; not a Metric3D v2 ViT checkpoint.")
            return tuple(state[key].shape)

        embed_dim, patch = shape(_ENC + "cls_token")[-1], shape(_ENC + "patch_embed.proj.weight")[-1]
        depth = len({k.split(".")[4] for k in state if k.startswith(_ENC + "blocks.0.")})
        grid = math.isqrt(shape(_ENC + "pos_embed")[1] - 1)
        f0, f1 = shape(_DEC + "token2feature.read_0.sample.0.weight")[0], shape(_DEC + "token2feature.read_1.sample.weight")[1]
        d1 = shape(_DEC + "depth_regressor.0.weight")[1]
        hidden = shape(_DEC + "update_block.gru08.convz.weight")[0]
        factor = math.isqrt(shape(_DEC + "update_block.mask.2.weight")[0] // 9)
        return replace(
            base or cls(), patch_size=patch, embed_dim=embed_dim, depth=depth,
            num_heads=max(1, embed_dim // HEAD_WIDTH), mlp_hidden=shape(_ENC + "blocks.0.0.mlp.fc1.weight")[0],
            num_register_tokens=shape(_ENC + "register_tokens")[1], pretrain_img_size=grid * patch,
            feature_channels=(f0, f1, embed_dim, embed_dim), decoder_channels=(d1 // 2, d1, f1, embed_dim, embed_dim),
            hidden_channels=(hidden,) * 4, num_depth_bins=shape(_DEC + "depth_regressor.2.weight")[0],
            normal_head_width=shape(_DEC + "normal_predictor.0.weight")[0], upsample_factor=factor)


@dataclass
class Metric3DOutput:
    """Network outputs at the input resolution (canonical camera, focal 1000 px).

    prediction (B, 1, H, W) depth in canonical metres; confidence (B, 1, H, W) unbounded;
    prediction_normal (B, 4, H, W) unit normal (camera frame) + kappa; the per-iteration
    lists hold the same for every refinement iteration (last = final).
    """

    prediction: torch.Tensor
    confidence: torch.Tensor
    prediction_normal: torch.Tensor
    predictions_per_iter: list[torch.Tensor]
    confidence_per_iter: list[torch.Tensor]
    normal_per_iter: list[torch.Tensor]


# ----------------------------------------------------------------------------------------------
# Encoder


def interpolate_pos_embed(pos_embed: torch.Tensor, gh: int, gw: int, offset: float) -> torch.Tensor:
    """DINOv2's resize of a (1, 1 + g*g, E) table to (1, 1 + gh*gw, E).

    Bicubic with scale factors (gh + offset)/g, (gw + offset)/g (not an output size), no
    antialias: the source coordinate of output i is (i + 0.5)/factor - 0.5.
    """
    cls_pos, grid = pos_embed[:, :1], pos_embed[:, 1:]
    g = math.isqrt(grid.shape[1])
    e = grid.shape[-1]
    grid = grid.reshape(1, g, g, e).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((gh + offset) / g, (gw + offset) / g),
                         mode="bicubic", align_corners=False)
    if grid.shape[-2:] != (gh, gw):
        raise HaworInputError(f"Metric3D: position grid resized to {tuple(grid.shape[-2:])}, expected {(gh, gw)}.")
    return torch.cat([cls_pos, grid.permute(0, 2, 3, 1).reshape(1, gh * gw, e)], dim=1)


class DinoViTEncoder(nn.Module):
    """DINOv2 ViT with register tokens; returns the final normed tokens [cls, regs, patches]."""

    def __init__(self, cfg: Metric3DConfig):
        super().__init__()
        e, grid = cfg.embed_dim, cfg.pretrain_img_size // cfg.patch_size
        self.patch_size, self.offset = cfg.patch_size, cfg.interpolate_offset
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, e))
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, e))
        self.patch_embed = PatchEmbed(img_size=None, patch_size=cfg.patch_size, in_chans=3, embed_dim=e,
                                      strict_img_size=False)
        norm = partial(nn.LayerNorm, eps=cfg.vit_eps)
        # One "block chunk": the official names are blocks.0.<i>.
        self.blocks = nn.ModuleList([nn.Sequential(*[
            Block(e, cfg.num_heads, mlp_ratio=cfg.mlp_hidden / e, qkv_bias=True, init_values=1.0,
                  norm_layer=norm, act_layer=nn.GELU)
            for _ in range(cfg.depth)])])
        self.norm = norm(e)

    def forward(self, image: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """(B, 3, H, W) -> tokens (B, 1 + R + gh*gw, E)."""
        gh, gw = image.shape[-2] // self.patch_size, image.shape[-1] // self.patch_size
        x = self.patch_embed(image)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        pos = interpolate_pos_embed(self.pos_embed, gh, gw, self.offset)
        x = x + pos
        regs = self.register_tokens.expand(x.shape[0], -1, -1)
        x = torch.cat([x[:, :1], regs, x[:, 1:]], dim=1)
        x = self.norm(self.blocks[0](x))
        if trace is not None:
            trace["pos_embed_interp"] = pos
            trace["encoder_tokens"] = x
        return x


# ----------------------------------------------------------------------------------------------
# Decoder building blocks


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of a (B, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def clamp_two_relu(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """The official clamp relu(x - lo) + lo then hi - relu(hi - x) (1 ulp off torch.clamp)."""
    x = F.relu(x - lo) + lo
    return hi - F.relu(hi - x)


def norm_normalize(v: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W) -> unit xyz normal and kappa = elu(k) + 1 + 0.01."""
    xyz, kappa = v[:, :3], v[:, 3:4]
    xyz = xyz / (torch.linalg.vector_norm(xyz, dim=1, keepdim=True) + 1e-10)
    return torch.cat([xyz, F.elu(kappa) + 1.0 + 0.01], dim=1)


class TokenProjection(nn.Module):
    """GELU(Linear(patch token) + Linear(concatenated cls and register tokens))."""

    def __init__(self, dim: int, num_prefix: int):
        super().__init__()
        self.num_prefix = num_prefix
        self.project_patch = nn.Linear(dim, dim)
        self.project_learn = nn.Linear(num_prefix * dim, dim, bias=False)

    def forward(self, tokens: torch.Tensor, gh: int, gw: int) -> torch.Tensor:
        """(B, P + gh*gw, E) -> (B, E, gh, gw)."""
        prefix = tokens[:, : self.num_prefix].flatten(1)
        x = self.project_patch(tokens[:, self.num_prefix:]) + self.project_learn(prefix)[:, None]
        x = F.gelu(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, gh, gw)


class Readout(nn.Module):
    """One token readout, optionally resampled: identity, transposed conv x2, or nearest x3.5 + 1x1."""

    def __init__(self, dim: int, num_prefix: int, out_channels: int, mode: str):
        super().__init__()
        self.readoper = TokenProjection(dim, num_prefix)
        self.mode = mode
        if mode == "deconv":
            self.sample = nn.ConvTranspose2d(dim, out_channels, 2, stride=2)
        elif mode == "nearest":
            self.sample = nn.Sequential(conv1x1(dim, out_channels))

    def forward(self, tokens: torch.Tensor, gh: int, gw: int) -> torch.Tensor:
        x = self.readoper(tokens, gh, gw)
        if self.mode == "nearest":
            x = F.interpolate(x, scale_factor=3.5, mode="nearest")
        return x if self.mode == "identity" else self.sample(x)


class TokenToFeature(nn.Module):
    """Four readouts of the same tokens: 1/14 (x2), 1/7 and 1/4 of the input."""

    def __init__(self, cfg: Metric3DConfig):
        super().__init__()
        e, p, f = cfg.embed_dim, 1 + cfg.num_register_tokens, cfg.feature_channels
        self.read_3 = Readout(e, p, f[3], "identity")
        self.read_2 = Readout(e, p, f[2], "identity")
        self.read_1 = Readout(e, p, f[1], "deconv")
        self.read_0 = Readout(e, p, f[0], "nearest")


class ConvBlock(nn.Module):
    """relu(x) + conv2(relu(conv1(relu(x)))): the official unit ReLUs its input in place."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FuseBlock(nn.Module):
    """DPT fusion: trunk(x + branch(skip)), bilinear upsampling (align_corners), 1x1 out conv."""

    def __init__(self, cin: int, cout: int, with_branch: bool, upscale: float | None):
        super().__init__()
        self.way_trunk = ConvBlock(cin)
        if with_branch:
            self.way_branch = ConvBlock(cin)
        self.upscale = upscale
        self.out_conv = conv1x1(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.way_branch(skip)
        x = self.way_trunk(x)
        if self.upscale is not None:
            x = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class FusionDecoder(nn.Module):
    """1/14 -> 1/7 -> 1/4 fusion; output (B, d1 + 2, H/4, W/4) = features, depth conf, normal conf."""

    def __init__(self, cfg: Metric3DConfig):
        super().__init__()
        d = cfg.decoder_channels
        self.upconv_3 = FuseBlock(d[4], d[3], with_branch=False, upscale=None)
        self.upconv_2 = FuseBlock(d[3], d[2], with_branch=True, upscale=2.0)
        self.upconv_1 = FuseBlock(d[2], d[1] + 2, with_branch=True, upscale=1.75)

    def forward(self, r14a: torch.Tensor, r14b: torch.Tensor, r7: torch.Tensor) -> torch.Tensor:
        return self.upconv_1(self.upconv_2(self.upconv_3(r14a), r14b), r7)


class ResidualBlock(nn.Module):
    """relu(LN(conv)) twice, plus a LN(1x1 conv) shortcut; `norm3` is also `downsample.1`."""

    def __init__(self, cin: int, cout: int, eps: float):
        super().__init__()
        self.conv1 = conv3x3(cin, cout)
        self.conv2 = conv3x3(cout, cout)
        self.norm1 = LayerNorm2d(cout, eps=eps)
        self.norm2 = LayerNorm2d(cout, eps=eps)
        self.norm3 = LayerNorm2d(cout, eps=eps)
        self.downsample = nn.Sequential(conv1x1(cin, cout), self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        return F.relu(self.downsample(x) + y)


class ContextEncoder(nn.Module):
    """Per scale (1/4, 1/7, 1/14) a hidden and a context branch: ResidualBlock + 3x3 conv."""

    def __init__(self, cfg: Metric3DConfig):
        super().__init__()
        h, f, eps = cfg.hidden, cfg.feature_channels, cfg.decoder_eps

        def branches(cin):
            return nn.ModuleList([nn.Sequential(ResidualBlock(cin, h, eps), conv3x3(h, h)) for _ in range(2)])

        self.outputs04 = branches(f[0])
        self.outputs08 = branches(f[1])
        self.outputs16 = branches(f[2])

    def forward(self, x4, x7, x14) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Raw (hidden, context) per scale, fine to coarse."""
        return [(m[0](x), m[1](x)) for m, x in ((self.outputs04, x4), (self.outputs08, x7), (self.outputs16, x14))]


class ConvGRU(nn.Module):
    """Convolutional GRU whose gates get an extra per-pixel context bias (cz, cr, cq)."""

    def __init__(self, hidden: int, input_dim: int):
        super().__init__()
        self.convz = conv3x3(hidden + input_dim, hidden)
        self.convr = conv3x3(hidden + input_dim, hidden)
        self.convq = conv3x3(hidden + input_dim, hidden)

    def forward(self, h, context, *inputs):
        cz, cr, cq = context
        x = torch.cat(inputs, dim=1)
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx) + cz)
        r = torch.sigmoid(self.convr(hx) + cr)
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)) + cq)
        return (1 - z) * h + z * q


class FlowHead(nn.Module):
    """State update: 2 depth channels and 4 normal channels from the fine hidden state."""

    def __init__(self, hidden: int):
        super().__init__()
        self.conv1d, self.conv2d = conv3x3(hidden, hidden), conv3x3(hidden, 2)
        self.conv1n, self.conv2n = conv3x3(hidden, hidden), conv3x3(hidden, 4)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv2d(F.relu(self.conv1d(h))), self.conv2n(F.relu(self.conv1n(h)))], dim=1)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True)


def _resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=True)


class MultiLevelUpdate(nn.Module):
    """Slow-fast 3-level ConvGRU update (1/14 three times, 1/7 twice, 1/4 once per iteration)."""

    def __init__(self, cfg: Metric3DConfig, state_dim: int = 6):
        super().__init__()
        h, f = cfg.hidden, cfg.upsample_factor
        self.gru08 = ConvGRU(h, state_dim + h)
        self.gru16 = ConvGRU(h, 2 * h)
        self.gru32 = ConvGRU(h, h)
        self.flow_head = FlowHead(h)
        self.mask = nn.Sequential(conv3x3(h, h), nn.ReLU(), conv1x1(h, 9 * f * f))

    def forward(self, hidden: list[torch.Tensor], context: list, state: torch.Tensor):
        """hidden [h4, h7, h14], context [(cz, cr, cq)] fine to coarse -> (hidden, delta, mask)."""
        h4, h7, h14 = hidden
        for step in range(3):
            h14 = self.gru32(h14, context[2], _pool(h7))
            if step >= 1:
                h7 = self.gru16(h7, context[1], _resize_like(_pool(h4), h7), _resize_like(h14, h7))
        h4 = self.gru08(h4, context[0], state, _resize_like(h7, h4))
        delta = self.flow_head(h4)
        mask = 0.25 * self.mask(h4)
        return [h4, h7, h14], delta, mask


class RAFTDepthNormalDecoder(nn.Module):
    """DPT readout/fusion, 256-bin initial depth, normal head, iterative ConvGRU refinement."""

    def __init__(self, cfg: Metric3DConfig):
        super().__init__()
        self.cfg = cfg
        d1, w = cfg.decoder_channels[1], cfg.normal_head_width
        h = cfg.hidden
        self.token2feature = TokenToFeature(cfg)
        self.decoder_mono = FusionDecoder(cfg)
        self.depth_regressor = nn.Sequential(conv3x3(d1, cfg.num_depth_bins), nn.ReLU(),
                                             conv1x1(cfg.num_depth_bins, cfg.num_depth_bins))
        self.normal_predictor = nn.Sequential(conv3x3(d1, w), nn.ReLU(), conv1x1(w, w), nn.ReLU(),
                                              conv1x1(w, w), nn.ReLU(), conv1x1(w, 3))
        self.context_feature_encoder = ContextEncoder(cfg)
        self.context_zqr_convs = nn.ModuleList([conv3x3(h, 3 * h) for _ in range(3)])
        self.update_block = MultiLevelUpdate(cfg)

    def depth_bins(self, like: torch.Tensor) -> torch.Tensor:
        """(K,) log-spaced bin centres, in the working dtype and device."""
        lo, hi = self.cfg.depth_range
        return torch.linspace(math.log(lo), math.log(hi), self.cfg.num_depth_bins,
                              dtype=like.dtype, device=like.device).exp()

    def initial_state(self, fused: torch.Tensor, trace: dict | None) -> torch.Tensor:
        """(B, 6, H/4, W/4) = [normalised depth, depth conf, normal xyz, kappa]."""
        cfg, d1 = self.cfg, self.cfg.decoder_channels[1]
        feat = fused[:, :d1]
        prob = self.depth_regressor(feat).softmax(dim=1)
        depth = (prob * self.depth_bins(prob)[None, :, None, None]).sum(dim=1, keepdim=True)
        depth = clamp_two_relu(depth, *cfg.depth_range)
        depth_init = (depth - cfg.depth_range[1]) / cfg.regress_scale
        normal_init = norm_normalize(torch.cat([self.normal_predictor(feat), fused[:, d1 + 1:d1 + 2]], dim=1))
        state = torch.cat([depth_init, fused[:, d1:d1 + 1], normal_init], dim=1)
        if trace is not None:
            trace.update(depth_init_lowres=depth_init, normal_init_lowres=normal_init, init_state_lowres=state)
        return state

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int], trace: dict | None = None):
        cfg = self.cfg
        t2f = self.token2feature
        r14a, r14b = t2f.read_3(tokens, *grid), t2f.read_2(tokens, *grid)
        r7, r4 = t2f.read_1(tokens, *grid), t2f.read_0(tokens, *grid)
        fused = self.decoder_mono(r14a, r14b, r7)
        state = self.initial_state(fused, trace)

        # The official fusion ReLUs read_1/read_2 in place, so the context sees relu() of them.
        raw = self.context_feature_encoder(r4, F.relu(r7), F.relu(r14b))
        hidden = [torch.tanh(hid) for hid, _ in raw]
        context = [conv(F.relu(ctx)).chunk(3, dim=1) for conv, (_, ctx) in zip(self.context_zqr_convs, raw)]
        if trace is not None:
            trace.update(readout_1_14_a=r14a, readout_1_14_b=r14b, readout_1_7=r7, readout_1_4=r4,
                         fused_1_4=fused)
            for name, (hid, ctx) in zip(("1_4", "1_7", "1_14"), raw):
                trace[f"ctx_hidden_{name}"], trace[f"ctx_context_{name}"] = hid, ctx
            for key in ("gru_h_1_4_per_iter", "gru_h_1_7_per_iter", "gru_h_1_14_per_iter", "delta_per_iter"):
                trace[key] = []

        lo, hi = cfg.depth_range
        depths, confs, normals = [], [], []
        for _ in range(cfg.iters):
            hidden, delta, mask = self.update_block(hidden, context, state)
            state = state + delta
            up = convex_upsample(state, mask, cfg.upsample_factor)
            depths.append(clamp_two_relu(cfg.regress_scale * up[:, :1] + hi, lo, hi))
            confs.append(up[:, 1:2])
            normals.append(norm_normalize(up[:, 2:6]))
            if trace is not None:
                for key, value in zip(("gru_h_1_4_per_iter", "gru_h_1_7_per_iter", "gru_h_1_14_per_iter"), hidden):
                    trace[key].append(value)
                trace["delta_per_iter"].append(delta)
        return Metric3DOutput(depths[-1], confs[-1], normals[-1], depths, confs, normals)


class DepthModel(nn.Module):
    """Holds `encoder` and `decoder` (the official `depth_model.` level of the key names)."""

    def __init__(self, cfg: Metric3DConfig):
        super().__init__()
        self.encoder = DinoViTEncoder(cfg)
        self.decoder = RAFTDepthNormalDecoder(cfg)


class Metric3D(nn.Module):
    """Metric3D v2 ViT depth/normal network; state-dict keys as in the official checkpoint."""

    def __init__(self, cfg: Metric3DConfig | None = None):
        super().__init__()
        self.cfg = cfg or Metric3DConfig()
        self.depth_model = DepthModel(self.cfg)

    def forward(self, image: torch.Tensor, trace: dict | None = None) -> Metric3DOutput:
        """image (B, 3, H, W) normalised RGB, H and W multiples of 28 -> Metric3DOutput.

        trace: optional dict that receives the named intermediate tensors (for verification).
        """
        unit = 2 * self.cfg.patch_size
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[-2] % unit or image.shape[-1] % unit:
            raise HaworInputError(
                f"Metric3D input: expected a (B, 3, H, W) batch with H and W multiples of {unit}, got "
                f"{tuple(image.shape)}; use hawor.depth.preprocess.preprocess_image to prepare frames.")
        grid = (image.shape[-2] // self.cfg.patch_size, image.shape[-1] // self.cfg.patch_size)
        tokens = self.depth_model.encoder(image, trace)
        if trace is not None:
            b, _, hh, ww = image.shape
            trace["encoder_meta"] = torch.tensor([b, *grid, hh, ww, self.cfg.num_register_tokens])
        return self.depth_model.decoder(tokens, grid, trace)
