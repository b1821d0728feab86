"""Focal length of a rotating camera from the homographies between its frames (self-calibration).

For a camera turning about its centre the homography between two frames is H = K R K^-1. With square
pixels and the principal point known, the focal length f is the only unknown, and the right f makes
K^-1 H K a rotation (Hartley's rotation self-calibration, with one unknown). A head-mounted camera
turns far more than it translates: at 0.5 m, a 1 cm step of the head moves the scene by about one
degree while glances turn it by tens, so its homographies carry f. Turns about the optical axis
alone carry none; pairs that are not rotations (plane-induced homographies of a moving head) are
outvoted by the median.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar


def _near_rotations(H: np.ndarray, focal: float, center: tuple[float, float]) -> np.ndarray:
    """M = K^-1 H K / cbrt(det), (P, 3, 3): a rotation when ``focal`` is right and H is a pure turn."""
    K = np.array([[focal, 0.0, center[0]], [0.0, focal, center[1]], [0.0, 0.0, 1.0]])
    M = np.linalg.inv(K) @ np.asarray(H, np.float64) @ K
    return M / np.cbrt(np.linalg.det(M))[:, None, None]


def rotation_residual(H: np.ndarray, focal: float, center: tuple[float, float]) -> np.ndarray:
    """How far K^-1 H K is from a rotation: ||M M^T - I||_F of M = K^-1 H K / cbrt(det).

    H: (P, 3, 3) homographies, pixels of one image size; focal, center: pixels of that size -> (P,).
    """
    M = _near_rotations(H, focal, center)
    return np.linalg.norm(M @ np.swapaxes(M, 1, 2) - np.eye(3), axis=(1, 2))


def rotation_angles(H: np.ndarray, focal: float, center: tuple[float, float]) -> np.ndarray:
    """(P,) degrees: the angle of the rotation nearest to K^-1 H K, for (P, 3, 3) homographies."""
    M = _near_rotations(H, focal, center)
    return np.degrees(np.arccos(np.clip((np.trace(M, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)))


def median_residual(H: np.ndarray, focal: float, center: tuple[float, float]) -> float:
    """Median over the pairs of :func:`rotation_residual`."""
    return float(np.median(rotation_residual(H, focal, center)))


@dataclass
class FocalFit:
    """focal (pixels); cost: median residual at it; sharpness: the smaller median residual at 0.7 f
    and 1.4 f divided by ``cost`` (how well the pairs pin f down); halves: the focal fitted on the
    even and on the odd pairs; pairs: how many pairs turned enough to be used."""

    focal: float
    cost: float
    sharpness: float
    halves: tuple[float, float]
    pairs: int


def fit_focal(H: np.ndarray, center: tuple[float, float], focal_range: tuple[float, float],
              min_angle_deg: float = 4.0) -> FocalFit:
    """The focal length (pixels) that makes the homographies ``H`` (P, 3, 3) rotations.

    focal_range: (lowest, highest) focal searched, pixels (a log grid, then a bounded refinement).
    min_angle_deg: after a first fit on all pairs, only pairs turning at least this much are kept
    (small turns barely depend on f, and their noise pulled the estimate by up to 20 %).
    """
    def best(h: np.ndarray) -> float:
        grid = np.geomspace(*focal_range, 120)
        costs = [median_residual(h, f, center) for f in grid]
        k = int(np.argmin(costs))
        lo, hi = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
        res = minimize_scalar(lambda x: median_residual(h, float(np.exp(x)), center), bounds=(lo, hi),
                              method="bounded")
        return float(np.exp(res.x))

    H = np.asarray(H, np.float64)
    turned = rotation_angles(H, best(H), center) >= min_angle_deg
    H = H[turned] if turned.sum() >= 2 else H
    focal = best(H)
    cost = median_residual(H, focal, center)
    around = min(median_residual(H, focal * 0.7, center), median_residual(H, focal * 1.4, center))
    halves = (best(H[0::2]), best(H[1::2])) if len(H) >= 2 else (focal, focal)
    return FocalFit(focal, cost, around / max(cost, 1e-12), halves, len(H))


__all__ = ["FocalFit", "fit_focal", "median_residual", "rotation_angles", "rotation_residual"]
