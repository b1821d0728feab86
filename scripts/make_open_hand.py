"""Write the open hand (MANO_RIGHT.pkl, MANO_LEFT.pkl) and optionally its picture.

    python scripts/make_open_hand.py                       # -> _DATA/open_hand/ (skipped when current)
    python scripts/make_open_hand.py --out DIR --figure docs/images/open_hand.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import hawor  # noqa: F401  (offline defaults, EGL)
from hawor.hands.open_hand import OPEN_HAND_FILES, ensure_open_hand

_FLEX = np.array([0.0, 0.0, 1.0])         # finger flexion axis of the right hand (MANO frame)
_CURL = {1: 1.4, 2: 1.6, 3: 0.9, 4: 1.45, 5: 1.6, 6: 0.9, 7: 1.5, 8: 1.6, 9: 0.9, 10: 1.45, 11: 1.6, 12: 0.9}
# Thumb across the curled index and middle fingers (solved once like the pinch below).
_THUMB_OVER = {13: np.array([0.29, -0.40, -0.11]), 14: np.array([0.20, -0.08, -0.05]), 15: np.array([0.47, -0.35, 0.05])}
# Pinch: index and thumb values solved once (gradient descent through the model) to bring tip 744 onto 320.
_PINCH = {1: np.array([0.04, -0.03, 0.87]), 2: np.array([0.02, -0.03, 0.87]), 3: np.array([0.01, -0.02, 0.51]),
          4: 0.3 * _FLEX, 5: 0.3 * _FLEX, 7: 0.4 * _FLEX, 8: 0.3 * _FLEX, 10: 0.35 * _FLEX, 11: 0.3 * _FLEX,
          13: np.array([0.41, -0.40, 0.05]), 14: np.array([0.13, -0.06, 0.08]), 15: np.array([0.11, -0.04, 0.04])}


def demo_poses() -> dict[str, np.ndarray]:
    """Right-hand poses (15, 3) axis-angle, MANO joint order: flat, fist, pointing, pinch."""
    def pose(joints: dict) -> np.ndarray:
        p = np.zeros((15, 3))
        for j, value in joints.items():
            p[j - 1] = value * _FLEX if np.isscalar(value) else value
        return p

    pointing = {j: v for j, v in _CURL.items() if j > 3}
    return {"flat": pose({}), "fist": pose({**_CURL, **_THUMB_OVER}),
            "pointing": pose({**pointing, **_THUMB_OVER}), "pinch": pose(_PINCH)}


def render_figure(folder: Path, out_path: Path, tile: int = 240) -> Path:
    """Grid of the demo poses: rows right back, right palm, left back, left palm."""
    import torch
    from PIL import Image

    from hawor.hands import HandModel
    from hawor.io.files import atomic_path
    from hawor.render import Mesh, OffscreenRenderer
    from hawor.vis.objects import look_at

    focal = 2.0 * tile
    K = np.array([[focal, 0, tile / 2], [0, focal, tile / 2], [0, 0, 1.0]])
    views = {"back": np.array([0.03, 0.40, 0.24]), "palm": np.array([0.03, -0.36, 0.30])}
    colors = {"right": (0.86, 0.66, 0.55), "left": (0.78, 0.62, 0.72)}
    rows = []
    with OffscreenRenderer(tile, tile) as renderer:
        for side in ("right", "left"):
            model = HandModel(side, model_path=folder / OPEN_HAND_FILES[side])
            flip = np.array([-1.0, 1.0, 1.0]) if side == "left" else np.ones(3)
            for view in views.values():
                row = []
                for pose in demo_poses().values():
                    pose = pose * (np.array([1.0, -1.0, -1.0]) if side == "left" else 1.0)
                    out = model(torch.zeros(3), torch.tensor(pose.reshape(45), dtype=torch.float32), torch.zeros(10))
                    v = out.vertices.detach().double().numpy()
                    centre = (v.max(0) + v.min(0)) / 2
                    T = look_at(centre + view * flip, centre, up=np.array([-1.0, 0.0, 0.0]) * flip)
                    row.append(renderer.render([Mesh(v, model.faces, color=colors[side])], K, T).rgb)
                rows.append(np.concatenate(row, axis=1))
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default _DATA/open_hand/)")
    parser.add_argument("--figure", type=Path, default=None, help="also render the demo poses to this PNG")
    args = parser.parse_args(argv)
    folder = ensure_open_hand(args.out)
    print(f"open hand: {folder / OPEN_HAND_FILES['right']}, {folder / OPEN_HAND_FILES['left']}")
    if args.figure is not None:
        print(f"figure: {render_figure(folder, args.figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
