"""Results as Parquet: one row per video, per-frame arrays as list columns (pyarrow).

    write_result_parquet(result, "out/video_0.parquet", episode_id="video_0")   # one file, one row
    append_to_dataset(result, "out/dataset", episode_id="video_0")              # dataset/<id>.parquet
    result = read_result_parquet("out/dataset", episode_id="video_0")           # -> Result

Column names follow the egocentric-data convention (``T_world_camera``-style poses, ``joints_world``)
so that tools read them without a mapping table; every field carries its shape, unit and frame in
its Arrow metadata and docs/batch.md lists them. A dataset directory holds one file per video, so
parallel workers append without sharing a file and a rerun of one video replaces its own file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from hawor.errors import HaworInputError
from hawor.geometry import axis_angle_to_matrix
from hawor.hands import HAND_SIDES
from hawor.io.files import atomic_path
from hawor.pipeline.run import Result
from hawor.slam.trajectory import CameraTrajectory
from hawor.world.sequence import PARAM_SHAPES, HandSequence

SCHEMA_VERSION = 1
MASKS = ("observed", "infilled", "valid")

# name: (per-frame shape, numpy dtype, description); per-hand names get a "left_" / "right_" prefix.
FRAME_COLUMNS = {
    "timestamps": ((), np.float64, "(N,) seconds from the first selected frame"),
    "camera_trajectory": ((4, 4), np.float64, "(N, 4, 4) T_world_camera, camera-to-world, metres, OpenCV axes"),
}
HAND_COLUMNS = {
    "joints_world": ((21, 3), np.float64, "(N, 21, 3) metres, world frame, OpenPose order; NaN where not valid"),
    "joints_camera": ((21, 3), np.float64, "(N, 21, 3) metres, camera frame; NaN where not valid"),
    "T_world_wrist": ((4, 4), np.float64, "(N, 4, 4) wrist pose in the world: MANO root rotation, wrist joint"),
    "T_camera_wrist": ((4, 4), np.float64, "(N, 4, 4) wrist pose in the camera frame"),
    "global_orient": ((3,), np.float64, "(N, 3) MANO root axis-angle, world frame"),
    "hand_pose": ((45,), np.float64, "(N, 45) MANO axis-angle of 15 joints"),
    "betas": ((10,), np.float64, "(N, 10) MANO shape"),
    "transl": ((3,), np.float64, "(N, 3) MANO transl, metres, world frame"),
    "global_orient_camera": ((3,), np.float64, "(N, 3) MANO root axis-angle, camera frame"),
    "hand_pose_camera": ((45,), np.float64, "(N, 45) MANO hand_pose of the camera-frame result"),
    "betas_camera": ((10,), np.float64, "(N, 10) MANO betas of the camera-frame result"),
    "transl_camera": ((3,), np.float64, "(N, 3) MANO transl, metres, camera frame"),
    "observed": ((), np.bool_, "(N,) a detection drove this frame"),
    "infilled": ((), np.bool_, "(N,) filled by the infiller or interpolation"),
    "valid": ((), np.bool_, "(N,) observed or infilled"),
}
SCALAR_COLUMNS = {
    "episode_id": (pa.string(), "the video's id in the batch (default: its file name up to the first dot)"),
    "video": (pa.string(), "input video path"),
    "fps": (pa.float64(), "frames per second of the result"),
    "num_frames": (pa.int64(), "N"),
    "image_width": (pa.int64(), "pixels"),
    "image_height": (pa.int64(), "pixels"),
    "focal": (pa.float64(), "pixels"),
    "intrinsics": (pa.list_(pa.float64(), 9), "(3, 3) K, row-major, pixels"),
    "hand_model": (pa.string(), "mano or open (the MANO-format open hand)"),
    "camera_scale": (pa.float64(), "metric scale applied to the camera reconstruction"),
    "camera_method": (pa.string(), "camera backend and scale method"),
    "summary_json": (pa.string(), "the run's summary.json"),
    "schema_version": (pa.int32(), f"{SCHEMA_VERSION}"),
}


def _list_type(shape: tuple[int, ...], dtype) -> pa.DataType:
    inner = pa.from_numpy_dtype(dtype)
    for size in reversed(shape):
        inner = pa.list_(inner, size)
    return pa.list_(inner)


def schema() -> pa.Schema:
    """The Arrow schema of a result row, with a ``description`` in every field's metadata."""
    fields = [pa.field(n, t, metadata={"description": d}) for n, (t, d) in SCALAR_COLUMNS.items()]
    fields += [pa.field(n, _list_type(s, dt), metadata={"description": d}) for n, (s, dt, d) in FRAME_COLUMNS.items()]
    fields += [pa.field(f"{side}_{n}", _list_type(s, dt), metadata={"description": f"{side} hand: {d}"})
               for side in HAND_SIDES for n, (s, dt, d) in HAND_COLUMNS.items()]
    return pa.schema(fields, metadata={"hawor_schema_version": str(SCHEMA_VERSION)})


def _wrist_poses(seq: HandSequence, joints: np.ndarray) -> np.ndarray:
    """(N, 4, 4): rotation of the MANO root, origin at the wrist joint; NaN where not valid."""
    T = np.full((len(seq), 4, 4), np.nan)
    valid = seq.valid
    T[valid] = np.eye(4)
    T[valid, :3, :3] = axis_angle_to_matrix(torch.as_tensor(seq.global_orient[valid])).numpy()
    T[valid, :3, 3] = joints[valid, 0]
    return T


def _frame_arrays(result: Result) -> dict[str, np.ndarray]:
    arrays = {"timestamps": np.arange(result.num_frames) / result.fps,
              "camera_trajectory": result.camera.T_world_cam}
    for side in HAND_SIDES:
        world, camera = result.hands_world[side], result.hands_camera[side]
        hand = {"joints_world": result.joints_world[side], "joints_camera": result.joints_camera[side],
                "T_world_wrist": _wrist_poses(world, result.joints_world[side]),
                "T_camera_wrist": _wrist_poses(camera, result.joints_camera[side]),
                **world.params(), **{f"{k}_camera": v for k, v in camera.params().items()},
                "observed": world.observed, "infilled": world.infilled, "valid": world.valid}
        arrays.update({f"{side}_{k}": v for k, v in hand.items()})
    return arrays


def result_table(result: Result, episode_id: str, video: str | None = None) -> pa.Table:
    """One row holding the whole result (see :func:`schema`)."""
    K = np.asarray(result.camera.K, np.float64)
    row = {"episode_id": episode_id, "video": video or result.summary.get("video", ""), "fps": result.fps,
           "num_frames": result.num_frames, "image_width": result.image_size[0],
           "image_height": result.image_size[1], "focal": result.focal, "intrinsics": K.ravel(),
           "hand_model": result.hand_model, "camera_scale": float(result.camera.scale),
           "camera_method": result.camera.method, "summary_json": json.dumps(result.summary, default=str),
           "schema_version": SCHEMA_VERSION}
    columns = {name: pa.array([value], SCALAR_COLUMNS[name][0]) for name, value in row.items()}
    target = schema()
    for name, values in _frame_arrays(result).items():
        values = np.ascontiguousarray(values)
        flat = pa.array(values.reshape(-1))
        for size in reversed(values.shape[1:]):
            flat = pa.FixedSizeListArray.from_arrays(flat, size)
        columns[name] = pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), flat)
    return pa.Table.from_arrays([columns[f.name] for f in target], schema=target)


def write_result_parquet(result: Result, path: str | Path, episode_id: str, video: str | None = None) -> Path:
    """Write one result as a one-row Parquet file, atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(result_table(result, episode_id, video), tmp)
    return path


def append_to_dataset(result: Result, dataset_dir: str | Path, episode_id: str, video: str | None = None) -> Path:
    """Add (or replace) the row of ``episode_id`` in a dataset directory: ``<dataset_dir>/<episode_id>.parquet``."""
    return write_result_parquet(result, Path(dataset_dir) / f"{episode_id}.parquet", episode_id, video)


def read_rows(path: str | Path) -> pa.Table:
    """Every row of a Parquet file or dataset directory, with this module's schema."""
    path = Path(path)
    if not path.exists():
        raise HaworInputError(f"parquet {path}: no such file or directory.")
    # a worker killed while writing leaves "<id>.tmp-<hex>.parquet" behind (see hawor.io.files): not a row
    files = sorted(f for f in path.glob("*.parquet") if ".tmp-" not in f.name) if path.is_dir() else [path]
    if not files:
        raise HaworInputError(f"parquet dataset {path}: holds no .parquet files.")
    try:
        table = pa.concat_tables([pq.read_table(f) for f in files])
    except (pa.ArrowInvalid, OSError) as exc:
        raise HaworInputError(f"parquet {path}: cannot be read as a hawor result table ({exc}).") from exc
    missing = set(schema().names) - set(table.column_names)
    if missing:
        raise HaworInputError(f"parquet {path}: not a hawor result table (missing {sorted(missing)[:5]}).")
    return table


def _cell(table: pa.Table, name: str, row: int) -> np.ndarray:
    """One list cell as an (N, *shape) numpy array."""
    column = table.column(name)
    cell = column.slice(row, 1).combine_chunks().flatten()
    shape, kind = [], column.type.value_type
    while pa.types.is_fixed_size_list(kind):
        shape.append(kind.list_size)
        cell, kind = cell.flatten(), kind.value_type
    return cell.to_numpy(zero_copy_only=False).reshape(-1, *shape)


def read_result_parquet(path: str | Path, episode_id: str | None = None) -> Result:
    """A :class:`Result` from a Parquet file or dataset directory; ``episode_id`` picks the row (needed
    when there is more than one). ``Result.folder`` is ``path``."""
    path = Path(path)
    table = read_rows(path)
    ids = table.column("episode_id").to_pylist()
    if episode_id is None and len(ids) != 1:
        raise HaworInputError(f"parquet {path}: holds {len(ids)} episodes; pass episode_id (one of {ids[:5]}...).")
    if episode_id is not None and episode_id not in ids:
        raise HaworInputError(f"parquet {path}: no episode '{episode_id}' (it holds {ids[:5]}...).")
    row = ids.index(episode_id) if episode_id is not None else 0
    scalar = {name: table.column(name)[row].as_py() for name in SCALAR_COLUMNS}
    hands = {"world": {}, "camera": {}}
    joints = {"world": {}, "camera": {}}
    for side in HAND_SIDES:
        masks = {m: _cell(table, f"{side}_{m}", row) for m in ("observed", "infilled")}
        for frame, suffix in (("world", ""), ("camera", "_camera")):
            params = {k: _cell(table, f"{side}_{k}{suffix}", row) for k in PARAM_SHAPES}
            hands[frame][side] = HandSequence(side, **params, **masks)
            joints[frame][side] = _cell(table, f"{side}_joints_{frame}", row)
    K = np.asarray(scalar["intrinsics"], np.float64).reshape(3, 3)
    camera = CameraTrajectory(_cell(table, "camera_trajectory", row), K, scalar["camera_scale"],
                              method=scalar["camera_method"])
    return Result(path, scalar["fps"], (scalar["image_width"], scalar["image_height"]), scalar["focal"],
                  scalar["hand_model"], hands["world"], hands["camera"], joints["world"], joints["camera"],
                  camera, json.loads(scalar["summary_json"]))
