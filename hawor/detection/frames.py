"""Frames as the detectors take them: RGB uint8 (H, W, 3), whatever the caller passed."""
from __future__ import annotations

import warnings
from typing import Iterable, Iterator

import numpy as np

from hawor.errors import HaworInputError


def as_rgb_frame(frame) -> np.ndarray | None:
    """Frame as contiguous RGB uint8 (H, W, 3); grayscale, (H, W, 1), RGBA and float [0, 1] accepted.

    Returns None for an empty frame.
    """
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise HaworInputError(f"frame of shape {arr.shape} is not an image: pass RGB (H, W, 3) "
                              f"or grayscale (H, W) arrays")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        return None
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0 else 1.0
        arr = np.clip(arr.astype(np.float32) * scale, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def iter_rgb_frames(frames: Iterable) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 frame) for each frame; empty frames are skipped with a warning."""
    for index, frame in enumerate(frames):
        rgb = as_rgb_frame(frame)
        if rgb is None:
            warnings.warn(f"frame {index} is empty (shape {np.shape(frame)}); skipped", stacklevel=3)
            continue
        yield index, rgb
