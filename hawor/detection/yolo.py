"""YOLO hand detector (WiLoR's weights/external/detector.pt) with a stock ultralytics tracker.

As the official ``detect_track``: classes 0 = left, 1 = right; confidence 0.2; per frame only
the first (most confident) box of each side is kept; a track id is the tracker's id, or a fixed
id per side when the tracker gives none. Tracks are merged into sides by
:func:`hawor.detection.tracks.merge_tracks`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

import hawor  # noqa: F401  (offline ultralytics settings before it is imported)
from hawor.detection.frames import iter_rgb_frames
from hawor.detection.tracks import Detection, HandTrack, merge_tracks
from hawor.errors import HaworInputError

# Track ids the official code gives boxes the tracker returned no id for.
UNTRACKED_ID = {0: 5000, 1: 10000}


def load_yolo(weights: str | Path):
    """Load an ultralytics YOLO checkpoint whose classes are 0 = left hand, 1 = right hand."""
    weights = Path(weights)
    if not weights.is_file():
        raise HaworInputError(f"hand detector weights {weights} not found. Fix: put WiLoR's detector.pt "
                              f"there, or use the embedded landmark backend (backend='landmarks').")
    from ultralytics import YOLO

    model = YOLO(str(weights))
    names = {int(k): str(v).lower() for k, v in model.names.items()}
    if len(names) != 2:
        warnings.warn(f"{weights}: expected 2 classes (0 left, 1 right), found {names}", stacklevel=2)
    return model


def track_hands_yolo(frames, weights: str | Path | None = None, model=None, conf: float = 0.2,
                     tracker: str = "botsort.yaml", device: str | None = None,
                     fix_swaps: bool = True) -> tuple[dict[str, HandTrack], list[str]]:
    """Detect and track hands with YOLO over frames.

    Args:
        frames: iterable of RGB uint8 (H, W, 3) frames (grayscale and RGBA are converted).
        weights: path of detector.pt (or pass a loaded ``model``).
        conf: detection confidence threshold (official 0.2).
        tracker: an ultralytics tracker config ("botsort.yaml", the official default, or "bytetrack.yaml").
    Returns:
        ({"left": HandTrack, "right": HandTrack} without keypoints, notes).
    """
    model = model if model is not None else load_yolo(weights)
    detections = []
    for index, rgb in iter_rgb_frames(frames):
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        # the first call starts fresh trackers, later calls keep them
        result = model.track(bgr, conf=conf, persist=index > 0, tracker=tracker, verbose=False,
                             device=device)[0]
        detections.extend(_first_box_per_side(result, index))
    return merge_tracks(detections, fix_swaps=fix_swaps)


def _first_box_per_side(result, frame: int) -> list[Detection]:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float64)
    scores = boxes.conf.cpu().numpy().astype(np.float64)
    classes = boxes.cls.cpu().numpy().astype(int)
    ids = boxes.id.cpu().numpy().astype(int) if boxes.id is not None else None
    out, seen = [], set()
    for i in range(len(xyxy)):
        side = int(classes[i] > 0)
        if side in seen:
            continue
        seen.add(side)
        track_id = int(ids[i]) if ids is not None else UNTRACKED_ID[side]
        out.append(Detection(track_id=track_id, frame=frame, box=xyxy[i], score=float(scores[i]), right=float(side)))
    return out
