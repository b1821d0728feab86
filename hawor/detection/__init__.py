"""Hand detection and tracking: one left and one right :class:`HandTrack` per video.

Backends: "yolo" (WiLoR's detector.pt, as the official pipeline) and "landmarks" (the embedded
MediaPipe palm + landmark models, which also give 2D and metric 3D keypoints). "auto" takes YOLO
when detector.pt is present, else the landmark models.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hawor.detection.landmark_assets import default_landmark_dir, find_landmark_models
from hawor.detection.tracks import Detection, HandTrack, merge_tracks
from hawor.errors import HaworInputError
from hawor.weights import weight_path

BACKENDS = ("auto", "yolo", "landmarks")


@dataclass
class HandDetections:
    """The two hand tracks, and which backend produced them and why. ``result["left"]`` works."""

    tracks: dict[str, HandTrack]
    backend: str
    reason: str
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, side: str) -> HandTrack:
        return self.tracks[side]


def choose_backend(backend: str = "auto", weights: str | Path | None = None,
                   landmark_dir: str | Path | None = None, need_keypoints: bool = False) -> tuple[str, str]:
    """Resolve ``backend`` to ("yolo" | "landmarks", reason).

    ``need_keypoints``: the caller fits the hand model to keypoints (no HaWoR regressor), which
    only the landmark backend gives, so "auto" takes it even when detector.pt is present.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"hand detection backend {backend!r}: choose one of {BACKENDS}")
    detector = Path(weights) if weights is not None else weight_path("detector")
    if backend == "yolo":
        return "yolo", f"asked for; weights {detector}"
    if backend == "landmarks":
        return "landmarks", "asked for"
    if detector.is_file() and not need_keypoints:
        return "yolo", f"auto: {detector} is present"
    if find_landmark_models(landmark_dir) is not None:
        why = "keypoints needed for the fit" if detector.is_file() else f"no {detector}"
        return "landmarks", f"auto: {why}, embedded landmark models found"
    where = landmark_dir or default_landmark_dir()
    if detector.is_file():
        raise HaworInputError(f"the keypoint fit needs the embedded landmark models, which are not in {where}. "
                              f"Fix: run `python -m hawor.assets` once (or scripts/setup.sh).")
    raise HaworInputError(
        f"no hand detector: {detector} is missing and the embedded landmark models are not in {where}. "
        f"Fix: run `python -m hawor.assets` once (or scripts/setup.sh), or put WiLoR's detector.pt at {detector}.")


def detect_hands(frames, backend: str = "auto", weights: str | Path | None = None, conf: float = 0.2,
                 landmark_dir: str | Path | None = None, complexity: str = "full",
                 max_hands: int = 2, device: str | None = None, need_keypoints: bool = False) -> HandDetections:
    """Find and track both hands over a video.

    Args:
        frames: iterable of RGB uint8 (H, W, 3) frames (e.g. a ``hawor.io.video.VideoReader``).
        backend: "auto", "yolo" or "landmarks".
        weights: detector.pt for YOLO (default weights/external/detector.pt); conf its threshold.
        landmark_dir, complexity ("full" | "lite"), max_hands: for the landmark backend.
        need_keypoints: see :func:`choose_backend`.
    Returns:
        HandDetections with tracks {"left", "right"} (possibly empty), backend, reason and notes.
    """
    chosen, reason = choose_backend(backend, weights, landmark_dir, need_keypoints)
    if chosen == "yolo":
        from hawor.detection.yolo import track_hands_yolo

        tracks, notes = track_hands_yolo(frames, weights or weight_path("detector"), conf=conf, device=device)
    else:
        from hawor.detection.landmarks import track_hands_landmarks

        tracks, notes = track_hands_landmarks(frames, landmark_dir, complexity, max_hands=max_hands)
    if not any(len(track) for track in tracks.values()):
        warnings.warn(f"no hands found by the {chosen} backend: both hand tracks are empty", stacklevel=2)
    return HandDetections(tracks, chosen, reason, notes)


__all__ = ["BACKENDS", "Detection", "HandDetections", "HandTrack", "choose_backend", "detect_hands",
           "merge_tracks"]
