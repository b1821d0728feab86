"""Find and track both hands over a video with one detector backend.

Backends: "yolo" (WiLoR's detector.pt, as the official pipeline; boxes only) and "landmarks" (the
embedded MediaPipe palm + landmark models, which also give 2D and metric 3D keypoints). Which one a
run uses is decided by its backend plan (:mod:`hawor.pipeline.plan`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hawor.detection.tracks import HandTrack
from hawor.errors import HaworInputError
from hawor.weights import weight_path

BACKENDS = ("yolo", "landmarks")


@dataclass
class HandDetections:
    """The two hand tracks, the backend that produced them, and its notes. ``result["left"]`` works."""

    tracks: dict[str, HandTrack]
    backend: str
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, side: str) -> HandTrack:
        return self.tracks[side]


def detect_hands(frames, backend: str = "landmarks", weights: str | Path | None = None, conf: float = 0.2,
                 landmark_dir: str | Path | None = None, complexity: str = "full",
                 max_hands: int = 2, device: str | None = None) -> HandDetections:
    """Find and track both hands over a video.

    Args:
        frames: iterable of RGB uint8 (H, W, 3) frames (e.g. a ``hawor.io.video.VideoReader``).
        backend: "yolo" or "landmarks".
        weights: detector.pt for YOLO (default weights/external/detector.pt); conf its threshold;
            device: its torch device.
        landmark_dir, complexity ("full" | "lite"), max_hands: for the landmark backend.
    Returns:
        HandDetections with tracks {"left", "right"} (possibly empty), backend and notes.
    """
    if backend not in BACKENDS:
        raise HaworInputError(f"hand detection backend {backend!r}: choose one of {BACKENDS}")
    if backend == "yolo":
        from hawor.detection.yolo import track_hands_yolo

        tracks, notes = track_hands_yolo(frames, weights or weight_path("detector"), conf=conf, device=device)
    else:
        from hawor.detection.landmarks import track_hands_landmarks

        tracks, notes = track_hands_landmarks(frames, landmark_dir, complexity, max_hands=max_hands)
    if not any(len(track) for track in tracks.values()):
        warnings.warn(f"no hands found by the {backend} backend: both hand tracks are empty", stacklevel=2)
    return HandDetections(tracks, backend, notes)
