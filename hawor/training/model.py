"""The network a training config describes, its initialisation and which parameters train.

MODEL.ARCH "full" sizes the regressor from MODEL.ST_*/MOTION_* over the released sizes (as the
official loader); "tiny" is :meth:`HaworConfig.tiny`. MODEL.LOAD_WEIGHTS loads a full checkpoint
(fine-tuning; strict over every key but ``mano.*``); MODEL.BACKBONE.PRETRAINED_WEIGHTS loads only the
``backbone.*`` keys of a checkpoint (e.g. hawor.ckpt). MODEL.BACKBONE.FREEZE keeps the ViT fixed; when
the key is absent (null) the backbone is frozen exactly when pretrained backbone weights are given, as the
released code does.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from torch import nn

from hawor.configs import ConfigNode, resolve_data_path
from hawor.errors import HaworInputError
from hawor.models.checkpoint import extract_state_dict, load_checkpoint, load_state_dict_strict, strip_prefixes
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor

log = logging.getLogger(__name__)


def hawor_config_from_cfg(cfg: ConfigNode) -> HaworConfig:
    """Network sizes of a training config (MODEL.ARCH, see :meth:`HaworConfig.from_model_config`)."""
    try:
        return HaworConfig.from_model_config(cfg)
    except ValueError as exc:
        raise HaworInputError(f"training config: {exc}") from exc


def hawor_config_to_plain(net: HaworConfig) -> dict:
    """The sizes as plain data in the layout :meth:`HaworConfig.from_fixture_json` reads (kept in checkpoints)."""
    def temporal(t):
        return None if t is None else dataclasses.asdict(t)

    vit = dataclasses.asdict(net.vit)
    vit["img_size"] = list(net.vit.img_size)
    vit["patch_conv_padding"] = vit.pop("patch_padding")
    plain = {"vit": vit, "st_module": temporal(net.st), "motion_module": temporal(net.motion),
             "mano_head": dataclasses.asdict(net.head), "temporal_window": net.window,
             "input_image": {"backbone_input_hw": [net.crop_size, net.vit.img_size[1]]}}
    if HaworConfig.from_fixture_json(plain) != net:
        raise AssertionError("hawor_config_to_plain does not round-trip")  # a new HaworConfig field
    return plain


def _mean_params(cfg: ConfigNode) -> dict | None:
    value = cfg.get_path("MANO.MEAN_PARAMS")
    if not value:
        return None
    path = resolve_data_path(value)
    if not path.is_file():
        log.info("MANO.MEAN_PARAMS %s not found: the head starts from identity pose, zero shape, cam (4, 0, 0)", path)
        return None
    with np.load(path, allow_pickle=False) as data:
        return {"pose": data["pose"], "shape": data["shape"], "cam": data["cam"]}


def _init_decoders(model: HaworRegressor) -> None:
    # Small read-out weights so a fresh network starts at the mean parameters.
    for layer in (model.mano_head.decpose, model.mano_head.decshape, model.mano_head.deccam):
        nn.init.xavier_uniform_(layer.weight, gain=0.01)
        nn.init.zeros_(layer.bias)


def _checkpoint_state(path: str) -> dict[str, torch.Tensor]:
    file = resolve_data_path(path)
    state = strip_prefixes(extract_state_dict(load_checkpoint(file), source=str(file)))
    return {k: v for k, v in state.items() if not k.startswith("mano.")}


def build_model(cfg: ConfigNode) -> HaworRegressor:
    """The regressor of ``cfg``, initialised as the config says; parameters of a frozen backbone do not train."""
    net = hawor_config_from_cfg(cfg)
    model = HaworRegressor(net, _mean_params(cfg))
    _init_decoders(model)
    full = cfg.get_path("MODEL.LOAD_WEIGHTS")
    backbone = cfg.get_path("MODEL.BACKBONE.PRETRAINED_WEIGHTS")
    if full:
        load_state_dict_strict(model, _checkpoint_state(full), source=f"MODEL.LOAD_WEIGHTS {full}")
        log.info("initialised every weight from %s", full)
    elif backbone:
        state = {k[len("backbone."):]: v for k, v in _checkpoint_state(backbone).items() if k.startswith("backbone.")}
        if not state:
            raise HaworInputError(f"MODEL.BACKBONE.PRETRAINED_WEIGHTS {backbone}: holds no backbone.* weights.")
        load_state_dict_strict(model.backbone, state, source=f"MODEL.BACKBONE.PRETRAINED_WEIGHTS {backbone}")
        log.info("initialised the backbone from %s", backbone)
    freeze = cfg.get_path("MODEL.BACKBONE.FREEZE")
    if freeze if freeze is not None else bool(backbone):
        model.backbone.requires_grad_(False)
        log.info("backbone frozen (MODEL.BACKBONE.FREEZE=%s)", freeze)
    return model
