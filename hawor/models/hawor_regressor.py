"""The HaWoR camera-space regressor: ViT encoder -> IAM (space-time attention) -> MANO head -> PAM.

One call regresses whole windows of ``T`` frames of one hand (the released model uses T = 16):

    images (B, T, 3, H, W) ─ViT─► features ─IAM (per token, over T)─► features ─head─► 6D pose, betas, cam
                                                                      6D pose + box info ─PAM (over T)─► 6D pose

Every size comes from :class:`HaworConfig`; the same classes build the released ViT-H model and the small
models of the compatibility fixtures. The MANO layer is not part of this module.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from hawor.geometry import cliff_bbox_info, crop_cam_to_full_transl, rot6d_to_matrix
from hawor.models.mano_head import HeadConfig, ManoHead
from hawor.models.temporal import TemporalAttention, TemporalConfig
from hawor.models.vit import ViT, ViTConfig

BBOX_INFO_DIM = 3


def _motion_defaults() -> TemporalConfig:
    return TemporalConfig(in_dim=99, out_dim=96, hdim=384, nlayer=6, residual=False)


@dataclass
class HaworConfig:
    """Every size of the regressor. ``HaworConfig()`` / :meth:`full` is the released model.

    ``st`` / ``motion`` are None when the IAM / PAM module is switched off (MODEL.ST_MODULE /
    MODEL.MOTION_MODULE false). ``crop_size`` is the side of the square hand crop; the encoder sees
    its central ``vit.img_size[1]`` columns.
    """

    vit: ViTConfig = field(default_factory=ViTConfig)
    st: TemporalConfig | None = field(default_factory=TemporalConfig)
    motion: TemporalConfig | None = field(default_factory=_motion_defaults)
    head: HeadConfig = field(default_factory=HeadConfig)
    window: int = 16
    crop_size: int = 256

    @classmethod
    def full(cls) -> "HaworConfig":
        """The released model (ViT-H/16, IAM 512x6, PAM 384x6, head 1024x6)."""
        return cls()

    @classmethod
    def tiny(cls) -> "HaworConfig":
        """A few-thousand-parameter model with the released structure (16-frame window), for tests."""
        return cls(
            vit=ViTConfig(img_size=(32, 24), patch_size=8, patch_padding=0, embed_dim=16, depth=1, num_heads=2,
                          mlp_hidden=32),
            st=TemporalConfig(in_dim=19, out_dim=16, hdim=8, nlayer=1, dim_feedforward=16),
            motion=TemporalConfig(in_dim=99, out_dim=96, hdim=8, nlayer=1, dim_feedforward=16, residual=False),
            head=HeadConfig(dim=16, depth=1, heads=2, dim_head=8, mlp_dim=16, context_dim=16),
            crop_size=32,
        )

    @property
    def num_joints(self) -> int:
        return self.head.npose // 6

    @classmethod
    def from_fixture_json(cls, cfg: dict) -> "HaworConfig":
        """Build from a compat fixture's ``hawor_config.json`` (keys ``vit``, ``st_module``, ``motion_module``,
        ``mano_head``, ``temporal_window``, ``input_image``)."""
        v = cfg["vit"]
        vit = ViTConfig(
            img_size=tuple(v["img_size"]), patch_size=v["patch_size"], patch_padding=v["patch_conv_padding"],
            in_chans=v.get("in_chans", 3), embed_dim=v["embed_dim"], depth=v["depth"], num_heads=v["num_heads"],
            mlp_hidden=v.get("mlp_hidden", int(v["embed_dim"] * v.get("mlp_ratio", 4))),
            qkv_bias=v.get("qkv_bias", True), layernorm_eps=v.get("layernorm_eps", 1e-6),
        )

        def temporal(t: dict | None) -> TemporalConfig | None:
            if t is None:
                return None
            return TemporalConfig(
                in_dim=t["in_dim"], out_dim=t["out_dim"], hdim=t["hdim"], nlayer=t["nlayer"],
                nhead=t.get("nhead", 4), dim_feedforward=t.get("dim_feedforward", 1024),
                residual=t["residual"], pe_max_len=t.get("pe_max_len", 100),
                layer_norm_eps=t.get("layer_norm_eps", 1e-5),
            )

        h = cfg["mano_head"]
        head = HeadConfig(**{f.name: h[f.name] for f in fields(HeadConfig) if f.name in h})
        image = cfg.get("input_image", {})
        crop_h = image.get("backbone_input_hw", vit.img_size)[0]
        return cls(vit=vit, st=temporal(cfg.get("st_module")), motion=temporal(cfg.get("motion_module")),
                   head=head, window=cfg.get("temporal_window", 16), crop_size=crop_h)

    @classmethod
    def from_model_config(cls, model_cfg, base: "HaworConfig | None" = None) -> "HaworConfig":
        """Build from the official ``model_config.yaml`` values (a nested mapping or attribute config).

        Only the keys the official code reads change sizes: MODEL.IMAGE_SIZE, MODEL.ST_MODULE, ST_HDIM,
        ST_NLAYER, MODEL.MOTION_MODULE, MOTION_HDIM, MOTION_NLAYER; everything else is fixed in the network
        and taken from ``base`` (then MODEL.IMAGE_SIZE is not checked). Without ``base``: the released sizes, or
        :meth:`tiny` when MODEL.ARCH (this project's key, absent from official files) is "tiny"; the tiny sizes
        ignore the *_HDIM/*_NLAYER keys.
        """
        model = _lookup(model_cfg, "MODEL", {})
        arch = str(_lookup(model, "ARCH", "full")).lower()
        if arch not in ("full", "tiny"):
            raise ValueError(f"MODEL.ARCH {arch!r}: use 'full' (the released sizes) or 'tiny'.")
        tiny = base is None and arch == "tiny"
        cfg = copy.deepcopy(base) if base is not None else (cls.tiny() if tiny else cls())
        image_size = int(_lookup(model, "IMAGE_SIZE", cfg.crop_size))
        if base is None and image_size != cfg.crop_size:
            raise ValueError(f"MODEL.IMAGE_SIZE is {image_size}; this network works with {cfg.crop_size}-pixel crops "
                             "(its ViT token grid is fixed). Fix the model_config.yaml next to the checkpoint.")
        for key, part in (("ST", "st"), ("MOTION", "motion")):
            module = getattr(cfg, part)
            if not _lookup(model, f"{key}_MODULE", True):
                setattr(cfg, part, None)
            elif not tiny:
                module.hdim = int(_lookup(model, f"{key}_HDIM", module.hdim))
                module.nlayer = int(_lookup(model, f"{key}_NLAYER", module.nlayer))
        return cfg

    def validate(self) -> None:
        """Raise ValueError when the parts do not fit together."""
        d, npose = self.vit.embed_dim, self.head.npose
        checks = [
            (npose % 6 == 0, f"head.npose {npose} is not a multiple of 6"),
            (self.head.context_dim == d, f"head.context_dim {self.head.context_dim} != vit.embed_dim {d}"),
        ]
        if self.st is not None:
            checks += [(self.st.in_dim == d + BBOX_INFO_DIM, f"st.in_dim {self.st.in_dim} != {d + BBOX_INFO_DIM}"),
                       (self.st.out_dim == d, f"st.out_dim {self.st.out_dim} != vit.embed_dim {d}"),
                       (self.window <= self.st.pe_max_len, "window longer than the IAM position table")]
        if self.motion is not None:
            checks += [(self.motion.in_dim == npose + BBOX_INFO_DIM,
                        f"motion.in_dim {self.motion.in_dim} != {npose + BBOX_INFO_DIM}"),
                       (self.motion.out_dim == npose, f"motion.out_dim {self.motion.out_dim} != {npose}"),
                       (self.window <= self.motion.pe_max_len, "window longer than the PAM position table")]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"inconsistent HaworConfig: {message}")


def _lookup(cfg, key: str, default):
    """cfg[key] or cfg.key for dicts, yacs CfgNodes, omegaconf configs and namespaces; default if absent."""
    try:
        return cfg[key]
    except (KeyError, TypeError, AttributeError):
        return getattr(cfg, key, default)


@dataclass
class HaworOutput:
    """Per-frame outputs of one forward; leading dims (B, T). Rotations are right-hand convention.

    Attributes:
        bbox_info: (B, T, 3) CLIFF box features (computed with the mirrored centre for mirrored crops).
        backbone_feat: (B, T, D, Hp, Wp) ViT features.   st_feat: the same after IAM.
        head_pose6d: (B, T, 6J) head pose before PAM.    pred_rotmat_0: (B, T, J, 3, 3) its matrices.
        pred_pose: (B, T, 6J) pose after PAM.            pred_rotmat: (B, T, J, 3, 3) its matrices.
        pred_shape: (B, T, 10) betas.
        pred_cam: (B, T, 3) weak-perspective crop camera (s, tx, ty), un-mirrored.
        trans_full: (B, T, 3) MANO transl, metres, camera frame of the full image, un-mirrored.
    """

    bbox_info: torch.Tensor
    backbone_feat: torch.Tensor
    st_feat: torch.Tensor
    head_pose6d: torch.Tensor
    pred_rotmat_0: torch.Tensor
    pred_pose: torch.Tensor
    pred_rotmat: torch.Tensor
    pred_shape: torch.Tensor
    pred_cam: torch.Tensor
    trans_full: torch.Tensor

    @property
    def global_orient(self) -> torch.Tensor:
        """(B, T, 3, 3) root rotation, camera frame."""
        return self.pred_rotmat[:, :, 0]

    @property
    def hand_pose(self) -> torch.Tensor:
        """(B, T, J-1, 3, 3) finger joint rotations, MANO order."""
        return self.pred_rotmat[:, :, 1:]


class HaworRegressor(nn.Module):
    """HaWoR regressor; state_dict keys match the official ``hawor.ckpt`` (without its ``mano.*`` buffers)."""

    def __init__(self, cfg: HaworConfig | None = None, mean_params: dict | None = None):
        super().__init__()
        cfg = cfg or HaworConfig.full()
        cfg.validate()
        self.cfg = cfg
        self.register_buffer("initialized", torch.tensor(False))
        self.backbone = ViT(cfg.vit)
        self.st_module = TemporalAttention(cfg.st) if cfg.st is not None else None
        self.motion_module = TemporalAttention(cfg.motion) if cfg.motion is not None else None
        self.mano_head = ManoHead(cfg.head, mean_params)

    def forward(self, images: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, focal: torch.Tensor,
                img_center: torch.Tensor, do_flip: torch.Tensor | None = None) -> HaworOutput:
        """Regress windows of one hand.

        Args:
            images: (B, T, 3, H, W) normalised crops, as the encoder sees them (central columns only).
            center: (B, T, 2) crop centre in the (mirrored, when ``do_flip``) full image, pixels.
            scale: (B, T) dilated box side / 200.
            focal: (B, T) focal length, pixels.   img_center: (B, T, 2) principal point, pixels.
            do_flip: (B, T) bool, True where the crop was cut from the mirrored image (left hands).
        """
        b, t = images.shape[:2]
        bbox_info = cliff_bbox_info(center, scale, focal, img_center)
        feat = self.backbone(images.flatten(0, 1))
        _, d, gh, gw = feat.shape
        backbone_feat = feat.unflatten(0, (b, t))
        st_feat = backbone_feat
        if self.st_module is not None:
            # One sequence over T per (window, token): (B, T, D, Hp, Wp) -> (B*Hp*Wp, T, D + 3).
            seq = backbone_feat.permute(0, 3, 4, 1, 2).reshape(b * gh * gw, t, d)
            info = bbox_info[:, None, None].expand(b, gh, gw, t, BBOX_INFO_DIM).reshape(b * gh * gw, t, -1)
            seq = self.st_module(torch.cat((seq, info.to(seq.dtype)), dim=-1))
            st_feat = seq.reshape(b, gh, gw, t, d).permute(0, 3, 4, 1, 2)
        pose6d, betas, cam = self.mano_head(st_feat.flatten(0, 1))
        head_pose6d = pose6d.unflatten(0, (b, t))
        pred_pose = head_pose6d
        if self.motion_module is not None:
            pred_pose = self.motion_module(torch.cat((head_pose6d, bbox_info.to(head_pose6d.dtype)), dim=-1))
        cam = cam.unflatten(0, (b, t))
        if do_flip is not None:
            # Mirrored crops: the camera's x offset and the centre go back to the original image.
            flip = do_flip.to(torch.bool)
            cam = torch.cat((cam[..., :1], torch.where(flip, -cam[..., 1], cam[..., 1])[..., None], cam[..., 2:]), -1)
            center_x = torch.where(flip, 2 * img_center[..., 0] - center[..., 0] - 1, center[..., 0])
            center = torch.stack((center_x, center[..., 1]), dim=-1)
        joints = self.cfg.num_joints
        return HaworOutput(
            bbox_info=bbox_info,
            backbone_feat=backbone_feat,
            st_feat=st_feat,
            head_pose6d=head_pose6d,
            pred_rotmat_0=rot6d_to_matrix(head_pose6d.unflatten(-1, (joints, 6))),
            pred_pose=pred_pose,
            pred_rotmat=rot6d_to_matrix(pred_pose.unflatten(-1, (joints, 6))),
            pred_shape=betas.unflatten(0, (b, t)),
            pred_cam=cam,
            trans_full=crop_cam_to_full_transl(cam.to(center.dtype), center, scale, focal, img_center),
        )
