"""Numeric check of the motion infiller against the official reference fixture (``infiller_*``).

The network is built from ``infiller_config.json`` (never from the shared file's sizes), loaded
strictly, run in float64 eval mode, and every stored stage output is returned with ours.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hawor.models.checkpoint import load_state_dict_strict
from hawor.models.infiller import InfillerConfig, MotionInfiller

FILES = ("infiller_config.json", "infiller_state_dict.pt", "infiller_inputs.pt", "infiller_outputs.pt")


def present(fixture_dir: Path) -> bool:
    return all((Path(fixture_dir) / name).is_file() for name in FILES)


def run(fixture_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    fixture_dir = Path(fixture_dir)
    config = json.loads((fixture_dir / "infiller_config.json").read_text())
    model = MotionInfiller(InfillerConfig.from_dict(config["constructor"]))
    state = torch.load(fixture_dir / "infiller_state_dict.pt", weights_only=True)
    load_state_dict_strict(model, state, source=str(fixture_dir / "infiller_state_dict.pt"))
    model = model.double().eval()
    inputs = torch.load(fixture_dir / "infiller_inputs.pt", weights_only=True)
    reference = torch.load(fixture_dir / "infiller_outputs.pt", weights_only=True)
    with torch.no_grad():
        ours = model.forward_intermediates(
            inputs["src"].double(), inputs["data_mask"].double(), inputs["atten_mask"]
        )
    return {name: (ours[name], ref) for name, ref in reference.items() if name in ours}
