"""Pinhole intrinsics of one image size: the one K of a run, rescaled for every working resolution.

Pixel convention: u = fx x / z + cx, v = fy y / z + cy; OpenCV camera axes (x right, y down, z
forward). Without a given principal point it sits at the image centre (W/2, H/2) and without a
focal length it is DEFAULT_FOCAL pixels, as the official demo assumes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hawor.errors import HaworInputError

DEFAULT_FOCAL = 600.0  # pixels; the official demo's value when the focal length is not given


@dataclass(frozen=True)
class Intrinsics:
    """fx, fy, cx, cy in pixels of an image of ``size`` = (W, H) pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    size: tuple[int, int]

    @classmethod
    def default(cls, size: tuple[int, int], focal: float | None = None,
                center: tuple[float, float] | None = None) -> "Intrinsics":
        """``focal`` pixels (DEFAULT_FOCAL when None) and ``center`` (the image centre when None).

        Raises HaworInputError for a focal length or centre that is not a finite positive number.
        """
        w, h = int(size[0]), int(size[1])
        f = DEFAULT_FOCAL if focal is None else float(focal)
        if not (math.isfinite(f) and f > 0):
            raise HaworInputError(f"img_focal {focal}: the focal length must be a finite positive number (pixels).")
        cx, cy = (w / 2, h / 2) if center is None else (float(center[0]), float(center[1]))
        if not all(math.isfinite(v) for v in (cx, cy)):
            raise HaworInputError(f"img_center {center}: the principal point must be two finite numbers (pixels).")
        return cls(f, f, cx, cy, (w, h))

    @classmethod
    def from_K(cls, K, size: tuple[int, int]) -> "Intrinsics":
        """From a (3, 3) matrix (numpy or torch) of an image of ``size`` = (W, H)."""
        K = np.asarray(K, np.float64)
        if K.shape != (3, 3):
            raise HaworInputError(f"intrinsics K has shape {K.shape}, expected (3, 3)")
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), (int(size[0]), int(size[1])))

    @property
    def focal(self) -> float:
        """The focal length in pixels (fx; the regressor and the keypoint fit assume square pixels)."""
        return self.fx

    @property
    def center(self) -> tuple[float, float]:
        """The principal point (cx, cy) in pixels."""
        return self.cx, self.cy

    def K(self) -> np.ndarray:
        """(3, 3) float64 numpy matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def K_torch(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """(3, 3) torch matrix."""
        return torch.as_tensor(self.K(), dtype=dtype, device=device)

    def scaled(self, size: tuple[int, int]) -> "Intrinsics":
        """The same camera seen in the image resized to ``size`` = (W, H) (pixel edges kept aligned)."""
        sx, sy = size[0] / self.size[0], size[1] / self.size[1]
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, (int(size[0]), int(size[1])))

    def project(self, points_cam, min_depth: float | None = None):
        """Points (..., 3) metres, camera frame -> pixels (..., 2); numpy in, numpy out; torch in, torch out.

        ``min_depth``: depths are clamped to at least this (metres), for points at or behind the lens.
        """
        if isinstance(points_cam, torch.Tensor):
            z = points_cam[..., 2:3] if min_depth is None else points_cam[..., 2:3].clamp_min(min_depth)
            f = points_cam.new_tensor([self.fx, self.fy])
            c = points_cam.new_tensor([self.cx, self.cy])
        else:
            points_cam = np.asarray(points_cam, np.float64)
            z = points_cam[..., 2:3] if min_depth is None else np.maximum(points_cam[..., 2:3], min_depth)
            f, c = np.array([self.fx, self.fy]), np.array([self.cx, self.cy])
        return points_cam[..., :2] / z * f + c

    def as_dict(self) -> dict:
        """For summary.json."""
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "size": list(self.size)}
