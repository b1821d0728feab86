"""How well hand tracks cover the hands that are in view: observed / visible frames and handedness swaps.

Ground truth: the true 2D joints of both hands (e.g. the synthetic generator's joints2d.npz). A hand
is *visible* in a frame when at least 11 of its 21 joints lie inside the image (the generator's own
definition); a detection *observes* it when its keypoints lie within half a hand size (mean distance)
of that hand's true joints and closer to them than to the other hand's; a detection in one side's
track that observes the other hand is a *swap*; one that observes neither is *spurious*.
"""
from __future__ import annotations

import numpy as np

from hawor.hands.joints import hand_visible

SIDES = ("left", "right")


def crop_window(joints_2d: np.ndarray, size: tuple[int, int], border: str) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a crop whose ``border`` runs through the hands' median palm position.

    Args:
        joints_2d: (N, 2, 21, 2) true joints of (left, right), pixels.
        size: the image's (W, H).
        border: "full" (no crop), "bottom" (keeps the image above the palms' median height: fingers
            in view, palms cut off), "top" (below it), "left" (right of the left palm's median x),
            "right" (left of the right palm's median x).
    """
    w, h = size
    palm = 0.5 * (joints_2d[:, :, 0] + joints_2d[:, :, 9])  # (N, 2, 2) wrist-to-middle-knuckle midpoint
    inside = (palm >= 0).all(-1) & (palm < [w, h]).all(-1)
    x_med = [int(np.nanmedian(np.where(inside[:, k], palm[:, k, 0], np.nan))) for k in (0, 1)]
    y_med = int(np.nanmedian(np.where(inside, palm[..., 1], np.nan)))
    windows = {"full": (0, 0, w, h), "bottom": (0, 0, w, y_med), "top": (0, y_med, w, h),
               "left": (x_med[0], 0, w, h), "right": (0, 0, x_med[1], h)}
    return windows[border]


def score_hand_tracks(tracks, joints_2d: np.ndarray, window: tuple[int, int, int, int],
                      unoccluded: np.ndarray | None = None) -> dict:
    """Per side: visible, observed, swapped and spurious frame counts (see the module docstring); with
    ``unoccluded``, also ``unoccluded`` (visible frames with MIN_VISIBLE_JOINTS joints inside the crop
    and not hidden) and ``observed_unoccluded`` (those observed).

    Args:
        tracks: {"left", "right"} -> HandTrack with keypoints_2d, in the (cropped) image's pixels.
        joints_2d: (N, 2, 21, 2) true joints in the full image's pixels.
        window: (x0, y0, x1, y1) the crop the tracks ran on, full-image pixels ((0, 0, W, H) uncropped).
        unoccluded: optional (N, 2, 21) bool, the generator's ``{h}_joints_unoccluded``.
    """
    x0, y0, x1, y1 = window
    truth = joints_2d - [x0, y0]
    visible = hand_visible(truth, (x1 - x0, y1 - y0))  # (N, 2)
    # the joints it counts lie inside the crop, so a clear hand is a visible one
    clear = None if unoccluded is None else hand_visible(truth, (x1 - x0, y1 - y0), unoccluded)
    size = np.ptp(truth, axis=2).max(-1)  # (N, 2) hand extent, pixels
    out = {}
    for k, side in enumerate(SIDES):
        track = tracks[side]
        counts = {"visible": int(visible[:, k].sum()), "observed": 0, "swapped": 0, "spurious": 0}
        observed = []
        for frame, kp in zip(track.frame_indices, track.keypoints_2d if len(track) else []):
            dist = np.linalg.norm(truth[frame] - kp[None], axis=-1).mean(-1)  # (2,) to each true hand
            near = visible[frame] & (dist < 0.5 * size[frame])
            if not near.any():
                counts["spurious"] += 1
            elif int(np.argmin(np.where(near, dist, np.inf))) == k:
                counts["observed"] += 1
                observed.append(frame)
            else:
                counts["swapped"] += 1
        if clear is not None:
            counts["unoccluded"] = int(clear[:, k].sum())
            counts["observed_unoccluded"] = int(clear[np.asarray(observed, np.int64), k].sum())
        out[side] = counts
    return out
