"""Embedded hand backend: MediaPipe's palm detector + 21-landmark model run with ai-edge-litert.

The two ``.tflite`` files come from the set-up (:mod:`hawor.detection.landmark_assets`); the
pre- and post-processing is ours (:mod:`hawor.detection.hand_roi`). Tracking as in MediaPipe:
a hand's landmarks give the next frame's crop, and the palm detector runs only while fewer
than ``max_hands`` hands are tracked (every ``redetect_interval`` frames once one is tracked);
extended to hands cut by the image border, which the palm detector cannot find
(:class:`LandmarkHandTracker`).

Handedness: the landmark model's handedness output is the probability that the hand is a
**right** hand as seen in the (unmirrored) image; MediaPipe's own label assumes a mirrored
selfie image and so names the other hand. tests/test_detection_landmarks.py pins this.
"""
from __future__ import annotations

import os

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hawor.detection import hand_roi
from hawor.detection.frames import iter_rgb_frames
from hawor.detection.landmark_assets import find_landmark_models
from hawor.detection.tracks import (ISOLATED_MAX_FRAMES, ISOLATED_MIN_GAP, Detection, HandTrack, drop_isolated,
                                    merge_tracks)
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

    def landmarks(self, frame: np.ndarray, roi: np.ndarray, min_presence: float | None = None) -> HandLandmarks | None:
        """Run the landmark model on the rotated crop ``roi``; None when the hand's presence score is
        below ``min_presence`` (default: the detector's)."""
        size = hand_roi.LANDMARK_INPUT
        affine = hand_roi.roi_to_image_affine(roi, size)
        crop = cv2.warpAffine(frame, affine, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out = self.landmark_model(crop.astype(np.float32) / 255.0)
        presence = float(out["Identity_1"].reshape(-1)[0])
        if presence < (self.min_presence if min_presence is None else min_presence):
            return None
        local = out["Identity"].reshape(21, 3)
        keypoints_2d = local[:, :2] @ affine[:, :2].T + affine[:, 2]
        world = out["Identity_3"].reshape(21, 3).astype(np.float64)
        c, s = np.cos(roi[4]), np.sin(roi[4])
        world[:, :2] = world[:, :2] @ np.array([[c, -s], [s, c]]).T  # crop axes -> image axes
        return HandLandmarks(keypoints_2d=keypoints_2d.astype(np.float64), keypoints_3d=world - world[:1],
                             presence=presence, right=float(out["Identity_2"].reshape(-1)[0]), roi=roi)


@dataclass(eq=False)
class _Tracked:
    """A hand slot: the crop to try next, the last landmarks, and motion for coasting through misses."""

    track_id: int
    roi: np.ndarray
    result: HandLandmarks | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # ROI centre, pixels per frame
    missed: int = 0  # consecutive frames without landmarks
    last_found: np.ndarray | None = None  # the ROI where landmarks were last found
    palm_roi: bool = False  # the crop was put on a palm while the hand was lost
    jump: float = 0.0  # how far the landmarks moved from the crop tried, in crop sides


@dataclass(eq=False)
class _Lost:
    """Where a hand was last seen, re-probed for a while (hands come back where they left)."""

    roi: np.ndarray
    age: int = 0


# Border probes, (x, y) as fractions of the image size and the angle of the fingers (radians from image
# up, clockwise): crops centred on the border, so a hand whose palm is outside and fingers inside fills
# their inner half. Mostly bottom and sides: in head-mounted video hands enter from there, fingers up
# and inwards.
BORDER_PROBES = ((0.2, 1.0, 0.0), (0.0, 0.85, 0.5), (0.6, 1.0, 0.0), (1.0, 0.85, -0.5), (0.4, 1.0, 0.0),
                 (0.0, 0.6, 0.5), (0.8, 1.0, 0.0), (1.0, 0.6, -0.5), (0.3, 0.0, 0.0), (0.0, 0.35, 0.5),
                 (1.0, 0.35, -0.5), (0.7, 0.0, 0.0))
# Interior probes, same layout (fingers up): for hands the palm detector does not see although they are
# whole in view (edge-on, or low contrast); the landmark model and its re-centring find many of them.
INTERIOR_PROBES = tuple((u, v, 0.0) for v in (0.25, 0.5, 0.75) for u in (0.2, 0.4, 0.6, 0.8))


def _keypoint_box(keypoints_2d: np.ndarray, width: int, height: int, pad: float = 0.1) -> np.ndarray:
    lo, hi = keypoints_2d.min(0), keypoints_2d.max(0)
    margin = pad * (hi - lo).max()
    box = np.concatenate([lo - margin, hi + margin])
    return np.clip(box, 0, [width, height, width, height])


class LandmarkHandTracker:
    """MediaPipe-style tracking over a video, extended to hands cut by the image border.

    As MediaPipe: a hand's landmarks give the next frame's crop; the palm detector runs while no hand
    is tracked, and every ``redetect_interval`` frames while fewer than ``max_hands`` are (MediaPipe
    runs it on every such frame; that costs ~30 ms a frame). More than ``max_hands`` hands: the ones
    already tracked keep their slots (the most confident palms fill free slots).

    Border-cut hands, which the palm detector misses once the palm is outside the frame:
    - the presence threshold falls with the share of the crop inside the image (a crop half outside
      holds half a hand, and the landmark model's presence score falls with it):
      ``min_presence`` at ``full_inside`` and above, ``min_presence_cut`` at ``cut_inside`` and below;
    - a hand that is lost keeps its slot for ``coast_frames`` frames, its crop moving on with the
      hand's last velocity, and is retried there every frame;
    - after that, the crop where it was last found is re-probed every ``probe_interval`` frames for
      ``remember_frames`` frames (hands come back where they left), while a slot is free (the
      ``border_probes`` most recent such crops away from the tracked hands);
    - while a slot is free, ``border_probes`` crops on the border (:data:`BORDER_PROBES`, in turn) are
      tried too, as large as the hands seen clearly so far;
    - a weak result (presence between ``refine_floor`` and the threshold) in a crop inside the image is
      tried once more on the crop its own keypoints give (:meth:`_landmarks`);
    - a hand found again by a palm or a probe, or landmarks that land further than ``max_jump`` crop
      sizes from where the (coasting) crop expected the hand, start a new track id: it may be the
      other hand, which must not inherit this one's side (the merge decides each track's side).
    """

    def __init__(self, detector: LandmarkHandDetector, max_hands: int = 2, redetect_interval: int = 5,
                 duplicate_iou: float = 0.5, min_presence_cut: float = 0.2, full_inside: float = 0.9,
                 cut_inside: float = 0.5, coast_frames: int = 6, probe_interval: int = 3,
                 remember_frames: int = 90, max_jump: float = 0.5, border_probes: int = 2, interior_probes: int = 1,
                 shared_keypoints: float = 0.3, refine_floor: float = 0.25,
                 refine_inside_only: bool = True):
        self.detector, self.max_hands = detector, max_hands
        self.redetect_interval, self.duplicate_iou = redetect_interval, duplicate_iou
        self.shared_keypoints, self.refine_floor = shared_keypoints, refine_floor
        self.refine_inside_only = refine_inside_only
        self.min_presence_cut, self.full_inside, self.cut_inside = min_presence_cut, full_inside, cut_inside
        self.coast_frames, self.probe_interval, self.remember_frames = coast_frames, probe_interval, remember_frames
        self.max_jump, self.border_probes, self.interior_probes = max_jump, border_probes, interior_probes
        self.tracked: list[_Tracked] = []
        self.lost: list[_Lost] = []
        self.palm_runs = self.probe_runs = 0
        self._next_id = 0
        self._schedule_index = {BORDER_PROBES: 0, INTERIOR_PROBES: 0}
        self._since_palm = self._since_probe = 0
        self._roi_size: float | None = None  # running mean of clearly seen hands' crop sides, for probes

    def step(self, frame: np.ndarray) -> list[_Tracked]:
        """Process one RGB uint8 frame; returns the hands found in it (tracked slots with results)."""
        # a hand mostly outside the image does not hold a slot against a palm that may be found
        seen = [h for h in self.tracked if h.missed == 0 and self.in_view(h.roi, frame.shape) > 0]
        if len(seen) < self.max_hands and (not seen or self._since_palm >= self.redetect_interval):
            self._add_palms(frame)
        else:
            self._since_palm += 1
        for hand in self.tracked:
            self._update(frame, hand)
        found = [h for h in self.tracked if h.result is not None]
        alive = self._drop_duplicates(found, frame.shape)
        self.tracked = [h for h in self.tracked if h.result is None or h in alive]
        self._forget(frame.shape)
        self._since_probe += 1
        if len(alive) < self.max_hands and self._since_probe >= self.probe_interval:
            alive += self._probe(frame, alive)
        return alive

    def in_view(self, roi: np.ndarray, shape) -> float:
        """How much of the hand a crop can show: 0 at ``cut_inside`` of its area inside the image or less,
        1 at ``full_inside`` or more."""
        inside = hand_roi.roi_inside_fraction(roi, shape[1], shape[0])
        return float(np.clip((inside - self.cut_inside) / (self.full_inside - self.cut_inside), 0.0, 1.0))

    def _presence_threshold(self, in_view: float) -> float:
        """The presence a crop's landmarks need, given :meth:`in_view` of the crop."""
        return self.min_presence_cut + in_view * (self.detector.min_presence - self.min_presence_cut)

    def handedness_vote(self, hand: _Tracked, shape) -> float:
        """The landmark model's P(right) shrunk towards 0.5 for a hand cut by the border (the model
        names a hand from a few fingers no better than chance), so position decides such tracks."""
        trust = max(0.1, self.in_view(hand.result.roi, shape))
        return 0.5 + trust * (hand.result.right - 0.5)

    def _landmarks(self, frame: np.ndarray, roi: np.ndarray) -> HandLandmarks | None:
        """The landmark model on a crop, None below the crop's presence threshold. A weak result (presence
        of at least ``refine_floor``) is tried once more on the crop its own keypoints give: a palm's or a
        coasting crop too large, turned or a fraction of a hand off scores low where the re-centred crop
        scores high (2298 palm crops of 8 generated clips: 1787 -> 1900 true hands accepted). The floor
        lies above what background crops score (at most 0.10 of 524), so those cost no second run. Crops
        cut by the border (their threshold already lowered) are not re-centred: with ``refine_inside_only``
        off, a hand half outside the image was split into other tracks and 35 frames went to the wrong
        side on one generated clip (bench/truncation.py, seed 207, right crop)."""
        in_view = self.in_view(roi, frame.shape)
        result = self.detector.landmarks(frame, roi, 0.0)
        if result.presence >= self._presence_threshold(in_view):
            return result
        if result.presence < self.refine_floor or (self.refine_inside_only and in_view < 1):
            return None
        refined = hand_roi.landmarks_to_roi(result.keypoints_2d)
        return self.detector.landmarks(frame, refined, self._presence_threshold(self.in_view(refined, frame.shape)))

    def _update(self, frame: np.ndarray, hand: _Tracked) -> None:
        """Landmarks in the slot's crop; on a miss, move the crop on with the hand's velocity."""
        hand.result = self._landmarks(frame, hand.roi)
        if hand.result is None:
            hand.missed += 1
            hand.roi = hand.roi.copy()
            hand.roi[:2] += hand.velocity
            return
        roi = hand_roi.landmarks_to_roi(hand.result.keypoints_2d)
        hand.jump = float(np.linalg.norm(roi[:2] - hand.roi[:2]) / max(hand.roi[2], 1.0))
        if hand.palm_roi or hand.jump > self.max_jump:
            # far from where it was expected, or a palm put the crop here: maybe the other hand
            hand.track_id, self._next_id = self._next_id, self._next_id + 1
            hand.velocity, hand.palm_roi = np.zeros(2), False
        elif hand.missed == 0 and hand.last_found is not None:  # smoothed over consecutive finds only
            hand.velocity = 0.5 * hand.velocity + 0.5 * (roi[:2] - hand.last_found[:2])
        hand.roi, hand.last_found, hand.missed = roi, roi, 0
        if hand.result.presence >= self.detector.min_presence:  # a clear view gives the hands' size
            self._roi_size = float(roi[2]) if self._roi_size is None else 0.9 * self._roi_size + 0.1 * float(roi[2])

    def _forget(self, shape) -> None:
        """Slots lost for longer than ``coast_frames`` (or whose crop left the image) become memories."""
        keep = []
        for hand in self.tracked:
            gone = hand.missed > self.coast_frames or (
                hand.missed and hand_roi.roi_inside_fraction(hand.roi, shape[1], shape[0]) == 0)
            if not gone:
                keep.append(hand)
            elif hand.last_found is not None:
                self.lost.append(_Lost(hand.last_found))
        self.tracked = keep
        for memory in self.lost:
            memory.age += 1
        self.lost = [m for m in self.lost if m.age <= self.remember_frames]

    def _scheduled_probe(self, schedule, shape) -> np.ndarray | None:
        """The next crop of a rotating schedule (:data:`BORDER_PROBES`, :data:`INTERIOR_PROBES`), None
        where a hand is tracked."""
        h, w = shape[:2]
        u, v, angle = schedule[self._schedule_index[schedule] % len(schedule)]
        self._schedule_index[schedule] += 1
        side = max(self._roi_size or 0.6 * min(w, h), 0.3 * min(w, h))
        roi = np.array([u * w, v * h, side, side, angle])
        return roi if self._free(roi) else None

    def _free(self, roi: np.ndarray) -> bool:
        """Whether a crop is away from every tracked hand's (probing there would find that hand)."""
        bounds = hand_roi.roi_bounds(roi)[None]
        return all(hand_roi.box_iou(bounds, hand_roi.roi_bounds(t.roi)[None])[0, 0] <= 0.3 for t in self.tracked)

    def _probe(self, frame: np.ndarray, alive: list[_Tracked]) -> list[_Tracked]:
        """Try the landmark model where lost hands were last seen and along the border; new slots (and
        track ids) for what it finds."""
        self._since_probe = 0
        recent = [m for m in sorted(self.lost, key=lambda m: m.age) if self._free(m.roi)][:self.border_probes]
        candidates = [(m.roi, m) for m in recent]
        scheduled = [self._scheduled_probe(BORDER_PROBES, frame.shape) for _ in range(self.border_probes)]
        scheduled += [self._scheduled_probe(INTERIOR_PROBES, frame.shape) for _ in range(self.interior_probes)]
        candidates += [(roi, None) for roi in scheduled if roi is not None]
        found = []
        for roi, memory in candidates:
            if len(self.tracked) >= self.max_hands:
                break
            self.probe_runs += 1
            result = self._landmarks(frame, roi)
            if result is None:
                continue
            if any(self._same_hand(result.keypoints_2d, h.result.keypoints_2d, frame.shape) for h in alive + found):
                continue
            roi = hand_roi.landmarks_to_roi(result.keypoints_2d)
            if memory is not None:
                self.lost.remove(memory)
            hand = _Tracked(self._next_id, roi, result, last_found=roi)
            self._next_id += 1
            self.tracked.append(hand)
            found.append(hand)
        return found

    def _add_palms(self, frame: np.ndarray) -> None:
        """Palms fill free slots; a palm where a lost hand's crop is coasting takes over that slot, and
        a new palm takes the slot of a lost hand or of one mostly outside the image when none is free."""
        self._since_palm = 0
        self.palm_runs += 1
        for roi, _score in self.detector.detect_palms(frame):
            bounds = hand_roi.roi_bounds(roi)
            overlap = [(hand_roi.box_iou(bounds[None], hand_roi.roi_bounds(h.roi)[None])[0, 0], h)
                       for h in self.tracked]
            best_iou, best = max(overlap, key=lambda o: o[0], default=(0.0, None))
            if best_iou > self.duplicate_iou:
                if best.missed:  # a lost hand's crop, put back on the palm (a new id once found)
                    best.roi, best.palm_roi = roi, True
                continue
            if len(self.tracked) >= self.max_hands:
                weak = [h for h in self.tracked if h.missed or self.in_view(h.roi, frame.shape) == 0]
                if not weak:
                    break
                self.tracked.remove(max(weak, key=lambda h: (h.missed, -self.in_view(h.roi, frame.shape))))
            self.tracked.append(_Tracked(self._next_id, roi))
            self._next_id += 1

    def _same_hand(self, keypoints_a: np.ndarray, keypoints_b: np.ndarray, shape) -> bool:
        """Whether two hands' keypoints (21, 2) are one hand. Their boxes must overlap by more than
        ``duplicate_iou`` of the smaller one; then one box lies inside the other (a crop holding a few
        fingers of a hand found whole has a small IoU with it, but lies inside it), or at least
        ``shared_keypoints`` of one hand's keypoints lie on the other's (within a tenth of the larger
        hand's size). Two hands side by side, one's fingers over the other's palm, overlap their boxes
        but share few keypoints: on 28 generated clips, every pair whose boxes overlapped by 0.5-0.9
        and that shared fewer than 0.3 was two hands; hands that touch can share more and are still
        taken as one."""
        box_a, box_b = (_keypoint_box(k, shape[1], shape[0])[None] for k in (keypoints_a, keypoints_b))
        overlap = hand_roi.box_overlap(box_a, box_b)[0, 0]
        if overlap <= self.duplicate_iou:
            return False
        if overlap >= 0.9:
            return True
        size = max(np.ptp(keypoints_a, 0).max(), np.ptp(keypoints_b, 0).max())
        dist = np.linalg.norm(keypoints_a[:, None] - keypoints_b[None], axis=-1)
        shared = max((dist.min(1) < 0.1 * size).mean(), (dist.min(0) < 0.1 * size).mean())
        return bool(shared >= self.shared_keypoints)

    def _drop_duplicates(self, hands: list[_Tracked], shape) -> list[_Tracked]:
        """Two slots that converged on the same hand: keep the one whose crop was already on it (the
        smaller jump; then the older). The other slot's hand passed over this one and is hidden or
        gone: kept by age, the slot of the hand that passed took over the other's identity."""
        kept = []
        for hand in sorted(hands, key=lambda h: (h.jump, h.track_id)):
            if not any(self._same_hand(hand.result.keypoints_2d, k.result.keypoints_2d, shape) for k in kept):
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
        empty when that hand was never found; bad frames are skipped with a warning; hands seen alone for
        a few frames are dropped (:func:`hawor.detection.tracks.drop_isolated`).
    """
    detector = detector or LandmarkHandDetector(model_dir, complexity, min_presence=min_presence)
    tracker = LandmarkHandTracker(detector, max_hands=max_hands, redetect_interval=redetect_interval)
    detections, width, num_frames = [], None, 0
    for index, rgb in iter_rgb_frames(frames):
        width, num_frames = rgb.shape[1], index + 1
        for hand in tracker.step(rgb):
            res = hand.result
            detections.append(Detection(
                track_id=hand.track_id, frame=index, box=_keypoint_box(res.keypoints_2d, rgb.shape[1], rgb.shape[0]),
                score=res.presence, right=tracker.handedness_vote(hand, rgb.shape), keypoints_2d=res.keypoints_2d,
                keypoints_3d=res.keypoints_3d))
    tracks, notes = merge_tracks(detections, image_width=width)
    for side, track in tracks.items():
        tracks[side], dropped = drop_isolated(track, num_frames)
        if dropped:
            notes.append(f"{side}: {dropped} detection(s) of a hand seen alone for at most {ISOLATED_MAX_FRAMES} "
                         f"frames dropped (no other within {ISOLATED_MIN_GAP} frames: often a false or wrong hand)")
    notes.append(f"palm detector ran on {tracker.palm_runs} frame(s)")
    return tracks, notes
