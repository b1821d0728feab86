"""DROID-SLAM network: feature/context encoders, ConvGRU update operator, graph aggregation.

Module and parameter names follow the official ``droid.pth`` after its loader's conversion
(``hawor.slam.droid.loading``), so ``DroidNet().load_state_dict`` takes the converted file strictly.
``DroidNetConfig()`` is the released network; ``DroidNetConfig.from_state_dict`` reads the widths a
converted state dict was saved with (tests build tiny ones).
Tensors carry DROID's batch convention: (B, N, C, h, w) per frame, (B, E, C, h, w) per edge.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hawor.models.upsampling import convex_upsample

# ImageNet statistics as the official float32 constants (float64 runs use their rounded values).
IMAGE_MEAN_RGB = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32)
IMAGE_STD_RGB = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32)


@dataclass(frozen=True)
class DroidNetConfig:
    """Sizes of DroidNet; the defaults are the released network (which has no size options)."""

    encoder_width: int = 32
    fnet_dim: int = 128
    cnet_dim: int = 256
    hidden_dim: int = 128
    corr_levels: int = 4
    corr_radius: int = 3
    upsample_factor: int = 8
    eta_scale: float = 0.01
    instance_norm_eps: float = 1e-5

    @property
    def corr_planes(self) -> int:
        return self.corr_levels * (2 * self.corr_radius + 1) ** 2

    @classmethod
    def from_fixture(cls, cfg: dict) -> "DroidNetConfig":
        """Build from a fixture's ``droid_config.json`` (its ``architecture_constants``)."""
        a = cfg.get("architecture_constants", {})
        out = cls(encoder_width=a.get("encoder_base_width", 32), fnet_dim=a.get("fnet_output_dim", 128),
                  cnet_dim=a.get("cnet_output_dim", 256), hidden_dim=a.get("gru_hidden", 128),
                  eta_scale=a.get("eta_scale", 0.01))
        if a.get("corr_planes", out.corr_planes) != out.corr_planes:
            raise ValueError(f"corr_planes {a['corr_planes']} != {out.corr_levels} levels x "
                             f"(2*{out.corr_radius}+1)^2 of the official network")
        return out

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "DroidNetConfig":
        """The widths of a converted state dict (``module.`` dropped); levels, radius and stride as released.

        Raises ValueError naming the key when a tensor is missing or the correlation input or
        upsampling mask does not fit 4 levels of radius 3 and stride 8.
        """
        def shape(key: str) -> tuple[int, ...]:
            if key not in state:
                raise ValueError(f"no '{key}' tensor: not a DROID-SLAM network state dict")
            return tuple(state[key].shape)

        out = cls(encoder_width=shape("fnet.conv1.weight")[0], fnet_dim=shape("fnet.conv2.weight")[0],
                  cnet_dim=shape("cnet.conv2.weight")[0], hidden_dim=shape("update.gru.w.weight")[0])
        if shape("update.corr_encoder.0.weight")[1] != out.corr_planes:
            raise ValueError(f"update.corr_encoder.0.weight reads {shape('update.corr_encoder.0.weight')[1]} "
                             f"correlation planes, DROID uses {out.corr_planes}")
        if shape("update.agg.upmask.0.weight")[0] != 9 * out.upsample_factor ** 2:
            raise ValueError(f"update.agg.upmask.0.weight has {shape('update.agg.upmask.0.weight')[0]} channels, "
                             f"DROID's stride-{out.upsample_factor} upsampling needs {9 * out.upsample_factor ** 2}")
        return out


class ResidualBlock(nn.Module):
    """relu(skip + relu(n2(conv2(relu(n1(conv1(x))))))), skip = n3(1x1 conv) when strided."""

    def __init__(self, cin: int, cout: int, stride: int, instance_norm: bool, eps: float):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        norm = (lambda: nn.InstanceNorm2d(cout, eps=eps)) if instance_norm else nn.Identity
        self.norm1, self.norm2 = norm(), norm()
        self.downsample = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(skip + y)


class BasicEncoder(nn.Module):
    """Stride-8 encoder: 7x7/2 stem, three stages of two residual blocks (w, 2w, 4w), 1x1 output conv."""

    def __init__(self, out_dim: int, instance_norm: bool, width: int = 32, eps: float = 1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3)
        self.norm1 = nn.InstanceNorm2d(width, eps=eps) if instance_norm else nn.Identity()
        widths = (width, 2 * width, 4 * width)
        cin = width
        for k, (cout, stride) in enumerate(zip(widths, (1, 2, 2)), start=1):
            blocks = [ResidualBlock(cin, cout, stride, instance_norm, eps),
                      ResidualBlock(cout, cout, 1, instance_norm, eps)]
            setattr(self, f"layer{k}", nn.Sequential(*blocks))
            cin = cout
        self.conv2 = nn.Conv2d(cin, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, 3, H, W) -> (B, N, out_dim, H/8, W/8)."""
        b, n = x.shape[:2]
        x = F.relu(self.norm1(self.conv1(x.flatten(0, 1))))
        x = self.conv2(self.layer3(self.layer2(self.layer1(x))))
        return x.unflatten(0, (b, n))


class ConvGRU(nn.Module):
    """ConvGRU with a global-context term g = mean_pixels(sigmoid(w h) * h) added to every gate."""

    def __init__(self, hidden: int, input_dim: int):
        super().__init__()
        self.convz = nn.Conv2d(hidden + input_dim, hidden, 3, padding=1)
        self.convr = nn.Conv2d(hidden + input_dim, hidden, 3, padding=1)
        self.convq = nn.Conv2d(hidden + input_dim, hidden, 3, padding=1)
        self.w = nn.Conv2d(hidden, hidden, 1)
        self.convz_glo = nn.Conv2d(hidden, hidden, 1)
        self.convr_glo = nn.Conv2d(hidden, hidden, 1)
        self.convq_glo = nn.Conv2d(hidden, hidden, 1)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        g = (torch.sigmoid(self.w(h)) * h).mean(dim=(2, 3), keepdim=True)
        hx = torch.cat([h, x], 1)
        z = torch.sigmoid(self.convz(hx) + self.convz_glo(g))
        r = torch.sigmoid(self.convr(hx) + self.convr_glo(g))
        q = torch.tanh(self.convq(torch.cat([r * h, x], 1)) + self.convq_glo(g))
        return (1 - z) * h + z * q


def _head(hidden: int, out: int, final: nn.Module | None = None) -> nn.Sequential:
    # Identity fills the slots of the official gradient-clip modules so the parameter names stay .0/.2.
    layers = [nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(hidden, out, 3, padding=1),
              nn.Identity()]
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


def scatter_mean(x: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of x (E, ...) over rows sharing index (E,) -> (size, ...)."""
    out = x.new_zeros(size, *x.shape[1:]).index_add_(0, index, x)
    count = torch.bincount(index, minlength=size).to(x.dtype)
    return out / count.view(-1, *([1] * (x.dim() - 1)))


class GraphAgg(nn.Module):
    """Pools edge hidden states per source frame; predicts damping eta and the convex upsampling mask."""

    def __init__(self, hidden: int, upmask_channels: int, eta_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.eta = nn.Sequential(nn.Conv2d(hidden, 1, 3, padding=1), nn.Identity(), nn.Softplus())
        self.upmask = nn.Sequential(nn.Conv2d(hidden, upmask_channels, 1))
        self.eta_scale = eta_scale

    def forward(self, net: torch.Tensor, ii: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """net (B, E, C, h, w), ii (E,) -> eta (B, U, h, w), upmask (B, U, 576, h, w), U = len(unique(ii))."""
        b, e = net.shape[:2]
        _, group = torch.unique(ii, return_inverse=True)
        u = int(group.max()) + 1
        x = F.relu(self.conv1(net.flatten(0, 1))).unflatten(0, (b, e))
        x = scatter_mean(x.transpose(0, 1), group, u).transpose(0, 1).flatten(0, 1)
        x = F.relu(self.conv2(x))
        eta = self.eta_scale * self.eta(x)
        upmask = self.upmask(x)
        return eta.unflatten(0, (b, u))[:, :, 0], upmask.unflatten(0, (b, u))


class UpdateModule(nn.Module):
    """One DROID update step per edge: encoders -> ConvGRU -> flow revision, confidence (and GraphAgg)."""

    def __init__(self, cfg: DroidNetConfig = DroidNetConfig()):
        super().__init__()
        hid = cfg.hidden_dim
        self.corr_encoder = nn.Sequential(nn.Conv2d(cfg.corr_planes, hid, 1), nn.ReLU(inplace=True),
                                          nn.Conv2d(hid, hid, 3, padding=1), nn.ReLU(inplace=True))
        self.flow_encoder = nn.Sequential(nn.Conv2d(4, hid, 7, padding=3), nn.ReLU(inplace=True),
                                          nn.Conv2d(hid, hid // 2, 3, padding=1), nn.ReLU(inplace=True))
        self.weight = _head(hid, 2, nn.Sigmoid())
        self.delta = _head(hid, 2)
        self.gru = ConvGRU(hid, hid + hid + hid // 2)
        self.agg = GraphAgg(hid, cfg.upsample_factor ** 2 * 9, cfg.eta_scale)

    def forward(self, net, inp, corr, motion, ii=None, jj=None):
        """net, inp (B, E, 128, h, w); corr (B, E, 196, h, w); motion (B, E, 4, h, w).

        Returns new net (B, E, 128, h, w), delta and weight (B, E, h, w, 2) and, when ii is given,
        eta (B, U, h, w) and upmask (B, U, 576, h, w) per sorted unique source frame.
        """
        b, e = net.shape[:2]
        flat = [t.flatten(0, 1) for t in (net, inp, corr, motion)]
        net, inp, corr, motion = flat
        x = torch.cat([inp, self.corr_encoder(corr), self.flow_encoder(motion)], 1)
        net = self.gru(net, x)
        delta = self.delta(net).unflatten(0, (b, e)).permute(0, 1, 3, 4, 2)
        weight = self.weight(net).unflatten(0, (b, e)).permute(0, 1, 3, 4, 2)
        net = net.unflatten(0, (b, e))
        if ii is None:
            return net, delta, weight
        eta, upmask = self.agg(net, ii)
        return net, delta, weight, eta, upmask


def upsample_disp(disp: torch.Tensor, mask: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """Convex upsampling of keyframe disparities: disp (B, U, h, w), mask (B, U, 9*f*f, h, w) -> (B, U, f*h, f*w)."""
    b, u, h, w = disp.shape
    up = convex_upsample(disp.reshape(b * u, 1, h, w), mask.reshape(b * u, -1, h, w), factor)
    return up.reshape(b, u, factor * h, factor * w)


class DroidNet(nn.Module):
    """DROID's learned parts: ``fnet`` (instance norm), ``cnet`` (no norm), ``update``."""

    def __init__(self, cfg: DroidNetConfig = DroidNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.fnet = BasicEncoder(cfg.fnet_dim, True, cfg.encoder_width, cfg.instance_norm_eps)
        self.cnet = BasicEncoder(cfg.cnet_dim, False, cfg.encoder_width, cfg.instance_norm_eps)
        self.update = UpdateModule(cfg)

    @staticmethod
    def normalize(images_bgr: torch.Tensor) -> torch.Tensor:
        """BGR 0..255 (..., 3, H, W) -> RGB ImageNet-normalised, in images_bgr's float dtype."""
        dt = images_bgr.dtype if images_bgr.is_floating_point() else torch.float32
        x = images_bgr.to(dt).flip(-3) / 255.0
        mean = IMAGE_MEAN_RGB.to(x.device, dt).view(3, 1, 1)
        std = IMAGE_STD_RGB.to(x.device, dt).view(3, 1, 1)
        return (x - mean) / std

    def context(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images (B, N, 3, H, W) -> (net = tanh, inp = relu), each (B, N, 128, h, w)."""
        c = self.cnet(x)
        half = c.shape[2] // 2
        return torch.tanh(c[:, :, :half]), F.relu(c[:, :, half:])

    def extract_features(self, images_bgr: torch.Tensor):
        """images (B, N, 3, H, W) BGR 0..255 -> fmaps (B, N, 128, h, w), net, inp (B, N, 128, h, w)."""
        x = self.normalize(images_bgr)
        net, inp = self.context(x)
        return self.fnet(x), net, inp
