"""Training configs: the official model_config.yaml and tiny.yaml steer the run; initialisation and freezing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hawor.configs import ConfigNode, load_model_config, tiny_config_path
from hawor.errors import HaworInputError
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor
from hawor.training.model import build_model, hawor_config_from_cfg, hawor_config_to_plain

OFFICIAL = Path(__file__).parent / "data" / "model_config_bindir0.yaml"


def test_official_model_config_is_a_training_config():
    cfg = load_model_config(OFFICIAL)
    assert hawor_config_from_cfg(cfg) == HaworConfig.full()
    assert cfg.GENERAL.TOTAL_STEPS == 250000 and cfg.TRAIN.BATCH_SIZE == 8 and cfg.TRAIN.LR == 1e-5
    assert cfg.LOSS_WEIGHTS.KEYPOINTS_3D == 0.05 and cfg.DATASETS.CONFIG.ROT_AUG_RATE == 0.6
    assert cfg.TRAIN.GRAD_CLIP_VAL == 0.0  # absent in the file: the default, no clipping


def test_tiny_config_and_sizes_round_trip():
    cfg = load_model_config(tiny_config_path())
    net = hawor_config_from_cfg(cfg)
    assert net == HaworConfig.tiny()
    assert HaworConfig.from_fixture_json(hawor_config_to_plain(net)) == net
    assert HaworConfig.from_fixture_json(hawor_config_to_plain(HaworConfig.full())) == HaworConfig.full()
    cfg.MODEL.ARCH = "huge"
    with pytest.raises(HaworInputError, match="MODEL.ARCH 'huge'"):
        hawor_config_from_cfg(cfg)


def test_backbone_and_full_initialisation(tmp_path):
    torch.manual_seed(1)
    source = HaworRegressor(HaworConfig.tiny())
    ckpt = tmp_path / "source.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}, ckpt)
    cfg = load_model_config(tiny_config_path())
    cfg.MODEL.BACKBONE = ConfigNode({"TYPE": "vit", "PRETRAINED_WEIGHTS": str(ckpt), "FREEZE": None})
    model = build_model(cfg)
    torch.testing.assert_close(model.backbone.state_dict(), source.backbone.state_dict())
    assert not any(p.requires_grad for p in model.backbone.parameters())  # frozen, as the released code
    assert not torch.equal(model.mano_head.decpose.weight, source.mano_head.decpose.weight)
    cfg.MODEL.BACKBONE.PRETRAINED_WEIGHTS = ""
    cfg.MODEL.LOAD_WEIGHTS = str(ckpt)
    model = build_model(cfg)
    torch.testing.assert_close(model.state_dict(), source.state_dict())
    assert all(p.requires_grad for p in model.parameters())
