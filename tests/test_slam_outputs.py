"""Camera-stage outputs: camera.npz, TUM text, the official SLAM npz, hand masks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hawor.errors import HaworInputError, HaworInternalError
from hawor.slam import keyframe_disparities
from hawor.slam.classical import ClassicalResult
from hawor.slam.masks import HandMasks, hand_meshes, rasterize_meshes
from hawor.slam.trajectory import CameraTrajectory


def _random_trajectory(n=12, seed=0, scale=0.37):
    rng = np.random.default_rng(seed)
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.6, (n, 3))).as_matrix()
    T[:, :3, 3] = rng.normal(0, 0.5, (n, 3))
    K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    disps = rng.random((3, 48, 64)).astype(np.float32)
    return CameraTrajectory(T, K, scale, np.array([0, 5, 11]), "test", [], disps)


def test_camera_npz_and_tum(tmp_path):
    traj = _random_trajectory()
    npz, tum = traj.save(tmp_path, fps=30.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camera.npz", "camera_tum.txt"]  # no temp files left
    with np.load(npz) as d:
        np.testing.assert_allclose(d["T_world_cam"], traj.T_world_cam)
        np.testing.assert_allclose(d["K"], traj.K)
        assert float(d["scale"]) == pytest.approx(0.37)
        np.testing.assert_array_equal(d["keyframes"], [0, 5, 11])
    rows = np.loadtxt(tum)
    assert rows.shape == (12, 8)
    np.testing.assert_allclose(rows[:, 0], np.arange(12) / 30.0, atol=1e-6)
    np.testing.assert_allclose(rows[:, 1:4], traj.T_world_cam[:, :3, 3], atol=1e-8)
    R = Rotation.from_quat(rows[:, 4:8]).as_matrix()  # scipy reads (x, y, z, w), TUM's order
    np.testing.assert_allclose(R, traj.T_world_cam[:, :3, :3], atol=1e-7)
    loaded = CameraTrajectory.load(npz)
    np.testing.assert_allclose(loaded.T_world_cam, traj.T_world_cam)
    assert loaded.method == "test"


def test_official_npz_layout_roundtrip(tmp_path):
    traj = _random_trajectory()
    path = traj.save_official(tmp_path / "hawor_slam_w_scale_0_12.npz")
    with np.load(path) as d:
        assert set(d.files) == {"traj", "scale", "tstamp", "disps", "img_focal", "img_center"}
        assert d["traj"].shape == (12, 7)
        # translation unscaled: the consumer multiplies by scale
        np.testing.assert_allclose(d["traj"][:, :3] * d["scale"], traj.T_world_cam[:, :3, 3], atol=1e-10)
        np.testing.assert_allclose(Rotation.from_quat(d["traj"][:, 3:]).as_matrix(), traj.T_world_cam[:, :3, :3],
                                   atol=1e-7)
        np.testing.assert_array_equal(d["tstamp"], [0, 5, 11])
        assert d["disps"].dtype == np.float32 and d["disps"].shape == (3, 48, 64)
        assert float(d["img_focal"]) == 600.0
        np.testing.assert_allclose(d["img_center"], [320, 240])
    back = CameraTrajectory.load(path)
    np.testing.assert_allclose(back.T_world_cam, traj.T_world_cam, atol=1e-7)
    np.testing.assert_allclose(back.K, traj.K)
    assert back.scale == pytest.approx(0.37)


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(HaworInputError, match="does not exist"):
        CameraTrajectory.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(HaworInputError, match="neither"):
        CameraTrajectory.load(tmp_path / "other.npz")
    np.savez(tmp_path / "bad.npz", T_world_cam=np.zeros((4, 4)), K=np.eye(3), scale=1.0, keyframes=[0])
    with pytest.raises(HaworInputError, match=r"\(N, 4, 4\)"):
        CameraTrajectory.load(tmp_path / "bad.npz")


def test_rasterize_quad_matches_projection():
    K = np.array([[200.0, 0, 80], [0, 200, 60], [0, 0, 1]])
    z = 2.0  # a 0.4 x 0.2 m rectangle at 2 m covers 40 x 20 px centred on the principal point
    verts = np.array([[-0.2, -0.1, z], [0.2, -0.1, z], [0.2, 0.1, z], [-0.2, 0.1, z]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    mask = rasterize_meshes([verts], [faces], K, (160, 120))
    assert abs(int(mask.sum()) - 40 * 20) <= 2 * (40 + 20)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert abs(rows[0] - 50) <= 1 and abs(rows[-1] - 69) <= 1 and abs(cols[0] - 60) <= 1 and abs(cols[-1] - 99) <= 1
    behind = verts * [1, 1, -1]
    assert not rasterize_meshes([behind], [faces], K, (160, 120)).any()


def test_hand_masks_from_hands_cover_projected_joints():
    n, size = 3, (160, 120)
    K = np.array([[150.0, 0, 80], [0, 150, 60], [0, 0, 1]])
    hands = {}
    for side, x in (("left", -0.08), ("right", 0.08)):
        hands[f"{side}_global_orient"] = np.tile([np.pi, 0.0, 0.0], (n, 1))  # palm towards the camera
        hands[f"{side}_hand_pose"] = np.zeros((n, 45))
        hands[f"{side}_betas"] = np.zeros((n, 10))
        hands[f"{side}_transl"] = np.tile([x, 0.0, 0.5], (n, 1))
    hands["left_global_orient"][1] = np.nan  # left hand absent in frame 1
    masks = HandMasks.from_hands(hands, K, size, forearm_length_m=0)
    assert len(masks) == n
    sides, _, frames = hand_meshes(hands, block=2)  # blocks of 2 frames: posing crosses a block edge
    assert sides == ["left", "right"]
    for f, posed in enumerate(frames):
        m = masks.mask(f)
        near_mask = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        splat = np.zeros_like(m)
        for v, _ in posed:
            if v is None:
                continue
            uv = v[:, :2] / v[:, 2:] * 150 + [80, 60]
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < 160) & (uv[:, 1] >= 0) & (uv[:, 1] < 120)
            cols, rows = uv[inside, 0].astype(int), uv[inside, 1].astype(int)
            assert near_mask[rows, cols].mean() > 0.995  # every vertex lands on the silhouette
            splat[rows, cols] = True
        # and the silhouette holds nothing far from a vertex
        far = cv2.distanceTransform((~splat).astype(np.uint8), cv2.DIST_L2, 3)
        assert far[m].max() < 4.0
    assert f == n - 1 and masks.coverage(1) < masks.coverage(0)  # one hand fewer
    # compact: bit-packed crops, far below one byte per pixel
    stored = sum(c[4].nbytes for c in masks._crops if c is not None)
    assert stored < n * 160 * 120 / 6
    # the forearm continues the middle-finger-to-wrist axis beyond the wrist
    with_arms = HandMasks.from_hands(hands, K, size)
    assert with_arms.coverage(0) > masks.coverage(0) * 1.2
    joints = next(hand_meshes(hands)[2])[1][1]  # frame 0, right hand, joints
    axis = (joints[0] - joints[9]) / np.linalg.norm(joints[0] - joints[9])
    elbowward = joints[0] + 0.05 * axis
    u, v = elbowward[:2] / elbowward[2] * 150 + [80, 60]
    assert 0 <= u < 160 and 0 <= v < 120
    assert with_arms.mask(0)[int(v), int(u)] and not masks.mask(0)[int(v), int(u)]


def test_hand_masks_drawn_in_the_background_equal_the_others():
    """Masks drawn in a background thread read the same as masks drawn at once; a reader waits for
    the frame it asks for; an error while drawing reaches the reader."""
    n, size = 40, (160, 120)
    K = np.array([[150.0, 0, 80], [0, 150, 60], [0, 0, 1]])
    t = np.linspace(0, 1, n)[:, None]
    hands = {}
    for side, x in (("left", -0.08), ("right", 0.08)):
        hands[f"{side}_global_orient"] = np.pi * np.array([1.0, 0, 0]) + 0.4 * np.sin(6 * t) * [0, 1, 0]
        hands[f"{side}_hand_pose"] = np.zeros((n, 45))
        hands[f"{side}_betas"] = np.zeros((n, 10))
        hands[f"{side}_transl"] = np.array([x, 0.0, 0.5]) + 0.05 * np.cos(5 * t) * [1, 1, 0]
    hands["right_transl"][10:20] = np.nan  # right hand absent for a while
    at_once = HandMasks.from_hands(hands, K, size)
    background = HandMasks.from_hands(hands, K, size, background=True)
    assert len(background) == n
    for f in range(n):
        np.testing.assert_array_equal(background.mask(f), at_once.mask(f))
        assert background.coverage(f) == at_once.coverage(f)
    assert at_once.mask(15).sum() < at_once.mask(5).sum()

    quad = np.array([[-0.1, -0.1, 1.0], [0.1, -0.1, 1.0], [0.1, 0.1, 1.0], [-0.1, 0.1, 1.0]])
    faces = [np.array([[0, 1, 2], [0, 2, 3]])]

    def broken():
        yield [quad]
        raise ValueError("mesh 1 is broken")

    masks = HandMasks.from_vertices(broken(), faces, K, size, background_frames=3)
    assert masks.mask(0).sum() > 0
    with pytest.raises(ValueError, match="mesh 1 is broken"):
        masks.mask(1)
    short = HandMasks.from_vertices(iter([[quad]]), faces, K, size, background_frames=2)
    with pytest.raises(HaworInternalError, match="drew 1 frames, expected 2"):
        short.resized(1, (80, 60))


def test_hand_masks_resize_keeps_partial_coverage():
    m = np.zeros((100, 200), bool)
    m[10, 21] = True  # a single pixel
    masks = HandMasks.from_dense([m, np.zeros_like(m)])
    small = masks.resized(0, (50, 25))
    assert small.sum() == 1 and small[2, 5]
    assert not masks.resized(1, (50, 25)).any()
    with pytest.raises(HaworInputError, match="shape"):
        masks.append(np.zeros((10, 10), bool))


def test_hand_masks_from_boxes():
    masks = HandMasks.from_boxes(np.array([[[10, 10, 30, 20], [np.nan] * 4]]), (64, 48), enlarge=1.0)
    m = masks.mask(0)
    assert m[10:20, 10:30].all() and m.sum() == 200


def test_keyframe_disparities_are_inverse_depth():
    T = np.tile(np.eye(4), (2, 1, 1))
    T[1, 0, 3] = 0.5
    pts = np.array([[0.0, 0.0, 2.0], [0.3, -0.2, 4.0]])
    K = np.array([[320.0, 0, 320], [0, 320, 240], [0, 0, 1]])
    obs = []
    for f in range(2):
        p = pts - T[f, :3, 3]
        obs.append(((p[:, :2] / p[:, 2:] * 320 + [320, 240]).astype(np.float32), np.arange(2)))
    res = ClassicalResult(T, np.array([0, 1]), pts, obs, np.array(["sfm", "sfm"], dtype=object))
    d = keyframe_disparities(res, (640, 480))
    assert d.shape == (2, 384, 512)
    assert sorted(d[0][d[0] > 0].tolist()) == pytest.approx([0.25, 0.5])
    assert np.count_nonzero(d[1]) == 2
    # stored sparse, dense on demand: by index, by index list, and as an array (the official npz)
    dense = np.asarray(d, np.float32)
    assert dense.shape == (2, 384, 512) and dense.dtype == np.float32
    np.testing.assert_array_equal(d[[1, 0]], dense[[1, 0]])
    assert sum(len(v) for _, _, v in d.pixels) == 4


def test_droid_disparities_become_map_points():
    """DROID's keyframe disparity maps feed the hand-anchored scale as map points at the right depth."""
    from hawor.geometry import Intrinsics
    from hawor.slam.camera import _droid_reconstruction

    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    T = np.tile(np.eye(4), (3, 1, 1))
    T[2, 0, 3] = 0.3
    disps = np.full((2, 384, 512), 0.5, np.float32)  # fronto-parallel wall 2 units away
    traj = CameraTrajectory(T, K, 1.0, np.array([0, 2]), disps=disps)
    res = _droid_reconstruction(traj, Intrinsics.from_K(K, (640, 480)))
    assert len(res.observations[1][1]) == 0  # not a keyframe
    for f in (0, 2):
        xy, pidx = res.observations[f]
        pts = res.points_world[pidx]
        cam = pts - T[f, :3, 3]
        np.testing.assert_allclose(cam[:, 2], 2.0, rtol=1e-6)
        uv = cam[:, :2] / cam[:, 2:] * 500 + [320, 240]
        np.testing.assert_allclose(uv, xy, atol=1e-3)  # re-projects onto its own pixel at full resolution
