from pathlib import Path

import pytest

from hawor.configs import config_to_yaml, find_model_config, get_default_config, load_model_config
from hawor.errors import HaworInputError

BINDIR0 = Path(__file__).parent / "data" / "model_config_bindir0.yaml"


def _variant(tmp_path, name):
    """The three public copies differ only in MANO paths, TORCH_COMPILE and PRETRAINED_WEIGHTS."""
    text = BINDIR0.read_text()
    if name in ("vitra", "vitra_lrl"):
        text = (text.replace("MODEL_PATH: _DATA/data//mano", "MODEL_PATH: weights/mano")
                .replace("DATA_DIR: _DATA/data/", "DATA_DIR: weights/mano")
                .replace("MEAN_PARAMS: _DATA/data//mano_mean_params.npz", "MEAN_PARAMS: weights/mano/mano_mean_params.npz")
                .replace("TORCH_COMPILE: 1", "TORCH_COMPILE: 0"))
    if name == "vitra_lrl":
        text = text.replace("PRETRAINED_WEIGHTS:\n", "PRETRAINED_WEIGHTS: ./weights/hawor/checkpoints/hawor.ckpt\n")
    path = tmp_path / name / "model_config.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["bindir0", "vitra", "vitra_lrl"])
def test_public_model_configs_load(tmp_path, name):
    cfg = load_model_config(_variant(tmp_path, name))
    assert cfg.MODEL.ST_HDIM == 512 and cfg.MODEL.MOTION_HDIM == 384
    assert cfg.MODEL.ST_NLAYER == 6 and cfg.MODEL.MOTION_NLAYER == 6
    assert cfg.MODEL.BBOX_SHAPE == [192, 256]
    assert cfg.MODEL.BACKBONE.TORCH_COMPILE == (1 if name == "bindir0" else 0)
    # unknown keys survive, defaults fill what the file lacks
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    assert cfg.GENERAL.ALLOW_CUDA is True and cfg.GENERAL.NUM_WORKERS == 25
    if name == "bindir0":
        assert cfg.MANO.MODEL_PATH == "_DATA/data//mano"  # already under _DATA: unchanged
        assert cfg.MODEL.BACKBONE.PRETRAINED_WEIGHTS is None
    else:
        assert cfg.MANO.MODEL_PATH == "_DATA/weights/mano"
        assert cfg.MANO.MEAN_PARAMS == "_DATA/weights/mano/mano_mean_params.npz"
    if name == "vitra_lrl":
        assert cfg.MODEL.BACKBONE.PRETRAINED_WEIGHTS == "./weights/hawor/checkpoints/hawor.ckpt"


def test_yaml_round_trip(tmp_path):
    cfg = load_model_config(_variant(tmp_path, "vitra"))
    again = tmp_path / "again.yaml"
    again.write_text(config_to_yaml(cfg))
    assert load_model_config(again) == cfg


def test_defaults_and_config_location():
    cfg = get_default_config()
    assert cfg.MODEL.IMAGE_SIZE == 224 and cfg.DATASETS.CONFIG.FLIP_AUG_RATE == 0.5
    assert cfg.get_path("MODEL.BACKBONE.TYPE", "none") == "none"
    ckpt = Path("/x/weights/hawor/checkpoints/hawor.ckpt")
    assert find_model_config(ckpt) == Path("/x/weights/hawor/model_config.yaml")


def test_bad_configs(tmp_path):
    with pytest.raises(HaworInputError, match="not found"):
        load_model_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL: [unclosed\n")
    with pytest.raises(HaworInputError, match="bad.yaml: not valid YAML"):
        load_model_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(HaworInputError, match="expected a mapping"):
        load_model_config(listy)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("MODEL:\n  IMAGE_SIZE: 224\n  BACKBONE:\n    TYPE: vit\n")
    with pytest.raises(HaworInputError, match="needs 256"):
        load_model_config(wrong)
