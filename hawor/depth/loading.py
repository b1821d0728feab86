"""Finding and loading the official Metric3D v2 ViT weights (ViT-Large for HaWoR).

Looked for at the official location `thirdparty/Metric3D/weights/metric_depth_vit_large_800k.pth`,
then at `weights/external/metric_depth_vit_large_800k.pth` (both relative to the project root).
The network's sizes are read from the file's tensors. Settings no tensor shows (refinement
iterations, network input size, depth range, ...) are the released model's unless the file has a
`config` entry with `Metric3DConfig` field names (the released file has none; reduced test models do).
"""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import torch

from hawor.errors import HaworInputError
from hawor.models.checkpoint import extract_state_dict, load_checkpoint, load_state_dict_strict, strip_prefixes
from hawor.models.metric3d import Metric3D, Metric3DConfig
from hawor.weights import find_metric3d_weights, metric3d_candidates

# Present in some training saves, deleted by the official constructor and unused at inference.
_UNUSED_KEYS = ("depth_model.encoder.mask_token",)


def _read(path: str | Path) -> tuple[dict[str, torch.Tensor], Metric3DConfig]:
    """(official keys `depth_model.*` from `model_state_dict` or a flat dict, the file's sizes and settings)."""
    obj = load_checkpoint(path)
    key = "model_state_dict" if "model_state_dict" in obj else None
    state = strip_prefixes(extract_state_dict(obj, key, source=f"Metric3D weights {path}"), ("module.",))
    state = {k: v for k, v in state.items() if k not in _UNUSED_KEYS}
    settings = obj.get("config", {}) if key else {}
    known = {f.name for f in fields(Metric3DConfig)}
    if not isinstance(settings, dict) or set(settings) - known:
        raise HaworInputError(f"Metric3D weights {path}: its 'config' entry must map Metric3DConfig fields "
                              f"({', '.join(sorted(known))}) to values; found {settings!r}.")
    base = replace(Metric3DConfig(), **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    return state, Metric3DConfig.from_state_dict(state, base)


def load_metric3d(path: str | Path | None = None, cfg: Metric3DConfig | None = None,
                  device: str | torch.device = "cpu") -> Metric3D:
    """Build Metric3D and load the weights strictly; eval mode.

    path: a weight file; None looks in `metric3d_candidates()`.
    cfg: the network's sizes and settings; None reads them from the file (see the module docstring:
    the released file gives ViT-Large).
    Raises HaworInputError when no file is found, and CheckpointMismatchError when the file is
    not a Metric3D v2 ViT checkpoint of the configured size.
    """
    if path is None:
        path = find_metric3d_weights()
        if path is None:
            where = " or ".join(str(p) for p in metric3d_candidates())
            raise HaworInputError(
                f"Metric3D weights: {metric3d_candidates()[0].name} not found at {where}. Download the official "
                "Metric3D v2 ViT-Large model into thirdparty/Metric3D/weights/, or use the weight-free "
                "hand-anchored scale.")
    path = Path(path)
    if not path.is_file():
        raise HaworInputError(f"Metric3D weights {path}: no such file. Pass the path of {metric3d_candidates()[0].name}.")
    state, file_cfg = _read(path)
    model = Metric3D(cfg or file_cfg)
    load_state_dict_strict(model, state, source=f"Metric3D weights {path}")
    return model.to(device).eval()
