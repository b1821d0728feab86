"""Finding and loading the official Metric3D v2 ViT-Large weights.

Looked for at the official location `thirdparty/Metric3D/weights/metric_depth_vit_large_800k.pth`,
then at `weights/external/metric_depth_vit_large_800k.pth` (both relative to the project root).
"""
from __future__ import annotations

from pathlib import Path

import torch

from hawor.depth.metric3d import Metric3D, Metric3DConfig
from hawor.errors import HaworInputError
from hawor.models.checkpoint import extract_state_dict, load_checkpoint, load_state_dict_strict, strip_prefixes
from hawor.weights import project_root, weight_path

METRIC3D_FILENAME = "metric_depth_vit_large_800k.pth"
# Present in some training saves, deleted by the official constructor and unused at inference.
_UNUSED_KEYS = ("depth_model.encoder.mask_token",)


def metric3d_candidates() -> list[Path]:
    """Where the ViT-Large weights are looked for, in order."""
    return [weight_path("metric3d"), project_root() / "weights" / "external" / METRIC3D_FILENAME]


def find_metric3d_weights() -> Path | None:
    """The first existing candidate file, or None."""
    return next((p for p in metric3d_candidates() if p.is_file()), None)


def metric3d_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Official keys (`depth_model.*`) from a checkpoint: `model_state_dict`, or a flat dict."""
    obj = load_checkpoint(path)
    key = "model_state_dict" if "model_state_dict" in obj else None
    state = strip_prefixes(extract_state_dict(obj, key, source=f"Metric3D weights {path}"), ("module.",))
    return {k: v for k, v in state.items() if k not in _UNUSED_KEYS}


def load_metric3d(path: str | Path | None = None, cfg: Metric3DConfig | None = None,
                  device: str | torch.device = "cpu") -> Metric3D:
    """Build Metric3D (ViT-Large unless `cfg`) and load the weights strictly; eval mode.

    path: a weight file; None looks in `metric3d_candidates()`.
    Raises HaworInputError when no file is found, and CheckpointMismatchError when the file is
    not a Metric3D v2 ViT checkpoint of the configured size.
    """
    if path is None:
        path = find_metric3d_weights()
        if path is None:
            where = " or ".join(str(p) for p in metric3d_candidates())
            raise HaworInputError(
                f"Metric3D weights: {METRIC3D_FILENAME} not found at {where}. Download the official "
                "Metric3D v2 ViT-Large model into thirdparty/Metric3D/weights/, or use the weight-free "
                "hand-anchored scale.")
    path = Path(path)
    if not path.is_file():
        raise HaworInputError(f"Metric3D weights {path}: no such file. Pass the path of {METRIC3D_FILENAME}.")
    model = Metric3D(cfg)
    load_state_dict_strict(model, metric3d_state_dict(path), source=f"Metric3D weights {path}")
    return model.to(device).eval()
