"""Run the whole pipeline on one video and write its result folder; read a result folder back.

    import hawor.pipeline as hp
    result = hp.run("example/video_0.mp4", vis_mode="world")   # -> Result
    result.hands_world["right"].transl                          # (N, 3) metres, NaN where not valid
    result = hp.load_result("example/video_0")                  # later, from the files
"""
from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import hawor
from hawor.errors import HaworInputError
from hawor.eval.metrics import evaluate_world
from hawor.hands import HAND_SIDES, HandModel
from hawor.io.files import save_npz_atomic, write_json_atomic
from hawor.pipeline import stages
from hawor.pipeline.cache import StageCache, file_identity, stage_key
from hawor.pipeline.frames import FrameSelection, FrameSource
from hawor.geometry import DEFAULT_FOCAL, default_intrinsics
from hawor.slam.trajectory import CameraTrajectory
from hawor.vis.exports import EXPORT_FORMATS, export_meshes, export_rerun
from hawor.vis.views import CameraView, WorldView, write_video
from hawor.weights import weight_path
from hawor.world.sequence import HandSequence

VIS_MODES = ("world", "cam", "both", "none")
GROUND_TRUTH_SUFFIXES = ("_gt.npz", ".gt.npz", "_ground_truth.npz")


@dataclass
class RunOptions:
    """Everything that changes what a run computes or writes (CLI flags map 1:1 onto these).

    Backend choices per stage are "auto" (learned when its weights are present), "learned" or
    "embedded" (runs with nothing downloaded by hand).
    """

    output_dir: str | Path | None = None
    img_focal: float | None = None
    checkpoint: str | Path | None = None
    infiller_weight: str | Path | None = None
    detector_weight: str | Path | None = None
    device: str | None = None
    detector: str = "auto"
    hands: str = "auto"
    camera: str = "auto"
    infiller: str = "auto"
    hand_model: str = "auto"
    start: int = 0
    end: int | None = None
    max_frames: int | None = None
    fps: float | None = None
    max_gap: int | None = None
    vis_mode: str = "world"
    render_backend: str = "auto"
    exports: tuple[str, ...] = ()
    force: bool = False
    ground_truth: str | Path | None = None

    def __post_init__(self):
        if self.vis_mode not in VIS_MODES:
            raise HaworInputError(f"vis_mode '{self.vis_mode}': choose one of {', '.join(VIS_MODES)}.")
        unknown = set(self.exports) - set(EXPORT_FORMATS)
        if unknown:
            raise HaworInputError(f"export {sorted(unknown)}: choose from {', '.join(EXPORT_FORMATS)}.")
        if self.img_focal is not None and not self.img_focal > 0:
            raise HaworInputError(f"img_focal {self.img_focal}: the focal length must be positive (pixels).")


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


def run(video: str | Path, options: RunOptions | None = None, *, regressor=None, infiller=None, **kwargs) -> Result:
    """Run every stage on ``video`` and write the result folder; returns the :class:`Result`.

    ``options`` or keyword arguments (the fields of :class:`RunOptions`); ``regressor`` (a
    :class:`hawor.estimation.regressor.HandRegressor`) and ``infiller`` (a
    :class:`hawor.models.infiller.MotionInfiller`) replace the weight files with ready objects.
    Raises HaworInputError, before anything is written, when the video cannot be used.
    """
    options = options or RunOptions(**kwargs)
    video = Path(video)
    source = FrameSource(FrameSelection(video, options.start, options.end, options.max_frames, options.fps))
    folder = result_folder(video, options.output_dir)
    created = not folder.exists()
    try:
        return _run(video, source, folder, options, regressor, infiller)
    except HaworInputError:
        if created:  # bad input found mid-way: leave no partial result folder behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _weight(path, name: str) -> Path:
    return Path(path) if path is not None else weight_path(name)


def _run(video: Path, source: FrameSource, folder: Path, options: RunOptions, regressor, infiller) -> Result:
    started = time.perf_counter()
    cache = StageCache(folder / "cache", force=options.force)
    focal = float(options.img_focal or DEFAULT_FOCAL)
    K = default_intrinsics(source.size, focal)
    models = {side: HandModel(side, options.hand_model).double() for side in HAND_SIDES}
    hand_backend = models["right"].backend
    video_key = stage_key("video", file_identity(video), source.selection.settings())

    tracks, num_frames, rec_det = stages.detect(source, cache, options.detector, video_key,
                                                _weight(options.detector_weight, "detector"), options.device)
    hands_cam, rec_hands = stages.estimate_hands(
        source, cache, options.hands, tracks, num_frames, focal, rec_det.key,
        _weight(options.checkpoint, "regressor"), regressor, options.device, hand_backend)
    traj, rec_cam = stages.estimate_trajectory(source, cache, options.camera, hands_cam, K, rec_hands.key)
    world, rec_world = stages.assemble_world(
        cache, options.infiller, hands_cam, traj, models, rec_cam.key,
        _weight(options.infiller_weight, "infiller"), infiller, options.max_gap)
    records = [rec_det, rec_hands, rec_cam, rec_world]

    header = {"fps": np.float64(source.fps), "num_frames": np.int64(num_frames),
              "image_size": np.array(source.size, np.int64), "focal": np.float64(focal),
              "hand_model": np.str_(hand_backend)}
    _save_hands(folder / "hands_world.npz", header, world.world, world.joints_world)
    _save_hands(folder / "hands_camera.npz", header, world.camera, world.joints_camera)
    traj.save(folder, fps=source.fps)
    save_npz_atomic(folder / "tracks.npz", **stages.tracks_to_arrays(tracks), num_frames=np.int64(num_frames),
                    backend=np.str_(rec_det.backend))

    result = Result(folder, source.fps, source.size, focal, hand_backend, world.world, world.camera,
                    world.joints_world, world.joints_camera, traj)
    records += _visualise(result, source, cache, options, models, rec_world.key)
    outputs = _export(result, options, models)
    evaluation = _evaluate(video, result, options)
    result.summary = _summary(video, result, options, records, tracks, outputs, evaluation,
                              time.perf_counter() - started)
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
        record.key = stage_key(record.name, upstream, options.render_backend)
        if path.is_file() and cache.load(record.name, record.key) is not None:
            record.cached, record.backend, record.reason = True, "cached", f"{path.name} is up to date"
            records.append(record)
            continue
        with stages.StageTimer(record):
            if mode == "world":
                view = WorldView(result.hands_world, models, result.camera.T_world_cam, result.camera.K,
                                 result.image_size, backend=options.render_backend)
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


def load_ground_truth(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a ground-truth npz; ``T_world_cam`` from a camera.npz beside a hands_world.npz."""
    if not path.is_file():
        raise HaworInputError(f"ground truth {path}: no such file.")
    with np.load(path, allow_pickle=False) as data:
        gt = {k: data[k] for k in data.files}
    camera = path.parent / "camera.npz"
    if "T_world_cam" not in gt and path.name == "hands_world.npz" and camera.is_file():
        with np.load(camera, allow_pickle=False) as data:
            gt["T_world_cam"] = data["T_world_cam"]
    return gt


def _evaluate(video: Path, result: Result, options: RunOptions) -> dict | None:
    path = Path(options.ground_truth) if options.ground_truth else find_ground_truth(video)
    if path is None:
        return None
    gt = load_ground_truth(path)
    n = result.num_frames
    if "num_frames" in gt and int(gt["num_frames"]) != n:
        if options.fps is not None:
            return {"file": str(path), "skipped": "resampled run: frames do not match the ground truth 1:1"}
        total, select = int(gt["num_frames"]), np.arange(options.start, options.start + n)
        gt = {k: v[select] if np.ndim(v) >= 1 and len(v) == total else v for k, v in gt.items()}
    pred = {"T_world_cam": result.camera.T_world_cam}
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


def load_result(folder: str | Path) -> Result:
    """Read a result folder written by :func:`run`."""
    folder = Path(folder)
    path = folder / "hands_world.npz"
    if not path.is_file():
        raise HaworInputError(f"result folder {folder}: has no hands_world.npz; run the pipeline on the video first.")
    loaded = {}
    for frame in ("world", "camera"):
        with np.load(folder / f"hands_{frame}.npz", allow_pickle=False) as data:
            loaded[frame] = ({s: HandSequence.from_arrays(data, s) for s in HAND_SIDES},
                             {s: np.asarray(data[f"{s}_joints"]) for s in HAND_SIDES},
                             float(data["fps"]), tuple(int(v) for v in data["image_size"]), float(data["focal"]),
                             str(data["hand_model"]))
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    hands_w, joints_w, fps, size, focal, model = loaded["world"]
    return Result(folder, fps, size, focal, model, hands_w, loaded["camera"][0], joints_w, loaded["camera"][1],
                  CameraTrajectory.load(folder / "camera.npz"), summary)
