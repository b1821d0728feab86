"""World assembly (rotation about the wrist), interpolation and learned infilling."""
import numpy as np
import pytest
import torch
from torch import nn

from hawor.errors import HaworInternalError
from hawor.estimation.result import CameraSpaceHand
from hawor.geometry import axis_angle_to_matrix, make_transform
from hawor.hands import HandModel
from hawor.models.infiller import InfillerConfig, MotionInfiller
from hawor.world.assemble import camera_to_world, hand_joints, world_to_camera
from hawor.world.infill import fill_hands, infill_learned
from hawor.world.interpolate import interpolate_frames, interpolate_gaps
from hawor.world.sequence import HandSequence


@pytest.fixture(scope="module")
def models():
    return {side: HandModel(side).double() for side in ("left", "right")}


def random_sequence(side, n, seed, observed=None):
    """A smooth random hand motion; frames outside ``observed`` are NaN."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)[:, None]
    seq = HandSequence(
        side,
        global_orient=rng.normal(0, 0.5, 3) + t * rng.normal(0, 1.0, 3),
        hand_pose=rng.normal(0, 0.2, 45) + t * rng.normal(0, 0.3, 45),
        betas=np.tile(rng.normal(0, 1, 10), (n, 1)),
        transl=rng.normal(0, 0.1, 3) + [0, 0, 0.5] + t * rng.normal(0, 0.2, 3),
        observed=np.ones(n, bool) if observed is None else observed.copy(),
        infilled=np.zeros(n, bool),
    )
    return seq.with_params()


def random_trajectory(n, seed):
    rng = np.random.default_rng(seed)
    t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    aa = torch.as_tensor(rng.normal(0, 0.3, 3)) + t * torch.as_tensor(rng.normal(0, 0.5, 3))
    transl = torch.as_tensor(rng.normal(0, 0.5, 3)) + t * torch.as_tensor(rng.normal(0, 1.0, 3))
    return make_transform(axis_angle_to_matrix(aa), transl).numpy()


@pytest.mark.parametrize("side", ["left", "right"])
def test_camera_to_world_moves_the_whole_posed_hand_rigidly(models, side):
    n = 6
    seq_cam = random_sequence(side, n, seed=3)
    T_world_cam = random_trajectory(n, seed=4)
    seq_world = camera_to_world(seq_cam, T_world_cam, models[side])
    joints_cam = hand_joints(seq_cam, models[side])
    expected = np.einsum("nij,nkj->nki", T_world_cam[:, :3, :3], joints_cam) + T_world_cam[:, None, :3, 3]
    np.testing.assert_allclose(hand_joints(seq_world, models[side]), expected, atol=1e-9)
    np.testing.assert_array_equal(seq_world.hand_pose, seq_cam.hand_pose)
    back = world_to_camera(seq_world, T_world_cam, models[side])
    np.testing.assert_allclose(hand_joints(back, models[side]), joints_cam, atol=1e-9)


def test_camera_space_hand_scatter_and_nan_frames(models):
    hand = CameraSpaceHand("right", np.array([1, 4]), np.zeros((2, 3)), np.zeros((2, 45)), np.zeros((2, 10)),
                           np.tile([0, 0, 0.5], (2, 1)), np.ones(2))
    seq = HandSequence.from_camera_space(hand, 6)
    assert seq.observed.tolist() == [False, True, False, False, True, False]
    assert np.isnan(seq.transl[[0, 2, 3, 5]]).all() and not np.isnan(seq.transl[[1, 4]]).any()
    world = camera_to_world(seq, np.tile(np.eye(4), (6, 1, 1)), models["right"])
    assert np.isnan(world.transl[0]).all()
    np.testing.assert_allclose(world.transl[[1, 4]], seq.transl[[1, 4]], atol=1e-12)
    with pytest.raises(HaworInternalError, match="6 frames"):  # a stage broke its contract: a bug, not input
        camera_to_world(seq, np.tile(np.eye(4), (5, 1, 1)), models["right"])


def test_slerp_and_linear_interpolation_by_hand():
    n = 5
    params = {"global_orient": np.zeros((n, 3)), "hand_pose": np.zeros((n, 45)),
              "betas": np.zeros((n, 10)), "transl": np.zeros((n, 3))}
    params["global_orient"][4] = [0, 0, np.pi / 2]  # 90 degrees about z
    params["hand_pose"][4, :3] = [np.pi / 3, 0, 0]
    params["transl"][4] = [0.4, 0, 0]
    params["betas"][4] = 1.0
    valid = np.array([1, 0, 0, 0, 1], bool)
    out = interpolate_frames(params, valid, np.array([1, 2, 3]))
    np.testing.assert_allclose(out["global_orient"][:, 2], [np.pi / 8, np.pi / 4, 3 * np.pi / 8], atol=1e-12)
    np.testing.assert_allclose(out["hand_pose"][:, 0], [np.pi / 12, np.pi / 6, np.pi / 4], atol=1e-12)
    np.testing.assert_allclose(out["transl"][:, 0], [0.1, 0.2, 0.3], atol=1e-12)
    np.testing.assert_allclose(out["betas"][:, 0], [0.25, 0.5, 0.75], atol=1e-12)


def test_interpolate_gaps_respects_max_gap_and_edges():
    observed = np.ones(40, bool)
    observed[[0, 1]] = False  # leading: never extrapolated
    observed[5:8] = False  # short gap: filled
    observed[15:30] = False  # long gap: stays NaN
    observed[-1] = False  # trailing: stays NaN
    seq = random_sequence("right", 40, seed=1, observed=observed)
    filled = interpolate_gaps(seq, max_gap=10)
    assert filled.infilled.nonzero()[0].tolist() == [5, 6, 7]
    assert not np.isnan(filled.transl[filled.valid]).any()
    assert np.isnan(filled.transl[~filled.valid]).all()
    np.testing.assert_array_equal(filled.observed, observed)
    assert interpolate_gaps(seq, max_gap=None).infilled.sum() == 3 + 15
    never = HandSequence.empty("left", 40)
    assert not interpolate_gaps(never).valid.any()


class EchoNetwork(nn.Module):
    """Returns its input: the learned path then reproduces its own pre-fill (a round-trip check)."""

    config = InfillerConfig(seq_len=16)

    def forward(self, src, data_mask, atten_mask):
        assert not atten_mask.all(dim=-1).any(), "a query with no visible key frame"
        return src


def test_learned_path_round_trips_canonical_frames(models):
    n = 30
    obs_r = np.ones(n, bool)
    obs_r[10:14] = False
    obs_l = np.ones(n, bool)
    obs_l[20:23] = False
    hands = {"right": random_sequence("right", n, 5, obs_r), "left": random_sequence("left", n, 6, obs_l)}
    out = infill_learned(hands, models, EchoNetwork(), horizon=16)
    for side, obs in (("right", obs_r), ("left", obs_l)):
        expected = interpolate_gaps(hands[side], max_gap=None)
        assert out[side].infilled.tolist() == (~obs).tolist()
        for key, values in expected.params().items():
            np.testing.assert_allclose(getattr(out[side], key), values, atol=1e-9, err_msg=f"{side} {key}")


def test_learned_infill_one_hand_video_long_gaps_and_last_frame(models):
    torch.manual_seed(0)
    network = MotionInfiller(InfillerConfig(seq_len=16, d_model=32, nhead=4, d_hid=48, nlayers=1)).eval()
    n = 70
    observed = np.ones(n, bool)
    observed[10:50] = False  # 40 frames: longer than the 16-frame horizon
    observed[-2:] = False  # includes the last frame
    hands = {"right": random_sequence("right", n, 7, observed), "left": HandSequence.empty("left", n)}
    out = fill_hands(hands, models, network, max_gap=None)
    right = out["right"]
    assert right.valid.all() and not np.isnan(right.transl).any() and not np.isnan(right.hand_pose).any()
    assert right.infilled.tolist() == (~observed).tolist()
    for key, values in hands["right"].params().items():  # observed frames are untouched
        np.testing.assert_array_equal(getattr(right, key)[observed], values[observed])
    assert not out["left"].valid.any() and np.isnan(out["left"].transl).all()  # never seen: not invented
    limited = fill_hands(hands, models, network, max_gap=10)["right"]
    assert limited.infilled.nonzero()[0].tolist() == [n - 2, n - 1]
    assert np.isnan(limited.transl[10:50]).all()


def test_fill_hands_without_network_interpolates(models):
    observed = np.ones(20, bool)
    observed[4:6] = False
    hands = {"right": random_sequence("right", 20, 2, observed), "left": HandSequence.empty("left", 20)}
    out = fill_hands(hands, models, None, max_gap=5)
    assert out["right"].infilled.nonzero()[0].tolist() == [4, 5]
    assert not out["left"].valid.any()


def test_pose_blocks_is_blockwise_exact_and_nan_where_absent(models):
    from hawor.world.assemble import pose_blocks

    seq = random_sequence("right", 7, seed=4, observed=np.array([1, 1, 0, 1, 1, 1, 0], bool))
    whole = hand_joints(seq, models["right"])
    parts = list(pose_blocks(seq.params(), models["right"], block=3))
    assert [len(j) for _, j in parts] == [3, 3, 1]
    joints = np.concatenate([j for _, j in parts])
    vertices = np.concatenate([v for v, _ in parts])
    np.testing.assert_allclose(joints, whole, atol=1e-12)
    assert np.isnan(joints[[2, 6]]).all() and np.isfinite(joints[seq.valid]).all()
    assert vertices.shape == (7, 778, 3) and np.isnan(vertices[2]).all()
