"""Camera-space hands: what estimation (regressor or keypoint fit) hands to world assembly."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CameraSpaceHand:
    """MANO parameters of one hand in the camera frame, for the frames where it was observed.

    Attributes:
        side: "left" or "right" (left hands are already in left-MANO convention).
        frame_indices: (M,) int64 increasing frame indices.
        global_orient: (M, 3) axis-angle, camera frame.
        hand_pose: (M, 45) axis-angle, 15 MANO joints in MANO order.
        betas: (M, 10) shape coefficients.
        transl: (M, 3) metres, camera frame (MANO ``transl``: added after skinning).
        confidence: (M,) in [0, 1]; higher is better (detector score or fit quality).
    """

    side: str
    frame_indices: np.ndarray
    global_orient: np.ndarray
    hand_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return int(len(self.frame_indices))
