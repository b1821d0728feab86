"""Window augmentation per DATASETS.CONFIG: one draw per window, so its frames stay temporally coherent.

Drawn once per window and applied to every frame:

- scale: box side x (1 + clip(N(0,1), -1, 1) * SCALE_FACTOR);
- translation (with probability TRANS_AUG_RATE): centre + clip(N(0,1), -1, 1) * TRANS_FACTOR * box side, per axis;
- rotation (ROT_AUG_RATE): clip(N(0,1), -2, 2) * ROT_FACTOR degrees; the crop turns about its centre and the
  ground truth (2D keypoints in the crop, root orientation and 3D joints) about the camera's optical axis,
  an approximation exact for crops centred on the principal point;
- colour: each RGB channel x U(1 - COLOR_SCALE, 1 + COLOR_SCALE);
- flip (DO_FLIP and FLIP_AUG_RATE): the window is cut from the mirrored image and its ground truth mirrored,
  i.e. a right hand is shown as a mirrored (left-looking) hand, and a left one unmirrored;
- extreme crop (EXTREME_CROP_AUG_RATE): the box shrinks to the labelled joints of one part of the hand
  (palm, or the fingers), chosen once per window.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hawor.configs import ConfigNode

# OpenPose order: 0 wrist, 1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 little.
_PARTS = (np.array([0, 1, 2, 5, 9, 13, 17]), np.array([3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20]))
_BOX_DILATION = 1.2


@dataclass
class WindowAugmentation:
    """The parameters drawn for one window (identity by default)."""

    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    flip: bool = False
    part: int | None = None

    @classmethod
    def draw(cls, rng: np.random.Generator, aug: ConfigNode) -> "WindowAugmentation":
        """Draw from DATASETS.CONFIG values (a fixed number of draws, so a seed gives the same stream)."""
        u = rng.random(5)
        n = rng.standard_normal(4)
        c = rng.uniform(1 - aug.get("COLOR_SCALE", 0.0), 1 + aug.get("COLOR_SCALE", 0.0), 3)
        part = int(rng.integers(0, len(_PARTS)))
        shift = np.clip(n[1:3], -1, 1) * aug.get("TRANS_FACTOR", 0.0) if u[0] < aug.get("TRANS_AUG_RATE", 0.0) \
            else np.zeros(2)
        rotation = float(np.clip(n[3], -2, 2) * aug.get("ROT_FACTOR", 0.0)) if u[1] < aug.get("ROT_AUG_RATE", 0.0) \
            else 0.0
        return cls(scale=float(1 + np.clip(n[0], -1, 1) * aug.get("SCALE_FACTOR", 0.0)),
                   shift=(float(shift[0]), float(shift[1])), rotation_deg=rotation,
                   color=tuple(float(x) for x in c),
                   flip=bool(aug.get("DO_FLIP", False) and u[2] < aug.get("FLIP_AUG_RATE", 0.0)),
                   part=part if u[3] < aug.get("EXTREME_CROP_AUG_RATE", 0.0) else None)

    def box(self, center: np.ndarray, scale: float, j2d: np.ndarray) -> tuple[np.ndarray, float]:
        """Crop centre (2,) px and scale of one frame after extreme crop, scale and translation."""
        if self.part is not None:
            joints = j2d[_PARTS[self.part]]
            joints = joints[np.isfinite(joints).all(-1)]
            if len(joints) >= 2:
                lo, hi = joints.min(0), joints.max(0)
                side = max(float((hi - lo).max()) * _BOX_DILATION, 0.3 * 200 * scale)
                center, scale = (lo + hi) / 2, side / 200
        side = 200 * scale
        return center + np.asarray(self.shift) * side, scale * self.scale

    def rotate_crop(self, crop: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 crop turned by ``rotation_deg`` about its centre (black corners), colour applied."""
        if self.rotation_deg:
            side = crop.shape[0]
            matrix = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), self.rotation_deg, 1.0)
            crop = cv2.warpAffine(crop, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        if self.color != (1.0, 1.0, 1.0):
            crop = np.clip(crop.astype(np.float32) * np.asarray(self.color, np.float32), 0, 255).astype(np.uint8)
        return crop

    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) camera-frame rotation about the optical axis matching the image rotation.

        cv2 turns the image content counter-clockwise on screen for a positive angle; with y down that is
        a rotation by -angle about +z in camera coordinates.
        """
        a = -np.deg2rad(self.rotation_deg)
        return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
