"""Numeric check of the DROID-SLAM network against the official reference fixture (``droid_*``).

The network is built from ``droid_config.json``, the merged ``droid_state_dict_part*.pt`` dict goes
through the droid.pth loader (strip ``module.``, slice the head convs), and everything runs in float64.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hawor.slam.droid.corr import correlation_pyramid
from hawor.models.droid import DroidNet, DroidNetConfig, upsample_disp
from hawor.slam.droid.loading import load_droid_state_dict


def _parts(fixture_dir: Path) -> list[Path]:
    return sorted(Path(fixture_dir).glob("droid_state_dict*.pt"))


def present(fixture_dir: Path) -> bool:
    d = Path(fixture_dir)
    names = ("droid_config.json", "droid_inputs.pt", "droid_outputs.pt")
    return all((d / n).is_file() for n in names) and bool(_parts(d))


def run(fixture_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    fixture_dir = Path(fixture_dir)
    config = json.loads((fixture_dir / "droid_config.json").read_text())
    cfg = DroidNetConfig.from_fixture(config)
    state: dict[str, torch.Tensor] = {}
    for part in _parts(fixture_dir):
        state.update(torch.load(part, weights_only=True))
    net = load_droid_state_dict(DroidNet(cfg), state, source=str(fixture_dir / "droid_state_dict*.pt"))
    net = net.double().eval()
    inputs = torch.load(fixture_dir / "droid_inputs.pt", weights_only=True)
    reference = torch.load(fixture_dir / "droid_outputs.pt", weights_only=True)
    ii, jj = inputs["ii"], inputs["jj"]
    ours: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        fmaps, hidden, inp = net.extract_features(inputs["images"].double())
        ours.update(fmaps=fmaps, net=hidden, inp=inp)
        upd = net.update(hidden[:, ii], inp[:, ii], inputs["corr"].double(), inputs["motion"].double(), ii, jj)
        for name, value in zip(("upd_net", "upd_delta", "upd_weight", "upd_eta", "upd_upmask"), upd):
            ours[name] = value
        ours["disp_up"] = upsample_disp(inputs["disps"].double(), upd[4], cfg.upsample_factor)
        num_levels = config.get("corr_block_test", {}).get("num_levels", cfg.corr_levels)
        levels = correlation_pyramid(inputs["corr_fmap1"].double(), inputs["corr_fmap2"].double(), num_levels)
        for k, level in enumerate(levels):
            ours[f"corr_level{k}"] = level
    return {name: (ours[name], ref) for name, ref in reference.items() if name in ours}
