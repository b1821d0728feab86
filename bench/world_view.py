"""World view on a walking wearer: hand size on screen and render speed, follow vs overview viewpoint.

    .venv/bin/python bench/world_view.py [--seed 3] [--frames 240] [--walk 1.5] [--size 640 480]
        [--png docs/images/world_follow.png]

The generator's wearer walks ``--walk`` metres (at most 1.5) up to the table between 20 % and 80 %
of the clip, carrying the hands along. The ground-truth hands are shown on the frames where they are
visible. Prints one JSON object: per viewpoint the median width in pixels of
each hand's projected joints, the share of valid hand-frames with every joint inside the view, and
frames/s of rendering; ``--png`` writes frame ``--frame`` of both viewpoints side by side.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import hawor  # noqa: F401  (offline defaults, EGL)
import cv2
import numpy as np

from hawor.data.synthetic.camera import MAX_WALK_M
from hawor.data.synthetic.generate import simulate
from hawor.data.synthetic.truth import hand_arrays
from hawor.hands import HandModel
from hawor.io.files import atomic_path
from hawor.vis.views import WorldView
from hawor.world.assemble import hand_joints
from hawor.world.sequence import HandSequence


def walking_wearer(seed: int, frames: int, walk: float, size=(640, 480)):
    """(hands {side: HandSequence} world frame, T_world_cam (N, 4, 4), K, models) of the generator's
    wearer walking ``walk`` metres up to the table; the open hand model so every machine gets the
    same pictures."""
    sim = simulate(seed, frames, *size, hand_backend="open", walk=walk)
    arrays = hand_arrays(sim, "world")
    hands = {side: HandSequence.from_arrays(arrays, side).with_params() for side in sim.hands}
    models = {side: HandModel(side, backend="open").double() for side in hands}
    return hands, sim.T_world_cam, sim.K, models


def hand_widths(view: WorldView, joints: dict[str, np.ndarray]) -> dict:
    """Per side: median width (px) of the projected joints' box, and the share of frames fully in view."""
    out = {}
    for side, pts in joints.items():
        T = view.T_world_view
        cam = np.einsum("nij,nkj->nki", np.transpose(T[:, :3, :3], (0, 2, 1)), pts - T[:, None, :3, 3])
        uv = cam[..., :2] / cam[..., 2:] * np.diag(view.view_K)[:2] + view.view_K[:2, 2]
        ok = np.isfinite(uv).all(axis=(1, 2))
        inside = ((uv >= 0) & (uv < view.size)).all(axis=(1, 2)) & (cam[..., 2] > 0).all(1)
        width = np.ptp(uv[ok], axis=1).max(1)
        out[side] = {"median_width_px": round(float(np.median(width)), 1),
                     "in_view": round(float(inside[ok].mean()), 3)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--walk", type=float, default=MAX_WALK_M, help="metres walked up to the table")
    parser.add_argument("--frame", type=int, default=None, help="frame for --png (default: last with both hands)")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--png", type=Path, default=None)
    args = parser.parse_args()
    size = tuple(args.size)
    hands, T_world_cam, K, models = walking_wearer(args.seed, args.frames, args.walk, size)
    joints = {side: hand_joints(seq, models[side]) for side, seq in hands.items()}
    both = np.flatnonzero(hands["left"].observed & hands["right"].observed)
    frame = args.frame if args.frame is not None else int(both[-1]) if len(both) else args.frames - 1
    report = {"seed": args.seed, "frames": args.frames, "walk_m": args.walk, "size": size, "frame": frame}
    pictures = []
    for viewpoint in ("follow", "overview"):
        start = time.perf_counter()
        view = WorldView(hands, models, T_world_cam, K, size, viewpoint=viewpoint)
        try:
            rendered = [np.array(f) for f in view.frames()]
        finally:
            view.close()
        elapsed = time.perf_counter() - start
        report[viewpoint] = {**hand_widths(view, joints), "render_fps": round(args.frames / elapsed, 1)}
        pictures.append(rendered[frame])
    if args.png:
        with atomic_path(args.png) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(np.concatenate(pictures, axis=1), cv2.COLOR_RGB2BGR))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
