"""Camera trajectory: what the camera stage hands to world assembly, and its files.

Files (all written atomically):
- camera.npz: `T_world_cam` (N, 4, 4) metres, `K` (3, 3), `scale`, `keyframes` (K,), `method`;
- camera_tum.txt: one line per frame, `timestamp tx ty tz qx qy qz qw` (camera-to-world, metres);
- the official HaWoR layout (`hawor_slam_w_scale_{start}_{end}.npz`): `traj` (N, 7) = [t, qx, qy, qz, qw]
  camera-to-world **unscaled**, `scale`, `tstamp` (K,) keyframe indices, `disps` (K, h, w) float32
  unscaled keyframe disparity (0 where unknown), `img_focal`, `img_center` (2,) the principal point
  (W/2, H/2 unless given).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hawor.errors import HaworInputError
from hawor.io.files import save_npz_atomic, write_text_atomic


class SparseDisparities:
    """(K, h, w) keyframe disparity maps kept as their non-zero pixels; indexing gives dense float32.

    The classical backend knows a few hundred points per keyframe: dense maps at DROID's working size
    (~0.75 MB each at 1080p) would take gigabytes on a 10-minute video's thousands of keyframes.

    Args:
        size_hw: (h, w) of each map; pixels: per keyframe (rows (M,), cols (M,), disparity (M,)).
    """

    ndim = 3

    def __init__(self, size_hw: tuple[int, int], pixels: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.pixels = pixels

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.pixels), *self.size_hw)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index):
        if np.ndim(index) == 0:
            out = np.zeros(self.size_hw, np.float32)
            rows, cols, disp = self.pixels[int(index)]
            out[rows, cols] = disp
            return out
        return np.stack([self[int(k)] for k in np.asarray(index).ravel()]) if len(index) \
            else np.zeros((0, *self.size_hw), np.float32)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        dense = self[np.arange(len(self))]
        return dense if dtype is None else dense.astype(dtype)


@dataclass
class CameraTrajectory:
    """Per-frame camera-to-world poses in metres.

    Attributes:
        T_world_cam: (N, 4, 4) float64 camera-to-world, metric (scale already applied); the world frame
            is the first camera's frame unless stated otherwise.
        K: (3, 3) intrinsics used.
        scale: metric scale that was applied to the unscaled reconstruction.
        keyframes: (K,) int64 frame indices used as keyframes.
        method: which backend and scale method produced it (for the run summary).
        warnings: human-readable warnings (e.g. "static camera: identity poses").
        disps: optional (K, h, w) float32 unscaled disparity of the keyframes (0 where unknown), an
            array or `SparseDisparities`.
        timings: seconds spent per step, for the run summary.
    """

    T_world_cam: np.ndarray
    K: np.ndarray
    scale: float = 1.0
    keyframes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    method: str = ""
    warnings: list[str] = field(default_factory=list)
    disps: np.ndarray | SparseDisparities | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.T_world_cam))

    def save(self, folder: str | os.PathLike, fps: float | None = None, run_id: str | None = None) -> tuple[Path, Path]:
        """Write camera.npz and camera_tum.txt into `folder`; returns both paths. ``run_id``: the run
        that writes them, stored in camera.npz (docs/outputs.md)."""
        folder = Path(folder)
        extra = {"run_id": np.str_(run_id)} if run_id is not None else {}
        npz = save_npz_atomic(folder / "camera.npz", T_world_cam=np.asarray(self.T_world_cam, np.float64),
                              K=np.asarray(self.K, np.float64), scale=np.float64(self.scale),
                              keyframes=np.asarray(self.keyframes, np.int64), method=np.str_(self.method), **extra)
        tum = write_text_atomic(folder / "camera_tum.txt", self.to_tum(fps))
        return npz, tum

    def to_tum(self, fps: float | None = None) -> str:
        """TUM trajectory text; timestamps in seconds when fps is given, else frame indices."""
        q = _matrix_to_quat_xyzw(self.T_world_cam[:, :3, :3])
        t = self.T_world_cam[:, :3, 3]
        stamps = np.arange(len(self), dtype=np.float64) / (fps if fps else 1.0)
        lines = ["# timestamp tx ty tz qx qy qz qw (camera-to-world, metres)"]
        lines += [f"{s:.6f} " + " ".join(f"{v:.9f}" for v in (*ti, *qi)) for s, ti, qi in zip(stamps, t, q)]
        return "\n".join(lines) + "\n"

    def save_official(self, path: str | os.PathLike) -> Path:
        """Write the official `hawor_slam_w_scale_*.npz` layout (translation unscaled) to `path`."""
        scale = float(self.scale) if self.scale else 1.0
        traj = np.concatenate([self.T_world_cam[:, :3, 3] / scale, _matrix_to_quat_xyzw(self.T_world_cam[:, :3, :3])], 1)
        disps = self.disps if self.disps is not None else np.zeros((len(self.keyframes), 1, 1), np.float32)
        return save_npz_atomic(path, traj=traj.astype(np.float64), scale=np.float64(scale),
                               tstamp=np.asarray(self.keyframes, np.int64), disps=np.asarray(disps, np.float32),
                               img_focal=np.float64(self.K[0, 0]), img_center=np.array(self.K[:2, 2], np.float64))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CameraTrajectory":
        """Read camera.npz (this project's layout) or an official hawor_slam_w_scale_*.npz."""
        path = Path(path)
        if not path.is_file():
            raise HaworInputError(f"camera file {path} does not exist; run the camera stage first")
        with np.load(path, allow_pickle=False) as data:
            if "T_world_cam" in data:
                T = np.asarray(data["T_world_cam"], np.float64)
                if T.ndim != 3 or T.shape[1:] != (4, 4):
                    raise HaworInputError(f"{path}: T_world_cam has shape {T.shape}, expected (N, 4, 4)")
                return cls(T, np.asarray(data["K"], np.float64), float(data["scale"]),
                           np.asarray(data["keyframes"], np.int64), str(data["method"]) if "method" in data else "")
            if "traj" in data:
                return cls._from_official(data, path)
        raise HaworInputError(f"{path}: neither a camera.npz (T_world_cam) nor an official SLAM file (traj)")

    @classmethod
    def _from_official(cls, data, path: Path) -> "CameraTrajectory":
        traj = np.asarray(data["traj"], np.float64)
        if traj.ndim != 2 or traj.shape[1] != 7:
            raise HaworInputError(f"{path}: traj has shape {traj.shape}, expected (N, 7) = [t, qx, qy, qz, qw]")
        scale = float(data["scale"])
        T = np.tile(np.eye(4), (len(traj), 1, 1))
        T[:, :3, :3] = _quat_xyzw_to_matrix(traj[:, 3:])
        T[:, :3, 3] = traj[:, :3] * scale
        f = float(data["img_focal"])
        cx, cy = np.asarray(data["img_center"], np.float64)
        K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
        return cls(T, K, scale, np.asarray(data["tstamp"], np.int64), "official npz",
                   disps=np.asarray(data["disps"], np.float32))


def _matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    import torch

    from hawor.geometry import matrix_to_quat_xyzw

    return matrix_to_quat_xyzw(torch.as_tensor(np.asarray(R, np.float64))).numpy()


def _quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    import torch

    from hawor.geometry import quat_xyzw_to_matrix

    q = np.asarray(q, np.float64)
    return quat_xyzw_to_matrix(torch.as_tensor(q / np.linalg.norm(q, axis=1, keepdims=True))).numpy()
