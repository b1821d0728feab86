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
    error = np.linalg.norm(right["right"].keypoints_2d[0] - expected, axis=-1)
    assert error.mean() < 8.0 and error.max() < 16.0  # ~4% of the hand: the networks are not mirror-symmetric


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


def test_two_slots_on_one_hand_keep_the_one_already_there(detector, zidane):
    """When a hand passes over the other, both slots end on one hand: the slot whose crop was
    already on it keeps it (the other's hand is hidden), not the older slot that jumped onto it."""
    from hawor.detection.landmarks import _Tracked

    first = LandmarkHandTracker(detector, max_hands=1)
    first.step(zidane)
    on_hand = first.tracked[0].roi.copy()
    arriving = on_hand.copy()
    arriving[0] -= 0.35 * on_hand[2]  # a crop a third of a side away, coming from the left
    tracker = LandmarkHandTracker(detector, max_hands=2)
    slots = [_Tracked(0, arriving), _Tracked(5, on_hand)]
    tracker.tracked = list(slots)
    tracker._next_id = 6
    found = tracker.step(zidane)
    assert [h.track_id for h in found] == [5]
    assert slots[0].result is not None and slots[0].track_id == 0  # the older slot found the hand too
    assert slots[1].jump < slots[0].jump  # and the smaller jump decided


def test_a_crop_off_the_hand_is_recentred_once(detector, zidane):
    """A palm's or a coasting crop too large and turned scores below the presence threshold; one more
    try on the crop its own weak landmarks give finds the hand."""
    from hawor.detection.landmarks import _Tracked

    first = LandmarkHandTracker(detector, max_hands=1)
    first.step(zidane)
    on_hand = first.tracked[0].roi
    off = on_hand.copy()
    off[2:4] *= 1.6
    off[4] += 1.0
    off[0] += 0.15 * on_hand[2]
    assert detector.landmarks(zidane, off) is None  # presence 0.27 measured
    found = {}
    for refine_floor in (0.25, 1.0):  # 1.0: no second try
        tracker = LandmarkHandTracker(detector, max_hands=1, refine_floor=refine_floor)
        tracker.tracked = [_Tracked(0, off.copy())]
        found[refine_floor] = tracker.step(zidane)
    assert found[1.0] == []
    (hand,) = found[0.25]
    x0, y0, x1, y1 = HAND_REGION
    centre = hand.result.keypoints_2d.mean(0)
    assert x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1 and hand.result.presence > 0.9


def test_two_hands_side_by_side_are_both_kept(detector):
    """The bundled example, frames 40-59: one hand's fingers lie over the other's palm (their keypoint
    boxes overlap by 56 % of the smaller at frame 48), but they share no keypoints. With the box test
    alone one of them was dropped for 7 frames."""
    import itertools

    from hawor.io.video import VideoReader

    example = Path(__file__).resolve().parents[1] / "example" / "video_0.mp4"
    counts = {}
    for shared in (0.3, 0.0):  # 0.0: every box overlap is one hand, the earlier rule
        tracker = LandmarkHandTracker(detector, shared_keypoints=shared)
        counts[shared] = [len(tracker.step(f)) for f in itertools.islice(VideoReader(example), 60)][40:]
    assert counts[0.3] == [2] * 20
    assert counts[0.0].count(1) >= 5


def test_more_than_two_hands_keeps_two_consistently(detector, zidane):
    patch = zidane[300:600, 860:1260]  # the hand with some of its owner around it
    canvas = np.concatenate([np.concatenate([patch, patch[:, ::-1]], 1),
                             np.concatenate([patch[:, ::-1], patch], 1)], 0)  # four hands
    assert len(detector.detect_palms(canvas)) == 4
    tracker = LandmarkHandTracker(detector, max_hands=2)
    steps = [tracker.step(canvas) for _ in range(6)]
    assert all(sorted(h.track_id for h in hands) == [0, 1] for hands in steps)
    assert tracker.palm_runs == 1
    # the two kept are the most confident palms (bottom row), one left and one right
    centres = [h.result.keypoints_2d.mean(0) for h in steps[-1]]
    assert all(c[1] > 300 for c in centres)
    tracks, _ = _track([canvas] * 3, detector)
    assert len(tracks["left"]) == len(tracks["right"]) == 3


def test_bad_frames_never_raise(detector, zidane):
    gray = cv2.cvtColor(zidane, cv2.COLOR_RGB2GRAY)
    frames = {
        "rgba": np.concatenate([zidane, np.full(zidane.shape[:2] + (1,), 255, np.uint8)], -1),
        "odd size": np.ascontiguousarray(zidane[301:634, 817:1277]),
        "float [0, 1]": zidane.astype(np.float32) / 255.0,
        "grayscale": gray,  # the palm detector scores a grey hand lower: found or not, no error
        "(H, W, 1)": gray[..., None],
        "cut by the border": np.ascontiguousarray(zidane[:, :1080]),
        "tiny": cv2.resize(zidane, (64, 36)),  # a hand of ~7 px
    }
    found = {}
    for name, frame in frames.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracks, _ = _track([frame, frame], detector)
        track = tracks["left"]
        found[name] = len(track)
        if len(track):
            assert np.isfinite(track.keypoints_2d).all() and np.isfinite(track.keypoints_3d).all()
            width = np.asarray(frame).shape[1]
            assert (track.boxes[:, [0, 2]] >= 0).all() and (track.boxes[:, [0, 2]] <= width).all()
    assert found["rgba"] == found["odd size"] == found["float [0, 1]"] == 2
    assert found["grayscale"] == found["(H, W, 1)"]
    with pytest.warns(UserWarning, match="frame 1 is empty"):
        tracks, _ = _track([zidane, np.zeros((0, 4, 3), np.uint8), zidane], detector)
    assert list(tracks["left"].frame_indices) == [0, 2]


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


def test_roi_inside_fraction_and_box_overlap():
    assert hand_roi.roi_inside_fraction(np.array([100.0, 100, 80, 80, 0.3]), 640, 480) == 1.0
    half = hand_roi.roi_inside_fraction(np.array([100.0, 480, 80, 80, 0.0]), 640, 480)
    assert half == pytest.approx(0.5)
    assert hand_roi.roi_inside_fraction(np.array([100.0, 600, 80, 80, 0.0]), 640, 480) == 0.0
    whole, fingers = np.array([[0.0, 0, 100, 100]]), np.array([[10.0, 10, 40, 30]])
    assert hand_roi.box_overlap(whole, fingers)[0, 0] == 1.0 and hand_roi.box_iou(whole, fingers)[0, 0] < 0.1


# Hands cut by each image border, on a generated clip (seed 61 unless noted; not a seed the tracker was
# tuned on). Observed / visible of the cut hand measured with the MediaPipe-style tracker before this
# change -> now: bottom 0/40 -> 32/40 (left hand, fingers in view, palm cut off), left 0/38 -> 30/38,
# right 0/36 -> 25/36, top (seed 62) 12/14 -> 12/14; 2 handedness swaps -> 0.
CUT_HAND = {"bottom": "left", "left": "left", "right": "right", "top": "right"}


@pytest.fixture(scope="module")
def border_clips():
    from hawor.data.synthetic.generate import render_frames, simulate
    from hawor.data.synthetic.truth import project

    clips = {}
    for seed in (61, 62):
        sim = simulate(seed, 60, 640, 480, hand_backend="open")
        frames = [rgb for rgb, _, _ in render_frames(sim)]
        clips[seed] = frames, np.stack([project(sim.hands[s].joints_cam, sim.K) for s in ("left", "right")], 1)
    return clips


@pytest.mark.parametrize("border", ["bottom", "left", "right", "top"])
def test_hands_cut_by_the_border_are_tracked_without_swaps(detector, border_clips, border):
    from hawor.eval.hand_detection import crop_window, score_hand_tracks

    frames, joints_2d = border_clips[62 if border == "top" else 61]
    x0, y0, x1, y1 = window = crop_window(joints_2d, (640, 480), border)
    tracks, _ = _track([np.ascontiguousarray(f[y0:y1, x0:x1]) for f in frames], detector)
    score = score_hand_tracks(tracks, joints_2d, window)
    cut = score[CUT_HAND[border]]
    assert cut["visible"] >= 10  # the crop really cuts that hand in many frames
    assert cut["observed"] >= 0.55 * cut["visible"]  # measured 0.69-0.86
    for counts in score.values():
        assert counts["swapped"] == 0
        assert counts["observed"] >= 0.55 * counts["visible"]
