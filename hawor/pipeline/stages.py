"""The pipeline's stages: detection, camera-space hands, camera trajectory, world hands.

Each stage function resolves its backend (and says why), computes a cache key from its settings
and upstream keys, reuses a cached result when the key matches, and returns a :class:`StageRecord`
for the run summary. Stage results are plain arrays so that the cache and the result files share them.
"""
from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hawor.detection import HandTrack, choose_backend, detect_hands
from hawor.errors import HaworInputError
from hawor.hands import HAND_SIDES, HandModel
from hawor.pipeline.cache import StageCache, file_identity, stage_key
from hawor.pipeline.frames import FrameSource
from hawor.slam.trajectory import CameraTrajectory
from hawor.world.assemble import camera_to_world, hand_joints, world_to_camera
from hawor.world.infill import fill_hands, load_infiller
from hawor.world.interpolate import DEFAULT_MAX_GAP
from hawor.world.sequence import HandSequence

CHOICES = ("auto", "learned", "embedded")


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


def _object_identity(obj) -> str:
    """A passed-in network cannot be identified across runs: never reuse a cached result for it."""
    return f"{type(obj).__name__}-{uuid.uuid4().hex}"


def _check_choice(stage: str, choice: str) -> None:
    if choice not in CHOICES:
        raise HaworInputError(f"{stage} backend '{choice}': choose one of {', '.join(CHOICES)}.")


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


def detect(source: FrameSource, cache: StageCache, choice: str, video_key: str, detector_weights: Path | None,
           device: str | None) -> tuple[dict[str, HandTrack], int, StageRecord]:
    """Both hand tracks and the exact number of frames."""
    _check_choice("detection", choice)
    backend, reason = choose_backend({"auto": "auto", "learned": "yolo", "embedded": "landmarks"}[choice],
                                     weights=detector_weights)
    record = StageRecord("detection", backend, reason)
    record.key = stage_key("detection", video_key, backend, file_identity(detector_weights) if backend == "yolo" else None)
    hit = cache.load("detection", record.key)
    if hit is not None:
        arrays, meta = hit
        record.cached, record.warnings = True, meta.get("warnings", [])
        return tracks_from_arrays(arrays), int(arrays["num_frames"]), record
    with StageTimer(record):
        result = detect_hands(source.progress("detection"), backend=backend, weights=detector_weights, device=device)
    record.warnings += list(result.notes)
    num_frames = source.counted_frames
    cache.save("detection", record.key, {**tracks_to_arrays(result.tracks), "num_frames": np.int64(num_frames)},
               {"warnings": record.warnings})
    return result.tracks, num_frames, record


# ---------------------------------------------------------------- camera-space hands

def estimate_hands(source: FrameSource, cache: StageCache, choice: str, tracks: dict[str, HandTrack], num_frames: int,
                   focal: float, upstream: str, checkpoint: Path | None, regressor, device: str | None,
                   hand_backend: str) -> tuple[dict[str, HandSequence], StageRecord]:
    """Camera-frame MANO per hand over all frames (NaN where not observed)."""
    _check_choice("hands", choice)
    has_keypoints = all(t.keypoints_2d is not None or len(t) == 0 for t in tracks.values())
    if regressor is not None:
        backend, reason = "regressor", "a regressor object was passed"
    elif choice == "learned" or (choice == "auto" and checkpoint is not None and checkpoint.is_file()):
        backend = "regressor"
        reason = "asked for" if choice == "learned" else f"auto: {checkpoint} is present"
    else:
        backend = "keypoint_fit"
        reason = "asked for" if choice == "embedded" else f"auto: no regressor checkpoint at {checkpoint}"
        if not has_keypoints:
            raise HaworInputError("the keypoint fit needs 2D keypoints, but the hand detector gave only boxes; "
                                  "use the embedded detector (--detector embedded) or give the HaWoR regressor "
                                  "checkpoint (--checkpoint).")
    record = StageRecord("hands", backend, reason)
    ident = _object_identity(regressor) if regressor is not None else (
        file_identity(checkpoint) if backend == "regressor" else None)
    record.key = stage_key("hands", upstream, backend, ident, focal, hand_backend)
    hit = cache.load("hands", record.key)
    if hit is not None:
        arrays, meta = hit
        record.cached, record.warnings = True, meta.get("warnings", [])
        return {side: HandSequence.from_arrays(arrays, side) for side in HAND_SIDES}, record
    with StageTimer(record):
        hands = _run_estimation(source, backend, tracks, num_frames, focal, checkpoint, regressor, device, hand_backend)
    arrays = {k: v for seq in hands.values() for k, v in seq.to_arrays().items()}
    cache.save("hands", record.key, arrays, {"warnings": record.warnings})
    return hands, record


def _run_estimation(source, backend, tracks, num_frames, focal, checkpoint, regressor, device, hand_backend):
    if backend == "regressor":
        from hawor.estimation.regressor import HandRegressor

        if regressor is None:
            if checkpoint is None or not checkpoint.is_file():
                raise HaworInputError(f"regressor checkpoint {checkpoint}: no such file; download hawor.ckpt "
                                      "there or choose --hands embedded.")
            regressor = HandRegressor.from_checkpoint(checkpoint, device=device or "auto")
        reader = source.reader()
        estimates = {side: regressor.predict(reader, track, focal).hand for side, track in tracks.items() if len(track)}
    else:
        from hawor.estimation.keypoint_fit import fit_track

        estimates = {side: fit_track(track, focal, source.size, HandModel(side, hand_backend))[0]
                     for side, track in tracks.items() if len(track)}
    return {side: HandSequence.from_camera_space(estimates[side], num_frames) if side in estimates
            else HandSequence.empty(side, num_frames) for side in HAND_SIDES}


# ---------------------------------------------------------------- camera trajectory

def estimate_trajectory(source: FrameSource, cache: StageCache, choice: str, hands_cam: dict[str, HandSequence],
                        K: np.ndarray, upstream: str) -> tuple[CameraTrajectory, StageRecord]:
    _check_choice("camera", choice)
    from hawor.slam import droid_available, estimate_camera

    backend = {"auto": "auto", "learned": "droid", "embedded": "classical"}[choice]
    if backend == "auto":
        resolved, reason = ("droid", "auto: droid.pth present") if droid_available() else ("classical", "auto: no droid.pth")
    else:
        resolved, reason = backend, "asked for"
    record = StageRecord("camera", resolved, reason)
    record.key = stage_key("camera", upstream, resolved, K.tolist())
    hit = cache.load("camera", record.key)
    if hit is not None:
        arrays, meta = hit
        record.cached, record.warnings = True, meta.get("warnings", [])
        record.reason += "; " + meta.get("method", "").split("; ", 1)[-1]
        return CameraTrajectory(arrays["T_world_cam"], arrays["K"], float(arrays["scale"]), arrays["keyframes"],
                                meta.get("method", "")), record
    arrays_cam = {k: v for seq in hands_cam.values() for k, v in seq.to_arrays().items()}
    with StageTimer(record):
        traj = estimate_camera(source.progress("camera"), K, image_size=source.size, hands=arrays_cam,
                               backend=resolved)
    record.reason += "; " + traj.method.split("; ", 1)[-1]  # drop the backend part we already state
    record.warnings += list(traj.warnings)
    if len(traj) != len(next(iter(hands_cam.values()))):
        raise RuntimeError(f"camera stage returned {len(traj)} poses for {len(next(iter(hands_cam.values())))} frames")
    cache.save("camera", record.key, {"T_world_cam": traj.T_world_cam, "K": traj.K, "scale": np.float64(traj.scale),
                                      "keyframes": np.asarray(traj.keyframes, np.int64)},
               {"warnings": record.warnings, "method": traj.method})
    return traj, record


# ---------------------------------------------------------------- world hands

@dataclass
class WorldHands:
    """World- and camera-frame hands after infilling, with their joints (N, 21, 3)."""

    world: dict[str, HandSequence]
    camera: dict[str, HandSequence]
    joints_world: dict[str, np.ndarray]
    joints_camera: dict[str, np.ndarray]


def assemble_world(cache: StageCache, choice: str, hands_cam: dict[str, HandSequence], traj: CameraTrajectory,
                   models: dict[str, HandModel], upstream: str, infiller_weight: Path | None, infiller,
                   max_gap: int | None) -> tuple[WorldHands, StageRecord]:
    """World hands (gaps filled) and the camera-frame view of them.

    ``max_gap``: longest gap filled, in frames; None: 30 for interpolation, unlimited for the
    infiller; negative: unlimited.
    """
    _check_choice("infiller", choice)
    if infiller is not None:
        backend, reason = "infiller", "an infiller object was passed"
    elif choice == "learned" or (choice == "auto" and infiller_weight is not None and infiller_weight.is_file()):
        backend, reason = "infiller", ("asked for" if choice == "learned" else f"auto: {infiller_weight} is present")
    else:
        backend = "interpolation"
        reason = "asked for" if choice == "embedded" else f"auto: no infiller weights at {infiller_weight}"
    if max_gap is None:
        max_gap = DEFAULT_MAX_GAP if backend == "interpolation" else None
    elif max_gap < 0:
        max_gap = None
    record = StageRecord("world", backend, reason + f"; longest gap filled: {max_gap or 'any'} frames")
    ident = _object_identity(infiller) if infiller is not None else (
        file_identity(infiller_weight) if backend == "infiller" else None)
    record.key = stage_key("world", upstream, backend, ident, max_gap)
    hit = cache.load("world", record.key)
    if hit is not None:
        arrays, meta = hit
        record.cached, record.warnings = True, meta.get("warnings", [])
        return _world_from_arrays(arrays), record
    with StageTimer(record):
        if backend == "infiller" and infiller is None:
            if infiller_weight is None or not infiller_weight.is_file():
                raise HaworInputError(f"infiller weights {infiller_weight}: no such file; download infiller.pt "
                                      "there or choose --infiller embedded.")
            infiller = load_infiller(infiller_weight)
        world = {side: camera_to_world(seq, traj.T_world_cam, models[side]) for side, seq in hands_cam.items()}
        world = fill_hands(world, models, infiller if backend == "infiller" else None, max_gap=max_gap)
        camera = {side: world_to_camera(seq, traj.T_world_cam, models[side]) for side, seq in world.items()}
        # observed camera-frame values are the estimation's own, not a round trip through the world frame
        for side, seq in camera.items():
            obs = hands_cam[side].observed
            for key, values in hands_cam[side].params().items():
                getattr(seq, key)[obs] = values[obs]
        result = WorldHands(world, camera, {s: hand_joints(q, models[s]) for s, q in world.items()},
                            {s: hand_joints(q, models[s]) for s, q in camera.items()})
    cache.save("world", record.key, _world_to_arrays(result), {"warnings": record.warnings})
    return result, record


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
