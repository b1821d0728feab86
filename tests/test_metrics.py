"""Metrics on inputs whose answers are computed by hand."""
import numpy as np
import pytest

from hawor.eval.metrics import (accel_error, auc, camera_alignment, camera_ate, camera_rpe, detection_rates,
                               evaluate_world, handedness_swaps, jitter, mpjpe, pa_mpjpe, path_length_ratio, pck, rte,
                               w_mpjpe, wa_mpjpe)

SQUARE = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])


def _rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_mpjpe_3_4_5():
    gt = np.zeros((1, 2, 3))
    pred = gt.copy()
    pred[0, 0] = [3, 4, 0]  # one joint 5 away, the other exact -> mean 2.5
    assert mpjpe(pred, gt) == pytest.approx([2.5])


def test_pa_mpjpe_removes_similarity_and_measures_shape():
    gt = SQUARE[None]
    moved = 2.0 * gt @ _rotation_z(0.7).T + [1, 2, 3]
    assert pa_mpjpe(moved, gt) == pytest.approx([0.0], abs=1e-12)
    # z-offsets +-1 on the square: alignment is R = I, s = 4 / (4 (1 + 1)) = 0.5, so every joint
    # lands at distance sqrt((0.5 - 1)^2 + 0.5^2) = sqrt(0.5) from the ground truth.
    bent = gt + np.array([[0, 0, 1], [0, 0, 1], [0, 0, -1], [0, 0, -1]])
    assert pa_mpjpe(bent, gt) == pytest.approx([np.sqrt(0.5)], abs=1e-12)


def test_w_mpjpe_aligns_on_the_first_two_frames_only():
    gt = np.stack([SQUARE + [0, 0, z] for z in (0.0, 0.1, 0.2)])
    pred = gt.copy()
    pred[2] += [0, 0, 0.01]  # drift after the alignment frames counts in full
    assert w_mpjpe(pred, gt) == pytest.approx([0, 0, 0.01], abs=1e-12)
    # a global similarity of the whole sequence is removed entirely
    world = 3.0 * gt @ _rotation_z(1.2).T + [5, 0, 1]
    assert w_mpjpe(world, gt) == pytest.approx([0, 0, 0], abs=1e-10)


def test_w_mpjpe_realigns_every_chunk():
    gt = np.stack([SQUARE] * 4)
    pred = gt.copy()
    pred[2:] += [0, 0.5, 0]  # a jump between chunks is absorbed by the second chunk's alignment
    assert w_mpjpe(pred, gt, chunk=2) == pytest.approx([0, 0, 0, 0], abs=1e-12)
    assert w_mpjpe(pred, gt, chunk=4) == pytest.approx([0, 0, 0.5, 0.5], abs=1e-12)


def test_wa_mpjpe_fits_all_frames():
    gt = np.stack([SQUARE, SQUARE])
    d = np.array([0, 0, 0.2])
    pred = np.stack([SQUARE + d, SQUARE - d])  # +d then -d: the best global fit is the identity
    assert wa_mpjpe(pred, gt, with_scale=False) == pytest.approx([0.2, 0.2], abs=1e-12)
    # with scale: s = 8 / (8 + 8 * 0.04) = 1 / 1.04 shrinks the points; each joint is then
    # sqrt((s - 1)^2 * 1 + s^2 * 0.04) = sqrt(0.0416) / 1.04 away.
    assert wa_mpjpe(pred, gt) == pytest.approx([np.sqrt(0.0416) / 1.04] * 2, abs=1e-12)


def test_camera_ate():
    T_gt = np.tile(np.eye(4), (4, 1, 1))
    T_gt[:, 0, 3] = [0, 1, 2, 3]
    T_pred = T_gt.copy()
    e = 0.05
    T_pred[:, 1, 3] = [e, -e, -e, e]  # zero mean, uncorrelated with x: rigid alignment is the identity
    assert camera_ate(T_pred, T_gt, with_scale=False) == pytest.approx(e, abs=1e-12)
    scaled = T_gt.copy()
    scaled[:, :3, 3] = 2.5 * T_gt[:, :3, 3] @ _rotation_z(0.3).T + [1, 1, 1]
    assert camera_ate(scaled, T_gt, with_scale=True) == pytest.approx(0.0, abs=1e-12)
    assert camera_ate(scaled, T_gt, with_scale=False) > 0.5
    static = np.tile(np.eye(4), (4, 1, 1))  # no motion estimated: the error is the spread of the truth
    assert camera_ate(static, T_gt) == pytest.approx(np.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 4), abs=1e-12)


def test_accel_error_and_jitter_hand_computed():
    fps = 30.0
    gt = np.zeros((5, 1, 3))
    pred = gt.copy()
    pred[2, 0, 0] = 0.001  # a 1 mm spike at frame 2: second differences 1, -2, 1 mm
    assert accel_error(pred, gt, fps) == pytest.approx(np.array([1, 2, 1]) * 1e-3 * 900)
    # constant acceleration has zero jitter; a cubic x = t^3 has third difference 6 (frames^3)
    t = np.arange(6.0)
    assert jitter(np.stack([t ** 2, 0 * t, 0 * t], -1)[:, None], fps) == pytest.approx(np.zeros(3))
    assert jitter(np.stack([t ** 3, 0 * t, 0 * t], -1)[:, None], fps) == pytest.approx(np.full(3, 6 * fps ** 3))


def test_rte_removes_rigid_motion_and_normalises_by_path_length():
    gt = np.stack([np.arange(5.0), np.zeros(5), np.zeros(5)], -1)  # path length 4 m
    moved = gt @ _rotation_z(0.4).T + [3, 2, 1]
    assert rte(moved, gt) == pytest.approx(np.zeros(5), abs=1e-9)
    bumped = gt.copy()
    bumped[:, 1] = [0.1, -0.1, 0, -0.1, 0.1]  # zero mean, uncorrelated with x: the fit stays identity
    assert rte(bumped, gt) == pytest.approx(np.array([1, 1, 0, 1, 1]) * 0.1 / 4 * 100, abs=1e-9)


def test_camera_sim3_scale_se3_ate_and_rpe():
    T_gt = np.tile(np.eye(4), (4, 1, 1))
    T_gt[:, 0, 3] = [0, 1, 2, 3]
    big = T_gt.copy()
    big[:, :3, 3] *= 1.44  # a metric path 44 % too large
    assert path_length_ratio(big, T_gt) == pytest.approx(1.44)
    assert camera_alignment(big, T_gt)[0] == pytest.approx(1 / 1.44)  # the Sim3 scale undoes the 44 %
    assert camera_ate(big, T_gt, with_scale=True) == pytest.approx(0.0, abs=1e-12)
    # SE3: the best rigid fit centres both paths; residuals 0.44 * (-1.5, -0.5, 0.5, 1.5)
    assert camera_ate(big, T_gt, with_scale=False) == pytest.approx(0.44 * np.sqrt(1.25), abs=1e-12)
    # each one-frame step is 1.44 m instead of 1 m: relative translation error 0.44 m, no rotation
    assert camera_rpe(big, T_gt) == pytest.approx((0.44, 0.0), abs=1e-9)
    turned = T_gt.copy()
    turned[2:, :3, :3] = _rotation_z(np.radians(30))  # one 30 degree jump between frames 1 and 2
    trans, rot = camera_rpe(turned, T_gt)
    assert rot == pytest.approx(10.0) and trans == pytest.approx(np.sqrt((2 - 2 * np.cos(np.radians(30))) / 3))


def test_pck_auc_hand_computed():
    gt = SQUARE[None]
    assert pck(gt, gt)[0] == 1.0 and auc(pck(gt, gt)) == pytest.approx(1.0)
    bent = gt + np.array([[0, 0, 1], [0, 0, 1], [0, 0, -1], [0, 0, -1]]) * 0.01  # joints 0.01 m out of plane
    # Procrustes scale s = 4 / (4 (1 + 1e-4)): each joint ends sqrt((s - 1)^2 + (0.01 s)^2) ~ 9.999 mm away
    d = np.sqrt((1 / 1.0001 - 1) ** 2 + (0.01 / 1.0001) ** 2)
    thresholds = np.array([0.0, 0.005, d + 1e-9, 0.02])
    assert pck(bent, gt, thresholds) == pytest.approx([0, 0, 1, 1])
    assert auc(np.array([0.0, 1.0]), np.array([0.0, 0.05])) == pytest.approx(0.5)


def test_detection_rates_and_handedness_swaps():
    observed = np.array([1, 1, 0, 1], bool)
    visible = np.array([1, 0, 1, 1], bool)
    assert detection_rates(observed, visible) == pytest.approx({"recall": 2 / 3, "precision": 2 / 3})
    gt = {"left": np.array([[100.0, 100], [100, 100], [100, 100], [20, -30], [np.nan, np.nan]]),
          "right": np.array([[500.0, 100]] * 5)}
    pred = {"left": np.array([[110.0, 100], [490, 100], [480, 100], [60, 5], [300, 100]]),
            "right": np.array([[500.0, 100]] * 5)}
    obs = {"left": np.ones(5, bool), "right": np.ones(5, bool)}
    vis = {"left": np.array([1, 1, 0, 0, 0], bool), "right": np.ones(5, bool)}
    # frame 1: the left prediction sits on the right hand; frame 2: left not visible, on the right
    # hand; frame 3: the left hand mostly above the image (not visible) and its fingers found where
    # they are: no swap; frame 4: no true left position, a left detection beside the right hand: a swap
    assert handedness_swaps(pred, gt, obs, vis) == {"left": 3, "right": 0}


def _truth(n=6):
    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.05, (n, 21, 3)) + [0, 0, 0.5]
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, 0, 3] = np.linspace(0, 0.5, n)
    truth = {"T_world_cam": T, "K": np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]]), "fps": 30.0}
    for k, side in enumerate(("left", "right")):
        truth.update({f"{side}_joints": joints + [0.2 * k - 0.1, 0, 0], f"{side}_valid": np.ones(n, bool),
                      f"{side}_observed": np.ones(n, bool)})
    return truth


def test_evaluate_world_perfect_prediction_and_keys_used_by_the_demo():
    gt = _truth()
    out = evaluate_world(gt, gt)
    for side in ("left", "right"):
        row = out[side]
        for key in ("w_mpjpe_mm", "wa_mpjpe_mm", "pa_mpjpe_mm", "cam_mpjpe_mm", "accel_error_m_s2"):
            assert row[key] == pytest.approx(0.0, abs=1e-6), key
        # round-off puts PA distances a hair above the 0 mm threshold: at most half of the first 1 mm step is lost
        assert row["observed_fraction"] == 1.0 and row["auc"] == pytest.approx(1.0, abs=0.5 / 50 + 1e-9)
    assert out["camera_ate_m"] == pytest.approx(0, abs=1e-9) and out["sim3_scale"] == pytest.approx(1.0)
    assert out["path_length_ratio"] == pytest.approx(1.0)
    assert out["handedness_swaps"] == {"left": 0, "right": 0}


def test_evaluate_world_counts_swapped_hands_and_scaled_world():
    gt = _truth()
    pred = dict(gt)
    pred["left_joints"], pred["right_joints"] = gt["right_joints"], gt["left_joints"]
    assert evaluate_world(pred, gt)["handedness_swaps"] == {"left": 6, "right": 6}
    scaled = {k: (v * 2 if k.endswith("_joints") else v) for k, v in gt.items()}
    scaled["T_world_cam"] = gt["T_world_cam"].copy()
    scaled["T_world_cam"][:, :3, 3] *= 2
    out = evaluate_world(scaled, gt)
    assert out["sim3_scale"] == pytest.approx(0.5) and out["path_length_ratio"] == pytest.approx(2.0)
    assert out["right"]["w_mpjpe_mm"] == pytest.approx(0, abs=1e-6)  # similarity alignment absorbs scale
    assert out["right"]["cam_mpjpe_mm"] > 100  # camera-frame depth error of a 2x too large world


def test_evaluate_world_recall_over_unoccluded_frames():
    gt = _truth()
    pred = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in gt.items()}
    pred["left_observed"] = np.array([1, 1, 1, 0, 0, 1], bool)
    unoccluded = np.ones((6, 21), bool)
    unoccluded[3:5, :11] = False  # the two missed frames: 10 joints shown, the hand behind the other arm
    unoccluded[5, :10] = False  # 11 shown: still clear
    gt["left_joints_unoccluded"] = unoccluded
    row = evaluate_world(pred, gt)["left"]
    assert row["observed_fraction"] == pytest.approx(4 / 6)
    assert row["unoccluded_frames"] == 4 and row["observed_fraction_unoccluded"] == 1.0
    assert "observed_fraction_unoccluded" not in evaluate_world(pred, gt)["right"]  # the truth has none


def test_detection_scores_count_unoccluded_frames():
    from hawor.detection.tracks import HandTrack
    from hawor.eval.hand_detection import score_hand_tracks

    grid = np.stack(np.meshgrid(np.linspace(10, 40, 7), np.linspace(10, 30, 3)), -1).reshape(21, 2)
    joints_2d = np.stack([grid, grid + [50, 0]])[None].repeat(4, 0)  # (4, 2, 21, 2): left, right apart
    found = np.array([0, 1, 2])
    tracks = {"left": HandTrack("left", found, np.zeros((3, 4)), np.ones(3), joints_2d[found, 0]),
              "right": HandTrack("right")}
    unoccluded = np.ones((4, 2, 21), bool)
    unoccluded[1, 0, 5:] = False  # frame 1: the left hand mostly behind something
    score = score_hand_tracks(tracks, joints_2d, (0, 0, 100, 100), unoccluded)
    assert score["left"] == {"visible": 4, "observed": 3, "swapped": 0, "spurious": 0, "unoccluded": 3,
                             "observed_unoccluded": 2}
    assert score["right"]["unoccluded"] == 4 and score["right"]["observed_unoccluded"] == 0
    assert "unoccluded" not in score_hand_tracks(tracks, joints_2d, (0, 0, 100, 100))["left"]
