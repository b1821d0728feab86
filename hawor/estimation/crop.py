"""Hand crops for the HaWoR regressor, with the official preprocessing (docs/architecture.md).

A box becomes a square of side 1.2 * max(w, h) around its centre; that window of the (for left hands,
mirrored) image is cut out with zeros outside the image, resized to ``crop_size`` x ``crop_size`` with
scikit-image's anti-aliased bilinear resize, truncated to uint8, normalised with the ImageNet
statistics, and only the central ``width`` columns are kept for the encoder.
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.transform import resize

from hawor.geometry import BOX_SCALE_UNIT

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mirror_center(center: np.ndarray, image_width: int) -> np.ndarray:
    """Box centre (..., 2) pixels -> the same point in the horizontally mirrored image (x -> W - x - 1)."""
    center = np.array(center, dtype=np.float64, copy=True)
    center[..., 0] = image_width - center[..., 0] - 1
    return center


def crop_window(center: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Square crop window in image pixels: upper-left (x, y) inclusive, bottom-right (x, y) exclusive.

    Corners are truncated toward zero, like the official crop (side = 200 * scale + 1e-6).
    """
    half = (BOX_SCALE_UNIT * scale + 1e-6) / 2
    upper_left = np.trunc(np.asarray(center, dtype=np.float64) - half).astype(np.int64)
    bottom_right = np.trunc(np.asarray(center, dtype=np.float64) + half).astype(np.int64)
    return upper_left, bottom_right


def crop_hand(image: np.ndarray, center: np.ndarray, scale: float, crop_size: int = 256,
              mirror: bool = False) -> np.ndarray:
    """Cut one hand crop.

    Args:
        image: (H, W, 3) uint8 RGB full frame.
        center: (2,) box centre (x, y) in pixels of the original (un-mirrored) image.
        scale: dilated square side / 200.
        crop_size: output side in pixels.
        mirror: cut from the horizontally mirrored image around the mirrored centre (left hands).
    Returns:
        (crop_size, crop_size, 3) uint8 crop; parts outside the image are black.
    """
    if mirror:
        image = image[:, ::-1]
        center = mirror_center(center, image.shape[1])
    (x0, y0), (x1, y1) = crop_window(center, scale)
    height, width = image.shape[:2]
    region = np.zeros((y1 - y0, x1 - x0, image.shape[2]), dtype=np.float64)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        region[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    # skimage defaults as in the official code: bilinear, reflect borders, Gaussian anti-aliasing when shrinking.
    resized = resize(region, (crop_size, crop_size))
    return resized.astype(np.uint8)


def normalize_crop(crop: np.ndarray, width: int | None = None) -> torch.Tensor:
    """uint8 crop (S, S, 3) -> float32 (3, S, width) ImageNet-normalised, central ``width`` columns."""
    side = crop.shape[1]
    width = side if width is None else width
    left = (side - width) // 2
    pixels = torch.from_numpy(np.ascontiguousarray(crop[:, left:left + width])).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixels - mean) / std
