"""Numeric check of the HaWoR regressor against the official reference fixture (``hawor_*``).

The network is built from ``hawor_config.json`` only, loaded strictly, run in float64 eval mode, and
every stored output (intermediate feature maps included) is returned next to ours.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hawor.models.checkpoint import load_state_dict_strict
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor

FILES = ("hawor_config.json", "hawor_state_dict.pt", "hawor_inputs.pt", "hawor_outputs.pt")


def present(fixture_dir: Path) -> bool:
    return all((Path(fixture_dir) / name).is_file() for name in FILES)


def run(fixture_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    fixture_dir = Path(fixture_dir)
    config = json.loads((fixture_dir / "hawor_config.json").read_text())
    model = HaworRegressor(HaworConfig.from_fixture_json(config))
    state_path = fixture_dir / "hawor_state_dict.pt"
    load_state_dict_strict(model, torch.load(state_path, weights_only=True), source=str(state_path))
    model = model.double().eval()
    inputs = {k: v.double() for k, v in torch.load(fixture_dir / "hawor_inputs.pt", weights_only=True).items()}
    reference = torch.load(fixture_dir / "hawor_outputs.pt", weights_only=True)

    dropped = config["input_image"]["columns_dropped_each_side"]
    images = inputs["img"]
    images = images[..., dropped: images.shape[-1] - dropped]
    with torch.no_grad():
        out = model(images, inputs["center"], inputs["scale"], inputs["img_focal"], inputs["img_center"])

    rows = reference["feature_frame_index"]
    per_frame = {
        "bbox_info": out.bbox_info,
        "backbone_feat_frames": out.backbone_feat,
        "st_feat_frames": out.st_feat,
        "head_pose6d": out.head_pose6d,
        "pred_shape": out.pred_shape,
        "pred_cam": out.pred_cam,
        "pred_rotmat_0": out.pred_rotmat_0,
        "pred_pose": out.pred_pose,
        "pred_rotmat": out.pred_rotmat,
        "trans_full": out.trans_full.unsqueeze(-2),
        "global_orient": out.global_orient.unsqueeze(-3),
        "hand_pose": out.hand_pose,
        "betas": out.pred_shape,
    }
    ours = {name: value.flatten(0, 1) for name, value in per_frame.items()}  # b-major rows, as the reference
    ours["backbone_feat_frames"] = ours["backbone_feat_frames"][rows]
    ours["st_feat_frames"] = ours["st_feat_frames"][rows]
    compared = {name: ref for name, ref in reference.items() if name != "feature_frame_index"}
    missing = sorted(set(compared) - set(ours))
    if missing:
        raise KeyError(f"hawor fixture holds outputs this verifier does not produce: {missing}")
    return {name: (ours[name], ref) for name, ref in compared.items()}
