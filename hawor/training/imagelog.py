"""Crops with true (green) and predicted (red) 2D keypoints, for TensorBoard."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from hawor.estimation.crop import IMAGENET_MEAN, IMAGENET_STD

_SHOWN = 8
_SIDE = 128


def keypoint_grid(batch: dict, pred_j2d: torch.Tensor) -> np.ndarray:
    """The first window's first frames as (K, 128, 128 * W / H, 3) uint8 images with keypoints drawn.

    ``batch["images"]`` (B, T, 3, H, W) normalised crops; keypoints (B, T, 21, 2) normalised crop coordinates
    of the square crop whose central W columns the network sees.
    """
    images = batch["images"][0, :_SHOWN].float().cpu()
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = ((images * std + mean).clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
    height, width = pixels.shape[1:3]
    zoom = _SIDE / height
    out = []
    for k, crop in enumerate(pixels):
        canvas = np.ascontiguousarray(cv2.resize(crop, (round(width * zoom), _SIDE), interpolation=cv2.INTER_NEAREST))
        for points, color in ((batch["j2d"][0, k], (0, 255, 0)), (pred_j2d[0, k], (255, 0, 0))):
            xy = (points.float().cpu().numpy() + 0.5) * height
            xy[:, 0] -= (height - width) / 2
            for x, y in xy * zoom:
                if np.isfinite(x) and np.isfinite(y):
                    cv2.circle(canvas, (int(round(x)), int(round(y))), 2, color, -1)
        out.append(canvas)
    return np.stack(out)
