"""YOLO backend offline with a small detector built in the test, and the track merging rules."""
from pathlib import Path

import numpy as np
import pytest
import torch
import ultralytics
import yaml

from hawor.detection import detect_hands
from hawor.detection.tracks import Detection, merge_tracks
from hawor.detection.yolo import load_yolo, track_hands_yolo
from hawor.errors import HaworInputError


def tiny_detector(path: Path, class_logits_per_level) -> Path:
    """A 0.35 M-parameter YOLOv8 with classes {0: left, 1: right}, saved as ultralytics saves one.

    Untrained, so its class scores are set through the head's class biases: one (left, right)
    logit pair per pyramid level, which fixes what every box is classified as and how sure.
    """
    from ultralytics.nn.tasks import DetectionModel

    cfg_path = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(nc=2, scale="n", scales={"n": [0.33, 0.125, 256]})
    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=2, verbose=False)
    model.names = {0: "left", 1: "right"}
    with torch.no_grad():
        for level, branch in enumerate(model.model[-1].cv3):
            branch[-1].bias.copy_(torch.tensor(class_logits_per_level[level], dtype=torch.float32))
    torch.save({"model": model, "train_args": {}}, path)
    return path


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    return [np.roll(base, i, axis=1) for i in range(4)]


def test_right_only_detector(tmp_path, frames):
    weights = tiny_detector(tmp_path / "det.pt", [(-9.0, 9.0)] * 3)
    model = load_yolo(weights)
    assert model.names == {0: "left", 1: "right"}
    tracks, notes = track_hands_yolo(frames, model=model)
    assert len(tracks["left"]) == 0
    right = tracks["right"]
    assert list(right.frame_indices) == [0, 1, 2, 3]  # one box per frame, tracked through
    assert right.boxes.shape == (4, 4) and np.isfinite(right.boxes).all()
    assert (right.scores > 0.99).all() and right.keypoints_2d is None


def test_class_mapping_both_sides(tmp_path, frames):
    # the coarsest level says right (surest), the finer ones left: both classes get boxes
    weights = tiny_detector(tmp_path / "det.pt", [(4.0, -9.0), (4.0, -9.0), (-9.0, 9.0)])
    result = detect_hands(frames, backend="yolo", weights=weights)
    assert result.backend == "yolo"
    assert len(result["left"]) == 4 and len(result["right"]) == 4


def test_confidence_threshold(tmp_path, frames):
    weights = tiny_detector(tmp_path / "det.pt", [(-9.0, -1.8)] * 3)  # scores ~0.14 < 0.2
    with pytest.warns(UserWarning, match="no hands"):
        result = detect_hands(frames[:2], backend="yolo", weights=weights)
    assert len(result["left"]) == len(result["right"]) == 0
    low = detect_hands(frames[:2], backend="yolo", weights=weights, conf=0.1)
    assert len(low["right"]) == 2


def test_missing_weights_and_unknown_backend(tmp_path):
    with pytest.raises(HaworInputError, match="not found"):
        load_yolo(tmp_path / "nope.pt")
    with pytest.raises(HaworInputError, match="backend"):
        detect_hands([], backend="mediapipe")


def _det(tid, frame, x, right, score=0.9):
    return Detection(track_id=tid, frame=frame, box=np.array([x, 10.0, x + 50, 60.0]), score=score, right=right)


def test_merge_majority_vote_and_sorting():
    dets = [_det(7, f, 100, r) for f, r in [(3, 1), (1, 1), (2, 0)]]  # mostly right
    dets += [_det(8, f, 300, 0) for f in (5, 4)]
    tracks, notes = merge_tracks(dets)
    assert list(tracks["right"].frame_indices) == [1, 2, 3]
    assert list(tracks["left"].frame_indices) == [4, 5]
    assert notes == []


def test_merge_duplicate_frames_keep_most_confident():
    # one hand, the tracker lost and re-found it: two right tracks overlapping on the same box
    dets = [_det(1, f, 100, 1, score=0.5) for f in range(4)] + [_det(2, f, 102, 1, score=0.8) for f in (3, 4)]
    tracks, notes = merge_tracks(dets)
    assert list(tracks["right"].frame_indices) == [0, 1, 2, 3, 4]
    assert tracks["right"].scores[3] == 0.8
    assert len(tracks["left"]) == 0  # same box twice is not a second hand
    assert any("duplicate" in n for n in notes)


def test_merge_fixes_obvious_handedness_swap():
    # two hands apart in the same frames, both called right; track 2 less sure -> left
    dets = [_det(1, f, 100, 1) for f in range(6)]
    dets += [_det(2, f, 400, r) for f, r in zip(range(6), [1, 1, 1, 1, 0, 0])]
    tracks, notes = merge_tracks(dets)
    assert np.all(tracks["right"].boxes[:, 0] == 100) and np.all(tracks["left"].boxes[:, 0] == 400)
    assert any("moved right->left" in n for n in notes)
    official, _ = merge_tracks(dets, fix_swaps=False)
    assert len(official["left"]) == 0 and len(official["right"]) == 6


def test_merge_keeps_side_when_other_side_is_taken():
    # a third hand (e.g. another person's right hand) does not displace a real left hand
    dets = [_det(1, f, 100, 1) for f in range(6)] + [_det(2, f, 400, 1) for f in range(6)]
    dets += [_det(3, f, 250, 0) for f in range(6)]
    tracks, notes = merge_tracks(dets)
    assert np.all(tracks["left"].boxes[:, 0] == 250)
    assert not any("moved" in n for n in notes)
