"""Embedded landmark backend on a real photo (ultralytics' zidane.jpg) and on bad input."""
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import ultralytics

from hawor.detection import detect_hands
from hawor.detection import hand_roi
from hawor.detection.landmark_assets import check_landmark_models, find_landmark_models
from hawor.detection.landmarks import LandmarkHandDetector, LandmarkHandTracker, track_hands_landmarks

ZIDANE = Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"
# The pointing hand of the man on the right (x 1004-1143, y 415-480 px; checked by eye). It is his
# left hand (the ring finger carries his wedding ring; MediaPipe's mirrored-selfie label calls it "Right").
HAND_REGION = (985, 395, 1165, 500)

pytestmark = pytest.mark.skipif(find_landmark_models() is None,
                                reason="embedded hand models missing: run `python -m hawor.assets`")


@pytest.fixture(scope="module")
def detector():
    return LandmarkHandDetector()


@pytest.fixture(scope="module")
def zidane():
    return np.ascontiguousarray(cv2.imread(str(ZIDANE))[..., ::-1])


def _track(frames, detector, **kw):
    return track_hands_landmarks(frames, detector=detector, **kw)


def test_anchor_layout():
    anchors = hand_roi.palm_anchors()
    assert anchors.shape == (2016, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors per stride-8 cell
    np.testing.assert_allclose(anchors[1152], [0.5 / 12, 0.5 / 12])  # then 6 per stride-16 cell
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12])


def test_roi_affine_roundtrip():
    rect = np.array([300.0, 200.0, 120.0, 120.0, 0.7])
    affine = hand_roi.roi_to_image_affine(rect, 224)
    centre = affine[:, :2] @ [112, 112] + affine[:, 2]
    np.testing.assert_allclose(centre, rect[:2])
    up = affine[:, :2] @ [0, -1]  # crop "up" points along the rect's angle
    np.testing.assert_allclose(up / np.linalg.norm(up), [np.sin(0.7), -np.cos(0.7)], atol=1e-12)


def test_zidane_left_hand_21_keypoints(detector, zidane):
    tracks, _ = _track([zidane], detector)
    assert len(tracks["left"]) == 1 and len(tracks["right"]) == 0  # handedness convention pinned
    kp = tracks["left"].keypoints_2d[0]
    x1, y1, x2, y2 = HAND_REGION
    assert kp.shape == (21, 2)
    assert np.all((kp[:, 0] > x1) & (kp[:, 0] < x2) & (kp[:, 1] > y1) & (kp[:, 1] < y2))
    assert (kp.max(0) - kp.min(0)).min() > 40  # spread over the hand, not collapsed
    assert tracks["left"].scores[0] > 0.9
    # the index finger points right (+x): its tip is the right-most keypoint
    assert kp[:, 0].argmax() == 8
    world = tracks["left"].keypoints_3d[0]
    np.testing.assert_allclose(world[0], 0.0, atol=1e-12)
    palm = np.linalg.norm(world[9] - world[0])
    assert 0.06 < palm < 0.12  # wrist to middle-finger base, metres
    assert world[8, 0] - world[5, 0] > 0.04  # index finger extended towards +x in metres too
    box = tracks["left"].boxes[0]
    assert box[0] <= kp[:, 0].min() and box[2] >= kp[:, 0].max()


def test_mirrored_image_gives_right_hand(detector, zidane):
    mirrored = np.ascontiguousarray(zidane[:, ::-1])
    left, _ = _track([zidane], detector)
    right, _ = _track([mirrored], detector)
    assert len(right["right"]) == 1 and len(right["left"]) == 0
    expected = left["left"].keypoints_2d[0].copy()
    expected[:, 0] = zidane.shape[1] - expected[:, 0]
    assert np.abs(right["right"].keypoints_2d[0] - expected).max() < 6.0


def test_blank_frames_give_empty_tracks_with_warning():
    with pytest.warns(UserWarning, match="no hands"):
        result = detect_hands([np.full((480, 640, 3), 128, np.uint8)] * 2, backend="landmarks")
    assert result.backend == "landmarks"
    assert len(result["left"]) == 0 and len(result["right"]) == 0


def test_tracking_reuses_landmarks(detector, zidane):
    shifted = [np.roll(zidane, 3 * i, axis=1) for i in range(8)]
    tracker = LandmarkHandTracker(detector, max_hands=1)
    found = [len(tracker.step(frame)) for frame in shifted]
    assert found == [1] * 8
    assert tracker.palm_runs == 1  # the palm detector ran only on the first frame
    tracks, notes = _track(shifted, detector)
    assert list(tracks["left"].frame_indices) == list(range(8))
    x_tip = tracks["left"].keypoints_2d[:, 8, 0]
    np.testing.assert_allclose(np.diff(x_tip), 3.0, atol=2.0)  # follows the moving hand


def test_more_than_two_hands_keeps_two_consistently(detector, zidane):
    patch = zidane[360:540, 940:1200]
    canvas = np.full((540, 960, 3), 90, np.uint8)
    for i, (y, x) in enumerate([(20, 20), (20, 500), (340, 260)]):
        canvas[y:y + 180, x:x + 260] = patch if i != 1 else patch[:, ::-1]
    tracker = LandmarkHandTracker(detector, max_hands=2)
    ids = [sorted(h.track_id for h in tracker.step(canvas)) for _ in range(4)]
    assert len(ids[0]) == 2 and all(i == ids[0] for i in ids)


def test_bad_frames_never_raise(detector, zidane):
    gray = cv2.cvtColor(zidane, cv2.COLOR_RGB2GRAY)
    rgba = np.concatenate([zidane, np.full(zidane.shape[:2] + (1,), 255, np.uint8)], -1)
    odd = np.ascontiguousarray(zidane[301:634, 817:1277])  # odd size, hand inside
    cut = np.ascontiguousarray(zidane[:, :1080])  # hand cut by the right border
    tiny = cv2.resize(zidane, (64, 36))  # hand of ~7 px
    float_frame = zidane.astype(np.float32) / 255.0
    frames = [gray, rgba, odd, cut, tiny, np.zeros((0, 4, 3), np.uint8), float_frame, gray[..., None]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracks, _ = _track(frames, detector, max_hands=2)
    assert any("frame 5 is empty" in str(w.message) for w in caught)
    left = tracks["left"]
    found = set(left.frame_indices.tolist())
    assert {0, 1, 2, 6, 7} <= found  # grayscale, RGBA, odd size, float [0, 1], (H, W, 1)
    assert 5 not in found
    assert np.isfinite(left.keypoints_2d).all() and np.isfinite(left.keypoints_3d).all()
    if 3 in found:  # a cut hand may be found; its box stays inside the image
        box = left.boxes[list(left.frame_indices).index(3)]
        assert box[2] <= 1080


def test_model_files_checked(tmp_path):
    status = check_landmark_models()
    assert set(status.values()) == {"ok"}
    copy = tmp_path / "landmarks"
    shutil.copytree(find_landmark_models()["palm_full"].parent, copy)
    (copy / "palm_detection_lite.tflite").write_bytes(b"broken")
    (copy / "hand_landmark_lite.tflite").unlink()
    status = check_landmark_models(copy)
    assert status == {"palm_full": "ok", "palm_lite": "corrupt", "landmark_full": "ok", "landmark_lite": "missing"}
    assert find_landmark_models(copy) is None
