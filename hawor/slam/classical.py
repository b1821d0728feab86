"""Weight-free camera trajectory: masked KLT keyframes + pycolmap mapping + PnP (docs/architecture.md).

1. Frames are tracked at a reduced resolution with hand-masked KLT (`keyframes.KLTTracker`).
2. The KLT tracks of the keyframes are the features of a COLMAP database (no SIFT: the tracks are
   already matched, which is what makes the backend real-time); every keyframe pair within
   `match_overlap` shares its common tracks, verified by pycolmap's two-view geometry, and
   pycolmap's incremental mapper (fixed shared intrinsics from K) reconstructs them. Long videos are
   mapped in overlapping chunks of keyframes, chained into one frame (`sfm`). A chunk whose model's
   rotations disagree with its keyframe pairs' own is mapped again by the global mapper (GLOMAP);
   keyframes its model left out that share no pair with it (tracking lost) are a chunk of their own.
3. The largest model of each chunk is kept; every frame (keyframes of smaller models included) is resected by PnP
   on its tracks that have a 3D point; frames PnP cannot pose get rotations chained from
   frame-to-frame homographies and interpolated positions.
Degenerate videos never reach COLMAP's failure modes unannounced: no texture or a static camera give
identity poses, a camera that only rotates gives rotations from homographies, each with a warning.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from hawor.errors import HaworInputError
from hawor.io.prefetch import prefetch
from hawor.runs import frame_runs
from hawor.slam.keyframes import KLTTracker, TrackerOptions, TrackingResult
from hawor.slam.masks import mask_box
from hawor.slam.sfm import (ChunkMap, PairGeometries, camera_centres, chain_chunks, chunk_ranges,
                            keyframe_pairs, map_keyframes, rotation_disagreements)


@dataclass
class ClassicalOptions:
    """Settings of the classical backend (pixel values at the tracking resolution)."""

    fps: float = 30.0  # the video's frame rate: a head's speed bounds how far apart its frames can be
    work_long_side: int = 640  # frames are tracked at this long side (never upsampled)
    mask_dilation_px: int = 14
    match_overlap: int = 12  # each keyframe is matched to this many following keyframes
    min_pair_matches: int = 30
    min_ransac_trials: int = 100
    min_pnp_inliers: int = 15
    pnp_reproj_px: float = 1.0
    static_motion_px: float = 1.0  # below this largest median displacement the camera is static
    min_model_keyframes: int = 3
    init_min_tri_angle: float = 2.0  # degrees; COLMAP halves it when no initial pair qualifies
    min_tri_angle: float = 0.5  # degrees, to triangulate and keep points (head baselines are centimetres)
    num_threads: int = 1  # COLMAP's multi-threaded mapper gives a different model on every run
    filter_max_error_px: float = 2.0  # COLMAP drops observations reprojecting further than this
    # Final bundle adjustment of each model with a robust loss: a few KLT tracks drift by pixels, and
    # COLMAP's squared loss lets them bend the small-baseline geometry of a head-mounted camera.
    refine_loss: str = "CAUCHY"  # a pycolmap.LossFunctionType
    refine_loss_scale: float = 1.0  # pixels
    refine_rounds: int = 2  # adjust, drop observations off by more than refine_max_error_px, repeat
    refine_iterations: int = 30
    refine_max_error_px: float = 1.5
    # Incremental mapping costs more than linearly in the number of images: keyframes are mapped in
    # chunks of this many (about 10 s of video), sharing chunk_overlap with the next to chain them.
    chunk_keyframes: int = 48
    chunk_overlap: int = 12
    workers: int | None = None  # chunks mapped side by side (None: one per CPU core)
    # An incremental model grown into a low-parallax stretch of a walk can bend (its rotations drift
    # tens of degrees) where the pairs' own two-view rotations agree with a sound map within a degree.
    check_rotation_deg: float = 1.0  # median disagreement above which a chunk is also mapped globally
    tracker: TrackerOptions = field(default_factory=TrackerOptions)


@dataclass
class ClassicalResult:
    """Unscaled reconstruction in the first frame's camera frame (median first-frame depth = 1).

    Attributes:
        T_world_cam: (N, 4, 4) camera-to-world, unscaled.
        keyframes: (K,) int64 keyframe indices.
        points_world: (P, 3) unscaled map points.
        observations: per frame, (xy (M, 2) float32 pixels at full resolution, point index (M,) int64)
            of the tracks that have a map point.
        posed_by: (N,) str "sfm", "pnp", "interpolated", "rotation", "identity".
        warnings: what went wrong or was assumed.
    """

    T_world_cam: np.ndarray
    keyframes: np.ndarray
    points_world: np.ndarray
    observations: list[tuple[np.ndarray, np.ndarray]]
    posed_by: np.ndarray
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: tracking, mapping (incl. PnP)


def work_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Tracking resolution (w, h) for a frame of (width, height): long side at most `long_side`."""
    s = min(1.0, long_side / max(width, height))
    return max(int(round(width * s)), 16), max(int(round(height * s)), 16)


def grey_frames(frames: Iterable[np.ndarray], long_side: int) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    """(grey uint8 frame at the tracking resolution, full size (W, H)) for RGB uint8 frames."""
    size = None
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise HaworInputError(f"frame {i}: expected an RGB uint8 H x W x 3 image, got {frame.dtype} "
                                  f"{frame.shape}; decode the video with hawor.io.video.VideoReader")
        h0, w0 = frame.shape[:2]
        if size is None:
            size = (w0, h0)
            wk, hk = work_size(w0, h0, long_side)
        elif size != (w0, h0):
            raise HaworInputError(f"frame {i} is {w0}x{h0} but frame 0 was {size[0]}x{size[1]}; "
                                  "all frames of a video must have one size")
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if (wk, hk) != (w0, h0):
            gray = cv2.resize(gray, (wk, hk), interpolation=cv2.INTER_AREA)
        yield gray, size


def grey_video_frames(path: str | Path, long_side: int) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    """Like `grey_frames` but decoding a video file straight to small grey frames (the decoder's
    scaler; :meth:`hawor.io.video.VideoReader.frames`)."""
    from hawor.io.video import VideoReader

    reader = VideoReader(path)
    size = work_size(*reader.size, long_side)
    return ((frame, reader.size) for frame in reader.frames(size))


def track_frames(grey: Iterable[tuple[np.ndarray, tuple[int, int]]], hand_masks=None,
                 options: ClassicalOptions | None = None,
                 on_frame: Callable[[TrackingResult, np.ndarray], None] | None = None
                 ) -> tuple[TrackingResult, tuple[int, int], np.ndarray]:
    """Run the masked KLT front-end over (grey frame, full size) pairs from `grey_frames`.

    on_frame(result so far, (sx, sy)): called after each frame.
    Returns the tracking result, the full image size (W, H) and the tracking-resolution scale
    (sx, sy) such that xy_work = xy_full * (sx, sy).
    """
    opt = options or ClassicalOptions()
    tracker = KLTTracker(opt.tracker)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * opt.mask_dilation_px + 1,) * 2)
    size = work = None
    for i, (gray, size) in enumerate(grey):
        work = (gray.shape[1], gray.shape[0])
        mask = None
        if hand_masks is not None and i < len(hand_masks):
            mask = _dilated(hand_masks.resized(i, work), kernel, opt.mask_dilation_px)
        tracker.push(gray, mask)
        sxy = np.array([work[0] / size[0], work[1] / size[1]])
        if on_frame is not None:
            on_frame(tracker.result, sxy)
    if size is None:
        raise HaworInputError("the video has no frames; check that the file decodes (hawor.io.video.probe_video)")
    return tracker.result, size, sxy


def _dilated(mask: np.ndarray, kernel: np.ndarray, radius: int) -> np.ndarray:
    """`mask` (H, W) bool dilated by `kernel` (at most 2 * radius + 1 wide), computed on the mask's
    box grown by the radius only (the same result: nothing farther can change)."""
    box = mask_box(mask, radius)
    if box is None:
        return mask
    y0, y1, x0, x1 = box
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = cv2.dilate(mask[y0:y1, x0:x1].view(np.uint8), kernel).astype(bool)
    return out


def estimate_classical(frames: Iterable[np.ndarray] | str | Path, K: np.ndarray, hand_masks=None,
                       options: ClassicalOptions | None = None) -> ClassicalResult:
    """Camera trajectory of a video: `frames` are RGB uint8 (H, W, 3) frames or a video file path;
    K (3, 3) full-resolution intrinsics.

    hand_masks: optional `hawor.slam.masks.HandMasks` (True on hand pixels), excluded from tracking.
    """
    opt = options or ClassicalOptions()
    K = np.asarray(K, np.float64)
    grey = prefetch(grey_video_frames(frames, opt.work_long_side)) if isinstance(frames, (str, Path)) \
        else grey_frames(frames, opt.work_long_side)
    start = time.perf_counter()
    pairs = _PairQueue(K, opt)
    try:
        tracks, size, sxy = track_frames(grey, hand_masks, opt, pairs.on_frame)
        tracked = time.perf_counter()
        return _reconstruct(tracks, _work_K(K, sxy), sxy, opt, pairs.geometries, start, tracked)
    finally:
        pairs.close()


def _work_K(K: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    K_work = K.copy()
    K_work[0] *= sxy[0]
    K_work[1] *= sxy[1]
    return K_work


class _PairQueue:
    """Queues each new keyframe's pairs for two-view verification while the tracker runs, so that
    the verification overlaps the tracking (`PairGeometries`)."""

    def __init__(self, K: np.ndarray, opt: ClassicalOptions):
        self.K, self.opt = K, opt
        self.geometries: PairGeometries | None = None
        self._queued = 0  # keyframes whose pairs are queued

    def on_frame(self, result: TrackingResult, sxy: np.ndarray) -> None:
        if self.geometries is None:
            self.geometries = PairGeometries(_work_K(self.K, sxy), self.opt)
        kfs = result.keyframes
        if len(kfs) > self._queued:
            self.geometries.queue(keyframe_pairs(kfs, self._queued, self.opt.match_overlap), result.frames)
            self._queued = len(kfs)

    def close(self) -> None:
        if self.geometries is not None:
            self.geometries.close()


def _reconstruct(tracks: TrackingResult, K_work: np.ndarray, sxy: np.ndarray, opt: ClassicalOptions,
                 geometries: PairGeometries | None, start: float, tracked: float) -> ClassicalResult:
    """The classical result of a finished tracking (timings measured from `start`, `tracked`)."""
    n = len(tracks.frames)
    kfs = tracks.keyframes
    empty = ClassicalResult(np.tile(np.eye(4), (n, 1, 1)), np.asarray(kfs[:1], np.int64), np.zeros((0, 3)),
                            [_no_obs() for _ in range(n)], np.full(n, "identity", dtype=object))
    if not kfs:
        empty.warnings.append("no trackable texture in any frame (black, constant or hand-covered frames): "
                              "identity camera poses, world frame = camera frame")
        return empty
    if max(tracks.motion_px) < opt.static_motion_px:
        empty.warnings.append(f"static camera (largest median image motion {max(tracks.motion_px):.2f} px): "
                              "identity camera poses")
        return empty
    result = None
    if len(kfs) >= opt.min_model_keyframes:
        result = _map_and_resect(tracks, K_work, sxy, opt, geometries)
    if result is None:
        result = _rotation_only(tracks, K_work)
    missing_texture = n - int(np.sum(tracks.texture_ok))
    if missing_texture:
        result.warnings.append(f"{missing_texture} of {n} frames had no trackable texture; "
                               "their poses are interpolated")
    result.timings = {"tracking": tracked - start, "mapping": time.perf_counter() - tracked}
    return result


def _no_obs() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 2), np.float32), np.zeros(0, np.int64)


# --------------------------------------------------------------------------------------------------
# mapping

def _map_and_resect(tracks: TrackingResult, K_work: np.ndarray, sxy: np.ndarray,
                    opt: ClassicalOptions, geometries: PairGeometries) -> ClassicalResult | None:
    """Map the keyframes chunk by chunk with COLMAP, chain the chunks, then pose every frame."""
    cv2.setRNGSeed(0)  # PnP RANSAC draws from OpenCV's global generator: same video, same poses
    kfs = tracks.keyframes
    ranges = chunk_ranges(len(kfs), opt.chunk_keyframes, opt.chunk_overlap)
    maps = _plausible_maps(tracks, [kfs[a:b] for a, b in ranges], K_work, opt, geometries)
    ranges, maps = _map_cut_off_parts(tracks, ranges, maps, K_work, opt, geometries)
    warn = _chunk_warnings(maps)
    if all(m is None for m in maps):
        return None  # the caller falls back to rotations only, with a warning
    maps, chain_warn = chain_chunks(maps, tracks.frames)
    warn += chain_warn
    n = len(tracks.frames)
    owner = _owners(n, [kfs[a] for a, _ in ranges], [kfs[b - 1] for _, b in ranges])
    offsets = np.cumsum([0] + [0 if m is None else len(m.points) for m in maps])
    points = np.concatenate([m.points for m in maps if m is not None])
    T_cam_world = np.full((n, 4, 4), np.nan)
    posed_by = np.full(n, "interpolated", dtype=object)
    observations = []
    for f, ft in enumerate(tracks.frames):
        m = maps[owner[f]]
        if m is None:
            observations.append(_no_obs())
            continue
        pidx = m.point_of_tracks(ft.ids)
        ok = pidx >= 0
        pidx = pidx[ok] + offsets[owner[f]]
        observations.append(((ft.xy[ok] / sxy).astype(np.float32), pidx))
        k = np.searchsorted(m.frames, f)
        if k < len(m.frames) and m.frames[k] == f:
            T_cam_world[f] = m.T_cam_world[k]
            posed_by[f] = "sfm"
            continue
        T = _pnp(points[pidx], ft.xy[ok], K_work, opt)
        if T is not None:
            T_cam_world[f] = T
            posed_by[f] = "pnp"
    centres = camera_centres(T_cam_world)
    rejected = _reject_pnp_outliers(T_cam_world, centres, posed_by, _scene_depth(centres[posed_by == "sfm"], points))
    if rejected:
        warn.append(f"{rejected} frame(s) whose PnP position jumped away from the keyframe path were "
                    "re-posed by interpolation")
    T_world_cam = _fill_and_invert(T_cam_world, tracks, K_work)
    unresolved = int(np.sum(posed_by == "interpolated"))
    if unresolved:
        warn.append(f"{unresolved} of {n} frames could not be registered: rotation from frame-to-frame "
                    "homographies, position interpolated")
    return _normalise(T_world_cam, points, observations, posed_by, np.asarray(kfs, np.int64), warn)


def _plausible_maps(tracks: TrackingResult, chunks: list[list[int]], K_work: np.ndarray,
                    opt: ClassicalOptions, geometries: PairGeometries) -> list[ChunkMap | None]:
    """A model per chunk of keyframes, None where COLMAP gave none that `_implausible_path` accepts.

    The incremental mapper's model stands unless it failed or its rotations disagree with the
    keyframe pairs' own (median of `rotation_disagreements` above opt.check_rotation_deg); such a
    chunk is mapped again by the global mapper, whose model replaces it when it agrees better
    (`_agrees_better`).
    """
    maps = [None if m is None or _implausible_path(m, tracks, opt.fps) else m
            for m in map_keyframes(tracks.frames, chunks, K_work, opt, geometries)]
    failed = [i for i, m in enumerate(maps) if m is None]
    if failed:  # a small-baseline model often degenerates from its initial pair: start from a wider one
        wider = replace(opt, init_min_tri_angle=RETRY_INIT_TRI_ANGLE_FACTOR * opt.init_min_tri_angle)
        retried = map_keyframes(tracks.frames, [chunks[i] for i in failed], K_work, wider, geometries)
        for i, m in zip(failed, retried):
            maps[i] = None if m is None or _implausible_path(m, tracks, opt.fps) else m
    disagree = [None if m is None else rotation_disagreements(m, geometries) for m in maps]
    doubtful = [i for i, d in enumerate(disagree)
                if d is None or (len(d) and np.median(d) > opt.check_rotation_deg)]
    if doubtful:
        again = map_keyframes(tracks.frames, [chunks[i] for i in doubtful], K_work, opt, geometries, "global")
        for i, m in zip(doubtful, again):
            if m is not None and not _implausible_path(m, tracks, opt.fps) and \
                    (disagree[i] is None or _agrees_better(rotation_disagreements(m, geometries), disagree[i])):
                maps[i] = m
    return maps


def _map_cut_off_parts(tracks: TrackingResult, ranges: list[tuple[int, int]], maps: list[ChunkMap | None],
                       K_work: np.ndarray, opt: ClassicalOptions, geometries: PairGeometries
                       ) -> tuple[list[tuple[int, int]], list[ChunkMap | None]]:
    """Keyframe ranges and their models, with the keyframes a model left out before or after the ones
    it registered mapped as a chunk of their own: at least MIN_CUT_OFF_KEYFRAMES, not covered by the
    neighbouring chunk, sharing no verified pair with the model. Tracking lost in a fast turn leaves
    no such pair across the break, so the mapper keeps one side and PnP cannot pose the other;
    chaining then continues across the break, with its warning. Keyframes that do share pairs are
    left to PnP on the model: mapped apart and chained, they came out worse (walk:950300)."""
    kfs = tracks.keyframes
    out_ranges, out_maps = [], []
    for i, ((a, b), m) in enumerate(zip(ranges, maps)):
        if m is None:
            out_ranges.append((a, b))
            out_maps.append(m)
            continue
        first, last = kfs.index(int(m.frames[0])), kfs.index(int(m.frames[-1])) + 1
        # a part keeps the chunk's overlap with its neighbour, so that chaining can align the two
        before, after = (a, first), (last, b)
        uncovered = {before: first - (ranges[i - 1][1] if i else a),
                     after: (ranges[i + 1][0] if i + 1 < len(ranges) else b) - last}
        parts = [r for r in (before, after) if uncovered[r] >= MIN_CUT_OFF_KEYFRAMES
                 and not geometries.linked(kfs[r[0]:r[1]], m.frames)]
        cut = dict(zip(parts, _plausible_maps(tracks, [kfs[pa:pb] for pa, pb in parts], K_work, opt,
                                              geometries))) if parts else {}
        if cut.get(before) is not None:
            out_ranges.append(before)
            out_maps.append(cut[before])
            a = first
        out_ranges.append((a, b if cut.get(after) is None else last))
        out_maps.append(replace(m, num_keyframes=out_ranges[-1][1] - a))
        if cut.get(after) is not None:
            out_ranges.append(after)
            out_maps.append(cut[after])
    return out_ranges, out_maps


def _agrees_better(candidate: np.ndarray, incumbent: np.ndarray) -> bool:
    """True when a model's pair disagreements (degrees) are GLOBAL_GAIN times smaller than another's
    at the median or at the 90th percentile: a bent chunk shows in one or the other, depending on
    how many of its pairs span the bend."""
    if len(candidate) == 0:
        return False
    q = [50, 90]
    return bool(np.any(GLOBAL_GAIN * np.percentile(candidate, q) < np.percentile(incumbent, q)))


def _chunk_warnings(maps: list[ChunkMap | None]) -> list[str]:
    """What the mapping of each chunk lost: whole chunks, or keyframes of a model that split."""
    warn = []
    for i, m in enumerate(maps):
        where = "" if len(maps) == 1 else f" of keyframe chunk {i + 1} of {len(maps)}"
        if m is None:
            warn.append(f"no 3D reconstruction could be made{where}; those frames are posed from the others")
        elif len(m.frames) < m.num_keyframes:
            split = f"split into {m.num_models} models; kept the largest" if m.num_models > 1 else "registered"
            warn.append(f"the reconstruction{where} {split} ({len(m.frames)} of {m.num_keyframes} keyframes); the other "
                        "frames were registered by PnP")
    return warn


def _owners(n: int, first: list[int], last: list[int]) -> np.ndarray:
    """(N,) the chunk that poses each frame: overlapping chunks hand over halfway through the overlap."""
    boundaries = [(a + b) / 2 for a, b in zip(first[1:], last[:-1])]
    return np.searchsorted(np.asarray(boundaries), np.arange(n), side="right")


def _pnp(obj: np.ndarray, img: np.ndarray, K: np.ndarray, opt: ClassicalOptions) -> np.ndarray | None:
    """T_cam_world (4, 4) from 2D-3D correspondences, or None when too few inliers support it."""
    if len(obj) < max(opt.min_pnp_inliers, 6):
        return None
    obj = np.ascontiguousarray(obj, np.float64)
    img = np.ascontiguousarray(img, np.float64)
    ok, rvec, tvec, inl = cv2.solvePnPRansac(obj, img, K, None, reprojectionError=opt.pnp_reproj_px,
                                             iterationsCount=100, confidence=0.999, flags=cv2.SOLVEPNP_SQPNP)
    if not ok or inl is None or len(inl) < opt.min_pnp_inliers:
        return None
    inl = inl.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(obj[inl], img[inl], K, None, rvec, tvec)
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.ravel()
    return T


# A head-mounted camera moves at most a few metres per second, well under three times the distance
# to the scene it looks at each second (1.5 m/s beside a table 0.5 m away). Paths beyond these bounds
# are failed reconstructions. At 7.5 (0.25 a frame at 30 fps) a map that broke mid-chunk (keyframes
# 6 cm a frame apart, the camera path 7x its length) passed, on 1 of 20 generated clips; at 3 its
# chunk is mapped again and the other 19 are unchanged.
MAX_KEYFRAME_SPEED = 3.0  # scene depths per second between consecutive keyframes
MAX_PNP_DEVIATION = 0.15  # scene depths between a PnP position and the keyframe path
MAX_DEPTH_JUMP = 20.0  # factor between the scene depths two consecutive keyframes see
RETRY_INIT_TRI_ANGLE_FACTOR = 3.0  # an implausible model is mapped again from a pair this much wider
MIN_CUT_OFF_KEYFRAMES = 8  # keyframes a chunk's model left out on one side that are mapped on their own
GLOBAL_GAIN = 1.4  # how many times less a global model must disagree with the pairs to replace a chunk


def _scene_depth(centres: np.ndarray, points: np.ndarray) -> float:
    """Median distance from the keyframe cameras to the map: the reconstruction's length unit."""
    if len(points) == 0 or len(centres) == 0:
        return 1.0
    sample = points[:: max(1, len(points) // 2000)]
    return float(np.median(np.linalg.norm(sample[None] - centres[:, None], axis=-1))) or 1.0


def _implausible_path(m: ChunkMap, tracks: TrackingResult, fps: float) -> bool:
    """True when a map cannot be a head-mounted camera's: consecutive keyframes further apart than a
    head moves between them (MAX_KEYFRAME_SPEED, given the video's ``fps``), or the depth of what
    consecutive keyframes see jumping by more than MAX_DEPTH_JUMP (a model glued from parts at
    different scales)."""
    centres = camera_centres(m.T_cam_world)
    if len(centres) < 2:
        return False
    depth = np.array([m.depth_seen(k, tracks.frames) for k in range(len(m.frames))])
    speeds = np.linalg.norm(np.diff(centres, axis=0), axis=1) / np.diff(m.frames) * fps
    near = np.fmin(depth[:-1], depth[1:])
    jumps = np.abs(np.log(depth[1:] / depth[:-1]))
    return bool(np.any(speeds > MAX_KEYFRAME_SPEED * near) or np.any(jumps > np.log(MAX_DEPTH_JUMP)))


def _reject_pnp_outliers(T_cam_world: np.ndarray, centres: np.ndarray, posed_by: np.ndarray, unit: float) -> int:
    """Unpose PnP frames far from the path interpolated between keyframes (in place); returns how many."""
    keyframes = np.flatnonzero(posed_by == "sfm")
    pnp = np.flatnonzero(posed_by == "pnp")
    if len(keyframes) < 2 or len(pnp) == 0:
        return 0
    path = np.stack([np.interp(pnp, keyframes, centres[keyframes, d]) for d in range(3)], axis=1)
    far = pnp[np.linalg.norm(centres[pnp] - path, axis=1) > MAX_PNP_DEVIATION * unit]
    T_cam_world[far] = np.nan
    posed_by[far] = "interpolated"
    return len(far)


def _fill_and_invert(T_cam_world: np.ndarray, tracks: TrackingResult, K_work: np.ndarray) -> np.ndarray:
    """Camera-to-world poses for every frame.

    Frames without a pose get rotations chained from frame-to-frame homographies, forwards from the
    posed frame before the gap and backwards from the one after it, blended across the gap (so the
    drift is spread and the gap meets both ends); camera centres are interpolated linearly, or held
    before the first and after the last posed frame.
    """
    n = len(T_cam_world)
    posed = np.flatnonzero(~np.isnan(T_cam_world[:, 0, 0]))
    T_wc = np.tile(np.eye(4), (n, 1, 1))
    if len(posed) == 0:
        return T_wc
    T_wc[posed] = np.linalg.inv(T_cam_world[posed])
    frames = np.arange(n)
    clamped = np.clip(frames, posed[0], posed[-1])
    for d in range(3):
        T_wc[:, d, 3] = np.interp(clamped, posed, T_wc[posed, d, 3])
    gaps = np.flatnonzero(np.isnan(T_cam_world[:, 0, 0]))
    if len(gaps) == 0:
        return T_wc
    rel = {f: _relative_rotation(tracks, f, K_work) for f in np.unique(np.concatenate([gaps, gaps + 1])) if 0 < f < n}
    for start, stop in frame_runs(gaps):  # frames start..stop-1 unposed
        fwd = bwd = None
        if start > 0:
            fwd = [T_wc[start - 1, :3, :3]]
            for f in range(start, stop):
                fwd.append(fwd[-1] @ rel[f])
            fwd = fwd[1:]
        if stop < n:
            bwd = [T_wc[stop, :3, :3]]
            for f in range(stop - 1, start - 1, -1):
                bwd.append(bwd[-1] @ rel[f + 1].T)
            bwd = bwd[1:][::-1]
        for k, f in enumerate(range(start, stop)):
            if fwd is not None and bwd is not None:
                w = (k + 1) / (stop - start + 1)
                pair = Rotation.from_matrix(np.stack([fwd[k], bwd[k]]))
                T_wc[f, :3, :3] = Slerp([0.0, 1.0], pair)(w).as_matrix()
            else:
                T_wc[f, :3, :3] = fwd[k] if fwd is not None else bwd[k]
    return T_wc


def _relative_rotation(tracks: TrackingResult, f: int, K_work: np.ndarray) -> np.ndarray | None:
    """R (3, 3) of camera f-1 from camera f, from the homography of their shared tracks (H = K R K^-1);
    identity when fewer than 8 tracks are shared or no homography is found."""
    a, b = tracks.frames[f - 1], tracks.frames[f]
    _, ia, ib = np.intersect1d(a.ids, b.ids, return_indices=True)
    if len(ia) < 8:
        return np.eye(3)
    H, _ = cv2.findHomography(b.xy[ib], a.xy[ia], cv2.USAC_MAGSAC, 1.5)
    if H is None:
        return np.eye(3)
    U, _, Vt = np.linalg.svd(np.linalg.inv(K_work) @ H @ K_work)
    return U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt


def _normalise(T_world_cam: np.ndarray, points: np.ndarray, observations, posed_by, keyframes,
               warn: list[str]) -> ClassicalResult:
    """Re-express everything in frame 0's camera frame with the median first-view depth equal to 1."""
    T0_inv = np.linalg.inv(T_world_cam[0])
    T = T0_inv @ T_world_cam
    pts = points @ T0_inv[:3, :3].T + T0_inv[:3, 3]
    first = next((i for i, (_, p) in enumerate(observations) if len(p) >= 8), None)
    unit = 1.0
    if first is not None:
        T_cw = np.linalg.inv(T[first])
        depth = pts[observations[first][1]] @ T_cw[2, :3] + T_cw[2, 3]
        depth = depth[depth > 0]
        if len(depth):
            unit = float(np.median(depth))
    T[:, :3, 3] /= unit
    return ClassicalResult(T, keyframes, pts / unit, observations, posed_by, warn)


# --------------------------------------------------------------------------------------------------
# fallback without a baseline

def _rotation_only(tracks: TrackingResult, K_work: np.ndarray) -> ClassicalResult:
    """Rotations chained from frame-to-frame homographies; camera centre held at the origin."""
    n = len(tracks.frames)
    T = np.tile(np.eye(4), (n, 1, 1))
    for f in range(1, n):
        T[f, :3, :3] = T[f - 1, :3, :3] @ _relative_rotation(tracks, f, K_work)
    posed_by = np.full(n, "rotation", dtype=object)
    posed_by[0] = "identity"
    warn = ["no 3D reconstruction (too little camera translation to triangulate, or too few tracks): camera "
            "rotation from frame-to-frame homographies, camera position held fixed (translation and scale "
            "unobservable)"]
    return ClassicalResult(T, np.asarray(tracks.keyframes, np.int64), np.zeros((0, 3)),
                           [_no_obs() for _ in range(n)], posed_by, warn)
