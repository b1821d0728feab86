"""Exports of a result: a rerun recording (.rrd) and per-frame hand meshes (.ply / .obj), world frame.

The animated GLB is :mod:`hawor.vis.gltf`, the Parquet row :mod:`hawor.pipeline.parquet`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from hawor.hands import HandModel
from hawor.io.files import atomic_path
from hawor.vis.objects import HAND_COLORS
from hawor.vis.views import hand_meshes_per_frame
from hawor.world.sequence import HandSequence

EXPORT_FORMATS = ("rerun", "ply", "obj", "parquet", "glb")


def export_rerun(path: str | Path, hands: dict[str, HandSequence], models: dict[str, HandModel],
                 joints: dict[str, np.ndarray], T_world_cam: np.ndarray, K: np.ndarray,
                 image_size: tuple[int, int], fps: float) -> Path:
    """A rerun recording: hand meshes and joints, the camera (pose + pinhole) and its path, per frame.

    Open it with ``rerun <path>`` (the viewer ships with rerun-sdk).
    """
    import rerun as rr

    path = Path(path)
    with atomic_path(path) as tmp:
        rec = rr.RecordingStream("hawor")
        rec.save(tmp)
        rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Y_DOWN, static=True)  # OpenCV axes
        rec.log("world/camera_path", rr.LineStrips3D([T_world_cam[:, :3, 3]], colors=[(90, 90, 90)]), static=True)
        rec.log("world/camera/image", rr.Pinhole(image_from_camera=K, resolution=list(image_size)), static=True)
        frames = np.arange(len(T_world_cam))
        for t, meshes in zip(frames, hand_meshes_per_frame(hands, models, frames)):
            rec.set_time("frame", sequence=int(t))
            rec.set_time("time", duration=float(t) / fps)
            rec.log("world/camera", rr.Transform3D(translation=T_world_cam[t, :3, 3], mat3x3=T_world_cam[t, :3, :3]))
            drawn = dict(zip([side for side, seq in hands.items() if seq.valid[t]], meshes))
            for side in hands:
                if side in drawn:
                    rec.log(f"world/{side}_hand", rr.Mesh3D(vertex_positions=drawn[side].vertices,
                                                            triangle_indices=drawn[side].faces,
                                                            albedo_factor=[*HAND_COLORS[side], 1.0]))
                    rec.log(f"world/{side}_joints", rr.Points3D(joints[side][t], radii=0.004))
                else:
                    rec.log(f"world/{side}_hand", rr.Clear(recursive=False))
                    rec.log(f"world/{side}_joints", rr.Clear(recursive=False))
        rec.flush()
        rec.disconnect()
    return path


def export_meshes(folder: str | Path, hands: dict[str, HandSequence], models: dict[str, HandModel],
                  fmt: str = "ply") -> int:
    """One mesh file per valid hand and frame: ``<folder>/<frame:06d>_<side>.<fmt>``; returns the count."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.arange(len(next(iter(hands.values()))))
    count = 0
    for t, meshes in zip(frames, hand_meshes_per_frame(hands, models, frames)):
        sides = [side for side, seq in hands.items() if seq.valid[t]]
        for side, mesh in zip(sides, meshes):
            with atomic_path(folder / f"{t:06d}_{side}.{fmt}") as tmp:
                trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(tmp, file_type=fmt)
            count += 1
    return count
