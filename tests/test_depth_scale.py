"""HaWoR's Metric3D-based metric scale on synthetic scenes with a known scale."""
import numpy as np
import pytest
import torch

from hawor.models.metric3d import Metric3D, Metric3DConfig
from hawor.depth.predictor import Metric3DPredictor
from hawor.depth.scale import (estimate_scale_metric3d, keyframe_scale, non_hand_mask, robust_metric_scale,
                               select_scale_keyframes)
from hawor.errors import HaworInputError
from hawor.slam.trajectory import SparseDisparities

H, W = 96, 128


def synthetic_keyframe(scale, rng, near_m=0.3, far_m=1.5, noise=0.0, outlier_frac=0.06):
    """Metric depth, SLAM disparity (= scale / true depth) and a hand mask, with corruptions.

    The hand is at 0.5 m in the depth map while SLAM puts it at 0.75x that (in the fitting band),
    so an unmasked fit is biased; outliers: SLAM depth 3-10x too far, and sky-like depths 5-50 m.
    """
    yy, xx = np.mgrid[0:H, 0:W]
    true = near_m + (far_m - near_m) * (0.5 + 0.5 * np.sin(xx / 17.0) * np.cos(yy / 11.0))
    true *= 1 + 0.05 * rng.standard_normal((H, W))
    pred = true * (1 + noise * rng.standard_normal((H, W)))
    disp = scale / true
    hand = np.zeros((H, W), bool)
    hand[40:90, 30:75] = True
    pred[hand] = 0.5 + 0.02 * rng.standard_normal(hand.sum())
    disp[hand] = scale / (0.75 * pred[hand])
    idx = rng.choice(H * W, int(outlier_frac * H * W), replace=False)
    half = len(idx) // 2
    disp.ravel()[idx[:half]] /= rng.uniform(3, 10, half)
    pred.ravel()[idx[half:]] = rng.uniform(5, 50, len(idx) - half)
    return pred.astype(np.float32), disp.astype(np.float32), hand


@pytest.mark.parametrize("scale", [0.23, 1.0, 4.7])
def test_recovers_the_scale_despite_hands_and_outliers(scale):
    rng = np.random.default_rng(0)
    pred, disp, hand = synthetic_keyframe(scale, rng)
    assert keyframe_scale(pred, disp, ~hand) == pytest.approx(scale, rel=1e-5)
    # Without the hand mask the hand pixels pull the fit: the mask is what makes it exact.
    assert abs(keyframe_scale(pred, disp, np.ones_like(hand)) / scale - 1) > 0.02


def test_noisy_depth_over_several_keyframes():
    rng = np.random.default_rng(1)
    frames = [synthetic_keyframe(2.0, rng, noise=0.02) for _ in range(5)]
    result = robust_metric_scale([f[0] for f in frames], [f[1] for f in frames], [~f[2] for f in frames])
    assert result.ok and result.scale == pytest.approx(2.0, rel=5e-3)
    assert np.all(np.abs(result.per_keyframe / 2.0 - 1) < 1e-2)
    assert (result.near, result.far) == (0.4, 0.7)


def test_band_widens_and_stays_widened_for_later_keyframes():
    rng = np.random.default_rng(2)
    far_scene = synthetic_keyframe(3.0, rng, near_m=0.9, far_m=2.0, outlier_frac=0.0)
    near_scene = synthetic_keyframe(3.0, rng, outlier_frac=0.0)
    result = robust_metric_scale([far_scene[0], near_scene[0]], [far_scene[1], near_scene[1]],
                                 [~far_scene[2], ~near_scene[2]])
    assert result.far > 0.75 and result.near < 0.35
    assert np.allclose(result.per_keyframe, 3.0, rtol=1e-5)


def test_no_usable_pixel_gives_nan_and_a_warning():
    rng = np.random.default_rng(3)
    pred, disp, _ = synthetic_keyframe(1.0, rng)
    everything_is_hand = np.zeros((H, W), bool)
    result = robust_metric_scale([pred], [disp], [everything_is_hand])
    assert not result.ok and np.isnan(result.scale) and result.warnings
    with pytest.raises(HaworInputError, match="same"):
        keyframe_scale(pred, disp[:10], everything_is_hand)


def test_keyframe_subset_is_bounded_evenly_spaced_and_configurable():
    chosen = select_scale_keyframes(100, 16)
    assert len(chosen) == 16 and chosen[0] == 0 and chosen[-1] == 99
    assert np.ptp(np.diff(chosen)) <= 1
    assert np.array_equal(select_scale_keyframes(10, 16), np.arange(10))
    assert np.array_equal(select_scale_keyframes(100, None), np.arange(100))


def test_hand_mask_is_resized_like_hawor():
    mask = np.zeros((180, 320), bool)
    mask[60:120, 100:200] = True
    keep = non_hand_mask(mask, (H, W))
    assert keep.shape == (H, W) and not keep[48, 64] and keep[5, 5]
    assert non_hand_mask(None, (H, W)).all()


def test_end_to_end_with_a_metric3d_network_on_a_bounded_subset():
    cfg = Metric3DConfig(embed_dim=32, depth=1, num_heads=2, mlp_hidden=64, pretrain_img_size=28,
                         feature_channels=(8, 16, 32, 32), decoder_channels=(4, 8, 16, 32, 32),
                         hidden_channels=(8, 8, 8, 8), iters=1, num_depth_bins=16, normal_head_width=8,
                         input_size=(56, 84))
    torch.manual_seed(0)
    predictor = Metric3DPredictor(Metric3D(cfg))
    rng = np.random.default_rng(4)
    frames = [(rng.random((90, 160, 3)) * 255).astype(np.uint8) for _ in range(6)]
    hands = [np.zeros((90, 160), bool) for _ in frames]
    for hand in hands:
        hand[30:80, 40:90] = True
    focal, scale, size = 12.0, 0.8, (40, 72)  # a tiny focal puts this random net's depths at arm's reach
    disps = []
    for frame, hand in zip(frames, hands):
        disp = scale / predictor.predict_resized(frame, focal, size)
        disp[~non_hand_mask(hand, size)] *= 1.6  # SLAM disagrees on the hands
        disps.append(disp)
    read = []

    def read_keyframe(k):
        read.append(k)
        return frames[k]

    result = estimate_scale_metric3d(predictor, read_keyframe, np.stack(disps), focal, hands.__getitem__,
                                     max_keyframes=3)
    expected = list(select_scale_keyframes(6, 3))
    assert len(expected) == 3 and read == expected == list(result.keyframes)
    assert result.ok and result.scale == pytest.approx(scale, rel=1e-4)
    # the classical backend's sparse disparities (every other pixel known) give the same scale
    sparse = SparseDisparities(size, [(r.ravel(), c.ravel(), d[r, c].ravel()) for d in disps
                                      for r, c in [np.mgrid[0:size[0]:2, 0:size[1]:2]]])
    again = estimate_scale_metric3d(predictor, lambda k: frames[k], sparse, focal, hands.__getitem__, max_keyframes=3)
    assert again.ok and again.scale == pytest.approx(scale, rel=1e-4)
    with pytest.raises(HaworInputError, match="disps"):
        estimate_scale_metric3d(predictor, read_keyframe, np.stack(disps)[0], focal)
