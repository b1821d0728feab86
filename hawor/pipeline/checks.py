"""Every file a run may read, checked by loading it the way the run will (shapes included).

Networks are built on the meta device and checkpoints read memory-mapped where the loader allows,
so a check costs little memory; the strict key and shape comparison is the run's own. The backend
plan (:mod:`hawor.pipeline.plan`) and ``python -m hawor doctor`` both decide from these results.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from hawor.errors import HaworInputError


@dataclass(frozen=True)
class FileCheck:
    """One file (or set of files) the run may read: where, whether it is there, whether it loads."""

    label: str
    path: Path | None
    present: bool
    loadable: bool
    detail: str

    @property
    def state(self) -> str:
        return "loadable" if self.loadable else ("present but not loadable" if self.present else "absent")


def _check(label: str, path: Path | None, load: Callable[[Path], str]) -> FileCheck:
    """``load(path)`` returns a detail line or raises HaworInputError (what the run would raise)."""
    if path is None or not Path(path).exists():
        return FileCheck(label, path, False, False, "not present")
    try:
        return FileCheck(label, path, True, True, load(Path(path)))
    except HaworInputError as exc:
        return FileCheck(label, path, True, False, str(exc))


def dry_load(load: Callable, *args, **kwargs):
    """Run a loader with every module built on the meta device: keys and shapes are compared as in
    a real load, but no weights are copied."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*meta parameter.*")
        with torch.device("meta"):
            return load(*args, **kwargs)


def check_detector(path: Path | None) -> FileCheck:
    def load(p: Path) -> str:
        from hawor.detection.yolo import check_detector_file, load_yolo

        check_detector_file(p)  # refuses code-carrying or unreadable files before ultralytics sees them
        try:
            names = load_yolo(p).names
        except Exception as exc:  # ultralytics raises many types for a file it cannot use
            raise HaworInputError(f"hand detector {p}: ultralytics cannot load it ({type(exc).__name__}: {exc}). "
                                  "Download WiLoR's detector.pt again.") from exc
        return f"classes {dict(names)}"
    return _check("detector (YOLO)", path, load)


def check_regressor(path: Path | None, config: Path | None) -> FileCheck:
    def load(p: Path) -> str:
        from hawor.estimation.regressor import load_regressor

        if config is None or not config.is_file():
            raise HaworInputError(f"regressor config {config}: not found; the HaWoR regressor needs "
                                  "model_config.yaml beside its checkpoints folder (see weights/README.md).")
        model = dry_load(load_regressor, p, config, mmap=True)
        return f"{sum(t.numel() for t in model.state_dict().values()) / 1e6:.0f} M values, config {config.name}"
    return _check("regressor (HaWoR)", path, load)


def check_infiller(path: Path | None) -> FileCheck:
    def load(p: Path) -> str:
        from hawor.world.infill import load_infiller

        cfg = dry_load(load_infiller, p, device="meta").config
        return f"window {cfg.seq_len}, width {cfg.d_model}, {cfg.nlayers} layers"
    return _check("infiller", path, load)


def check_droid(path: Path | None) -> FileCheck:
    def load(p: Path) -> str:
        from hawor.slam.droid.loading import load_droid_net

        net = dry_load(load_droid_net, p, device="meta")
        return f"{sum(t.numel() for t in net.state_dict().values()) / 1e6:.1f} M values"
    return _check("DROID-SLAM", path, load)


def check_metric3d(path: Path | None) -> FileCheck:
    def load(p: Path) -> str:
        from hawor.depth.loading import load_metric3d

        model = dry_load(load_metric3d, p, device="meta")
        return f"{sum(t.numel() for t in model.state_dict().values()) / 1e6:.0f} M values"
    return _check("Metric3D v2 ViT", path, load)


def check_mano(side: str, path: Path) -> FileCheck:
    def load(p: Path) -> str:
        from hawor.hands.mano_io import read_mano_file

        return f"{len(read_mano_file(p)['v_template'])} vertices"
    return _check(f"MANO {side}", path, load)


def check_landmarks() -> FileCheck:
    from hawor.detection.landmark_assets import check_landmark_models, default_landmark_dir, find_landmark_models

    status = check_landmark_models()
    present = all(s != "missing" for s in status.values())
    if not all(s == "ok" for s in status.values()):
        detail = ", ".join(f"{k} {v}" for k, v in status.items() if v != "ok") + " (fix: `python -m hawor.assets`)"
        return FileCheck("landmark models (embedded)", default_landmark_dir(), present, False, detail)
    try:
        from ai_edge_litert.interpreter import Interpreter

        Interpreter(model_path=str(find_landmark_models()["palm_full"])).allocate_tensors()
    except Exception as exc:  # the interpreter raises plain RuntimeError/ValueError on bad files
        return FileCheck("landmark models (embedded)", default_landmark_dir(), True, False,
                         f"ai-edge-litert cannot run them: {type(exc).__name__}: {exc}")
    return FileCheck("landmark models (embedded)", default_landmark_dir(), True, True,
                     "4 .tflite files, sha256 verified")


def check_open_hand(paths: list[Path]) -> FileCheck:
    from hawor.hands.mano_io import read_mano_file

    folder = paths[0].parent
    if not all(p.is_file() for p in paths):
        return FileCheck("open hand (embedded)", folder, False, False,
                         "not generated yet: run `python -m hawor.assets` (done by scripts/setup.sh)")
    try:
        for path in paths:
            read_mano_file(path)
    except HaworInputError as exc:
        return FileCheck("open hand (embedded)", folder, True, False, str(exc))
    return FileCheck("open hand (embedded)", folder, True, True, "MANO-format, generated by this project")
