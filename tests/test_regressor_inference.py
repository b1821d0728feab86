"""Regressor inference: crops, windowing/padding/batching, overlap blending, left hands, bad boxes."""
import warnings

import numpy as np
import pytest
import torch

from hawor.detection.tracks import HandTrack
from hawor.errors import HaworInputError
from hawor.estimation.crop import IMAGENET_MEAN, IMAGENET_STD, crop_hand, crop_window, normalize_crop
from hawor.estimation.regressor import HandRegressor, plan_windows
from hawor.geometry import box_to_center_scale, mirror_matrix
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor

H, W = 64, 80


def frame(index: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def make_track(frame_indices, side="right", seed=0) -> HandTrack:
    rng = np.random.default_rng(seed)
    n = len(frame_indices)
    centers = np.stack([rng.uniform(20, W - 20, n), rng.uniform(15, H - 15, n)], 1)
    half = rng.uniform(6, 14, (n, 1))
    boxes = np.concatenate([centers - half, centers + half * rng.uniform(0.7, 1.0, (n, 1))], 1)
    return HandTrack(side=side, frame_indices=np.asarray(frame_indices, np.int64), boxes=boxes,
                     scores=rng.uniform(0.3, 1, n))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = HaworRegressor(HaworConfig.tiny())
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.2)  # large enough that every frame's output depends on its crop
    return net.eval()


def reference_per_window(model, track: HandTrack):
    """The official procedure written out plainly: one 16-frame window per forward, last window padded
    with its last frame, surplus outputs discarded. Right hands, one contiguous run."""
    cfg = model.cfg
    center, scale = (t.numpy() for t in box_to_center_scale(torch.from_numpy(track.boxes), 1.2))
    crops = [normalize_crop(crop_hand(frame(int(i)), c, float(s), cfg.crop_size), cfg.vit.img_size[1])
             for i, c, s in zip(track.frame_indices, center, scale)]
    n = len(crops)
    rotmats, transl = [], []
    for start in range(0, n, 16):
        rows = [min(r, n - 1) for r in range(start, start + 16)]
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)[None]  # noqa: E731
        with torch.no_grad():
            out = model(torch.stack([crops[r] for r in rows])[None], f32(center[rows]), f32(scale[rows]),
                        torch.full((1, 16), 600.0), torch.full((1, 16, 2), 0.0) + torch.tensor([W / 2, H / 2]))
        keep = min(16, n - start)
        rotmats.append(out.pred_rotmat[0, :keep].double().numpy())
        transl.append(out.trans_full[0, :keep].double().numpy())
    return np.concatenate(rotmats), np.concatenate(transl)


@pytest.mark.parametrize("length", [1, 15, 16, 17, 100])
def test_batched_windows_equal_per_window_runs(model, length):
    track = make_track(np.arange(5, 5 + length), seed=length)
    prediction = HandRegressor(model, device="cpu", batch_windows=3).predict(frame, track)
    rotmats, transl = reference_per_window(model, track)
    np.testing.assert_array_equal(prediction.hand.frame_indices, track.frame_indices)
    np.testing.assert_allclose(prediction.rotmats, rotmats, atol=2e-5)
    np.testing.assert_allclose(prediction.hand.transl, transl, rtol=1e-4, atol=1e-4)
    assert prediction.hand.global_orient.shape == (length, 3) and prediction.hand.hand_pose.shape == (length, 45)
    if length >= 17:  # outputs really differ per frame (no accidental constant output)
        assert np.abs(np.diff(prediction.hand.transl, axis=0)).max() > 1e-3


def test_windows_never_cross_a_gap(model):
    track = make_track(np.r_[0:10, 30:50], seed=3)
    prediction = HandRegressor(model, device="cpu").predict(frame, track)
    for run in (slice(0, 10), slice(10, 30)):
        part = HandTrack("right", track.frame_indices[run], track.boxes[run], track.scores[run])
        rotmats, transl = reference_per_window(model, part)
        np.testing.assert_allclose(prediction.rotmats[run], rotmats, atol=2e-5)
        np.testing.assert_allclose(prediction.hand.transl[run], transl, rtol=1e-4, atol=1e-4)


def test_plan_windows():
    assert [w.tolist() for w in plan_windows(3, 4, 0)] == [[0, 1, 2, 2]]
    assert [w.tolist() for w in plan_windows(6, 4, 0)] == [[0, 1, 2, 3], [4, 5, 5, 5]]
    assert [w.tolist() for w in plan_windows(7, 4, 2)] == [[0, 1, 2, 3], [2, 3, 4, 5], [3, 4, 5, 6]]


def test_overlapping_windows_blend_at_borders(model):
    track = make_track(np.arange(24), seed=7)
    plain = HandRegressor(model, device="cpu", overlap=8).predict(frame, track)
    first = HandRegressor(model, device="cpu").predict(frame, HandTrack("right", track.frame_indices[:16],
                                                                        track.boxes[:16], track.scores[:16]))
    second = HandRegressor(model, device="cpu").predict(frame, HandTrack("right", track.frame_indices[8:],
                                                                         track.boxes[8:], track.scores[8:]))
    np.testing.assert_allclose(plain.hand.transl[:8], first.hand.transl[:8], rtol=1e-6)
    np.testing.assert_allclose(plain.hand.transl[16:], second.hand.transl[8:], rtol=1e-6)
    p = np.arange(8, 16)
    w1, w2 = np.minimum(p + 1, 16 - p), np.minimum(p - 8 + 1, 16 - (p - 8))
    expected = (w1[:, None] * first.hand.transl[8:] + w2[:, None] * second.hand.transl[:8]) / (w1 + w2)[:, None]
    np.testing.assert_allclose(plain.hand.transl[8:16], expected, rtol=1e-6)
    R = plain.rotmats[8:16]
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-6)


def test_left_hand_is_the_mirrored_right_hand(model):
    """A left hand = the right-hand network on the mirrored image, rotations mirrored back (M R M),
    translation un-mirrored with the official x -> W - x - 1 convention."""
    left = make_track(np.arange(20), side="left", seed=11)
    mirrored_frame = lambda i: np.ascontiguousarray(frame(i)[:, ::-1])  # noqa: E731
    boxes = left.boxes.copy()
    boxes[:, [0, 2]] = W - left.boxes[:, [2, 0]] - 1
    right = HandTrack("right", left.frame_indices, boxes, left.scores)
    runner = HandRegressor(model, device="cpu", batch_windows=2)
    got_left = runner.predict(frame, left)
    got_right = runner.predict(mirrored_frame, right)
    np.testing.assert_allclose(got_left.rotmats, mirror_matrix(torch.from_numpy(got_right.rotmats)).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(got_left.hand.betas, got_right.hand.betas, atol=1e-6)
    s = got_right.pred_cam[:, 0]
    _, scale = box_to_center_scale(torch.from_numpy(left.boxes), 1.2)
    one_pixel = 2 / (200 * scale.numpy() * s)
    expected_x = -got_right.hand.transl[:, 0] - one_pixel
    np.testing.assert_allclose(got_left.hand.transl[:, 0], expected_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_left.hand.transl[:, 1:], got_right.hand.transl[:, 1:], rtol=1e-5, atol=1e-5)
    # Mirroring twice is the identity, so the round trip returns the network's own rotations.
    back = mirror_matrix(mirror_matrix(torch.from_numpy(got_left.rotmats))).numpy()
    np.testing.assert_allclose(back, got_left.rotmats, atol=1e-12)


def test_bad_boxes_are_skipped_with_a_warning(model):
    track = make_track(np.arange(6), seed=5)
    track.boxes[1] = np.nan                      # NaN box
    track.boxes[2, 2:] = track.boxes[2, :2]      # zero area
    track.boxes[3] = [W + 10, 5, W + 30, 25]     # wholly outside
    track.boxes[4] = [-10, -8, 12, 14]           # partly outside: kept, black padding
    with pytest.warns(UserWarning, match=r"skipped 3 frame\(s\).*\[1, 2, 3\]"):
        prediction = HandRegressor(model, device="cpu").predict(frame, track)
    assert prediction.hand.frame_indices.tolist() == [0, 4, 5]
    assert prediction.skipped_frames.tolist() == [1, 2, 3]
    assert np.isfinite(prediction.hand.transl).all() and np.isfinite(prediction.hand.hand_pose).all()
    with pytest.raises(HaworInputError, match="boxes have shape"):
        HandRegressor(model, device="cpu").predict(frame, HandTrack("right", np.arange(3), np.zeros((2, 4))))
    with pytest.raises(HaworInputError, match="strictly increasing"):
        HandRegressor(model, device="cpu").predict(frame, HandTrack("right", np.array([0, 0]), np.ones((2, 4))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = HandRegressor(model, device="cpu").predict(frame, HandTrack("right"))
    assert len(empty.hand) == 0


def test_crop_geometry_and_normalisation():
    image = np.random.default_rng(0).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    center, scale = np.array([300.5, 200.5]), 256 / 200  # a 256-px window on whole pixels
    (x0, y0), (x1, y1) = crop_window(center, scale)
    assert (x0, y0, x1, y1) == (172, 72, 428, 328)
    np.testing.assert_array_equal(crop_hand(image, center, scale, 256), image[72:328, 172:428])
    # Partly outside: the outside is black; a uniform image stays uniform inside.
    gray = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_hand(gray, np.array([0.5, 0.5]), 100 / 200, 64)
    assert crop[:28, :28].max() == 0 and crop[36:, 36:].min() >= 199
    # Mirrored crop = crop of the mirrored image around x -> W - x - 1.
    np.testing.assert_array_equal(crop_hand(image, center, 1.0, 32, mirror=True),
                                  crop_hand(np.ascontiguousarray(image[:, ::-1]), np.array([338.5, 200.5]), 1.0, 32))
    tensor = normalize_crop(crop_hand(image, center, scale, 256), 192)
    assert tensor.shape == (3, 256, 192) and tensor.dtype == torch.float32
    expected = (image[72, 172 + 32, 1] / 255.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]
    assert abs(float(tensor[1, 0, 0]) - expected) < 1e-6


def test_bf16_autocast_stays_close_to_fp32(model):
    track = make_track(np.arange(16), seed=2)
    fp32 = HandRegressor(model, device="cpu").predict(frame, track)
    bf16 = HandRegressor(model, device="cpu", precision="bf16").predict(frame, track)
    deviation = np.abs(bf16.rotmats - fp32.rotmats).max()
    assert 0 < deviation < 0.5  # autocast really ran, and stayed near fp32 even for this large random net
    assert np.abs(bf16.hand.transl - fp32.hand.transl).max() < 1e-2 * np.abs(fp32.hand.transl).max()
    with pytest.raises(HaworInputError, match="overlap"):
        HandRegressor(model, device="cpu", overlap=16)
