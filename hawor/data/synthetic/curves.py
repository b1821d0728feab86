"""Smooth 1-D/N-D signals over time: minimum-jerk keyframe tracks, rotation tracks and gentle noise.

Minimum-jerk segments (s = 10u^3 - 15u^4 + 6u^5) start and end with zero velocity and zero
acceleration, so a track made of them is C2 and its acceleration is bounded by 5.77 * step / T^2.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


def min_jerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk easing of u in [0, 1] (clipped) -> [0, 1]."""
    u = np.clip(u, 0.0, 1.0)
    return u ** 3 * (10 - 15 * u + 6 * u ** 2)


def _segments(key_times: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment index (T,) and eased progress (T,) of each time t between sorted key times."""
    idx = np.clip(np.searchsorted(key_times, t, side="right") - 1, 0, len(key_times) - 2)
    span = np.maximum(key_times[idx + 1] - key_times[idx], 1e-9)
    return idx, min_jerk((t - key_times[idx]) / span)


def keyframe_track(key_times, key_values, t: np.ndarray) -> np.ndarray:
    """Values at times t (T,) -> (T, ...) moving between keyframes (K,), (K, ...) by minimum-jerk segments.

    Before the first and after the last key time the track holds the end values.
    """
    key_times = np.asarray(key_times, np.float64)
    key_values = np.asarray(key_values, np.float64)
    if len(key_times) == 1:
        return np.repeat(key_values[None, 0], len(t), axis=0)
    idx, s = _segments(key_times, t)
    s = s.reshape(-1, *([1] * (key_values.ndim - 1)))
    return key_values[idx] * (1 - s) + key_values[idx + 1] * s


def rotation_track(key_times, key_rotations: Rotation, t: np.ndarray) -> Rotation:
    """Rotations at times t, slerping between keyframe rotations with minimum-jerk progress."""
    key_times = np.asarray(key_times, np.float64)
    if len(key_times) == 1:
        return Rotation.concatenate([key_rotations[0]] * len(t))
    idx, s = _segments(key_times, t)
    slerp = Slerp(np.arange(len(key_times), dtype=np.float64), key_rotations)
    return slerp(idx + s)


def smooth_noise(rng: np.random.Generator, t: np.ndarray, dims: int, amplitude, freqs=(0.15, 0.9)) -> np.ndarray:
    """(T, dims) sum of three random sinusoids per dimension; peak about ``amplitude`` per dimension."""
    amplitude = np.broadcast_to(np.asarray(amplitude, np.float64), (dims,))
    out = np.zeros((len(t), dims))
    for _ in range(3):
        f = rng.uniform(*freqs, dims)
        phase = rng.uniform(0, 2 * np.pi, dims)
        out += np.sin(2 * np.pi * f * t[:, None] + phase) / 3.0
    return out * amplitude


def envelope(t: np.ndarray, quiet: list[tuple[float, float]], ramp: float = 0.3) -> np.ndarray:
    """(T,) factor 1 everywhere except 0 inside the quiet windows [(start, end)], with min-jerk ramps."""
    out = np.ones_like(t)
    for start, end in quiet:
        fall = 1 - min_jerk((t - (start - ramp)) / ramp)
        rise = min_jerk((t - end) / ramp)
        out = np.minimum(out, np.maximum(fall, rise))
    return out
