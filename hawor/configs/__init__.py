"""Configuration with the official key names, and the official ``model_config.yaml`` as shipped.

A config is a :class:`ConfigNode`: a nested dict with attribute access (``cfg.MODEL.ST_HDIM``).
Unknown keys are kept, so files written for the official code load unchanged and round-trip to YAML.
Hand-written rather than yacs (unmaintained since 2020) because only nesting, merging and YAML are needed.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

from hawor.errors import HaworInputError
from hawor.weights import project_root

# Defaults of the official hawor/configs (the released defaults), before model_config.yaml is merged.
_DEFAULTS = {
    "GENERAL": {
        "RESUME": True, "TIME_TO_RUN": 3300, "VAL_STEPS": 100, "LOG_STEPS": 100, "CHECKPOINT_STEPS": 20000,
        "CHECKPOINT_DIR": "checkpoints", "SUMMARY_DIR": "tensorboard", "NUM_GPUS": 1, "NUM_WORKERS": 4,
        "MIXED_PRECISION": True, "ALLOW_CUDA": True, "PIN_MEMORY": False, "DISTRIBUTED": False,
        "LOCAL_RANK": 0, "USE_SYNCBN": False, "WORLD_SIZE": 1,
        # Training (scripts/train_hawor.py); values of the released model_config.yaml where it has them.
        "TOTAL_STEPS": 250000, "SEED": 0, "CPU_THREADS": 0,
    },
    "TRAIN": {
        "NUM_EPOCHS": 100, "BATCH_SIZE": 32, "SHUFFLE": True, "WARMUP": False, "NORMALIZE_PER_IMAGE": False,
        "CLIP_GRAD": False, "CLIP_GRAD_VALUE": 1.0,
        "LR": 1.0e-5, "WEIGHT_DECAY": 1.0e-4, "GRAD_CLIP_VAL": 0.0, "WARMUP_STEPS": 0,
    },
    "LOSS_WEIGHTS": {"KEYPOINTS_3D": 0.05, "KEYPOINTS_2D": 0.01, "GLOBAL_ORIENT": 0.001, "HAND_POSE": 0.001,
                     "BETAS": 0.0005},
    # ARCH "full" sizes the network from MODEL.ST_*/MOTION_* as the released code; "tiny" is HaworConfig.tiny().
    "MODEL": {"IMAGE_SIZE": 224, "ARCH": "full"},
    "EXTRA": {"FOCAL_LENGTH": 5000},
    "DATASETS": {
        "CONFIG": {
            "SCALE_FACTOR": 0.3, "ROT_FACTOR": 30, "TRANS_FACTOR": 0.02, "COLOR_SCALE": 0.2,
            "ROT_AUG_RATE": 0.6, "TRANS_AUG_RATE": 0.5, "DO_FLIP": False, "FLIP_AUG_RATE": 0.5,
            "EXTREME_CROP_AUG_RATE": 0.10,
        },
        # Training windows start every WINDOW_STRIDE frames of a run of consecutive frames.
        "WINDOW_STRIDE": 1,
    },
}

# Paths the official loader re-roots under _DATA/ (when relative and not already there).
_CACHEDIR_KEYS = (("MANO", "MODEL_PATH"), ("MANO", "MEAN_PARAMS"))


class ConfigNode(dict):
    """A dict whose string keys are also attributes; nested dicts become ConfigNodes."""

    def __init__(self, mapping: Mapping | None = None, **kwargs):
        super().__init__()
        for key, value in {**(mapping or {}), **kwargs}.items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, ConfigNode(value) if isinstance(value, Mapping) and not isinstance(value, ConfigNode) else value)

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value):
        self[name] = value

    def __deepcopy__(self, memo):
        return ConfigNode(copy.deepcopy(dict(self), memo))

    def merge(self, other: Mapping) -> "ConfigNode":
        """Recursively merge ``other`` into this node (other wins); returns self."""
        for key, value in other.items():
            if isinstance(value, Mapping) and isinstance(self.get(key), ConfigNode):
                self[key].merge(value)
            else:
                self[key] = copy.deepcopy(value)
        return self

    def to_dict(self) -> dict:
        """Plain nested dicts (for YAML or JSON)."""
        return {k: v.to_dict() if isinstance(v, ConfigNode) else v for k, v in self.items()}

    def get_path(self, dotted: str, default: Any = None) -> Any:
        """``cfg.get_path("MODEL.BACKBONE.TYPE")`` with a default for any missing level."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def get_default_config() -> ConfigNode:
    """The official defaults (before a model_config.yaml is merged on top)."""
    return ConfigNode(copy.deepcopy(_DEFAULTS))


def _reroot_data_paths(cfg: ConfigNode) -> None:
    for section, key in _CACHEDIR_KEYS:
        value = cfg.get_path(f"{section}.{key}")
        if isinstance(value, str) and value and "_DATA" not in value and not Path(value).is_absolute():
            cfg[section][key] = str(Path("_DATA") / value)


def tiny_config_path() -> Path:
    """The reduced-size training config shipped for tests and smoke runs (hawor/configs/tiny.yaml)."""
    return Path(__file__).with_name("tiny.yaml")


def resolve_data_path(value: str) -> Path:
    """A config path (e.g. ``_DATA/data//mano``) as an absolute path under the project root."""
    path = Path(value)
    return path if path.is_absolute() else project_root() / path


def load_model_config(path: str | Path, update_cachedir: bool = True) -> ConfigNode:
    """Load an official ``model_config.yaml`` merged over the defaults.

    Keeps every key (known or not); with ``update_cachedir`` re-roots ``MANO.MODEL_PATH`` and
    ``MANO.MEAN_PARAMS`` under ``_DATA/`` as the official loader does; fills ``MODEL.BBOX_SHAPE``
    for ViT backbones.

    Raises:
        HaworInputError naming the file when it is missing, not YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise HaworInputError(f"model config {path}: not found. It ships next to hawor.ckpt "
                              "(weights/hawor/model_config.yaml); see weights/README.md.")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise HaworInputError(f"model config {path}: not valid YAML ({exc}).") from exc
    if not isinstance(loaded, Mapping):
        raise HaworInputError(f"model config {path}: expected a mapping of sections (MODEL, MANO, ...), "
                              f"found {type(loaded).__name__}.")
    cfg = get_default_config().merge(loaded)
    if update_cachedir:
        _reroot_data_paths(cfg)
    if cfg.get_path("MODEL.BACKBONE.TYPE") == "vit" and cfg.get_path("MODEL.BBOX_SHAPE") is None:
        if cfg.MODEL.IMAGE_SIZE != 256:
            raise HaworInputError(f"model config {path}: MODEL.IMAGE_SIZE is {cfg.MODEL.IMAGE_SIZE}; "
                                  "the ViT backbone needs 256.")
        cfg.MODEL.BBOX_SHAPE = [192, 256]
    return cfg


def find_model_config(checkpoint_path: str | Path) -> Path:
    """The config the official code pairs with a checkpoint: ``<ckpt dir>/../model_config.yaml``."""
    return Path(checkpoint_path).resolve().parent.parent / "model_config.yaml"


def config_to_yaml(cfg: Mapping) -> str:
    """YAML text of a config (round-trips through :func:`load_model_config`)."""
    plain = cfg.to_dict() if isinstance(cfg, ConfigNode) else dict(cfg)
    return yaml.safe_dump(plain, sort_keys=False)
