"""Numeric check of Metric3D against the official reference fixture (``metric3d/``).

The network is built from the fixture's ``config.json`` only, loaded strictly, run in float64 eval
mode; every output, every intermediate and HaWoR's pre/post-processing (``pipeline.pt``) is returned
next to the reference.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hawor.models.metric3d import Metric3D, Metric3DConfig
from hawor.depth.preprocess import canonical_to_metric_scale, postprocess_depth, preprocess_image
from hawor.models.checkpoint import load_state_dict_strict

FILES = ("config.json", "state_dict.pt", "inputs.pt", "outputs.pt", "intermediates.pt", "pipeline.pt")
OUTPUTS = ("prediction", "confidence", "prediction_normal", "predictions_per_iter", "confidence_per_iter",
           "normal_per_iter")


def _folder(fixture_dir: Path) -> Path:
    fixture_dir = Path(fixture_dir)
    return fixture_dir / "metric3d" if (fixture_dir / "metric3d").is_dir() else fixture_dir


def present(fixture_dir: Path) -> bool:
    return all((_folder(fixture_dir) / name).is_file() for name in FILES)


def _load(folder: Path, name: str) -> dict:
    return torch.load(folder / name, weights_only=True)


def _pipeline(model: Metric3D, folder: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    ref = _load(folder, "pipeline.pt")
    prepared = preprocess_image(ref["rgb_uint8"].numpy(), model.cfg.input_size)
    fx = float(ref["intrinsic"][0])
    with torch.no_grad():
        canonical = model(prepared.image.double()).prediction
    ours = {
        "model_input": prepared.image,
        "pad_top_bottom_left_right": torch.tensor(prepared.pad),
        "resized_hw": torch.tensor(prepared.resized_hw),
        "resize_scale": torch.tensor(prepared.resize_scale, dtype=torch.float64),
        "canonical_to_real_scale": torch.tensor(canonical_to_metric_scale(prepared, fx), dtype=torch.float64),
        "canonical_depth": canonical,
        "metric_depth": postprocess_depth(canonical, prepared, fx, model.cfg.canonical_focal),
    }
    return {f"pipeline/{k}": (v, ref[k]) for k, v in ours.items()}


def run(fixture_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    folder = _folder(fixture_dir)
    model = Metric3D(Metric3DConfig.from_dict(json.loads((folder / "config.json").read_text())))
    load_state_dict_strict(model, _load(folder, "state_dict.pt"), source=str(folder / "state_dict.pt"))
    model = model.double().eval()
    trace: dict = {}
    with torch.no_grad():
        out = model(_load(folder, "inputs.pt")["input"].double(), trace)
    reference = _load(folder, "outputs.pt")
    results = {}
    for name in OUTPUTS:
        value = getattr(out, name)
        results[name] = (torch.stack(value) if isinstance(value, list) else value, reference[name])
    for name, ref in _load(folder, "intermediates.pt").items():
        value = trace[name]
        results[f"intermediates/{name}"] = (torch.stack(value) if isinstance(value, list) else value, ref)
    results.update(_pipeline(model, folder))
    return results
