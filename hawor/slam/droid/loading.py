"""Loading the official ``droid.pth`` into :class:`DroidNet`.

The file is a flat state dict saved from DataParallel: keys carry ``module.``, and the two output
convs of the update heads (``update.weight.2``, ``update.delta.2``) store 3 output channels of which
the network uses the first 2.
"""
from __future__ import annotations

from pathlib import Path

import torch

from hawor.errors import HaworInputError
from hawor.models.checkpoint import CheckpointMismatchError, extract_state_dict, load_checkpoint, load_state_dict_strict
from hawor.models.droid import DroidNet, DroidNetConfig

_SLICED_HEADS = ("update.weight.2.weight", "update.weight.2.bias", "update.delta.2.weight", "update.delta.2.bias")


def convert_droid_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official conversion: drop every ``module.`` substring, keep output channels 0-1 of the head convs."""
    out = {}
    for key, value in state_dict.items():
        key = key.replace("module.", "")
        if key in _SLICED_HEADS:
            value = value[:2]
        out[key] = value
    return out


def _check_is_droid(state_dict: dict, source: str) -> None:
    if not any("fnet." in k for k in state_dict):
        raise HaworInputError(
            f"{source}: not a DROID-SLAM weight file (no 'fnet.' keys among {len(state_dict)} entries); "
            "download droid.pth from the DROID-SLAM release and place it at weights/external/droid.pth")


def load_droid_state_dict(net: DroidNet, state_dict: dict[str, torch.Tensor], source: str = "droid.pth") -> DroidNet:
    """Convert and load strictly; a mismatch raises ``CheckpointMismatchError`` naming the keys."""
    _check_is_droid(state_dict, source)
    load_state_dict_strict(net, convert_droid_state_dict(state_dict), source=source)
    return net


def load_droid_net(path: str | Path | None = None, cfg: DroidNetConfig | None = None,
                   device: str | torch.device = "cpu") -> DroidNet:
    """Build DroidNet and load ``path`` (default: the official location weights/external/droid.pth).

    cfg: the network's sizes; None reads them from the file's tensors (the released file gives the
    released network).
    """
    from hawor.weights import weight_path

    path = Path(path) if path is not None else Path(weight_path("droid"))
    if not path.is_file():
        raise HaworInputError(
            f"DROID-SLAM weights not found at {path}; download droid.pth from the DROID-SLAM release "
            "(https://github.com/princeton-vl/DROID-SLAM) to weights/external/droid.pth, or use the classical backend")
    state_dict = extract_state_dict(load_checkpoint(path), source=str(path))
    if cfg is None:
        _check_is_droid(state_dict, str(path))
        try:
            cfg = DroidNetConfig.from_state_dict(convert_droid_state_dict(state_dict))
        except ValueError as exc:
            raise CheckpointMismatchError(f"{path}: {exc}") from None
    net = load_droid_state_dict(DroidNet(cfg), state_dict, source=str(path))
    return net.eval().to(device)
