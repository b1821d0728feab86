"""Ground-truth and manifest files of a simulated sequence (formats: :mod:`hawor.data.synthetic.generate`)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from hawor.hands import HAND_SIDES
from hawor.io.files import save_npz_atomic, write_json_atomic

if TYPE_CHECKING:
    from hawor.data.synthetic.generate import Simulation

GENERATOR_VERSION = "synthetic-1"


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels; NaN for points at or behind the camera."""
    z = points_cam[..., 2:3]
    uv = points_cam[..., :2] / np.where(z > 1e-6, z, np.nan) * K[[0, 1], [0, 1]] + K[:2, 2]
    return uv


def hand_boxes(sim: Simulation) -> np.ndarray:
    """(N, 2, 4) xyxy pixel boxes of the projected hand vertices clipped to the image; NaN when not observed."""
    boxes = np.full((len(sim.T_world_cam), 2, 4), np.nan)
    for k, side in enumerate(HAND_SIDES):
        hand = sim.hands[side]
        uv = project(hand.vertices_cam, sim.K)
        lo = np.clip(np.nanmin(uv, axis=1), 0, [sim.width - 1, sim.height - 1])
        hi = np.clip(np.nanmax(uv, axis=1), 0, [sim.width - 1, sim.height - 1])
        boxes[hand.observed, k] = np.concatenate([lo, hi], axis=1)[hand.observed]
    return boxes


def joints_unoccluded(sim: Simulation, index: int, labels: np.ndarray, radius: int = 2) -> np.ndarray:
    """(2, 21) bool: the joints of (left, right) that frame ``index`` shows.

    labels: (H, W) uint8 part labels of the frame (0 scene, 1 + k for ``render.PART_LABELS[k]``). A joint
    is shown when it projects inside the image and a pixel within ``radius`` of it belongs to its own hand
    or forearm: joints lie inside the mesh, so their own surface covers them unless something else (the
    other hand or arm, an object) is in front; the window keeps a joint at a thin finger's edge.
    """
    height, width = labels.shape
    offsets = np.arange(-radius, radius + 1)
    shown = np.zeros((len(HAND_SIDES), 21), bool)
    for k, side in enumerate(HAND_SIDES):
        uv = project(sim.hands[side].joints_cam[index], sim.K)  # (21, 2)
        inside = np.isfinite(uv).all(-1) & (uv >= 0).all(-1) & (uv < [width, height]).all(-1)
        pixel = np.round(np.nan_to_num(uv)).astype(int)
        x = np.clip(pixel[:, 0, None, None] + offsets[None, None, :], 0, width - 1)
        y = np.clip(pixel[:, 1, None, None] + offsets[None, :, None], 0, height - 1)
        window = labels[y, x]  # (21, 2r+1, 2r+1)
        own = (window == 1 + k) | (window == 1 + len(HAND_SIDES) + k)
        shown[k] = inside & own.any((1, 2))
    return shown


def hand_arrays(sim: Simulation, frame: str, unoccluded: np.ndarray | None = None) -> dict:
    """The truth's hands in the result files' layout (hands_world.npz when ``frame`` is "world",
    hands_camera.npz when "camera"; ``hawor.world.HandSequence.from_arrays`` reads either)."""
    n = len(sim.T_world_cam)
    arrays = {"fps": np.float64(sim.fps), "num_frames": np.int64(n), "image_size": np.array([sim.width, sim.height]),
              "focal": np.float64(sim.K[0, 0]), "hand_model": np.array(sim.hand_model)}
    for side in HAND_SIDES:
        h = sim.hands[side]
        world = frame == "world"
        valid = np.ones(n, bool) if world else h.observed.copy()
        values = {
            "global_orient": h.orient_world if world else h.orient_cam,
            "hand_pose": h.hand_pose,
            "betas": np.repeat(h.betas[None], n, axis=0),
            "transl": h.transl_world if world else h.transl_cam,
            "joints": h.joints_world if world else h.joints_cam,
        }
        for key, value in values.items():
            value = np.array(value, np.float64)
            value[~valid] = np.nan
            arrays[f"{side}_{key}"] = value
        arrays[f"{side}_observed"] = h.observed.copy()
        arrays[f"{side}_infilled"] = np.zeros(n, bool)
        arrays[f"{side}_valid"] = valid
        if unoccluded is not None:
            arrays[f"{side}_joints_unoccluded"] = unoccluded[:, HAND_SIDES.index(side)]
    return arrays


def write_truth(sim: Simulation, out_dir: Path, unoccluded: np.ndarray | None = None) -> dict[str, Path]:
    """hands_world.npz, hands_camera.npz, camera.npz and meta.json in ``out_dir``; ``unoccluded`` (N, 2, 21)
    bool (:func:`joints_unoccluded` of every frame) adds ``{h}_joints_unoccluded`` to both hand files."""
    n = len(sim.T_world_cam)
    paths = {
        "hands_world": save_npz_atomic(out_dir / "hands_world.npz", **hand_arrays(sim, "world", unoccluded)),
        "hands_camera": save_npz_atomic(out_dir / "hands_camera.npz", **hand_arrays(sim, "camera", unoccluded)),
        "camera": save_npz_atomic(out_dir / "camera.npz", T_world_cam=sim.T_world_cam, K=sim.K, scale=np.float64(1.0),
                                  keyframes=np.arange(n), T_scene_world=sim.T_scene_world),
    }
    meta = {
        "generator": GENERATOR_VERSION, "seed": sim.seed, "num_frames": n, "fps": sim.fps,
        "image_size": [sim.width, sim.height], "focal": float(sim.K[0, 0]), "hand_model": sim.hand_model,
        "camera_events": sim.camera.events,
        "hand_actions": {side: sim.hands[side].motion.actions for side in HAND_SIDES},
        "observed_fraction": {side: float(sim.hands[side].observed.mean()) for side in HAND_SIDES},
        "skin_tone_srgb": [round(float(c), 4) for c in sim.hands["right"].forearm_colors.mean(0)],
        "scene": {"table_height": sim.scene.table_height, "table_size": list(sim.scene.table_size),
                  "objects": [o.kind for o in sim.scene.objects]},
        "post": sim.post,
    }
    paths["meta"] = write_json_atomic(out_dir / "meta.json", meta)
    return paths


def manifest_samples(sim: Simulation, image_paths: list[str], sequence_id: str) -> dict[str, np.ndarray]:
    """Training samples (one per observed hand per frame) as stacked arrays in the seed's manifest format.

    bbox is xyxy pixels of the projected hand; gt_cam_j2d full-image pixels; gt_cam_full_pose = camera-frame
    global_orient (3) + hand_pose (45); gt_j3d_wo_trans = camera-frame joints minus transl; handedness 0 = left.
    """
    boxes = hand_boxes(sim)
    rows: dict[str, list] = {k: [] for k in ("img_path", "sequence_id", "frame_id", "bbox", "gt_cam_j2d",
                                             "gt_cam_full_pose", "gt_cam_betas", "gt_j3d_wo_trans", "img_center",
                                             "img_focal", "handedness")}
    for i in range(len(sim.T_world_cam)):
        for k, side in enumerate(HAND_SIDES):
            h = sim.hands[side]
            if not h.observed[i]:
                continue
            rows["img_path"].append(image_paths[i])
            rows["sequence_id"].append(sequence_id)
            rows["frame_id"].append(i)
            rows["bbox"].append(boxes[i, k])
            rows["gt_cam_j2d"].append(project(h.joints_cam[i], sim.K))
            rows["gt_cam_full_pose"].append(np.concatenate([h.orient_cam[i], h.hand_pose[i]]))
            rows["gt_cam_betas"].append(h.betas)
            rows["gt_j3d_wo_trans"].append(h.joints_cam[i] - h.transl_cam[i])
            rows["img_center"].append(sim.K[:2, 2])
            rows["img_focal"].append(sim.K[0, 0])
            rows["handedness"].append(k)
    shapes = {"bbox": (4,), "gt_cam_j2d": (21, 2), "gt_cam_full_pose": (48,), "gt_cam_betas": (10,),
              "gt_j3d_wo_trans": (21, 3), "img_center": (2,), "img_focal": ()}
    out = {"img_path": np.array(rows["img_path"], dtype=str), "sequence_id": np.array(rows["sequence_id"], dtype=str),
           "frame_id": np.array(rows["frame_id"], np.int64), "handedness": np.array(rows["handedness"], np.int64)}
    for key, shape in shapes.items():
        out[key] = np.array(rows[key], np.float32).reshape(-1, *shape)
    return out


def write_manifest(samples: dict[str, np.ndarray], out_dir: Path, name: str = "manifest") -> dict[str, Path]:
    """``{name}.json`` ({"samples": [{key: value}, ...]}) and ``{name}.npz`` (stacked arrays) in out_dir."""
    count = len(samples["img_path"])
    records = [{key: value[i].tolist() for key, value in samples.items()} for i in range(count)]
    return {"manifest_json": write_json_atomic(out_dir / f"{name}.json", {"samples": records}, indent=None),
            "manifest_npz": save_npz_atomic(out_dir / f"{name}.npz", **samples)}


def merge_manifests(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate manifest sample arrays (same keys) of several sequences."""
    parts = list(parts)
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
