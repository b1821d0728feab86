"""Classical camera backend against ground truth, and its behaviour on degenerate videos."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hawor.errors import HaworInputError
from hawor.geometry import Intrinsics, umeyama
from hawor.io.video import VideoReader
from hawor.slam import estimate_camera
from hawor.slam.classical import ClassicalOptions, estimate_classical
from hawor.slam.keyframes import FrameTracks, TrackingResult
from hawor.slam.masks import HandMasks
from hawor.slam.scale_hand import estimate_hand_scale, hand_joints_camera
from hawor.slam.sfm import ChunkMap, align_chunk, chunk_ranges

K_SMALL = np.array([[200.0, 0, 80], [0, 200, 60], [0, 0, 1]])


def _texture(seed=0, size=(120, 160)):
    rng = np.random.default_rng(seed)
    img = sum(cv2.resize(rng.random((s, s, 3)).astype(np.float32), size[::-1], interpolation=cv2.INTER_CUBIC)
              for s in (8, 16, 32, 64))
    return np.clip(img / img.max() * 255, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("value", [0, 128])
def test_constant_frames_give_identity_with_warning(value):
    frames = [np.full((120, 160, 3), value, np.uint8)] * 15
    traj = estimate_camera(frames, K_SMALL, backend="classical")
    assert len(traj) == 15
    np.testing.assert_array_equal(traj.T_world_cam, np.tile(np.eye(4), (15, 1, 1)))
    assert any("no trackable texture" in w for w in traj.warnings)


def test_static_camera_gives_identity_with_warning():
    rng = np.random.default_rng(1)
    base = _texture().astype(np.float32)
    frames = [np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8) for _ in range(20)]
    traj = estimate_camera(frames, K_SMALL, backend="classical")
    np.testing.assert_array_equal(traj.T_world_cam, np.tile(np.eye(4), (20, 1, 1)))
    assert any("static camera" in w for w in traj.warnings)


def test_frames_fully_covered_by_hands():
    frames = [np.roll(_texture(), 2 * i, axis=1) for i in range(12)]
    masks = HandMasks.from_dense([np.ones((120, 160), bool)] * 12)
    traj = estimate_camera(frames, K_SMALL, backend="classical", hand_masks=masks)
    np.testing.assert_array_equal(traj.T_world_cam, np.tile(np.eye(4), (12, 1, 1)))
    assert any("no trackable texture" in w for w in traj.warnings)


def test_too_short_video_warns():
    frames = [np.roll(_texture(), 3 * i, axis=1) for i in range(5)]
    traj = estimate_camera(frames, K_SMALL, backend="classical")
    assert len(traj) == 5 and "only 5 frames" in traj.warnings[0]
    np.testing.assert_array_equal(traj.T_world_cam, np.tile(np.eye(4), (5, 1, 1)))


def test_bad_frames_and_options_raise_input_errors():
    with pytest.raises(HaworInputError, match="no frames"):
        estimate_camera([], K_SMALL, backend="classical")
    with pytest.raises(HaworInputError, match="RGB uint8"):
        estimate_camera([np.zeros((120, 160), np.uint8)] * 12, K_SMALL, backend="classical")
    with pytest.raises(HaworInputError, match="one size"):
        estimate_camera([np.zeros((120, 160, 3), np.uint8), np.zeros((60, 80, 3), np.uint8)], K_SMALL,
                        backend="classical")
    with pytest.raises(HaworInputError, match="backend"):
        estimate_camera([np.zeros((120, 160, 3), np.uint8)], K_SMALL, backend="orb")
    with pytest.raises(HaworInputError, match="does not exist"):
        estimate_camera("/nonexistent/video.mp4", K_SMALL)


# ----------------------------------------------------------------------------------- ground truth

@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """A 90-frame 640x480 synthetic egocentric clip (head turns, both hands moving) with its truth."""
    from hawor.data.synthetic import generate_sequence

    out = tmp_path_factory.mktemp("slam_seq")
    paths = generate_sequence(out, seed=3, num_frames=90, width=640, height=480, outputs=("video", "gt", "depth"))
    cam = dict(np.load(paths["camera"]))
    hands = dict(np.load(paths["hands_camera"]))
    depth = np.load(paths["depth"])["depth"]
    return {"video": paths["video"], "K": cam["K"], "T": cam["T_world_cam"], "hands": hands, "depth": depth}


def _ate_ratio(T_est, T_gt):
    """Sim3-aligned ATE (RMS) of camera centres / ground-truth path length."""
    est, gt = T_est[:, :3, 3], T_gt[:, :3, 3]
    s, R, t = (np.asarray(x) for x in umeyama(torch.as_tensor(est), torch.as_tensor(gt)))
    ate = np.sqrt(np.mean(np.sum((s * est @ R.T + t - gt) ** 2, axis=1)))
    return ate / np.sum(np.linalg.norm(np.diff(gt, axis=0), axis=1))


def _rotation_errors_deg(T_est, T_gt):
    """Per-frame angle between estimated and true camera orientation (both worlds = first camera)."""
    R = np.einsum("nji,njk->nik", T_est[:, :3, :3], T_gt[:, :3, :3])
    return np.rad2deg(Rotation.from_matrix(R).magnitude())


def test_classical_trajectory_matches_ground_truth(sequence):
    traj = estimate_camera(sequence["video"], sequence["K"], hands=sequence["hands"], backend="classical")
    assert len(traj) == 90 and traj.method.startswith("classical")
    assert "hand_anchored" in traj.method
    np.testing.assert_allclose(traj.T_world_cam[0], np.eye(4), atol=1e-9)  # world = first camera
    rot = _rotation_errors_deg(traj.T_world_cam, sequence["T"])
    assert rot.mean() < 0.5 and rot.max() < 1.0, (rot.mean(), rot.max())
    # The head moves ~8 cm in all (a few cm of lean plus jitter) 0.5 m above the table: little
    # parallax. Measured 1.06 % (rotation 0.08 deg mean); the bound is 2 %.
    assert _ate_ratio(traj.T_world_cam, sequence["T"]) < 0.02


def test_hand_anchored_scale_matches_scene_depth(sequence):
    """With the true hands, the hand-anchored scale maps the unscaled map to true metric depth within
    15 % (issue 14's bound; measured 1.10: the ring's points lie a little nearer than their joints)."""
    K, depth = sequence["K"], sequence["depth"]
    masks = HandMasks.from_hands(sequence["hands"], K, (640, 480))
    result = estimate_classical(sequence["video"], K, masks)
    ratios = []
    for f, (xy, pidx) in enumerate(result.observations):
        T_cw = np.linalg.inv(result.T_world_cam[f])
        z = result.points_world[pidx] @ T_cw[2, :3] + T_cw[2, 3]
        true_z = depth[f][xy[:, 1].astype(int).clip(0, 479), xy[:, 0].astype(int).clip(0, 639)].astype(np.float64)
        ratios.append(true_z[z > 0] / z[z > 0])
    true_scale = float(np.median(np.concatenate(ratios)))
    est = estimate_hand_scale(result.T_world_cam, result.points_world, result.observations, K, (640, 480),
                              joints_cam=hand_joints_camera(sequence["hands"]), hand_masks=masks)
    assert est.method == "hand_anchored" and est.num_frames > 30
    assert abs(est.scale / true_scale - 1) < 0.15, (est.scale, true_scale)


def test_cropped_mask_operations_equal_whole_frame_ones():
    """The hand-mask dilation of the tracker and the scale's ring around the hands are computed on the
    masks' boxes only: the same pixels as on the whole frame, for masks anywhere (at the borders too)."""
    from hawor.slam.classical import _dilated
    from hawor.slam.scale_hand import _ring

    rng = np.random.default_rng(3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (29, 29))
    for _ in range(60):
        mask = np.zeros((180, 320), np.uint8)
        for _ in range(rng.integers(1, 3)):
            centre = tuple(int(v) for v in rng.integers([-20, -20], [340, 200]))
            axes = tuple(int(v) for v in rng.integers(1, 60, 2))
            cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        mask = mask.astype(bool)
        if not mask.any():
            continue
        whole = cv2.dilate(mask.view(np.uint8), kernel).astype(bool)
        np.testing.assert_array_equal(_dilated(mask, kernel, 14), whole)
        radius = float(rng.uniform(2, 90))
        dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, 3)
        np.testing.assert_array_equal(_ring(mask, radius), (dist > 0) & (dist <= radius))
    empty = np.zeros((10, 10), bool)
    assert not _dilated(empty, kernel, 14).any()


def test_pair_geometries_do_not_depend_on_the_order_they_are_computed_in(sequence):
    """The keyframe pairs' two-view geometries, queued while tracking in the pipeline, are each
    seeded on their own: a chunk mapped from pairs queued in reverse order is the same model."""
    from hawor.slam.classical import grey_video_frames, track_frames
    from hawor.slam.sfm import PairGeometries, keyframe_pairs, map_chunk

    opt = ClassicalOptions()
    masks = HandMasks.from_hands(sequence["hands"], sequence["K"], (640, 480))
    tracks, _, _ = track_frames(grey_video_frames(sequence["video"], opt.work_long_side), masks, opt)
    kfs = tracks.keyframes
    assert keyframe_pairs([3, 5, 9, 12], 2, 2) == [(3, 9), (5, 9), (5, 12), (9, 12)]
    own = map_chunk([tracks.frames[f] for f in kfs], kfs, sequence["K"], opt)
    shared = PairGeometries(sequence["K"], opt)
    try:
        shared.queue(keyframe_pairs(kfs, 0, opt.match_overlap)[::-1], tracks.frames)
        reversed_order = map_chunk([tracks.frames[f] for f in kfs], kfs, sequence["K"], opt, shared)
    finally:
        shared.close()
    np.testing.assert_array_equal(own.frames, reversed_order.frames)
    np.testing.assert_array_equal(own.T_cam_world, reversed_order.T_cam_world)
    np.testing.assert_array_equal(own.points, reversed_order.points)


def test_motion_blur_and_a_black_gap(sequence):
    """Blurred frames and 8 black frames in the middle: no track crosses the gap, so the map splits;
    the largest part is kept, the rest posed from homographies, every frame has a pose, no crash."""
    frames = list(VideoReader(sequence["video"]))
    kernel = np.zeros((9, 9), np.float32)
    kernel[4] = 1 / 9  # horizontal motion blur over 9 px
    frames = [cv2.filter2D(f, -1, kernel) for f in frames]
    for i in range(40, 48):
        frames[i] = np.zeros_like(frames[i])
    traj = estimate_camera(frames, sequence["K"], backend="classical", scale=1.0)
    assert len(traj) == 90 and np.isfinite(traj.T_world_cam).all()
    assert any("8 of 90 frames had no trackable texture" in w for w in traj.warnings)
    assert any("split into 2 models" in w for w in traj.warnings)
    rot = _rotation_errors_deg(traj.T_world_cam, sequence["T"])
    keep = np.r_[0:40, 48:90]
    assert np.median(rot[keep]) < 2.0, np.median(rot[keep])


def test_pure_rotation_gives_rotations_and_a_warning():
    """A camera that only turns (a scene at infinity): rotations from homographies, fixed position."""
    w, h = 320, 240
    K = np.array([[250.0, 0, w / 2], [0, 250, h / 2], [0, 0, 1]])
    pano = _texture(seed=2, size=(3 * h, 3 * w))
    K_pano = K.copy()
    K_pano[:2, 2] = [1.5 * w, 1.5 * h]
    t = np.linspace(0, 1, 40)
    R_wc = Rotation.from_euler("yx", np.stack([0.25 * np.sin(2 * np.pi * t), 0.1 * np.sin(np.pi * t)], 1)).as_matrix()
    frames = [cv2.warpPerspective(pano, K_pano @ R @ np.linalg.inv(K), (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
              for R in R_wc]
    traj = estimate_camera(frames, K, backend="classical", scale=1.0)
    assert any("rotation" in w_ for w_ in traj.warnings)
    T_gt = np.tile(np.eye(4), (40, 1, 1))
    T_gt[:, :3, :3] = R_wc
    assert _rotation_errors_deg(traj.T_world_cam, T_gt).max() < 1.0
    np.testing.assert_allclose(traj.T_world_cam[:, :3, 3], 0.0, atol=1e-9)


# ------------------------------------------------------------------------------ chunked mapping

@pytest.mark.parametrize("num,size,overlap", [(5, 60, 15), (60, 60, 15), (61, 60, 15), (3000, 60, 15), (12, 6, 3)])
def test_chunk_ranges_cover_every_keyframe_with_the_overlap(num, size, overlap):
    ranges = chunk_ranges(num, size, overlap)
    assert ranges[0][0] == 0 and ranges[-1][1] == num
    assert all(b - a <= size for a, b in ranges)
    assert all(b1 - a2 >= overlap for (_, b1), (a2, _) in zip(ranges[:-1], ranges[1:]))
    assert len(ranges) == (1 if num <= size else int(np.ceil((num - overlap) / (size - overlap))))


def test_align_chunk_recovers_a_known_similarity():
    """Two maps of the same points and keyframes, one moved by a similarity: it is recovered."""
    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, 2], [1, 1, 4], (200, 3))
    T_cw = np.tile(np.eye(4), (4, 1, 1))
    T_cw[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.05, (4, 3))).as_matrix()
    T_cw[:, :3, 3] = rng.normal(0, 0.05, (4, 3))
    frames = [FrameTracks(np.arange(200, dtype=np.int64), np.zeros((200, 2), np.float32))] * 10
    ids = np.arange(200, dtype=np.int64)
    prev = ChunkMap(np.array([2, 4, 6, 8]), T_cw, ids, ids, points, 1, 4)
    s, R = 0.37, Rotation.from_rotvec([0.2, -0.4, 0.1]).as_matrix()
    t = np.array([0.5, -1.0, 2.0])
    moved = prev.transformed(s, R, t)  # moved = sim(prev): aligning prev to moved gives sim back
    s_est, R_est, t_est = align_chunk(moved, prev, frames)
    assert s_est == pytest.approx(s, rel=1e-9)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t_est, t, atol=1e-9)
    assert align_chunk(moved, ChunkMap(np.array([1, 3]), T_cw[:2], ids, ids, points, 1, 2), frames) is None


def test_chunked_mapping_matches_one_model(sequence):
    """The clip's 12 keyframes mapped as 2 chunks of 8 (sharing 4) and chained: a whole trajectory
    about as accurate as one model's, the same with one or two workers."""
    K = sequence["K"]
    masks = HandMasks.from_hands(sequence["hands"], K, (640, 480))
    one = estimate_classical(sequence["video"], K, masks)
    runs = [estimate_classical(sequence["video"], K, masks, ClassicalOptions(chunk_keyframes=8, chunk_overlap=4,
                                                                             workers=w)) for w in (1, 2)]
    assert len(chunk_ranges(len(one.keyframes), 8, 4)) == 2
    np.testing.assert_array_equal(runs[0].T_world_cam, runs[1].T_world_cam)
    chunked = runs[0]
    assert not chunked.warnings and set(chunked.posed_by) <= {"sfm", "pnp"}
    assert _ate_ratio(one.T_world_cam, sequence["T"]) < 0.02
    assert _ate_ratio(chunked.T_world_cam, sequence["T"]) < 0.03
    assert _rotation_errors_deg(chunked.T_world_cam, sequence["T"]).max() < 1.0


def test_chunks_across_a_black_gap_continue_with_a_warning(sequence):
    """8 black frames cut every track: the chunk after the gap shares no structure with the one before
    it, so it continues from the last pose before the gap, with a warning; no frame is lost."""
    frames = list(VideoReader(sequence["video"]))
    for i in range(40, 48):
        frames[i] = np.zeros_like(frames[i])
    result = estimate_classical(frames, sequence["K"], options=ClassicalOptions(chunk_keyframes=6, chunk_overlap=2))
    assert np.isfinite(result.T_world_cam).all()
    assert any("the map broke between frames" in w for w in result.warnings), result.warnings
    rot = _rotation_errors_deg(result.T_world_cam, sequence["T"])
    assert np.median(rot[np.r_[0:40, 48:90]]) < 3.0, np.median(rot)


def test_a_keyframe_map_keeps_the_focal_length_it_is_given():
    """The keyframe tracks of a walking clip (tests/data/walk_keyframe_tracks.npz: generator clip
    walk:930100, 640x480, tracked with the run's hand masks) mapped with the run's K: every keyframe
    reprojects its tracks with that K. Without a prior focal length COLMAP's mapper moved it to
    586 px of 600 on these tracks; the keyframes then reprojected 5.2 px off (median), sat 2-3 cm
    along the optical axis off the frames posed by PnP, and the camera path was 2.5x its length.
    Measured: 0.21 px median, 0.46 px at most."""
    from hawor.slam.sfm import map_chunk

    data = np.load(Path(__file__).parent / "data" / "walk_keyframe_tracks.npz")
    splits = np.cumsum(data["counts"])[:-1]
    tracks = [FrameTracks(ids.astype(np.int64), xy)
              for ids, xy in zip(np.split(data["ids"], splits), np.split(data["xy"], splits))]
    K, keyframes = data["K"], data["keyframes"].tolist()
    model = map_chunk(tracks, keyframes, K, ClassicalOptions())
    assert model is not None and len(model.frames) > 0.9 * len(keyframes)
    errors = _reprojection_px(model, dict(zip(keyframes, tracks)), K)
    assert np.median(errors) < 0.5 and max(errors) < 1.0, (np.median(errors), max(errors))


def _reprojection_px(model, tracks_of_frame, K):
    """(K,) median reprojection error, pixels, of each keyframe of a ChunkMap with the intrinsics K."""
    camera = Intrinsics.from_K(K, (640, 480))
    errors = []
    for k, f in enumerate(model.frames):
        ft = tracks_of_frame[f]
        rows = model.point_of_tracks(ft.ids)
        ok = rows >= 0
        cam = model.points[rows[ok]] @ model.T_cam_world[k, :3, :3].T + model.T_cam_world[k, :3, 3]
        errors.append(np.median(np.linalg.norm(camera.project(cam) - ft.xy[ok], axis=1)))
    return np.array(errors)


def _recorded_chunk(name):
    """(TrackingResult of the keyframes only, keyframes, K, npz) of recorded tracks in tests/data."""
    data = np.load(Path(__file__).parent / "data" / name)
    splits = np.cumsum(data["counts"])[:-1]
    keyframes = data["keyframes"].tolist()
    frames = [FrameTracks(np.zeros(0, np.int64), np.zeros((0, 2), np.float32))] * (keyframes[-1] + 1)
    for f, ids, xy in zip(keyframes, np.split(data["ids"], splits), np.split(data["xy"], splits)):
        frames[f] = FrameTracks(ids.astype(np.int64), xy)
    return TrackingResult(frames=frames, keyframes=keyframes), keyframes, data["K"], data


def test_a_chunk_whose_rotations_drift_is_mapped_again_by_the_global_mapper():
    """The second keyframe chunk of a walking clip (tests/data/walk_bent_chunk_tracks.npz: generator
    clip walk:940700, 640x480, tracked with the run's hand masks, with the true keyframe poses). The
    incremental model bends: its orientation drifts 31 degrees from the truth over the chunk, and its
    keyframe pairs' relative rotations disagree with their own two-view rotations by 5.4 degrees
    (median). The global model kept instead drifts 7.2 degrees at most, disagrees by 3.3 and reprojects
    0.35 px with K (the global mapper refines the focal length; the kept model is adjusted back to K:
    2.6 px without that)."""
    from hawor.slam.classical import GLOBAL_GAIN, _plausible_maps
    from hawor.slam.sfm import PairGeometries, keyframe_pairs, map_chunk, rotation_disagreements

    tracks, keyframes, K, data = _recorded_chunk("walk_bent_chunk_tracks.npz")
    opt = ClassicalOptions()

    def drift_deg(m):
        T_true = data["T_world_cam_true"][np.searchsorted(keyframes, m.frames)]
        T_map = np.linalg.inv(m.T_cam_world)
        return _rotation_errors_deg(np.linalg.inv(T_map[0]) @ T_map, np.linalg.inv(T_true[0]) @ T_true).max()

    geometries = PairGeometries(K, opt)
    try:
        geometries.queue(keyframe_pairs(keyframes, 0, opt.match_overlap), tracks.frames)
        incremental = map_chunk([tracks.frames[f] for f in keyframes], keyframes, K, opt, geometries)
        kept = _plausible_maps(tracks, [keyframes], K, opt, geometries)[0]
        bent, disagreement = drift_deg(incremental), np.median(rotation_disagreements(incremental, geometries))
        assert bent > 20 and disagreement > 2 * opt.check_rotation_deg, (bent, disagreement)
        assert kept is not None and len(kept.frames) > 0.9 * len(keyframes)
        agreement = np.median(rotation_disagreements(kept, geometries))
        assert drift_deg(kept) < 12 and agreement < disagreement / GLOBAL_GAIN, (drift_deg(kept), agreement)
        reprojection = _reprojection_px(kept, {f: tracks.frames[f] for f in keyframes}, K)
        assert np.median(reprojection) < 0.5, np.median(reprojection)
    finally:
        geometries.close()


def test_keyframes_cut_off_by_lost_tracking_are_mapped_on_their_own():
    """The keyframes of a walking clip (tests/data/walk_lost_tracking_tracks.npz: generator clip
    walk:950000, 640x480, tracked with the run's hand masks, with the true keyframe poses). The tracks
    collapse in a fast turn (15 left at frame 134), and no verified pair links the 20 keyframes before
    to the 27 after: the mapper keeps the later side, and the earlier frames used to be interpolated
    (Sim3 ATE 10.3 cm over the clip; 1.5 cm now). The earlier keyframes are mapped as a chunk of their
    own, whose shape matches the truth. Measured: 18 of 20 keyframes, centres 0.20 cm off the truth
    after a similarity, orientation drifting 0.23 degrees at most."""
    from hawor.eval.metrics import camera_alignment
    from hawor.slam.classical import _map_cut_off_parts, _plausible_maps
    from hawor.slam.sfm import PairGeometries, keyframe_pairs

    tracks, keyframes, K, data = _recorded_chunk("walk_lost_tracking_tracks.npz")
    opt = ClassicalOptions()
    geometries = PairGeometries(K, opt)
    try:
        geometries.queue(keyframe_pairs(keyframes, 0, opt.match_overlap), tracks.frames)
        maps = _plausible_maps(tracks, [keyframes], K, opt, geometries)
        assert maps[0] is not None and maps[0].frames[0] == 136
        ranges, maps = _map_cut_off_parts(tracks, [(0, len(keyframes))], maps, K, opt, geometries)
    finally:
        geometries.close()
    cut = keyframes.index(136)
    assert ranges == [(0, cut), (cut, len(keyframes))]
    earlier = maps[0]
    assert len(earlier.frames) >= 0.8 * cut and earlier.frames[-1] < 136
    T_map = np.linalg.inv(earlier.T_cam_world)
    T_true = data["T_world_cam_true"][np.searchsorted(keyframes, earlier.frames)]
    error_cm = 100 * np.sqrt(np.mean(camera_alignment(T_map, T_true)[3] ** 2))
    drift = _rotation_errors_deg(np.linalg.inv(T_map[0]) @ T_map, np.linalg.inv(T_true[0]) @ T_true).max()
    assert error_cm < 1.0 and drift < 3.0, (error_cm, drift)


def test_a_model_glued_from_parts_or_with_a_jump_is_rejected(sequence):
    """The clip's model is plausible; the same model with the cameras and points of its first half
    moved 100 times further out (what a degenerate initial pair leaves behind) is not, nor is it with
    one keyframe jumping further than a head moves."""
    from hawor.slam.classical import _implausible_path, grey_video_frames, track_frames
    from hawor.slam.sfm import map_chunk

    opt = ClassicalOptions()
    masks = HandMasks.from_hands(sequence["hands"], sequence["K"], (640, 480))
    tracks, _, _ = track_frames(grey_video_frames(sequence["video"], opt.work_long_side), masks, opt)
    model = map_chunk([tracks.frames[f] for f in tracks.keyframes], tracks.keyframes, sequence["K"], opt)
    assert model is not None and not _implausible_path(model, tracks, 30.0)
    half = len(model.frames) // 2
    first = np.unique(np.concatenate([model.point_of_tracks(tracks.frames[f].ids) for f in model.frames[:half]]))
    only_first = np.setdiff1d(first[first >= 0], np.concatenate(
        [model.point_of_tracks(tracks.frames[f].ids) for f in model.frames[half:]]))
    glued = model.transformed(1.0, np.eye(3), np.zeros(3))
    glued.points[only_first] *= 100.0
    glued.T_cam_world[:half, :3, 3] *= 100.0
    assert _implausible_path(glued, tracks, 30.0)
    # one keyframe 0.15 scene depths per frame off the path: at 30 frames/s no head moves so (a map that
    # broke mid-chunk; the earlier bound, 0.25 a frame, let such a path through); at 10 frames/s one can
    k = len(model.frames) // 2
    depth = min(model.depth_seen(j, tracks.frames) for j in (k - 1, k))
    gap = int(model.frames[k] - model.frames[k - 1])
    jumped = model.transformed(1.0, np.eye(3), np.zeros(3))
    rotation = jumped.T_cam_world[k, :3, :3]
    jumped.T_cam_world[k, :3, 3] -= rotation @ np.array([0.15 * depth * gap, 0.0, 0.0])
    centres = -np.einsum("nji,nj->ni", jumped.T_cam_world[k - 1:k + 1, :3, :3], jumped.T_cam_world[k - 1:k + 1, :3, 3])
    step = np.linalg.norm(centres[1] - centres[0]) / gap
    assert 0.1 * depth < step < 0.25 * depth
    assert _implausible_path(jumped, tracks, 30.0)
    assert not _implausible_path(jumped, tracks, 10.0)


def _run_rendered(sim, folder):
    """The default pipeline (open hand, the true focal) on a simulation rendered to folder/clip.mp4."""
    import hawor
    from hawor.data.synthetic.generate import render_frames
    from hawor.io.video import VideoWriter

    video = folder / "clip.mp4"
    with VideoWriter(video, sim.fps, (sim.width, sim.height)) as writer:
        for rgb, _, _ in render_frames(sim):
            writer.write(rgb)
    return hawor.run(video, output_dir=folder / "out", img_focal=float(sim.K[0, 0]), vis_mode="none",
                     hand_model="open")


def test_a_stationary_head_stays_put_while_the_hands_move(tmp_path):
    """A generated clip with the head frozen (the hands move as usual), through the whole default
    pipeline: the moving hands must not drag the camera (masks), and world hands then equal camera
    hands. Measured: 0.0 cm, 0.0 degrees (the static-camera rule)."""
    import dataclasses

    from hawor.data.synthetic.generate import simulate

    sim = simulate(seed=6, num_frames=60, width=320, height=240, hand_backend="open")
    frozen = np.repeat(sim.camera.T_scene_cam[:1], 60, axis=0)
    sim = dataclasses.replace(sim, camera=dataclasses.replace(sim.camera, T_scene_cam=frozen))
    result = _run_rendered(sim, tmp_path)
    T = result.camera.T_world_cam
    travel = np.linalg.norm(T[:, :3, 3], axis=1).max()
    turn = np.rad2deg(Rotation.from_matrix(T[:, :3, :3]).magnitude()).max()
    assert travel < 0.01 and turn < 0.5, (travel, turn)
    observed = result.hands_world["right"].observed
    assert observed.sum() >= 20  # the hands were there to drag the camera
    np.testing.assert_allclose(result.joints_world["right"][observed], result.joints_camera["right"][observed],
                               atol=0.01)


def test_a_walking_wearer_gets_a_metric_path(tmp_path):
    """A generated clip of the wearer walking 0.8 m up to the table (peak 0.5 m/s, hands carried along),
    through the whole default pipeline: the camera path has the true length and shape in metres (the
    hand-anchored scale), and the world hands travel with it. Measured: travel 1.00x, SE3 error 0.4 cm
    mean, 1.8 cm at most (the median frame's scale, before: 0.96x, 1.5 cm; on this clip the hands spend
    long enough at the table; docs/performance.md has longer walks, where the two differ)."""
    from hawor.data.synthetic.generate import simulate
    from hawor.eval.metrics import camera_alignment

    sim = simulate(seed=8, num_frames=150, width=640, height=480, hand_backend="open", walk=0.8)
    result = _run_rendered(sim, tmp_path)
    T, T_true = result.camera.T_world_cam, sim.T_world_cam
    travel = np.linalg.norm(T[-1, :3, 3] - T[0, :3, 3])
    true_travel = np.linalg.norm(T_true[-1, :3, 3] - T_true[0, :3, 3])
    error = camera_alignment(T, T_true, with_scale=False)[3]
    print(f"travel {travel:.3f} / {true_travel:.3f} m, SE3 error mean {error.mean():.3f} max {error.max():.3f} m, "
          f"warnings {result.summary['stages']['camera']['warnings']}")
    assert abs(travel / true_travel - 1) < 0.15
    assert error.max() < 0.1 * true_travel
    wrist = result.joints_world["right"][:, 0]
    ok = np.isfinite(wrist).all(1)
    moved = np.linalg.norm(wrist[ok][-1] - wrist[ok][0])
    true_moved = np.linalg.norm(sim.hands["right"].joints_world[ok][-1, 0] - sim.hands["right"].joints_world[ok][0, 0])
    print(f"right wrist moved {moved:.3f} / {true_moved:.3f} m over {ok.sum()} frames")
    assert ok.sum() > 30 and abs(moved - true_moved) < 0.15 * true_moved


def test_the_scale_is_read_where_the_hands_meet_what_is_beside_them():
    """Frames of hands over a surface far behind them (a walking wearer above the floor) read the scale
    low, and so, less, do frames of hands coming down onto the table; a run of frames fitted off the
    hand's silhouette reads it far too high. The estimate follows the frames where hand and surface
    meet (the median of the upper group read 0.89-0.90 here), and where the frames do not fall into two
    groups, the median frame."""
    from hawor.slam.scale_hand import contact_scale

    rng = np.random.default_rng(0)
    scale = 0.5

    def frames(factor, count):
        return [scale * factor * np.exp(0.1 * rng.standard_normal(20)) for _ in range(count)]

    ratios = frames(0.3, 180) + frames(0.65, 30) + frames(0.8, 30) + frames(1.0, 60) + frames(6.0, 30)
    assert abs(contact_scale(ratios) / scale - 1) < 0.05
    assert np.median([np.median(r) for r in ratios]) < 0.35 * scale  # what the median frame read
    at_the_table = frames(0.9, 200) + frames(6.0, 20)
    assert abs(contact_scale(at_the_table) / (0.9 * scale) - 1) < 0.03
    assert np.isnan(contact_scale([np.zeros(0), np.ones(2)]))  # no frame with enough points


def test_disagreeing_windows_find_a_map_that_changes_its_scale():
    from hawor.slam.scale_hand import disagreeing_windows

    rng = np.random.default_rng(0)
    noisy = lambda level: [level * np.exp(rng.normal(0, 0.2, 20)) for _ in range(150)]  # noqa: E731
    assert disagreeing_windows(noisy(0.5) + noisy(0.6)) is None  # within 3x: one scale
    windows = disagreeing_windows(noisy(0.5) + noisy(2.0))
    assert windows.shape == (10,)  # 300 frames in windows of 30
    np.testing.assert_allclose(windows[:4], 0.5, rtol=0.1)
    np.testing.assert_allclose(windows[-4:], 2.0, rtol=0.1)
    assert disagreeing_windows([np.full(3, 0.5)] * 150 + [np.full(3, 4.0)] * 150) is not None
    assert disagreeing_windows([np.full(1, 0.5)] * 150 + [np.full(1, 4.0)] * 150) is None  # too thin to tell
