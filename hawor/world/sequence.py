"""Full-length per-hand MANO sequences with observed / infilled / valid masks."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hawor.estimation.result import CameraSpaceHand

PARAM_SHAPES = {"global_orient": (3,), "hand_pose": (45,), "betas": (10,), "transl": (3,)}


@dataclass
class HandSequence:
    """MANO parameters of one hand for every frame of a video, in one frame of reference.

    Attributes:
        side: "left" or "right" (left hands in left-MANO convention).
        global_orient: (N, 3) axis-angle root rotation.
        hand_pose: (N, 45) axis-angle, 15 MANO joints.
        betas: (N, 10) shape coefficients.
        transl: (N, 3) metres (MANO ``transl``).
        observed: (N,) bool, a detection drove this frame.
        infilled: (N,) bool, filled in by the infiller or interpolation.
    All parameters are NaN on frames that are neither observed nor infilled.
    """

    side: str
    global_orient: np.ndarray
    hand_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    observed: np.ndarray
    infilled: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.observed | self.infilled

    def __len__(self) -> int:
        return len(self.observed)

    @classmethod
    def empty(cls, side: str, num_frames: int) -> "HandSequence":
        nan = {k: np.full((num_frames, *s), np.nan) for k, s in PARAM_SHAPES.items()}
        flags = np.zeros(num_frames, bool)
        return cls(side, observed=flags, infilled=flags.copy(), **nan)

    @classmethod
    def from_camera_space(cls, hand: CameraSpaceHand, num_frames: int) -> "HandSequence":
        """Scatter the observed frames of a camera-space estimate into a full-length sequence."""
        seq = cls.empty(hand.side, num_frames)
        idx = np.asarray(hand.frame_indices, np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= num_frames):
            raise ValueError(f"{hand.side} hand: frame indices outside 0..{num_frames - 1}")
        for key in PARAM_SHAPES:
            getattr(seq, key)[idx] = np.asarray(getattr(hand, key), np.float64).reshape(len(idx), -1)
        seq.observed[idx] = True
        return seq

    def params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in PARAM_SHAPES}

    def with_params(self, **changes) -> "HandSequence":
        """A copy with some parameter arrays or masks replaced; invalid frames are set to NaN."""
        seq = replace(self, **changes)
        for key in PARAM_SHAPES:
            values = np.array(getattr(seq, key), np.float64, copy=True)
            values[~seq.valid] = np.nan
            setattr(seq, key, values)
        return seq

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays named as in the result files: ``{side}_global_orient`` ... ``{side}_valid``."""
        out = {f"{self.side}_{k}": v for k, v in self.params().items()}
        out.update({f"{self.side}_observed": self.observed, f"{self.side}_infilled": self.infilled,
                    f"{self.side}_valid": self.valid})
        return out

    @classmethod
    def from_arrays(cls, arrays, side: str) -> "HandSequence":
        """Inverse of :meth:`to_arrays` (``arrays`` may be an open npz file)."""
        return cls(side, **{k: np.asarray(arrays[f"{side}_{k}"], np.float64) for k in PARAM_SHAPES},
                   observed=np.asarray(arrays[f"{side}_observed"], bool),
                   infilled=np.asarray(arrays[f"{side}_infilled"], bool))
