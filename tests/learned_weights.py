"""Official-layout weight files for every learned backend, at tiny sizes, built by the tests.

Each writer produces the file the official release ships, in the container and key layout that
tests/data/compat/*_state_dict.json describes (``hawor.compat.official_files``), but with small
networks so a CPU test runs them:

- ``write_detector``: an ultralytics YOLOv8 checkpoint *trained here* (classes 0 = left, 1 = right) on
  frames of a generated clip with boxes from its ground truth (it memorises that clip);
- ``write_regressor``: a Lightning-style ``hawor.ckpt`` (``state_dict`` with ``mano.*`` buffers and
  ``initialized``) plus the ``model_config.yaml`` that sizes it (hawor/configs/tiny.yaml);
- ``write_infiller``: ``infiller.pt`` with ``transformer_encoder_state_dict``;
- ``write_droid``: ``droid.pth`` as DataParallel saved it (``module.`` keys, 3-channel head convs);
- ``write_metric3d``: ``{"model_state_dict": ...}`` of a small Metric3D v2 ViT whose depth is one
  known constant, so the metric scale it implies is traceable.

``install(root, files)`` places built files where weights/README.md says, under a project root that
``HAWOR_ROOT`` points at; ``project_root(root)`` makes such a root (the repository's ``_DATA`` linked in).
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import yaml

from hawor.weights import OFFICIAL_PATHS

REPO = Path(__file__).resolve().parents[1]
LEARNED = ("detector", "regressor", "infiller", "droid", "metric3d")
# What each learned file needs beside it in the official layout.
COMPANIONS = {"regressor": ("regressor_config",)}


def project_root(root: Path) -> Path:
    """An empty project root for ``HAWOR_ROOT`` with the repository's assets (_DATA: hand models,
    landmark models, mean parameters) linked in file by file, and no weight file.

    The folders are real, only their entries are links, so a file a test adds under the root (e.g.
    MANO files in _DATA/data/mano) never lands in the repository.
    """
    _link_entries(REPO / "_DATA", root / "_DATA")
    return root


def _link_entries(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            _link_entries(entry, target / entry.name)
        elif not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry)


def install(root: Path, built: dict[str, Path], names) -> dict[str, Path]:
    """Hard-link (or copy) the built files ``names`` and their companions to their official paths under ``root``.

    Not symlinks: the regressor finds ``model_config.yaml`` from the checkpoint's resolved path.
    """
    placed = {}
    for name in names:
        for key in (name, *COMPANIONS.get(name, ())):
            target = root / OFFICIAL_PATHS[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(built[key], target)
            except OSError:
                shutil.copy2(built[key], target)
            placed[key] = target
    return placed


# ---------------------------------------------------------------- detector.pt

def write_detector(path: Path, frames: list[np.ndarray], boxes: np.ndarray, work_dir: Path,
                   epochs: int = 60, imgsz: int = 128) -> Path:
    """Train a ~0.35 M-parameter YOLOv8 on ``frames`` and save its last checkpoint at ``path``.

    frames: RGB uint8 (H, W, 3); boxes: (N, 2, 4) xyxy pixels per frame for (left, right), NaN where
    the hand is not in view. Training is offline: no pretrained weights, no AMP check (CPU), no plots
    (which would fetch a font).
    """
    import cv2
    import ultralytics
    from ultralytics import YOLO

    data = work_dir / "dataset"
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "labels").mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    for i, frame in enumerate(frames):
        cv2.imwrite(str(data / "images" / f"{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        lines = []
        for cls, box in enumerate(boxes[i]):
            if np.isfinite(box).all():
                cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
                lines.append(f"{cls} {cx:.6f} {cy:.6f} {(box[2] - box[0]) / width:.6f} {(box[3] - box[1]) / height:.6f}")
        (data / "labels" / f"{i:04d}.txt").write_text("".join(f"{line}\n" for line in lines))
    (data / "data.yaml").write_text(yaml.safe_dump(
        {"path": str(data), "train": "images", "val": "images", "names": {0: "left", 1: "right"}}))
    arch = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    arch.update(nc=2, scale="n", scales={"n": [0.33, 0.125, 256]})  # a quarter of YOLOv8n's widths
    (data / "yolov8n-hands.yaml").write_text(yaml.safe_dump(arch))

    torch.manual_seed(0)
    model = YOLO(str(data / "yolov8n-hands.yaml"), task="detect")
    # The clip is memorised, so no augmentation; Adam converges in a few dozen epochs from scratch.
    model.train(data=str(data / "data.yaml"), epochs=epochs, imgsz=imgsz, batch=8, workers=0, device="cpu",
                optimizer="Adam", lr0=0.01, warmup_epochs=0, mosaic=0.0, fliplr=0.0, translate=0.0, scale=0.0,
                hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, erasing=0.0, pretrained=False, amp=False, plots=False, val=False,
                seed=0, deterministic=True, project=str(work_dir / "runs"), name="detector", exist_ok=True,
                verbose=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(work_dir / "runs" / "detector" / "weights" / "last.pt", path)
    return path


# ---------------------------------------------------------------- hawor.ckpt + model_config.yaml

def regressor_model_config() -> dict:
    """The tiny regressor's model_config.yaml content (hawor/configs/tiny.yaml)."""
    from hawor.configs import tiny_config_path

    return yaml.safe_load(tiny_config_path().read_text())


def write_regressor(ckpt_path: Path, config_path: Path, seed: int = 0) -> tuple[Path, Path]:
    """A Lightning-layout hawor.ckpt of the tiny regressor, and its model_config.yaml."""
    from hawor.compat.official_files import save_hawor_ckpt
    from hawor.configs import load_model_config
    from hawor.models.hawor_regressor import HaworRegressor
    from hawor.training.model import hawor_config_from_cfg

    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(regressor_model_config()))
    torch.manual_seed(seed)
    model = HaworRegressor(hawor_config_from_cfg(load_model_config(config_path)))
    return save_hawor_ckpt(model, ckpt_path), config_path


# ---------------------------------------------------------------- infiller.pt

def write_infiller(path: Path, seed: int = 0) -> Path:
    """infiller.pt of a 1-layer, 32-wide infiller over 16-frame windows (released: 8 x 384 over 120)."""
    from hawor.compat.official_files import save_infiller
    from hawor.models.infiller import InfillerConfig, MotionInfiller

    torch.manual_seed(seed)
    return save_infiller(MotionInfiller(InfillerConfig(seq_len=16, d_model=32, nhead=4, d_hid=48, nlayers=1)), path)


# ---------------------------------------------------------------- droid.pth

def write_droid(path: Path, seed: int = 0) -> Path:
    """droid.pth of a DroidNet with a quarter of the released widths (encoder 8, features 16, GRU 16).

    Random weights: its flow revisions are near zero, so DROID-SLAM sees a camera that does not move
    (one keyframe, identity poses) - a complete run whose result is recognisably DROID's. (Forcing a
    flow above the motion filter's threshold makes every frame a keyframe: minutes of bundle
    adjustment on a CPU.)
    """
    from hawor.compat.official_files import save_droid
    from hawor.models.droid import DroidNet, DroidNetConfig

    torch.manual_seed(seed)
    return save_droid(DroidNet(DroidNetConfig(encoder_width=8, fnet_dim=16, cnet_dim=32, hidden_dim=16)), path)


# ---------------------------------------------------------------- Metric3D

# Not visible in any tensor shape, so stored in the file's `config` entry: 2 refinements (released: 8)
# on an 84 x 112 network input (released: 616 x 1064, whose full-resolution upsampling dominates on a CPU).
METRIC3D_SETTINGS = {"iters": 2, "input_size": (84, 112)}


def tiny_metric3d_config():
    """A 1-block, 64-wide Metric3D ViT (the released model is 24 x 1024); sizes the loader reads back."""
    from hawor.models.metric3d import Metric3DConfig

    return Metric3DConfig(embed_dim=64, depth=1, num_heads=1, mlp_hidden=128, pretrain_img_size=28,
                          feature_channels=(8, 16, 64, 64), decoder_channels=(8, 16, 16, 64, 64),
                          hidden_channels=(8, 8, 8, 8), **METRIC3D_SETTINGS)


def constant_depth_bin(depth_m: float, focal: float, image_size: tuple[int, int]) -> tuple[int, float]:
    """(bin, metric depth) of the depth bin closest to ``depth_m`` metres for frames of ``image_size``
    (W, H) at ``focal`` px, after HaWoR's canonical-to-metric conversion."""
    from hawor.depth.preprocess import canonical_to_metric_scale, preprocess_image

    cfg = tiny_metric3d_config()
    prepared = preprocess_image(np.zeros((image_size[1], image_size[0], 3), np.uint8), cfg.input_size)
    to_metric = canonical_to_metric_scale(prepared, focal, cfg.canonical_focal)
    lo, hi = cfg.depth_range
    bins = np.exp(np.linspace(math.log(lo), math.log(hi), cfg.num_depth_bins))
    k = int(np.argmin(np.abs(bins * to_metric - depth_m)))
    return k, float(bins[k] * to_metric)


def write_metric3d(path: Path, depth_bin: int, seed: int = 0) -> Path:
    """Metric3D weights whose depth is canonical bin ``depth_bin`` at every pixel.

    Random weights, except: the bin classifier picks ``depth_bin`` (zero weights, one large bias), the
    refinement adds nothing (zero depth/normal update convs) and the convex upsampling copies the
    centre neighbour, so the network's output is one known depth whatever the image.
    """
    from hawor.compat.official_files import save_metric3d
    from hawor.models.metric3d import Metric3D

    torch.manual_seed(seed)
    model = Metric3D(tiny_metric3d_config())
    decoder = model.depth_model.decoder
    factor = model.cfg.upsample_factor
    with torch.no_grad():
        classifier = decoder.depth_regressor[2]
        classifier.weight.zero_()
        classifier.bias.fill_(-50.0)
        classifier.bias[depth_bin] = 50.0
        for conv in (decoder.update_block.flow_head.conv2d, decoder.update_block.flow_head.conv2n):
            conv.weight.zero_()
            conv.bias.zero_()
        mask = decoder.update_block.mask[2]
        mask.weight.zero_()
        mask.bias.zero_()
        mask.bias.view(9, factor, factor)[4] = 400.0  # neighbour 4 of the 3x3 is the pixel itself
    return save_metric3d(model, path, METRIC3D_SETTINGS)
