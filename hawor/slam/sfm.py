"""Structure from motion of KLT keyframe tracks with pycolmap, in bounded, chained chunks.

COLMAP's incremental mapper re-runs global bundle adjustment as the model grows, so its cost grows
faster than linearly with the number of images: a 10-minute video (thousands of keyframes) would
take hours in one model. Keyframes are therefore mapped in overlapping chunks of a bounded size,
independently (side by side on the CPU's cores), and each chunk is then brought
into the previous one's frame by the similarity its shared keyframes and points imply.
"""
from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hawor.slam.keyframes import FrameTracks

MIN_SHARED_POINTS = 10  # to carry a chunk's scale over from the previous one


@dataclass
class ChunkMap:
    """One COLMAP model of a run of keyframes.

    Attributes:
        frames: (K,) int64 frame indices of the registered keyframes.
        T_cam_world: (K, 4, 4) their world-to-camera poses.
        track_ids: (M,) sorted int64 ids of the KLT tracks that have a map point.
        point_index: (M,) int64 row in `points` of each of those tracks.
        points: (P, 3) map points.
        num_models: how many models COLMAP made of the chunk (more than one: it split).
        num_keyframes: keyframes the chunk was given.
    """

    frames: np.ndarray
    T_cam_world: np.ndarray
    track_ids: np.ndarray
    point_index: np.ndarray
    points: np.ndarray
    num_models: int
    num_keyframes: int

    def point_of_tracks(self, ids: np.ndarray) -> np.ndarray:
        """(M,) row in `points` for each track id, -1 where the track has no point."""
        if len(self.track_ids) == 0:
            return np.full(len(ids), -1, np.int64)
        pos = np.clip(np.searchsorted(self.track_ids, ids), 0, len(self.track_ids) - 1)
        return np.where(self.track_ids[pos] == ids, self.point_index[pos], -1)

    def depth_seen(self, k: int, frames: list[FrameTracks]) -> float:
        """Median depth of the map points keyframe k sees (`frames[f]`: tracks of frame f); NaN if none."""
        rows = self.point_of_tracks(frames[self.frames[k]].ids)
        T = self.T_cam_world[k]
        z = self.points[rows[rows >= 0]] @ T[2, :3] + T[2, 3]
        z = z[z > 0]
        return float(np.median(z)) if len(z) else float("nan")

    def transformed(self, s: float, R: np.ndarray, t: np.ndarray) -> "ChunkMap":
        """The same map moved by the similarity x -> s R x + t."""
        T_world_cam = np.linalg.inv(self.T_cam_world)
        T_world_cam[:, :3, :3] = R @ T_world_cam[:, :3, :3]
        T_world_cam[:, :3, 3] = s * T_world_cam[:, :3, 3] @ R.T + t
        return ChunkMap(self.frames, np.linalg.inv(T_world_cam), self.track_ids, self.point_index,
                        s * self.points @ R.T + t, self.num_models, self.num_keyframes)


def camera_centres(T_cam_world: np.ndarray) -> np.ndarray:
    """(N, 3) camera centres -R^T t of (N, 4, 4) world-to-camera poses (NaN where unposed)."""
    R, t = T_cam_world[:, :3, :3], T_cam_world[:, :3, 3]
    return -np.einsum("nji,nj->ni", R, t)


def chunk_ranges(num_keyframes: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Keyframe ranges [start, stop) of at most `size` keyframes, consecutive ones sharing `overlap`."""
    if num_keyframes <= size:
        return [(0, num_keyframes)]
    count = math.ceil((num_keyframes - overlap) / (size - overlap))
    step = (num_keyframes - overlap) / count
    return [(round(i * step), min(round(i * step + step) + overlap, num_keyframes)) for i in range(count)]


def map_keyframes(frames: list[FrameTracks], chunks: list[list[int]], K_work: np.ndarray,
                  opt, geometries: "PairGeometries | None" = None,
                  mapper: str = "incremental") -> list[ChunkMap | None]:
    """Map each chunk of keyframe indices (`frames[f]`: tracks of frame f); `opt` is a
    `ClassicalOptions`; `geometries`: the keyframe pairs' two-view geometries, shared by the chunks
    (default: computed here); `mapper`: COLMAP's "incremental" or "global" mapper. None for a chunk
    COLMAP could not reconstruct."""
    import pycolmap

    workers = min(len(chunks), opt.workers or os.cpu_count() or 1)
    # COLMAP logs through glog; a failed mapping is handled (and reported) by the caller
    level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3
    try:
        # pycolmap releases the GIL while it maps, so threads use every core; each chunk's mapper
        # is single-threaded and seeded, so the result does not depend on the number of workers
        with ThreadPoolExecutor(workers) as pool, _geometries(geometries, K_work, opt) as pairs:
            return list(pool.map(lambda chunk: map_chunk([frames[f] for f in chunk], chunk, K_work, opt, pairs,
                                                         mapper), chunks))
    finally:
        pycolmap.logging.minloglevel = level


def map_chunk(tracks: list[FrameTracks], keyframes: list[int], K_work: np.ndarray, opt,
              geometries: "PairGeometries | None" = None, mapper: str = "incremental") -> ChunkMap | None:
    """COLMAP's largest model of one run of keyframes (`tracks[k]` observed in frame `keyframes[k]`),
    made by its "incremental" or "global" mapper."""
    with tempfile.TemporaryDirectory(prefix="hawor_sfm_") as tmp, _geometries(geometries, K_work, opt) as pairs:
        db_path = _write_database(tracks, keyframes, K_work, opt, Path(tmp), pairs)
        recs = (_run_incremental_mapper if mapper == "incremental" else _run_global_mapper)(db_path, opt)
    if not recs:
        return None
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    if rec.num_reg_images() < opt.min_model_keyframes:
        return None
    for camera in rec.cameras.values():  # the global mapper refines the focal length: back to K
        camera.params = _pinhole(K_work).params
    _refine(rec, opt)
    images = sorted((im for im in rec.images.values() if im.has_pose), key=lambda im: im.image_id)
    point_ids = sorted(rec.points3D.keys())
    row = {pid: i for i, pid in enumerate(point_ids)}
    tid, pidx = [], []
    for image in images:
        ids = tracks[image.image_id - 1].ids
        for k, p2d in enumerate(image.points2D):
            if p2d.has_point3D():
                tid.append(ids[k])
                pidx.append(row[p2d.point3D_id])
    tid, first = np.unique(np.asarray(tid, np.int64), return_index=True)  # a track maps to one point
    poses = np.tile(np.eye(4), (len(images), 1, 1))
    for k, im in enumerate(images):
        poses[k, :3] = im.cam_from_world().matrix()
    return ChunkMap(np.array([keyframes[im.image_id - 1] for im in images], np.int64), poses, tid,
                    np.asarray(pidx, np.int64)[first],
                    np.array([rec.points3D[p].xyz for p in point_ids]).reshape(-1, 3), len(recs), len(tracks))


def _write_database(tracks: list[FrameTracks], keyframes: list[int], K_work: np.ndarray, opt, tmp: Path,
                    geometries: "PairGeometries") -> Path:
    """COLMAP database of the keyframes' tracks and their verified pairs."""
    import pycolmap

    camera = _pinhole(K_work)
    db_path = tmp / "database.db"
    db = pycolmap.Database.open(db_path)
    camera.camera_id = db.write_camera(camera)
    rig = pycolmap.Rig()
    rig.add_ref_sensor(camera.sensor_id)
    rig_id = db.write_rig(rig)
    for k, ft in enumerate(tracks):
        image = pycolmap.Image(name=f"{k:06d}", camera_id=camera.camera_id, image_id=k + 1)
        image_id = db.write_image(image, use_image_id=True)
        frame = pycolmap.Frame()
        frame.rig_id = rig_id
        frame.add_data_id(db.read_image(image_id).data_id)
        db.write_frame(frame)
        db.write_keypoints(image_id, ft.xy.astype(np.float32))
    pairs = keyframe_pairs(keyframes, 0, opt.match_overlap)
    geometries.queue(pairs, dict(zip(keyframes, tracks)))
    image_id = {f: k + 1 for k, f in enumerate(keyframes)}
    for a, b in pairs:
        verified = geometries.result(a, b)
        if verified is not None:
            db.write_matches(image_id[a], image_id[b], verified[0])
            db.write_two_view_geometry(image_id[a], image_id[b], verified[1])
    db.close()
    return db_path


def _pinhole(K_work: np.ndarray):
    import pycolmap

    w = int(round(K_work[0, 2] * 2))
    h = int(round(K_work[1, 2] * 2))
    camera = pycolmap.Camera(model="PINHOLE", width=max(w, 1), height=max(h, 1),
                             params=[K_work[0, 0], K_work[1, 1], K_work[0, 2], K_work[1, 2]])
    # Without a prior, COLMAP's mapper may change the focal length although no refine option
    # allows it (600 -> 586 px on a walking clip): keyframes were then posed with another focal
    # than the frames PnP poses with K, centimetres apart along the optical axis.
    camera.has_prior_focal_length = True
    return camera


def keyframe_pairs(keyframes: list[int], start: int, overlap: int) -> list[tuple[int, int]]:
    """(frame a, frame b) of each keyframe a with the `overlap` keyframes after it, for every b from
    position `start` on (the pairs a growing keyframe list adds): the pairs a chunk is matched on
    (chunks are runs of consecutive keyframes), ordered by a, then b."""
    n = len(keyframes)
    return [(keyframes[i], keyframes[j]) for i in range(max(start - overlap, 0), n)
            for j in range(max(i + 1, start), min(i + 1 + overlap, n))]


class PairGeometries:
    """Two-view geometries of keyframe pairs (shared KLT tracks, RANSAC-verified), each computed
    once, side by side in a thread pool.

    The classical backend queues each keyframe's pairs while the tracker is still running, so that
    they are ready when the chunks are mapped; chunks sharing keyframes, and a chunk mapped again
    with a wider initial pair, reuse them. Each pair's RANSAC is seeded on its own, so the
    geometries do not depend on the threads; pycolmap releases the GIL while it estimates.
    """

    def __init__(self, K_work: np.ndarray, opt):
        import pycolmap

        self.camera = _pinhole(K_work)
        self.options = pycolmap.TwoViewGeometryOptions()
        self.options.ransac.max_error = 2.0
        self.options.ransac.min_num_trials = opt.min_ransac_trials
        self.options.ransac.random_seed = 0
        self.options.compute_relative_pose = True  # the pairs' own rotations check the maps
        self.min_matches = opt.min_pair_matches
        self._pool = ThreadPoolExecutor(opt.workers or os.cpu_count() or 1, thread_name_prefix="two-view")
        self._jobs: dict[tuple[int, int], Future] = {}

    def queue(self, pairs: list[tuple[int, int]], frames) -> None:
        """Start the pairs (frame a, frame b) not started yet; `frames[f]`: the FrameTracks of frame f."""
        for a, b in pairs:
            if (a, b) not in self._jobs:
                self._jobs[(a, b)] = self._pool.submit(self._verify, frames[a], frames[b])

    def result(self, a: int, b: int):
        """(matches (M, 2) uint32 rows into each frame's tracks, pycolmap.TwoViewGeometry) of a queued
        pair, or None when it shares fewer than `min_pair_matches` tracks."""
        return self._jobs[(a, b)].result()

    def relative_rotations(self, frames: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """(frame a, frame b, R_b_a (3, 3): rotation from camera a to camera b) of every queued pair
        of `frames` whose geometry is an essential matrix with a relative pose."""
        import pycolmap

        inside = set(frames.tolist())
        out = []
        for (a, b), job in self._jobs.items():
            if a in inside and b in inside:
                verified = job.result()
                if verified is not None and verified[1].config == pycolmap.TwoViewGeometryConfiguration.CALIBRATED:
                    out.append((a, b, verified[1].cam2_from_cam1.rotation.matrix()))
        return out

    def linked(self, frames_a, frames_b) -> bool:
        """True when some queued pair joins a frame of `frames_a` to one of `frames_b` with at least
        `min_pair_matches` shared tracks."""
        a, b = set(int(f) for f in frames_a), set(int(f) for f in frames_b)
        return any(((x in a and y in b) or (x in b and y in a)) and job.result() is not None
                   for (x, y), job in self._jobs.items())

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def _verify(self, fa: FrameTracks, fb: FrameTracks):
        import pycolmap

        _, ia, ib = np.intersect1d(fa.ids, fb.ids, return_indices=True)
        if len(ia) < self.min_matches:
            return None
        matches = np.stack([ia, ib], 1).astype(np.uint32)
        return matches, pycolmap.estimate_calibrated_two_view_geometry(
            self.camera, fa.xy.astype(np.float64), self.camera, fb.xy.astype(np.float64), matches, self.options)


@contextmanager
def _geometries(given: PairGeometries | None, K_work: np.ndarray, opt):
    """`given`, or a PairGeometries of our own, closed on leaving."""
    if given is not None:
        yield given
        return
    own = PairGeometries(K_work, opt)
    try:
        yield own
    finally:
        own.close()


def _run_incremental_mapper(db_path: Path, opt) -> dict:
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    options.ba_refine_focal_length = False
    options.ba_refine_extra_params = False
    options.ba_refine_principal_point = False
    options.extract_colors = False
    options.min_model_size = opt.min_model_keyframes
    options.num_threads = opt.num_threads
    options.random_seed = 0
    options.mapper.init_min_tri_angle = opt.init_min_tri_angle
    options.mapper.filter_min_tri_angle = opt.min_tri_angle
    options.mapper.filter_max_reproj_error = opt.filter_max_error_px
    options.triangulation.min_angle = opt.min_tri_angle
    options.mapper.init_min_num_inliers = 50
    options.mapper.abs_pose_min_num_inliers = opt.min_pnp_inliers
    options.mapper.abs_pose_min_inlier_ratio = 0.1
    options.mapper.abs_pose_refine_focal_length = False
    options.mapper.abs_pose_refine_extra_params = False
    options.mapper.num_threads = opt.num_threads
    options.mapper.random_seed = 0
    # lighter bundle adjustment while the model grows: `_refine` does the final, robust one
    options.ba_global_max_num_iterations = 20
    options.ba_local_max_num_iterations = 10
    options.ba_global_frames_ratio = 1.4
    options.ba_global_points_ratio = 1.4
    options.ba_global_max_refinements = 2
    options.ba_local_max_refinements = 1
    out = db_path.parent / "sparse"
    out.mkdir()
    return pycolmap.incremental_mapping(db_path, db_path.parent, out, options)


def _run_global_mapper(db_path: Path, opt) -> dict:
    """GLOMAP: rotation averaging over all verified pairs, then positions, then bundle adjustment. It
    cannot bend a chunk's rotations the way an incremental model grown from one end can."""
    import pycolmap

    options = pycolmap.GlobalPipelineOptions()
    options.min_model_size = opt.min_model_keyframes
    options.num_threads = opt.num_threads
    options.random_seed = 0
    options.decompose_relative_pose = True
    options.mapper.num_threads = opt.num_threads
    options.mapper.random_seed = 0
    out = db_path.parent / "sparse"
    out.mkdir()
    return pycolmap.global_mapping(db_path, db_path.parent, out, options)


def rotation_disagreements(m: ChunkMap, geometries: PairGeometries) -> np.ndarray:
    """(P,) degrees: for each verified keyframe pair of the map, the angle between its relative
    rotation in the map and its own two-view rotation. A sound map's median is well under a degree
    on a walk; a chunk whose rotations drift (grown into a low-parallax stretch) reads 1.2-5."""
    import roma
    import torch

    pairs = geometries.relative_rotations(m.frames)
    if not pairs:
        return np.zeros(0)
    row = {f: k for k, f in enumerate(m.frames.tolist())}
    R_cw = m.T_cam_world[:, :3, :3]
    R_map = np.stack([R_cw[row[b]] @ R_cw[row[a]].T for a, b, _ in pairs])
    R_pair = np.stack([R for _, _, R in pairs])
    return np.degrees(roma.rotmat_geodesic_distance(torch.from_numpy(R_map), torch.from_numpy(R_pair)).numpy())


def _refine(rec, opt) -> None:
    """Robust bundle adjustment, then drop observations off by more than `refine_max_error_px` and
    adjust again (in place)."""
    import pycolmap

    ba = pycolmap.BundleAdjustmentOptions()
    ba.refine_focal_length = False
    ba.refine_extra_params = False
    ba.refine_principal_point = False
    ba.ceres.loss_function_type = getattr(pycolmap.LossFunctionType, opt.refine_loss)
    ba.ceres.loss_function_scale = opt.refine_loss_scale
    ba.ceres.solver_options.num_threads = 1
    ba.print_summary = False
    ba.ceres.solver_options.max_num_iterations = opt.refine_iterations
    for _ in range(opt.refine_rounds):
        config = pycolmap.BundleAdjustmentConfig()
        for image_id in rec.reg_image_ids():
            config.add_image(image_id)
        config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
        # the adjuster, unlike pycolmap.bundle_adjustment, honours the silenced log level
        pycolmap.create_default_bundle_adjuster(ba, config, rec).solve()
        pycolmap.ObservationManager(rec).filter_all_points3D(opt.refine_max_error_px, opt.min_tri_angle)


# --------------------------------------------------------------------------------------------------
# chaining

def align_chunk(prev: ChunkMap, cur: ChunkMap, frames: list[FrameTracks]) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Similarity (s, R (3, 3), t (3,)) taking `cur`'s frame to `prev`'s, from their shared keyframes
    (`frames[f]`: tracks of frame f).

    Rotation: the chordal mean of the shared keyframes' relative orientations. Scale: the median
    ratio of the depths at which both maps see their shared points from those keyframes (camera
    centres move centimetres, too little to fix a scale). Translation: the median of the shared
    keyframes' centre offsets. None when they share no keyframe or fewer than MIN_SHARED_POINTS depths.
    """
    shared, ip, ic = np.intersect1d(prev.frames, cur.frames, return_indices=True)
    if len(shared) == 0:
        return None
    Tp, Tc = prev.T_cam_world[ip], cur.T_cam_world[ic]
    M = np.einsum("nji,njk->ik", Tp[:, :3, :3], Tc[:, :3, :3])  # sum of R_wc_prev @ R_cw_cur
    U, _, Vt = np.linalg.svd(M)
    R = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    ratios = []
    for f, T_p, T_c in zip(shared, Tp, Tc):
        ids = frames[f].ids
        rp, rc = prev.point_of_tracks(ids), cur.point_of_tracks(ids)
        both = (rp >= 0) & (rc >= 0)
        zp = prev.points[rp[both]] @ T_p[2, :3] + T_p[2, 3]
        zc = cur.points[rc[both]] @ T_c[2, :3] + T_c[2, 3]
        ok = (zp > 0) & (zc > 0)
        ratios.append(zp[ok] / zc[ok])
    ratios = np.concatenate(ratios)
    if len(ratios) < MIN_SHARED_POINTS:
        return None
    s = float(np.median(ratios))
    t = np.median(camera_centres(Tp) - s * camera_centres(Tc) @ R.T, axis=0)
    return s, R, t


def chain_chunks(maps: list[ChunkMap | None], frames: list[FrameTracks]) -> tuple[list[ChunkMap | None], list[str]]:
    """All chunk maps moved into the first one's frame (`frames[f]`: tracks of frame f).

    A chunk that shares no structure with the last placed one (a cut, a black gap) is attached by
    continuing from that chunk's last keyframe pose at the depth scale of its scene, with a warning.
    """
    placed, warn, ref = [], [], None
    for m in maps:
        if m is not None and ref is not None:
            sim = align_chunk(ref, m, frames)
            if sim is None:
                sim = _continue_from(ref, m, frames)
                warn.append(f"the map broke between frames {ref.frames[-1]} and {m.frames[0]} (no shared "
                            "structure): the later part continues from the last pose before the break, so "
                            "position, orientation and scale across it are approximate")
            m = m.transformed(*sim)
        placed.append(m)
        ref = m if m is not None else ref
    return placed, warn


def _continue_from(ref: ChunkMap, cur: ChunkMap, frames: list[FrameTracks]) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity putting `cur`'s first keyframe at `ref`'s last keyframe pose, scene depths matched."""
    T_ref, T_cur = ref.T_cam_world[-1:], cur.T_cam_world[:1]
    s = ref.depth_seen(len(ref.frames) - 1, frames) / cur.depth_seen(0, frames)
    s = s if np.isfinite(s) else 1.0
    R = T_ref[0, :3, :3].T @ T_cur[0, :3, :3]
    return s, R, camera_centres(T_ref)[0] - s * R @ camera_centres(T_cur)[0]
