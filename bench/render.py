"""Speed of hawor.render.OffscreenRenderer: both hands (open hand, 1552 faces each) over an RGB frame.

    .venv/bin/python bench/render.py [--size 640x480] [--frames 30]

Prints one JSON object: per backend and with / without instance masks, the median wall time and
median process CPU time per frame in milliseconds (CPU time is the fairer figure on a shared machine;
EGL's llvmpipe spreads a frame over several threads, so its wall time can be below its CPU time).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import hawor  # noqa: F401  (offline defaults, EGL)
import numpy as np
import torch

from hawor.errors import HaworInputError
from hawor.hands import HandModel
from hawor.render import Mesh, OffscreenRenderer


def hand_meshes() -> list[Mesh]:
    meshes = []
    for side, dx, color in (("left", -0.06, (0.8, 0.6, 0.8)), ("right", 0.06, (0.2, 0.6, 0.8))):
        model = HandModel(side, backend="open")
        v = model(torch.zeros(3), torch.full((45,), 0.1), torch.zeros(10)).vertices.detach().double().numpy()
        v = v - v.mean(0)
        # palm toward the camera, 0.5 m away: (x, y, z) -> (x, -z, y) is a proper rotation
        meshes.append(Mesh(np.stack([v[:, 0] + dx, -v[:, 2], v[:, 1] + 0.5], 1), model.faces, color=color))
    return meshes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    K = np.array([[600.0, 0, width / 2], [0, 600.0, height / 2], [0, 0, 1]])
    background = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    meshes = hand_meshes()
    result = {"size": args.size, "frames": args.frames, "load_average": os.getloadavg()[0]}
    for backend in ("egl", "numpy"):
        try:
            renderer = OffscreenRenderer(width, height, backend=backend)
        except HaworInputError as exc:
            result[backend] = str(exc)
            continue
        for masks in (False, True):
            renderer.render(meshes, K, background=background, return_masks=masks)
            wall, cpu = [], []
            for _ in range(args.frames):
                t, c = time.perf_counter(), time.process_time()
                renderer.render(meshes, K, background=background, return_masks=masks)
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            key = backend + ("+masks" if masks else "")
            result[key] = {"wall_ms": round(1000 * float(np.median(wall)), 1),
                           "cpu_ms": round(1000 * float(np.median(cpu)), 1)}
        renderer.close()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
