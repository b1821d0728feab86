"""Procedural image textures (RGB uint8) for the synthetic scenes, deterministic given a generator.

Every surface the camera can see gets detail at several scales (grain, speckle, printed shapes) so
that feature-based and learned SLAM have corners and edges to track. Everything is numpy + OpenCV
and takes a few milliseconds per texture.
"""
from __future__ import annotations

import cv2
import numpy as np


# sRGB base colours: oak, pine, walnut, cherry, teak, white-washed; floors: grey, beige, terracotta, slate, cream.
WOODS = np.array([[190, 140, 90], [215, 175, 120], [110, 70, 45], [160, 85, 55], [150, 100, 60], [200, 185, 160]],
                 np.float32)
FLOORS = np.array([[130, 130, 128], [200, 180, 150], [170, 90, 60], [80, 85, 95], [225, 215, 195]], np.float32)


def value_noise(rng: np.random.Generator, size: tuple[int, int], cells: float, octaves: int = 4) -> np.ndarray:
    """Fractal value noise in [0, 1], shape (H, W): bicubically upsampled random grids, octaves halving.

    ``cells`` is the number of noise cells across the width at the coarsest octave.
    """
    height, width = size
    total = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        n = max(2, int(round(cells * 2 ** octave)))
        m = max(2, int(round(n * height / width)))
        grid = rng.random((m, n), dtype=np.float32)
        weight = 0.5 ** octave
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    total /= weight_sum
    lo, hi = np.percentile(total, (1, 99))
    return np.clip((total - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _mix(low: np.ndarray, high: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend two RGB colours (3,) by a (H, W) map in [0, 1] -> (H, W, 3) float."""
    return low[None, None] * (1.0 - t[..., None]) + high[None, None] * t[..., None]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def wood(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """Wood grain along x: warped growth rings, fine fibres, a few knots, plank seams. (size, size, 3)."""
    base = WOODS[int(rng.integers(0, len(WOODS)))] * rng.uniform(0.9, 1.1) + rng.normal(0, 4, 3)
    dark = base * rng.uniform(0.5, 0.72)
    h = w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = value_noise(rng, (h, w), 3, octaves=3) - 0.5
    stretch = cv2.resize(rng.random((h // 4, 6), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    ring_freq = rng.uniform(0.05, 0.12)
    coord = y + 60.0 * warp + 25.0 * stretch
    for _ in range(int(rng.integers(1, 4))):  # knots bend the rings around them
        kx, ky, kr = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, 30)
        d2 = ((x - kx) / 4.0) ** 2 + (y - ky) ** 2
        coord += 8.0 * kr * np.exp(-d2 / (2 * (3 * kr) ** 2)) * np.sign(y - ky)
    rings = 0.5 + 0.5 * np.sin(coord * ring_freq * 2 * np.pi / 4)
    rings = rings ** 3
    fibres = cv2.resize(rng.random((h, w // 16), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    t = np.clip(0.55 * rings + 0.3 * fibres + 0.25 * value_noise(rng, (h, w), 4), 0, 1)
    image = _mix(base, dark, t)
    plank = int(rng.integers(3, 6))  # seams between planks
    for k in range(1, plank):
        row = int(k * h / plank)
        image[max(row - 1, 0):row + 2] *= 0.55
    return _to_uint8(image)


def tiles(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """Floor tiles or planks with grout, per-tile tint and speckle. (size, size, 3)."""
    count = int(rng.integers(2, 5))
    base = FLOORS[int(rng.integers(0, len(FLOORS)))] * rng.uniform(0.85, 1.1) + rng.normal(0, 6, 3)
    speck = value_noise(rng, (size, size), 40, octaves=2)
    image = np.zeros((size, size, 3), np.float32)
    step = -(-size // count)
    for i in range(count):
        for j in range(count):
            tint = base * rng.uniform(0.8, 1.15) + rng.normal(0, 8, 3)
            image[i * step:(i + 1) * step, j * step:(j + 1) * step] = tint
    image *= (0.8 + 0.4 * speck)[..., None]
    grout = rng.uniform(30, 90, 3)
    for k in range(count + 1):
        edge = min(k * step, size - 1)
        image[max(edge - 3, 0):edge + 3] = grout
        image[:, max(edge - 3, 0):edge + 3] = grout
    return _to_uint8(image)


def plaster(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """A painted wall with blotches and printed rectangles (posters, frames, shelves). (size, size, 3)."""
    base = rng.uniform(120, 235, 3)
    image = _mix(base * 0.8, base, value_noise(rng, (size, size), 6))
    for _ in range(int(rng.integers(3, 8))):
        w, h = rng.integers(size // 10, size // 3, 2)
        x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
        color = rng.uniform(20, 240, 3)
        cv2.rectangle(image, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), color.tolist(), -1)
        cv2.rectangle(image, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), (30, 30, 30), 3)
        _scribble(rng, image, x0 + 6, y0 + 6, w - 12, h - 12)
    return _to_uint8(image)


def printed(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A package/label print: stripes or checks, blobs and text-like lines. (size, size, 3)."""
    image = np.empty((size, size, 3), np.float32)
    image[:] = rng.uniform(30, 240, 3)
    style = rng.integers(0, 3)
    y, x = np.mgrid[0:size, 0:size]
    second = rng.uniform(30, 240, 3)
    if style == 0:
        image[(y // int(rng.integers(8, 32))) % 2 == 0] = second
    elif style == 1:
        cell = int(rng.integers(12, 40))
        image[((y // cell) + (x // cell)) % 2 == 0] = second
    for _ in range(int(rng.integers(3, 9))):
        cv2.circle(image, tuple(int(v) for v in rng.integers(0, size, 2)), int(rng.integers(5, size // 5)),
                   rng.uniform(0, 255, 3).tolist(), -1)
    _scribble(rng, image, 10, size // 2, size - 20, size // 2 - 10)
    return _to_uint8(image * (0.85 + 0.3 * value_noise(rng, (size, size), 8))[..., None])


def _scribble(rng: np.random.Generator, image: np.ndarray, x0: float, y0: float, w: float, h: float) -> None:
    """Rows of short dark dashes that read like printed text, drawn in place."""
    if w < 10 or h < 10:
        return
    ink = rng.uniform(0, 80, 3).tolist()
    line_h = int(rng.integers(6, 14))
    for row in range(int(y0), int(y0 + h - line_h), line_h * 2):
        x = int(x0)
        while x < x0 + w - 4:
            word = int(rng.integers(4, 30))
            end = int(min(x + word, x0 + w))
            cv2.rectangle(image, (x, row), (end, row + line_h), ink, -1)
            x = end + int(rng.integers(3, 10))
