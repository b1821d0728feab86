"""The camera-space hands stage: one interface whatever backend runs.

Backends (chosen by the run's backend plan): ``"regressor"`` (the HaWoR regressor on image crops,
which reads frames by index from a re-readable source) and ``"keypoint_fit"`` (the hand model fitted
to the landmark detector's keypoints). Both return, per side with a track, the
:class:`~hawor.estimation.result.CameraSpaceHand` of its observed frames.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping

import numpy as np

from hawor.detection.tracks import HandTrack
from hawor.errors import HaworInputError
from hawor.estimation.result import CameraSpaceHand
from hawor.geometry import Intrinsics

BACKENDS = ("regressor", "keypoint_fit")


def camera_space_hands(tracks: Mapping[str, HandTrack], intrinsics: Intrinsics, backend: str, *,
                       read_frame: Callable[[int], np.ndarray] | None = None, regressor=None,
                       hand_models: Mapping | None = None) -> dict[str, CameraSpaceHand]:
    """Camera-frame MANO (metres, OpenCV camera) of every non-empty track.

    backend "regressor": ``regressor`` (a :class:`~hawor.estimation.regressor.HandRegressor`) and
    ``read_frame(i)`` -> RGB uint8 frame i; "keypoint_fit": ``hand_models`` {side: HandModel}.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"camera-space hands backend '{backend}': choose one of {', '.join(BACKENDS)}")
    present = {side: track for side, track in tracks.items() if len(track)}
    if backend == "regressor":
        return {side: regressor.predict(read_frame, track, intrinsics).hand for side, track in present.items()}
    from hawor.estimation.keypoint_fit import fit_track

    # each side's fit is thousands of tiny single-threaded ops: fitted side by side, they keep two
    # cores busy (the fits are independent, so the result is the same)
    with ThreadPoolExecutor(max(len(present), 1), thread_name_prefix="hawor-fit") as pool:
        fits = {side: pool.submit(fit_track, track, intrinsics, hand_models[side]) for side, track in present.items()}
    return {side: fit.result()[0] for side, fit in fits.items()}
