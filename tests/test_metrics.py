"""Metrics on inputs whose answers are computed by hand."""
import numpy as np
import pytest

from hawor.eval.metrics import camera_ate, mpjpe, pa_mpjpe, w_mpjpe, wa_mpjpe

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
