"""Hand detection and tracking: one left and one right :class:`HandTrack` per video (`detect`),
YOLO (`yolo`), the embedded landmark models (`landmarks`, `hand_roi`, `landmark_assets`) and the
merging of tracks into sides (`tracks`)."""
from hawor.detection.detect import BACKENDS, HandDetections, detect_hands
from hawor.detection.tracks import Detection, HandTrack, merge_tracks

__all__ = ["BACKENDS", "Detection", "HandDetections", "HandTrack", "detect_hands", "merge_tracks"]
