"""HaWoR regressor network: released layout (meta device), sizes from configs, strict checkpoint loading."""
import json
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from hawor.errors import HaworInputError
from hawor.estimation.regressor import load_regressor
from hawor.models.checkpoint import CheckpointMismatchError
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor

from conftest import COMPAT_DIR

MANIFEST = COMPAT_DIR / "hawor_state_dict.json"
TINY_YAML = {"MODEL": {"IMAGE_SIZE": 256, "BACKBONE": {"TYPE": "vit"}, "ST_MODULE": True, "ST_HDIM": 8,
                       "ST_NLAYER": 2, "MOTION_MODULE": True, "MOTION_HDIM": 12, "MOTION_NLAYER": 1}}


@pytest.mark.skipif(not MANIFEST.is_file(), reason="shared compat manifest not present")
def test_full_size_state_dict_matches_official_manifest():
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        model = HaworRegressor(HaworConfig.full())
    state = model.state_dict()
    assert list(state) == list(manifest["tensors"])  # same keys, same order
    for key, spec in manifest["tensors"].items():
        assert list(state[key].shape) == spec["shape"], key
        assert str(state[key].dtype).removeprefix("torch.") == spec["dtype"], key
    for name in ("backbone", "st_module", "motion_module", "mano_head"):
        counted = sum(p.numel() for p in getattr(model, name).parameters())
        assert counted == manifest["parameter_count"][name], name
    assert sum(p.numel() for p in model.parameters()) == 692_700_365
    assert sum(b.numel() for b in model.buffers()) == manifest["non_mano_buffer_elements"]
    assert model.backbone.cfg.token_grid == (16, 12)


def test_model_config_sets_temporal_sizes_and_switches():
    cfg = HaworConfig.from_model_config({"MODEL": {"IMAGE_SIZE": 256, "ST_HDIM": 256, "ST_NLAYER": 3,
                                                   "MOTION_MODULE": False}})
    assert (cfg.st.hdim, cfg.st.nlayer, cfg.motion) == (256, 3, None)
    assert cfg.vit.embed_dim == 1280 and cfg.head.dim == 1024
    with pytest.raises(ValueError, match="IMAGE_SIZE"):
        HaworConfig.from_model_config({"MODEL": {"IMAGE_SIZE": 224}})
    with pytest.raises(ValueError, match="st.in_dim"):
        bad = HaworConfig.tiny()
        bad.st.in_dim = 20
        HaworRegressor(bad)


def test_forward_shapes_and_module_switches():
    torch.manual_seed(0)
    cfg = HaworConfig.tiny()
    cfg.motion = None
    model = HaworRegressor(cfg).eval()
    b, t = 2, cfg.window
    images = torch.randn(b, t, 3, *cfg.vit.img_size)
    center = torch.rand(b, t, 2) * 300
    out = model(images, center, torch.full((b, t), 0.5), torch.full((b, t), 600.0), torch.full((b, t, 2), 200.0))
    assert out.pred_rotmat.shape == (b, t, 16, 3, 3) and out.trans_full.shape == (b, t, 3)
    assert out.global_orient.shape == (b, t, 3, 3) and out.hand_pose.shape == (b, t, 15, 3, 3)
    assert torch.equal(out.pred_pose, out.head_pose6d)  # no PAM: the head's pose is the output
    rotations = out.pred_rotmat.reshape(-1, 3, 3)
    eye = torch.eye(3).expand_as(rotations)
    assert torch.allclose(rotations @ rotations.transpose(1, 2), eye, atol=1e-5)


def test_translation_formula_reprojects_to_the_box_centre():
    """t = (tx + 2(cx-px)/(bs), ty + 2(cy-py)/(bs), 2f/(bs)): the hand origin projects to the crop
    centre moved by the crop camera's offset, and its depth makes a 2/s-unit object b pixels wide."""
    torch.manual_seed(1)
    cfg = HaworConfig.tiny()
    model = HaworRegressor(cfg).double().eval()
    b, t = 1, cfg.window
    center = torch.rand(b, t, 2, dtype=torch.float64) * 400 + 100
    scale = torch.rand(b, t, dtype=torch.float64) + 0.3
    focal = torch.full((b, t), 700.0, dtype=torch.float64)
    img_center = torch.tensor([320.0, 240.0], dtype=torch.float64).expand(b, t, 2)
    with torch.no_grad():
        out = model(torch.randn(b, t, 3, *cfg.vit.img_size, dtype=torch.float64), center, scale, focal, img_center)
    s, tx, ty = out.pred_cam.unbind(-1)
    transl = out.trans_full
    side = 200 * scale
    # Project the point (-tx, -ty, 0) + transl, i.e. the crop camera's principal point, to pixels.
    point = transl - torch.stack((tx, ty, torch.zeros_like(tx)), -1)
    pixels = focal[..., None] * point[..., :2] / point[..., 2:] + img_center
    assert torch.allclose(pixels, center, atol=1e-9)
    assert torch.allclose(transl[..., 2], 2 * focal / (side * s))
    # A segment of length 2/s at that depth spans the box side b in pixels.
    assert torch.allclose(focal * (2 / s) / transl[..., 2], side)


def _fake_yacs():
    """A class importable as yacs.config.CfgNode while the checkpoint is written (yacs is not installed)."""
    saved = {name: sys.modules.get(name) for name in ("yacs", "yacs.config")}
    sys.modules["yacs"] = types.ModuleType("yacs")
    sys.modules["yacs.config"] = module = types.ModuleType("yacs.config")
    module.CfgNode = type("CfgNode", (dict,), {"__module__": "yacs.config"})
    return module.CfgNode, saved


def _write_lightning_checkpoint(root: Path, state: dict, config: dict) -> Path:
    """weights/hawor layout: checkpoints/hawor.ckpt (Lightning dict, config object inside) + model_config.yaml."""
    CfgNode, saved = _fake_yacs()
    try:
        ckpt = root / "checkpoints" / "hawor.ckpt"
        ckpt.parent.mkdir(parents=True)
        torch.save({"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.1.0",
                    "state_dict": state, "hyper_parameters": {"cfg": CfgNode(config)},
                    "optimizer_states": [{"state": {}}]}, ckpt)
    finally:
        for name, module in saved.items():
            sys.modules.pop(name) if module is None else sys.modules.__setitem__(name, module)
    (root / "model_config.yaml").write_text(yaml.safe_dump(config))
    return ckpt


def _tiny_trained(seed=0) -> HaworRegressor:
    torch.manual_seed(seed)
    model = HaworRegressor(HaworConfig.from_model_config(TINY_YAML, base=HaworConfig.tiny()))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


def test_strict_load_of_lightning_checkpoint(tmp_path):
    model = _tiny_trained()
    mano = {"mano.v_template": torch.zeros(778, 3), "mano.J_regressor": torch.zeros(16, 778),
            "mano.hand_components": torch.zeros(6, 45)}
    ckpt = _write_lightning_checkpoint(tmp_path, {**model.state_dict(), **mano}, TINY_YAML)
    loaded = load_regressor(ckpt, base_config=HaworConfig.tiny())  # finds ../model_config.yaml itself
    assert loaded.cfg.st.nlayer == 2 and loaded.cfg.motion.hdim == 12
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    cfg = loaded.cfg
    args = (torch.randn(1, 16, 3, *cfg.vit.img_size), torch.rand(1, 16, 2) * 100, torch.full((1, 16), 0.4),
            torch.full((1, 16), 600.0), torch.full((1, 16, 2), 50.0))
    with torch.no_grad():
        assert torch.equal(loaded(*args).pred_rotmat, model(*args).pred_rotmat)


def test_bad_checkpoints_give_one_clear_error(tmp_path):
    model = _tiny_trained()
    # Config that does not match the weights: the error names the first missing keys.
    other = {"MODEL": {**TINY_YAML["MODEL"], "ST_NLAYER": 3}}
    ckpt = _write_lightning_checkpoint(tmp_path / "a", model.state_dict(), other)
    with pytest.raises(CheckpointMismatchError, match=r"missing 1.*st_module\.trans\.layers\.2"):
        load_regressor(ckpt, base_config=HaworConfig.tiny())
    # A checkpoint of another network.
    ckpt = _write_lightning_checkpoint(tmp_path / "b", torch.nn.Linear(3, 4).state_dict(), TINY_YAML)
    with pytest.raises(CheckpointMismatchError, match="unexpected 2: weight, bias"):
        load_regressor(ckpt, base_config=HaworConfig.tiny())
    # Wrong MANO buffers.
    ckpt = _write_lightning_checkpoint(tmp_path / "c", {**model.state_dict(), "mano.v_template": torch.zeros(5, 3)},
                                       TINY_YAML)
    with pytest.raises(CheckpointMismatchError, match="mano.v_template"):
        load_regressor(ckpt, base_config=HaworConfig.tiny())
    # A truncated file.
    good = _write_lightning_checkpoint(tmp_path / "d", model.state_dict(), TINY_YAML)
    good.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(HaworInputError, match="hawor.ckpt"):
        load_regressor(good, base_config=HaworConfig.tiny())
    # No config next to the checkpoint.
    (tmp_path / "d" / "model_config.yaml").unlink()
    with pytest.raises(HaworInputError, match="model_config.yaml"):
        load_regressor(good, base_config=HaworConfig.tiny())
