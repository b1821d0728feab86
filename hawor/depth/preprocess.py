"""HaWoR's Metric3D pre- and post-processing (one frame, batch 1).

The frame is fitted into the network input without distortion (OpenCV bilinear on uint8, as
the official code does, so the result is bit-exact), padded with the mean colour and
normalised. The network predicts depth for a canonical camera of focal 1000 px; the image is
not rescaled to that focal, the output is: metric = canonical * fx * s / 1000, at the resized
(unpadded) resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from hawor.errors import HaworInputError

MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)
CANONICAL_FOCAL = 1000.0
VALID_DEPTH_RANGE = (0.0, 300.0)


@dataclass(frozen=True)
class PreparedImage:
    """Network input and the geometry needed to undo it.

    image: (1, 3, H, W) float32 normalised RGB; resize_scale: s; resized_hw: (h, w) of the
    frame inside the padding; pad: (top, bottom, left, right) pixels.
    """

    image: torch.Tensor
    resize_scale: float
    resized_hw: tuple[int, int]
    pad: tuple[int, int, int, int]


def preprocess_image(frame_rgb: np.ndarray, input_size: tuple[int, int] = (616, 1064)) -> PreparedImage:
    """RGB uint8 (H0, W0, 3) -> PreparedImage for a network input of `input_size` (H, W)."""
    if not (isinstance(frame_rgb, np.ndarray) and frame_rgb.dtype == np.uint8
            and frame_rgb.ndim == 3 and frame_rgb.shape[2] == 3 and min(frame_rgb.shape[:2]) > 0):
        got = getattr(frame_rgb, "dtype", type(frame_rgb)), getattr(frame_rgb, "shape", None)
        raise HaworInputError(f"Metric3D frame: expected an RGB uint8 array (H, W, 3), got {got}.")
    net_h, net_w = input_size
    h0, w0 = frame_rgb.shape[:2]
    scale = min(net_h / h0, net_w / w0)
    h, w = int(scale * h0), int(scale * w0)
    resized = cv2.resize(frame_rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    pad_h, pad_w = net_h - h, net_w - w
    pad = (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)
    padded = cv2.copyMakeBorder(resized, *pad, cv2.BORDER_CONSTANT, value=MEAN_RGB)
    image = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).float()
    mean = torch.tensor(MEAN_RGB, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD_RGB, dtype=torch.float32)[:, None, None]
    return PreparedImage(((image - mean) / std)[None], scale, (h, w), pad)


def canonical_to_metric_scale(prepared: PreparedImage, fx: float,
                              canonical_focal: float = CANONICAL_FOCAL) -> float:
    """Factor from canonical depth to metres: fx * s / canonical focal (HaWoR uses fx alone)."""
    return fx * prepared.resize_scale / canonical_focal


def postprocess_depth(canonical_depth: torch.Tensor, prepared: PreparedImage, fx: float,
                      canonical_focal: float = CANONICAL_FOCAL) -> torch.Tensor:
    """Canonical depth (1, 1, H, W) or (H, W) -> metric depth (h, w) metres at the resized size.

    Values outside [0, 300] become 0 before rescaling (a no-op for the clamped network output).
    """
    depth = canonical_depth.reshape(canonical_depth.shape[-2:]).clone()
    lo, hi = VALID_DEPTH_RANGE
    depth[(depth > hi) | (depth < lo)] = 0
    top, bottom, left, right = prepared.pad
    depth = depth[top:depth.shape[0] - bottom, left:depth.shape[1] - right]
    return depth * canonical_to_metric_scale(prepared, fx, canonical_focal)
