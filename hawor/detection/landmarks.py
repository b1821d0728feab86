"""Embedded hand backend: MediaPipe's palm detector + 21-landmark model run with ai-edge-litert.

The two ``.tflite`` files come from the set-up (:mod:`hawor.detection.landmark_assets`); the
pre- and post-processing is ours (:mod:`hawor.detection.hand_roi`). Tracking as in MediaPipe:
a hand's landmarks give the next frame's crop, and the palm detector runs only while fewer
than ``max_hands`` hands are tracked (every ``redetect_interval`` frames once one is tracked).

Handedness: the landmark model's handedness output is the probability that the hand is a
**right** hand as seen in the (unmirrored) image; MediaPipe's own label assumes a mirrored
selfie image and so names the other hand. tests/test_detection_landmarks.py pins this.
"""
from __future__ import annotations

import os

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hawor.detection import hand_roi
from hawor.detection.frames import iter_rgb_frames
from hawor.detection.landmark_assets import find_landmark_models
from hawor.detection.tracks import Detection, HandTrack, merge_tracks
from hawor.errors import HaworInputError


@dataclass
class HandLandmarks:
    """One hand in one frame.

    keypoints_2d (21, 2) pixels; keypoints_3d (21, 3) metres, wrist-relative, image-aligned
    axes (x right, y down, z away from the camera); presence and right in [0, 1]; roi the crop used.
    """

    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    presence: float
    right: float
    roi: np.ndarray


class _TFLiteModel:
    """A ``.tflite`` model with named float32 outputs, run with ai-edge-litert."""

    def __init__(self, path: Path, num_threads: int | None):
        from ai_edge_litert.interpreter import Interpreter

        # LiteRT's default is one thread; on this project's 2-core machine two make the palm model
        # 8.6 -> 5.9 ms per 720p frame
        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads or os.cpu_count())
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        self.interpreter.set_tensor(self.input_index, image[None].astype(np.float32))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(i)[0] for name, i in self.outputs.items()}


class LandmarkHandDetector:
    """Palm detection + hand landmarks on single frames (no state). See :class:`LandmarkHandTracker`."""

    def __init__(self, model_dir: str | Path | None = None, complexity: str = "full",
                 min_palm_score: float = 0.5, min_presence: float = 0.5, num_threads: int | None = None):
        paths = find_landmark_models(model_dir)
        if paths is None:
            raise HaworInputError(
                f"the embedded hand models are missing from {model_dir or '_DATA/landmarks'}. Fix: run "
                f"`python -m hawor.assets` (scripts/setup.sh does) once while PyPI is reachable.")
        if complexity not in ("full", "lite"):
            raise HaworInputError(f"complexity={complexity!r}: use 'full' or 'lite'")
        self.palm_model = _TFLiteModel(paths[f"palm_{complexity}"], num_threads)
        self.landmark_model = _TFLiteModel(paths[f"landmark_{complexity}"], num_threads)
        self.anchors = hand_roi.palm_anchors()
        self.min_palm_score = min_palm_score
        self.min_presence = min_presence

    def detect_palms(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Landmark ROIs (rects, see :mod:`hand_roi`) of the palms in an RGB frame, best first, with scores."""
        h, w = frame.shape[:2]
        size = hand_roi.PALM_INPUT
        scale = size / max(h, w)
        rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas = np.zeros((size, size, 3), np.float32)
        px, py = (size - rw) // 2, (size - rh) // 2
        canvas[py:py + rh, px:px + rw] = cv2.resize(frame, (rw, rh), interpolation=interp) / 255.0
        out = self.palm_model(canvas)
        boxes, keypoints, scores = hand_roi.decode_palms(out["Identity"], out["Identity_1"], self.anchors,
                                                         self.min_palm_score)
        boxes, keypoints, scores = hand_roi.weighted_nms(boxes, keypoints, scores)
        # letterbox-normalised -> image pixels
        offset = np.array([px, py])
        boxes_px = (boxes.reshape(-1, 2, 2) * size - offset) / scale
        keypoints_px = (keypoints * size - offset) / scale
        return [(hand_roi.palm_to_roi(b.reshape(4), k), float(s))
                for b, k, s in zip(boxes_px, keypoints_px, scores)]

    def landmarks(self, frame: np.ndarray, roi: np.ndarray) -> HandLandmarks | None:
        """Run the landmark model on the rotated crop ``roi``; None when no hand is present."""
        size = hand_roi.LANDMARK_INPUT
        affine = hand_roi.roi_to_image_affine(roi, size)
        crop = cv2.warpAffine(frame, affine, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out = self.landmark_model(crop.astype(np.float32) / 255.0)
        presence = float(out["Identity_1"].reshape(-1)[0])
        if presence < self.min_presence:
            return None
        local = out["Identity"].reshape(21, 3)
        keypoints_2d = local[:, :2] @ affine[:, :2].T + affine[:, 2]
        world = out["Identity_3"].reshape(21, 3).astype(np.float64)
        c, s = np.cos(roi[4]), np.sin(roi[4])
        world[:, :2] = world[:, :2] @ np.array([[c, -s], [s, c]]).T  # crop axes -> image axes
        return HandLandmarks(keypoints_2d=keypoints_2d.astype(np.float64), keypoints_3d=world - world[:1],
                             presence=presence, right=float(out["Identity_2"].reshape(-1)[0]), roi=roi)


@dataclass
class _Tracked:
    track_id: int
    roi: np.ndarray
    result: HandLandmarks | None = None


def _keypoint_box(keypoints_2d: np.ndarray, width: int, height: int, pad: float = 0.1) -> np.ndarray:
    lo, hi = keypoints_2d.min(0), keypoints_2d.max(0)
    margin = pad * (hi - lo).max()
    box = np.concatenate([lo - margin, hi + margin])
    return np.clip(box, 0, [width, height, width, height])


class LandmarkHandTracker:
    """MediaPipe-style tracking over a video: landmarks drive the next crop; palms only when needed.

    The palm detector runs while no hand is tracked, and every ``redetect_interval`` frames while
    fewer than ``max_hands`` are (MediaPipe runs it on every such frame; that costs ~30 ms a frame).
    More than ``max_hands`` hands: the ones already tracked keep their slots (the most confident
    palms fill free slots), so the kept hands stay the same over time.
    """

    def __init__(self, detector: LandmarkHandDetector, max_hands: int = 2, redetect_interval: int = 5,
                 duplicate_iou: float = 0.5):
        self.detector, self.max_hands = detector, max_hands
        self.redetect_interval, self.duplicate_iou = redetect_interval, duplicate_iou
        self.tracked: list[_Tracked] = []
        self.palm_runs = 0
        self._next_id = 0
        self._since_palm = 0

    def step(self, frame: np.ndarray) -> list[_Tracked]:
        """Process one RGB uint8 frame; returns the hands found in it (tracked slots with results)."""
        if len(self.tracked) < self.max_hands and (not self.tracked or self._since_palm >= self.redetect_interval):
            self._add_palms(frame)
        else:
            self._since_palm += 1
        alive = []
        for hand in self.tracked:
            hand.result = self.detector.landmarks(frame, hand.roi)
            if hand.result is not None:
                alive.append(hand)
        alive = self._drop_duplicates(alive, frame.shape)
        for hand in alive:
            hand.roi = hand_roi.landmarks_to_roi(hand.result.keypoints_2d)
        self.tracked = alive
        return alive

    def _add_palms(self, frame: np.ndarray) -> None:
        self._since_palm = 0
        self.palm_runs += 1
        taken = [hand_roi.roi_bounds(h.roi) for h in self.tracked]
        for roi, _score in self.detector.detect_palms(frame):
            if len(self.tracked) >= self.max_hands:
                break
            bounds = hand_roi.roi_bounds(roi)
            if taken and hand_roi.box_iou(bounds[None], np.stack(taken)).max() > self.duplicate_iou:
                continue
            self.tracked.append(_Tracked(self._next_id, roi))
            self._next_id += 1
            taken.append(bounds)

    def _drop_duplicates(self, hands: list[_Tracked], shape) -> list[_Tracked]:
        """Two slots that converged on the same hand: keep the older slot."""
        kept = []
        for hand in sorted(hands, key=lambda h: h.track_id):
            box = _keypoint_box(hand.result.keypoints_2d, shape[1], shape[0])
            if all(hand_roi.box_iou(box[None], _keypoint_box(k.result.keypoints_2d, shape[1], shape[0])[None])[0, 0]
                   <= self.duplicate_iou for k in kept):
                kept.append(hand)
        return kept


def track_hands_landmarks(frames, model_dir=None, complexity: str = "full", max_hands: int = 2,
                          redetect_interval: int = 5, min_presence: float = 0.5,
                          detector: LandmarkHandDetector | None = None) -> tuple[dict[str, HandTrack], list[str]]:
    """Detect and track hands over frames with the embedded models.

    Args:
        frames: iterable of RGB uint8 (H, W, 3) frames (grayscale and RGBA are converted).
    Returns:
        ({"left": HandTrack, "right": HandTrack} with keypoints_2d/keypoints_3d, notes). A track is
        empty when that hand was never found; bad frames are skipped with a warning.
    """
    detector = detector or LandmarkHandDetector(model_dir, complexity, min_presence=min_presence)
    tracker = LandmarkHandTracker(detector, max_hands=max_hands, redetect_interval=redetect_interval)
    detections = []
    for index, rgb in iter_rgb_frames(frames):
        for hand in tracker.step(rgb):
            res = hand.result
            detections.append(Detection(
                track_id=hand.track_id, frame=index, box=_keypoint_box(res.keypoints_2d, rgb.shape[1], rgb.shape[0]),
                score=res.presence, right=res.right, keypoints_2d=res.keypoints_2d, keypoints_3d=res.keypoints_3d))
    tracks, notes = merge_tracks(detections)
    notes.append(f"palm detector ran on {tracker.palm_runs} frame(s)")
    return tracks, notes
