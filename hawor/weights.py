"""Where every weight and model file is expected (the official repository's layout).

Paths are relative to the project root (the folder holding demo.py), or to ``$HAWOR_ROOT``.
Nothing here loads a file; the stages do, and ``python -m hawor doctor`` reports on all of them.
"""
from __future__ import annotations

import os
from pathlib import Path

from hawor._offline import PROJECT_ROOT

OFFICIAL_PATHS = {
    "detector": "weights/external/detector.pt",
    "regressor": "weights/hawor/checkpoints/hawor.ckpt",
    "regressor_config": "weights/hawor/model_config.yaml",
    "infiller": "weights/hawor/checkpoints/infiller.pt",
    "droid": "weights/external/droid.pth",
    "metric3d": "thirdparty/Metric3D/weights/metric_depth_vit_large_800k.pth",
    "mano_right": "_DATA/data/mano/MANO_RIGHT.pkl",
    "mano_left": "_DATA/data_left/mano_left/MANO_LEFT.pkl",
    "mano_mean_params": "_DATA/data/mano_mean_params.npz",
    "open_hand_right": "_DATA/open_hand/MANO_RIGHT.pkl",
    "open_hand_left": "_DATA/open_hand/MANO_LEFT.pkl",
    "landmarks": "_DATA/landmarks",
}


def project_root() -> Path:
    """The folder the official relative paths are resolved against."""
    return Path(os.environ.get("HAWOR_ROOT", PROJECT_ROOT))


def weight_path(name: str) -> Path:
    """Absolute expected location of a named file (see ``OFFICIAL_PATHS``)."""
    if name not in OFFICIAL_PATHS:
        raise KeyError(f"unknown weight '{name}'; known: {sorted(OFFICIAL_PATHS)}")
    return project_root() / OFFICIAL_PATHS[name]


def metric3d_candidates() -> list[Path]:
    """Where the Metric3D ViT-Large weights are looked for, in order: the official location, then
    ``weights/external/``."""
    official = weight_path("metric3d")
    return [official, project_root() / "weights" / "external" / official.name]


def find_metric3d_weights() -> Path | None:
    """The first existing Metric3D candidate file, or None."""
    return next((p for p in metric3d_candidates() if p.is_file()), None)
