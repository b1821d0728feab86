"""Runs of consecutive frames: the one place that cuts frame indices where frames are missing.

Detection (lone sightings), estimation (regressor windows), slam (unposed frames), world (gaps to
fill) and training (manifest windows) all need it, so it lives below them all.
"""
from __future__ import annotations

import numpy as np


def consecutive_runs(frame_indices: np.ndarray) -> list[slice]:
    """(N,) increasing integer frame indices -> one slice of positions into them per run of consecutive frames.

    ``frame_indices[run]`` holds frames f, f+1, ..., with no frame missing; [] for an empty input.
    """
    frame_indices = np.asarray(frame_indices)
    if len(frame_indices) == 0:
        return []
    bounds = np.r_[0, np.flatnonzero(np.diff(frame_indices) != 1) + 1, len(frame_indices)]
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def frame_runs(frame_indices: np.ndarray) -> list[tuple[int, int]]:
    """(N,) increasing integer frame indices -> [(first frame, last frame + 1), ...] of each consecutive run."""
    frame_indices = np.asarray(frame_indices)
    return [(int(frame_indices[r.start]), int(frame_indices[r.stop - 1]) + 1) for r in consecutive_runs(frame_indices)]


def false_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(N,) bool -> [(start, end_exclusive), ...] of the runs of frames where ``mask`` is False."""
    return frame_runs(np.flatnonzero(~np.asarray(mask, bool)))
