"""Run the whole pipeline on one video and write its result folder; read a result folder back.

    import hawor.pipeline as hp
    result = hp.run("example/video_0.mp4", vis_mode="world")   # -> Result
    result.hands_world["right"].transl                          # (N, 3) metres, NaN where not valid
    result = hp.load_result("example/video_0")                  # later, from the files
"""
from __future__ import annotations

import json
import math
import platform
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import hawor
from hawor.errors import HaworInputError
from hawor.eval.datasets import read_ground_truth
from hawor.eval.metrics import evaluate_world
from hawor.hands import HAND_SIDES, HandModel
from hawor.io.files import save_npz_atomic, write_json_atomic
from hawor.pipeline import stages
from hawor.pipeline.cache import StageCache, file_identity, stage_key
from hawor.pipeline.frames import FrameSelection, FrameSource
from hawor.pipeline.plan import plan_for_run
from hawor.geometry import Intrinsics
from hawor.slam.trajectory import CameraTrajectory
from hawor.vis.exports import EXPORT_FORMATS, export_meshes, export_rerun
from hawor.vis.gltf import export_glb
from hawor.vis.views import VIEWPOINTS, CameraView, WorldView, write_video
from hawor.world.sequence import HandSequence

VIS_MODES = ("world", "cam", "both", "none")
GROUND_TRUTH_SUFFIXES = ("_gt.npz", ".gt.npz", "_ground_truth.npz")
PARQUET_NAME = "result.parquet"
RESULT_FILES = ("hands_world.npz", "hands_camera.npz", "camera.npz", "camera_tum.txt", "tracks.npz")


@dataclass
class RunOptions:
    """Everything that changes what a run computes or writes (CLI flags map 1:1 onto these).

    Backend choices per stage are "auto" (learned when its weights are present), "learned" or
    "embedded" (runs with nothing downloaded by hand).
    """

    output_dir: str | Path | None = None
    img_focal: float | None = None
    img_center: tuple[float, float] | None = None
    checkpoint: str | Path | None = None
    infiller_weight: str | Path | None = None
    detector_weight: str | Path | None = None
    device: str | None = None
    detector: str = "auto"
    hands: str = "auto"
    camera: str = "auto"
    scale: str = "auto"
    infiller: str = "auto"
    hand_model: str = "auto"
    start: int = 0
    end: int | None = None
    max_frames: int | None = None
    fps: float | None = None
    max_gap: int | None = None
    vis_mode: str = "world"
    render_backend: str = "auto"
    world_view: str = "follow"
    exports: tuple[str, ...] = ()
    force: bool = False
    ground_truth: str | Path | None = None

    def __post_init__(self):
        if self.world_view not in VIEWPOINTS:
            raise HaworInputError(f"world_view '{self.world_view}': choose one of {', '.join(VIEWPOINTS)}.")
        if self.vis_mode not in VIS_MODES:
            raise HaworInputError(f"vis_mode '{self.vis_mode}': choose one of {', '.join(VIS_MODES)}.")
        unknown = set(self.exports) - set(EXPORT_FORMATS)
        if unknown:
            raise HaworInputError(f"export {sorted(unknown)}: choose from {', '.join(EXPORT_FORMATS)}.")
        if self.img_focal is not None and not (math.isfinite(self.img_focal) and self.img_focal > 0):
            raise HaworInputError(f"img_focal {self.img_focal}: the focal length must be a positive number of "
                                  "pixels, e.g. --img_focal 600.")


@dataclass
class Result:
    """A finished run (or one read back with :func:`load_result`)."""

    folder: Path
    fps: float
    image_size: tuple[int, int]
    focal: float
    hand_model: str
    hands_world: dict[str, HandSequence]
    hands_camera: dict[str, HandSequence]
    joints_world: dict[str, np.ndarray]
    joints_camera: dict[str, np.ndarray]
    camera: CameraTrajectory
    summary: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.camera)


def result_folder(video: Path, output_dir: str | Path | None) -> Path:
    """``<output_dir>/<name>``, or ``<video dir>/<name>`` (the official layout); name = file name up
    to its first dot, as the official code cuts it."""
    name = video.name.split(".")[0]
    return (Path(output_dir) if output_dir is not None else video.parent) / name


def run(video: str | Path, options: RunOptions | None = None, *, regressor_model=None, infiller_model=None,
        **kwargs) -> Result:
    """Run every stage on ``video`` and write the result folder; returns the :class:`Result`.

    ``options`` or keyword arguments (the fields of :class:`RunOptions`, e.g. ``infiller="embedded"``);
    ``regressor_model`` (a :class:`hawor.estimation.regressor.HandRegressor`) and ``infiller_model`` (a
    :class:`hawor.models.infiller.MotionInfiller`) replace the weight files with ready objects.
    Raises HaworInputError, before anything is written, when the video cannot be used.
    """
    options = options or RunOptions(**kwargs)
    regressor, infiller = regressor_model, infiller_model
    video = Path(video)
    if video.is_dir():
        raise HaworInputError(f"video {video}: is a folder, not a video file. Pass a video file (--video_path); "
                              "for many videos use `python -m hawor batch`.")
    source = FrameSource(FrameSelection(video, options.start, options.end, options.max_frames, options.fps))
    truth = _read_ground_truth(video, options)  # a bad ground truth is refused before any work
    folder = result_folder(video, options.output_dir)
    created = not folder.exists()
    prepare_folder(folder, video)
    try:
        return _run(video, source, folder, options, regressor, infiller, truth)
    except HaworInputError:
        if created:  # bad input found mid-way: leave no partial result folder behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def prepare_folder(folder: Path, video: Path) -> None:
    """Make ``folder`` ready for a run of ``video``: writable, not another video's result, no stale
    temporary files of a killed run. Raises HaworInputError naming the folder and the fix."""
    for parent in (folder.parent, *folder.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise HaworInputError(f"output folder {folder.parent}: {parent} is a file, not a folder. Fix: "
                                      "choose another --output_dir or move the file away.")
            break
    if folder.exists() and not folder.is_dir():
        raise HaworInputError(f"result folder {folder}: the name is taken by a file. Fix: move the file away, "
                              "or choose another --output_dir.")
    try:
        (folder / "cache").mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise HaworInputError(f"result folder {folder}: cannot write there ({exc.strerror}). Fix: choose a "
                              "writable --output_dir.") from exc
    owner = folder / "cache" / "video.json"
    if owner.is_file():
        previous = json.loads(owner.read_text()).get("video", "")
        if previous and Path(previous).name != video.name:
            raise HaworInputError(f"result folder {folder} holds the result of {Path(previous).name}, and "
                                  f"{video.name} maps to the same folder (the name up to its first dot). Fix: "
                                  "give this video its own --output_dir, or rename one of the videos.")
    write_json_atomic(owner, {"video": str(video)})
    for stale in (*folder.glob("*.tmp-*"), *folder.glob("*/*.tmp-*")):
        stale.unlink(missing_ok=True)


def _run(video: Path, source: FrameSource, folder: Path, options: RunOptions, regressor, infiller,
         truth: tuple[Path, dict] | None) -> Result:
    started = time.perf_counter()
    run_id = uuid.uuid4().hex[:16]
    plan = plan_for_run(options, regressor, infiller)  # every stage's backend, decided once
    plan.require_runnable()
    cache = StageCache(folder / "cache", force=options.force)
    models = {side: HandModel(side, plan["hand_model"].backend).double() for side in HAND_SIDES}
    hand_backend = models["right"].backend
    video_key = stage_key("video", file_identity(video), source.selection.settings())

    focal_est, rec_focal = stages.estimate_focal(source, cache, video_key, options.img_focal)
    intrinsics = Intrinsics.default(source.size, focal_est.focal, options.img_center)
    focal = intrinsics.focal
    tracks, num_frames, rec_det = stages.detect(source, cache, plan, video_key)
    hands_cam, rec_hands = stages.estimate_hands(source, cache, plan, tracks, num_frames, intrinsics, models,
                                                 rec_det.key, regressor)
    traj, rec_cam = stages.estimate_trajectory(source, cache, plan, hands_cam, intrinsics, models, rec_hands.key)
    world, rec_world = stages.assemble_world(cache, plan, hands_cam, traj, models, rec_cam.key, infiller,
                                             options.max_gap)
    records = [*([rec_focal] if rec_focal else []), rec_det, rec_hands, rec_cam, rec_world]

    header = {"fps": np.float64(source.fps), "num_frames": np.int64(num_frames),
              "image_size": np.array(source.size, np.int64), "focal": np.float64(focal),
              "hand_model": np.str_(hand_backend), "run_id": np.str_(run_id)}
    _save_hands(folder / "hands_world.npz", header, world.world, world.joints_world)
    _save_hands(folder / "hands_camera.npz", header, world.camera, world.joints_camera)
    traj.save(folder, fps=source.fps, run_id=run_id)
    save_npz_atomic(folder / "tracks.npz", **stages.tracks_to_arrays(tracks), num_frames=np.int64(num_frames),
                    backend=np.str_(rec_det.backend), run_id=np.str_(run_id))

    result = Result(folder, source.fps, source.size, focal, hand_backend, world.world, world.camera,
                    world.joints_world, world.joints_camera, traj)
    records += _visualise(result, source, cache, options, models, rec_world.key)
    outputs = _export(result, options, models)
    evaluation = _evaluate(truth, result, options) if truth is not None else None
    result.summary = _summary(video, result, options, records, tracks, outputs, evaluation,
                              time.perf_counter() - started)
    result.summary["warnings"] += [f"cache: {message}" for message in cache.discarded]
    result.summary.update(device=plan.device, plan=plan.as_dict(),
                          intrinsics={**intrinsics.as_dict(), "focal_source": focal_est.source,
                                      "focal_detail": focal_est.detail})
    written = [*RESULT_FILES, *(f"{r.name}.mp4" for r in records if r.name.startswith("vis_")),
               *(["hands.rrd"] if "rerun" in outputs else []), *(["hands.glb"] if "glb" in outputs else [])]
    # written last: a folder whose summary.json is missing or disagrees with its files is incomplete
    result.summary.update(run_id=run_id, files=file_checksums(folder, written))
    if "parquet" in options.exports:
        from hawor.pipeline.parquet import write_result_parquet  # it imports this module

        write_result_parquet(result, folder / PARQUET_NAME, episode_id=folder.name, video=str(video))
    write_json_atomic(folder / "summary.json", result.summary)
    return result


def _save_hands(path: Path, header: dict, hands: dict[str, HandSequence], joints: dict[str, np.ndarray]) -> None:
    arrays = dict(header)
    for side in HAND_SIDES:
        arrays.update(hands[side].to_arrays())
        arrays[f"{side}_joints"] = joints[side]
    save_npz_atomic(path, **arrays)


def _visualise(result: Result, source: FrameSource, cache: StageCache, options: RunOptions,
               models: dict[str, HandModel], upstream: str) -> list[stages.StageRecord]:
    modes = {"world": ["world"], "cam": ["cam"], "both": ["world", "cam"], "none": []}[options.vis_mode]
    records = []
    for mode in modes:
        path = result.folder / f"vis_{mode}.mp4"
        record = stages.StageRecord(f"vis_{mode}")
        record.key = stage_key(record.name, upstream, options.render_backend,
                               options.world_view if mode == "world" else None)
        if path.is_file() and cache.load(record.name, record.key) is not None:
            record.cached, record.backend, record.reason = True, "cached", f"{path.name} is up to date"
            records.append(record)
            continue
        with stages.StageTimer(record):
            if mode == "world":
                view = WorldView(result.hands_world, models, result.camera.T_world_cam, result.camera.K,
                                 result.image_size, backend=options.render_backend,
                                 viewpoint=options.world_view, fps=result.fps)
                frames = view.frames()
            else:
                view = CameraView(result.hands_camera, models, result.camera.K, result.image_size,
                                  backend=options.render_backend)
                frames = view.frames(iter(source), range(result.num_frames))
            try:
                record.backend = view.renderer.backend
                record.reason = "pyrender through EGL" if record.backend == "egl" else "no OpenGL context: numpy rasteriser"
                write_video(path, frames, result.fps, view.size, total=result.num_frames, desc=record.name)
            finally:
                view.close()
        cache.save(record.name, record.key, {})
        records.append(record)
    return records


def _export(result: Result, options: RunOptions, models: dict[str, HandModel]) -> dict[str, str]:
    outputs = {}
    if "rerun" in options.exports:
        outputs["rerun"] = str(export_rerun(result.folder / "hands.rrd", result.hands_world, models,
                                            result.joints_world, result.camera.T_world_cam, result.camera.K,
                                            result.image_size, result.fps))
    for fmt in ("ply", "obj"):
        if fmt in options.exports:
            count = export_meshes(result.folder / f"meshes_{fmt}", result.hands_world, models, fmt)
            outputs[fmt] = f"{count} files in {result.folder / f'meshes_{fmt}'}"
    if "glb" in options.exports:
        outputs["glb"] = str(export_glb(result.folder / "hands.glb", result.hands_world, models,
                                        result.camera.T_world_cam, result.camera.K, result.image_size, result.fps))
    if "parquet" in options.exports:  # written once the summary exists (the row carries it): see _run
        outputs["parquet"] = str(result.folder / PARQUET_NAME)
    return outputs


def find_ground_truth(video: Path) -> Path | None:
    """Ground truth beside the video: ``<name>_gt.npz``, a folder ``<name>_gt/`` holding
    hands_world.npz (and camera.npz), or the synthetic generator's folder (hands_world.npz and a
    meta.json written by the generator next to the video)."""
    name = video.name.split(".")[0]
    for candidate in (video.parent / f"{name}_gt.npz", video.parent / f"{name}_gt" / "hands_world.npz"):
        if candidate.is_file():
            return candidate
    meta = video.parent / "meta.json"
    if (video.parent / "hands_world.npz").is_file() and meta.is_file() and '"generator"' in meta.read_text():
        return video.parent / "hands_world.npz"
    return None


def _read_ground_truth(video: Path, options: RunOptions) -> tuple[Path, dict] | None:
    """(path, arrays) of the ground truth to evaluate against, checked for its unit and frame."""
    path = Path(options.ground_truth) if options.ground_truth else find_ground_truth(video)
    return None if path is None else (path, read_ground_truth(path, "synthetic"))


def _evaluate(truth: tuple[Path, dict], result: Result, options: RunOptions) -> dict:
    path, gt = truth
    n = result.num_frames
    if "num_frames" in gt and int(gt["num_frames"]) != n:
        if options.fps is not None:
            return {"file": str(path), "skipped": "resampled run: frames do not match the ground truth 1:1"}
        total, select = int(gt["num_frames"]), np.arange(options.start, options.start + n)
        gt = {k: v[select] if np.ndim(v) >= 1 and len(v) == total else v for k, v in gt.items()}
    pred = {"T_world_cam": result.camera.T_world_cam, "K": result.camera.K, "fps": result.fps}
    for side in HAND_SIDES:
        pred.update(result.hands_world[side].to_arrays())
        pred[f"{side}_joints"] = result.joints_world[side]
    return {"file": str(path), **evaluate_world(pred, gt)}


def _summary(video, result: Result, options: RunOptions, records, tracks, outputs, evaluation, seconds) -> dict:
    import av
    import torch

    counts = {"frames": result.num_frames}
    for side in HAND_SIDES:
        seq = result.hands_world[side]
        counts[side] = {"detections": len(tracks[side]), "observed": int(seq.observed.sum()),
                        "infilled": int(seq.infilled.sum()), "valid": int(seq.valid.sum())}
    warnings = [f"{r.name}: {w}" for r in records for w in r.warnings]
    if not any(len(t) for t in tracks.values()):
        warnings.insert(0, "no hands were found in the video: the hand tracks are empty (all NaN)")
    return {
        "video": str(video), "result_folder": str(result.folder),
        "fps": result.fps, "num_frames": result.num_frames, "image_size": list(result.image_size),
        "focal": result.focal, "hand_model": result.hand_model,
        "frame_selection": {"start": options.start, "end": options.end, "max_frames": options.max_frames,
                            "fps": options.fps or "source rate (not resampled)"},
        "stages": {r.name: r.as_dict() for r in records},
        "timings_s": {**{r.name: round(r.seconds, 3) for r in records}, "total": round(seconds, 3)},
        "counts": counts, "warnings": warnings, "exports": outputs, "evaluation": evaluation,
        "versions": {"hawor": hawor.__version__, "python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "av": av.__version__, "platform": platform.platform()},
    }


def file_checksums(folder: Path, names) -> dict[str, str]:
    """{name: SHA-256} of the named files in ``folder``, for summary.json."""
    return {name: file_identity(folder / name)["sha256"] for name in names}


def check_result_folder(folder: Path) -> dict:
    """The summary of a complete result folder; HaworInputError when the run that wrote it did not
    finish or its files come from different runs."""
    if not (folder / "hands_world.npz").is_file():
        raise HaworInputError(f"result folder {folder}: has no hands_world.npz; run the pipeline on the video first.")
    summary_path = folder / "summary.json"
    fix = "Fix: run the pipeline on the video again (demo.py; finished stages are reused)."
    if not summary_path.is_file():
        raise HaworInputError(f"result folder {folder}: has no summary.json, so the run that wrote it did not "
                              f"finish. {fix}")
    summary = json.loads(summary_path.read_text())
    for name, checksum in summary.get("files", {}).items():
        identity = file_identity(folder / name)
        if identity is None or identity["sha256"] != checksum:
            state = "is missing" if identity is None else "was written by another run (or changed since)"
            raise HaworInputError(f"result folder {folder}: {name} {state}; the folder mixes files of two runs. {fix}")
    return summary


def load_result(folder: str | Path, episode_id: str | None = None) -> Result:
    """Read a complete result folder written by :func:`run` (refused when incomplete or mixed), or a
    Parquet export: a ``.parquet`` file or a folder of them (``python -m hawor batch``'s OUT/dataset),
    where ``episode_id`` picks the row."""
    folder = Path(folder)
    if folder.suffix == ".parquet" or (folder.is_dir() and not (folder / "hands_world.npz").exists()
                                       and any(folder.glob("*.parquet"))):
        from hawor.pipeline.parquet import read_result_parquet  # it imports this module

        return read_result_parquet(folder, episode_id)
    summary = check_result_folder(folder)
    loaded = {}
    for frame in ("world", "camera"):
        with np.load(folder / f"hands_{frame}.npz", allow_pickle=False) as data:
            loaded[frame] = ({s: HandSequence.from_arrays(data, s) for s in HAND_SIDES},
                             {s: np.asarray(data[f"{s}_joints"]) for s in HAND_SIDES},
                             float(data["fps"]), tuple(int(v) for v in data["image_size"]), float(data["focal"]),
                             str(data["hand_model"]))
    hands_w, joints_w, fps, size, focal, model = loaded["world"]
    return Result(folder, fps, size, focal, model, hands_w, loaded["camera"][0], joints_w, loaded["camera"][1],
                  CameraTrajectory.load(folder / "camera.npz"), summary)
