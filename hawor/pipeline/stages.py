"""The pipeline's stages: detection, camera-space hands, camera trajectory (+ metric scale), world hands.

Each stage runs the backend its :class:`~hawor.pipeline.plan.BackendPlan` names (the plan says
why), computes a cache key from its settings and upstream keys, and goes through :func:`run_cached`,
which reuses a cached result when the key matches. Each returns its result and a
:class:`StageRecord` for the run summary. Stage results are plain arrays so that the cache and the
result files share them.
"""
from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import numpy as np

from hawor.detection import HandTrack, detect_hands
from hawor.errors import HaworInternalError
from hawor.geometry import Intrinsics
from hawor.hands import HAND_SIDES, HandModel
from hawor.pipeline.cache import StageCache, file_identity, stage_key
from hawor.pipeline.frames import FrameSource
from hawor.pipeline.plan import BackendPlan
from hawor.slam.focal import FocalEstimate, estimate_focal as focal_from_video
from hawor.slam.trajectory import CameraTrajectory
from hawor.world.assemble import camera_to_world, hand_joints, world_to_camera
from hawor.world.infill import fill_hands, load_infiller
from hawor.world.interpolate import DEFAULT_MAX_GAP
from hawor.world.sequence import HandSequence

T = TypeVar("T")


@dataclass
class StageRecord:
    """What a stage did, for summary.json."""

    name: str
    backend: str = ""
    reason: str = ""
    seconds: float = 0.0
    cached: bool = False
    key: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"backend": self.backend, "reason": self.reason, "seconds": round(self.seconds, 3),
                "cached": self.cached, "warnings": self.warnings}


class StageTimer:
    """Context manager adding the elapsed time and the Python warnings raised inside to a record."""

    def __init__(self, record: StageRecord):
        self.record = record

    def __enter__(self):
        self.start = time.perf_counter()
        self._catch = warnings.catch_warnings(record=True)
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        self.record.warnings += [str(w.message) for w in self._caught
                                 if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
        self.record.seconds += time.perf_counter() - self.start


def run_cached(cache: StageCache, record: StageRecord, compute: Callable[[], T],
               to_arrays: Callable[[T], tuple[dict[str, np.ndarray], dict]],
               from_arrays: Callable[[dict[str, np.ndarray], dict], T]) -> T:
    """The cached result of ``record.name`` under ``record.key``, else ``compute()`` (timed, its
    warnings recorded) stored through ``to_arrays`` -> (arrays, meta). ``compute`` may add warnings
    to the record; they are kept with the entry and restored on a hit."""
    hit = cache.load(record.name, record.key)
    if hit is not None:
        arrays, meta = hit
        record.cached, record.warnings = True, list(meta.get("warnings", []))
        return from_arrays(arrays, meta)
    with StageTimer(record):
        result = compute()
    arrays, meta = to_arrays(result)
    cache.save(record.name, record.key, arrays, {**meta, "warnings": record.warnings})
    return result


def _object_identity(obj) -> str:
    """A passed-in network cannot be identified across runs: never reuse a cached result for it."""
    return f"{type(obj).__name__}-{uuid.uuid4().hex}"


def _record(name: str, plan: BackendPlan, stage: str) -> StageRecord:
    return StageRecord(name, plan[stage].backend, plan[stage].reason)


# ---------------------------------------------------------------- detection

def tracks_to_arrays(tracks: dict[str, HandTrack]) -> dict[str, np.ndarray]:
    out = {}
    for side, track in tracks.items():
        out[f"{side}_frame_indices"] = np.asarray(track.frame_indices, np.int64)
        out[f"{side}_boxes"] = np.asarray(track.boxes, np.float64).reshape(-1, 4)
        out[f"{side}_scores"] = np.asarray(track.scores, np.float64)
        for name in ("keypoints_2d", "keypoints_3d"):
            if getattr(track, name) is not None:
                out[f"{side}_{name}"] = np.asarray(getattr(track, name), np.float64)
    return out


def tracks_from_arrays(arrays) -> dict[str, HandTrack]:
    return {side: HandTrack(side, np.asarray(arrays[f"{side}_frame_indices"], np.int64),
                            np.asarray(arrays[f"{side}_boxes"]), np.asarray(arrays[f"{side}_scores"]),
                            arrays.get(f"{side}_keypoints_2d"), arrays.get(f"{side}_keypoints_3d"))
            for side in HAND_SIDES}


def detect(source: FrameSource, cache: StageCache, plan: BackendPlan,
           video_key: str) -> tuple[dict[str, HandTrack], int, StageRecord]:
    """Both hand tracks and the exact number of frames."""
    record = _record("detection", plan, "detection")
    weights = plan["detection"].weights
    record.key = stage_key("detection", video_key, record.backend, file_identity(weights))

    def compute():
        result = detect_hands(source.progress("detection"), backend=record.backend, weights=weights,
                              device=plan.device)
        record.warnings += list(result.notes)
        return result.tracks, source.counted_frames

    return (*run_cached(cache, record, compute,
                        lambda r: ({**tracks_to_arrays(r[0]), "num_frames": np.int64(r[1])}, {}),
                        lambda arrays, meta: (tracks_from_arrays(arrays), int(arrays["num_frames"]))), record)


# ---------------------------------------------------------------- focal length

def estimate_focal(source: FrameSource, cache: StageCache, video_key: str,
                   given: float | None) -> tuple[FocalEstimate, StageRecord | None]:
    """The run's focal length: ``given`` (``--img_focal``), else estimated from the video's rotation
    (a cached stage; see :mod:`hawor.slam.focal`)."""
    if given is not None:
        return focal_from_video(source, given), None
    record = StageRecord("focal", reason="--img_focal not given")  # backend: how it was found, below
    record.key = stage_key("focal", video_key)

    def compute():
        est = focal_from_video(source.progress("focal"))
        record.warnings += est.warnings
        return est

    est = run_cached(cache, record, compute,
                     lambda e: ({"focal": np.float64(e.focal), "pairs": np.int64(e.pairs)},
                                {"source": e.source, "detail": e.detail}),
                     lambda a, meta: FocalEstimate(float(a["focal"]), meta["source"], meta["detail"],
                                                   int(a["pairs"]), list(meta.get("warnings", []))))
    record.backend = est.source
    return est, record


# ---------------------------------------------------------------- camera-space hands

def estimate_hands(source: FrameSource, cache: StageCache, plan: BackendPlan, tracks: dict[str, HandTrack],
                   num_frames: int, intrinsics: Intrinsics, models: dict[str, HandModel], upstream: str,
                   regressor=None) -> tuple[dict[str, HandSequence], StageRecord]:
    """Camera-frame MANO per hand over all frames (NaN where not observed)."""
    record = _record("hands", plan, "hands")
    weights = plan["hands"].weights
    ident = _object_identity(regressor) if regressor is not None else file_identity(weights)
    record.key = stage_key("hands", upstream, record.backend, ident, intrinsics.as_dict(), models["right"].backend)

    def compute():
        from hawor.estimation.hands import camera_space_hands

        if record.backend == "regressor" and regressor is None:
            from hawor.estimation.regressor import HandRegressor

            estimator = HandRegressor.from_checkpoint(weights, device=plan.device)
        else:
            estimator = regressor
        # the frame source itself: the regressor reads crops by frame index
        estimates = camera_space_hands(tracks, intrinsics, record.backend, read_frame=source.reader(),
                                       regressor=estimator, hand_models=models)
        return {side: HandSequence.from_camera_space(estimates[side], num_frames) if side in estimates
                else HandSequence.empty(side, num_frames) for side in HAND_SIDES}

    hands = run_cached(cache, record, compute, lambda hands: (_hands_to_arrays(hands), {}),
                       lambda arrays, meta: {side: HandSequence.from_arrays(arrays, side) for side in HAND_SIDES})
    return hands, record


def _hands_to_arrays(hands: dict[str, HandSequence]) -> dict[str, np.ndarray]:
    return {k: v for seq in hands.values() for k, v in seq.to_arrays().items()}


# ---------------------------------------------------------------- camera trajectory and metric scale

def estimate_trajectory(source: FrameSource, cache: StageCache, plan: BackendPlan,
                        hands_cam: dict[str, HandSequence], intrinsics: Intrinsics, models: dict[str, HandModel],
                        upstream: str) -> tuple[CameraTrajectory, StageRecord]:
    """The metric camera trajectory: the planned camera backend's unscaled reconstruction, then the
    planned metric-scale backend (cached together: the scale reads the reconstruction's map)."""
    record = _record("camera", plan, "camera")
    cam_weights, scale_weights = plan["camera"].weights, plan["scale"].weights
    record.key = stage_key("camera", upstream, record.backend, file_identity(cam_weights), plan["scale"].backend,
                           file_identity(scale_weights), intrinsics.as_dict(), models["right"].backend)
    num_frames = len(next(iter(hands_cam.values())))

    def compute():
        from hawor.slam import hand_masks_for, metric_scale, reconstruct
        from hawor.slam.classical import ClassicalOptions
        from hawor.slam.scale_hand import hand_joints_camera

        arrays_cam = _hands_to_arrays(hands_cam)
        # drawn while the camera tracks the frames it has masks for
        masks = hand_masks_for(arrays_cam, intrinsics, models, background=True)
        recon = reconstruct(source.progress("camera"), intrinsics, record.backend, hand_masks=masks,
                            options=ClassicalOptions(fps=source.fps), device=plan.device)
        if len(recon) != num_frames:
            raise HaworInternalError(f"camera stage returned {len(recon)} poses for {num_frames} frames")
        # the source itself, not an iterator: Metric3D reads keyframes again by index
        scale = metric_scale(recon, plan["scale"].backend, frames=source, hand_masks=masks,
                             joints_cam=hand_joints_camera(arrays_cam, models), device=plan.device,
                             metric3d_weights=scale_weights)
        traj = recon.scaled(scale.scale, scale.method, scale.warnings)
        record.warnings += list(traj.warnings)
        return traj

    traj = run_cached(cache, record, compute,
                      lambda t: ({"T_world_cam": t.T_world_cam, "K": t.K, "scale": np.float64(t.scale),
                                  "keyframes": np.asarray(t.keyframes, np.int64)}, {"method": t.method}),
                      lambda a, meta: CameraTrajectory(a["T_world_cam"], a["K"], float(a["scale"]), a["keyframes"],
                                                       meta.get("method", "")))
    record.reason += "; scale: " + traj.method.split("; scale: ", 1)[-1]
    return traj, record


# ---------------------------------------------------------------- world hands

@dataclass
class WorldHands:
    """World- and camera-frame hands after infilling, with their joints (N, 21, 3)."""

    world: dict[str, HandSequence]
    camera: dict[str, HandSequence]
    joints_world: dict[str, np.ndarray]
    joints_camera: dict[str, np.ndarray]


def assemble_world(cache: StageCache, plan: BackendPlan, hands_cam: dict[str, HandSequence], traj: CameraTrajectory,
                   models: dict[str, HandModel], upstream: str, infiller=None,
                   max_gap: int | None = None) -> tuple[WorldHands, StageRecord]:
    """World hands (gaps filled) and the camera-frame view of them.

    ``max_gap``: longest gap filled, in frames; None: 30 for interpolation, unlimited for the
    infiller; negative: unlimited.
    """
    record = _record("world", plan, "infilling")
    weights = plan["infilling"].weights
    if max_gap is None:
        max_gap = DEFAULT_MAX_GAP if record.backend == "interpolation" else None
    elif max_gap < 0:
        max_gap = None
    record.reason += f"; longest gap filled: {max_gap or 'any'} frames"
    ident = _object_identity(infiller) if infiller is not None else file_identity(weights)
    record.key = stage_key("world", upstream, record.backend, ident, max_gap)

    def compute():
        network = None
        if record.backend == "infiller":
            network = infiller.to(plan.device) if infiller is not None else load_infiller(weights, device=plan.device)
        world = {side: camera_to_world(seq, traj.T_world_cam, models[side]) for side, seq in hands_cam.items()}
        world = fill_hands(world, models, network, max_gap=max_gap)
        camera = {side: world_to_camera(seq, traj.T_world_cam, models[side]) for side, seq in world.items()}
        # observed camera-frame values are the estimation's own, not a round trip through the world frame
        for side, seq in camera.items():
            obs = hands_cam[side].observed
            for key, values in hands_cam[side].params().items():
                getattr(seq, key)[obs] = values[obs]
        return WorldHands(world, camera, {s: hand_joints(q, models[s]) for s, q in world.items()},
                          {s: hand_joints(q, models[s]) for s, q in camera.items()})

    return run_cached(cache, record, compute, lambda r: (_world_to_arrays(r), {}),
                      lambda arrays, meta: _world_from_arrays(arrays)), record


def _world_to_arrays(result: WorldHands) -> dict[str, np.ndarray]:
    out = {}
    for frame, hands, joints in (("world", result.world, result.joints_world),
                                 ("camera", result.camera, result.joints_camera)):
        for side, seq in hands.items():
            out.update({f"{frame}/{k}": v for k, v in seq.to_arrays().items()})
            out[f"{frame}/{side}_joints"] = joints[side]
    return out


def _world_from_arrays(arrays) -> WorldHands:
    def part(frame):
        sub = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(frame + "/")}
        return ({s: HandSequence.from_arrays(sub, s) for s in HAND_SIDES},
                {s: np.asarray(sub[f"{s}_joints"]) for s in HAND_SIDES})
    world, jw = part("world")
    camera, jc = part("camera")
    return WorldHands(world, camera, jw, jc)


__all__ = ["StageRecord", "StageTimer", "WorldHands", "assemble_world", "detect", "estimate_hands",
           "estimate_focal", "estimate_trajectory", "run_cached", "tracks_from_arrays", "tracks_to_arrays"]
