"""Write networks as the official weight files hold them (containers and key layouts of the manifests in
tests/data/compat/*_state_dict.json), so files made here load through the same path as the released ones.

Used by the end-to-end tests (tiny networks) and bench/learned_path.py (full-size random networks).
Metric3D and DROID files carry no sizes: their loaders read the sizes from the tensors.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from hawor.compat.verify import COMPAT_DATA_DIR
from hawor.io.files import atomic_path

_DTYPES = {"float32": torch.float32, "int64": torch.int64}
# Output convs of DROID's weight/delta heads: the released file stores 3 channels, the network uses 2.
_DROID_SLICED = ("update.weight.2.", "update.delta.2.")


def _save(obj: dict, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def mano_buffers() -> dict[str, torch.Tensor]:
    """The ``mano.*`` buffers of hawor.ckpt with MANO's shapes and dtypes (zeros: the loader only checks
    their shapes; the hand model comes from the MANO files)."""
    manifest = json.loads((COMPAT_DATA_DIR / "hawor_state_dict.json").read_text())
    return {k: torch.zeros(e["shape"], dtype=_DTYPES[e["dtype"]]) for k, e in manifest["mano_buffers"].items()}


def save_hawor_ckpt(model: nn.Module, path: Path) -> Path:
    """hawor.ckpt: a Lightning checkpoint, weights (with the MANO buffers) under ``state_dict``."""
    state = {**model.state_dict(), **mano_buffers()}
    return _save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "2.2.0", "state_dict": state}, path)


def save_infiller(model: nn.Module, path: Path) -> Path:
    """infiller.pt: weights under ``transformer_encoder_state_dict``; the head count (no shape shows
    it) under ``nhead``."""
    return _save({"transformer_encoder_state_dict": model.state_dict(), "nhead": model.config.nhead}, path)


def save_droid(net: nn.Module, path: Path) -> Path:
    """droid.pth: a flat DataParallel state dict (``module.`` keys, 3-channel weight/delta head convs)."""
    state = {}
    for key, value in net.state_dict().items():
        if key.startswith(_DROID_SLICED):
            value = torch.cat([value, torch.zeros_like(value[:1])])
        state["module." + key] = value.clone()
    return _save(state, path)


def save_metric3d(model: nn.Module, path: Path, settings: dict | None = None) -> Path:
    """metric_depth_vit_large_800k.pth: weights under ``model_state_dict``; ``settings`` (Metric3DConfig
    fields no tensor shows, e.g. iters) go in a ``config`` entry, which the released file does not have."""
    obj = {"model_state_dict": model.state_dict()}
    if settings:
        obj["config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return _save(obj, path)
