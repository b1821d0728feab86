"""hawor.eval.sources: W-/WA-MPJPE with one part of the predicted hand taken from the truth, on generated hands."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hawor.eval.sources import PARTS, error_sources, with_true_part


@pytest.fixture(scope="module")
def truth():
    """World-frame truth of a generated clip (open hand), 60 frames."""
    from hawor.data.synthetic.generate import simulate
    from hawor.data.synthetic.truth import hand_arrays

    return hand_arrays(simulate(seed=5, num_frames=60, width=320, height=240, fps=30.0, hand_backend="open"), "world")


def _about_wrist(joints, transform):
    wrist = joints[:, :1]
    return transform(joints - wrist) + wrist


def _report(pred_joints, gt_joints, infilled=None):
    valid = np.isfinite(gt_joints).all((1, 2))
    pred = {"right_joints": pred_joints, "right_valid": valid}
    if infilled is not None:
        pred["right_infilled"] = infilled
    return error_sources(pred, {"right_joints": gt_joints, "right_valid": valid}, sides=("right",))["right"]


def test_each_part_taken_from_the_truth_removes_the_error_it_explains(truth):
    gt = truth["right_joints"]
    turn = Rotation.from_rotvec([0.0, 0.6, 0.0]).as_matrix()  # 34 degrees: a hand leaning the wrong way
    wrong = {
        "orientation": _about_wrist(gt, lambda rel: rel @ turn.T),
        "wrist": gt + np.stack([0.05 * np.sin(np.arange(len(gt)) / 5), np.zeros(len(gt)), 0.03 * np.ones(len(gt))],
                               1)[:, None],
        "size": _about_wrist(gt, lambda rel: 0.85 * rel),
    }
    for part, pred in wrong.items():
        row = _report(pred, gt)
        assert row["result"]["w_mpjpe_mm"] > 1.5 and row["result"]["wa_mpjpe_mm"] > 0.5, part
        assert row[part]["w_mpjpe_mm"] == pytest.approx(0, abs=1e-6), part
        assert row[part]["wa_mpjpe_mm"] == pytest.approx(0, abs=1e-6), part
        for other in (p for p in PARTS if p not in (part, "filled", "placement")):  # already true here
            assert row[other] == pytest.approx(row["result"]), (part, other)
        assert row["placement"]["w_mpjpe_mm"] == pytest.approx(0, abs=1e-6), part


def test_with_the_placement_true_only_the_articulation_counts(truth):
    gt = truth["right_joints"]
    bent = gt.copy()
    bent[:, 5:9] = gt[:, 5:6] + 0.8 * (gt[:, 5:9] - gt[:, 5:6])  # a shorter index finger: articulation error
    t = np.arange(len(gt))
    turn = Rotation.from_rotvec(np.stack([0.3 * np.sin(t / 6), 0 * t, 0.2 * np.cos(t / 7)], 1)).as_matrix()
    size = 0.9 + 0.05 * np.sin(t / 4)
    shift = np.stack([0.04 * np.sin(t / 5), -0.02 * np.ones(len(t)), 0.05 * np.cos(t / 9)], 1)
    # placement wrong by a different amount in every frame (an error alignment cannot absorb)
    pred = _about_wrist(bent, lambda rel: size[:, None, None] * np.einsum("nij,nkj->nki", turn, rel)) + shift[:, None]
    row = _report(pred, gt)
    articulation = _report(bent, gt)["result"]["wa_mpjpe_mm"]
    assert row["placement"]["wa_mpjpe_mm"] == pytest.approx(articulation, rel=1e-6)
    assert row["result"]["wa_mpjpe_mm"] > 2 * articulation > 0


def test_filled_frames_taken_from_the_truth(truth):
    gt = truth["right_joints"]
    infilled = np.zeros(len(gt), bool)
    infilled[20:35] = True
    pred = gt.copy()
    pred[infilled] += [0.2, 0.0, 0.0]  # a gap filled 20 cm off
    row = _report(pred, gt, infilled)
    assert row["result"]["wa_mpjpe_mm"] > 20
    assert row["filled"]["w_mpjpe_mm"] == pytest.approx(0, abs=1e-6)
    assert "filled" not in _report(pred, gt)  # without the mask, no such row


def test_frames_missing_on_either_side_are_left_alone(truth):
    gt = truth["right_joints"].copy()
    pred = gt + 0.01
    pred[5] = np.nan
    out = with_true_part(pred, gt, "wrist")
    assert np.isnan(out[5]).all() and np.allclose(out[6], gt[6])
    with pytest.raises(ValueError, match="unknown part"):
        with_true_part(pred, gt, "elbow")

