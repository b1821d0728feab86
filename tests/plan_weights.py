"""Weight files for the backend-plan tests, placed and removed at their official paths.

The learned networks come from tests/learned_weights.py (tiny official layouts that load through
the run's own loaders); the detector is test_detection_yolo's untrained tiny YOLO (loads in a
second, no training); MANO is a random file in the official pickle layout.
"""
import os
import shutil
from pathlib import Path

import learned_weights as lw
from conftest import make_mano_layout, write_chumpy_style_pkl
from hawor.weights import OFFICIAL_PATHS

FILES = ("detector", "regressor", "infiller", "droid", "metric3d", "mano")
ARM_REACH_M = 0.5  # the Metric3D file's constant depth, for frames of CLIP_SIZE at CLIP_FOCAL
CLIP_SIZE, CLIP_FOCAL = (320, 240), 300.0


def build_store(store: Path) -> dict[str, list[Path]]:
    """One loadable file per kind (MANO: right and left; the regressor: checkpoint and config)."""
    from test_detection_yolo import tiny_detector

    store.mkdir(parents=True, exist_ok=True)
    ckpt, config = lw.write_regressor(store / "hawor" / "checkpoints" / "hawor.ckpt",
                                      store / "hawor" / "model_config.yaml")
    depth_bin, _ = lw.constant_depth_bin(ARM_REACH_M, CLIP_FOCAL, CLIP_SIZE)
    for side in ("right", "left"):
        write_chumpy_style_pkl(store / f"MANO_{side.upper()}.pkl", make_mano_layout(seed=1 if side == "right" else 2))
    return {"detector": [tiny_detector(store / "detector.pt", [(-9.0, 9.0)] * 3)],
            "regressor": [ckpt, config],
            "infiller": [lw.write_infiller(store / "infiller.pt")],
            "droid": [lw.write_droid(store / "droid.pth")],
            "metric3d": [lw.write_metric3d(store / "metric3d.pth", depth_bin)],
            "mano": [store / "MANO_RIGHT.pkl", store / "MANO_LEFT.pkl"]}


def official_paths(kind: str) -> list[str]:
    pairs = {"mano": ("mano_right", "mano_left"), "regressor": ("regressor", "regressor_config")}
    return [OFFICIAL_PATHS[name] for name in pairs.get(kind, (kind,))]


def place(root: Path, kind: str, sources: list[Path]) -> None:
    """Hard-link (or copy) ``sources`` where the run looks for ``kind`` under ``root`` (not symlinks:
    the regressor finds model_config.yaml from its checkpoint's resolved path)."""
    remove(root, kind)
    for source, rel in zip(sources, official_paths(kind)):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def remove(root: Path, kind: str) -> None:
    for rel in official_paths(kind):
        if (root / rel).is_symlink() or (root / rel).exists():
            (root / rel).unlink()


def embedded_root(root: Path) -> Path:
    """A project root holding only the embedded assets (linked from this checkout)."""
    from hawor._offline import PROJECT_ROOT

    for rel in (Path(OFFICIAL_PATHS["open_hand_right"]).parent, Path(OFFICIAL_PATHS["landmarks"])):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (root / rel).exists():
            (root / rel).symlink_to(Path(PROJECT_ROOT) / rel)
    return root
