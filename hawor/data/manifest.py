"""Training manifests: reading the three accepted forms and checking every sample.

Forms (docs/training.md):

- JSON ``{"samples": [{...}, ...]}``;
- NPZ with one object array ``samples`` of dicts (``np.savez(p, samples=np.array(dicts, dtype=object))``),
  read through :func:`hawor.io.safe_pickle.load_npz_objects`: only dicts, lists, strings, numbers and
  numpy arrays can come out of it, a file naming anything else (code) is refused;
- NPZ of stacked arrays, one per field with the samples along the first axis (what
  ``scripts/make_synthetic.py --outputs manifest`` writes).

Per sample: ``img_path`` (absolute or relative to the image root), ``sequence_id``, ``frame_id``, the box
as ``bbox`` (x1, y1, x2, y2) pixels or ``center`` (2,) + ``scale`` (box side / 200), ``gt_cam_j2d`` (21, 2)
original-image pixels, ``gt_cam_full_pose`` (48,) axis-angle camera frame, ``gt_cam_betas`` (10,);
optional ``gt_j3d_wo_trans`` (21, 3) metres, ``img_center`` (2,), ``img_focal``, ``handedness`` (0 left,
1 right, also "left"/"right"; default right).

Rules: a missing or mis-shaped field, a non-finite value, a missing image file or an empty manifest is an
error naming the manifest, the sample index and the field. NaN joints in ``gt_cam_j2d`` are the one
exception: they mark unlabelled joints, get zero weight in the 2D loss and are counted.
"""
from __future__ import annotations

import json
import logging
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hawor.errors import HaworInputError
from hawor.geometry import BOX_SCALE_UNIT, DEFAULT_FOCAL
from hawor.io.safe_pickle import NUMPY_GLOBALS, RefusedGlobal, load_npz_objects

log = logging.getLogger(__name__)

NUM_JOINTS = 21
# Crop side = dilation * longest box side, as at inference (hawor.estimation.regressor.BOX_DILATION).
BOX_DILATION = 1.2
# Object-array manifests hold dicts, lists, strings, numbers and numpy arrays; nothing else is admitted.
MANIFEST_GLOBALS = NUMPY_GLOBALS
_SHAPES = {"gt_cam_j2d": (NUM_JOINTS, 2), "gt_cam_full_pose": (48,), "gt_cam_betas": (10,),
           "gt_j3d_wo_trans": (NUM_JOINTS, 3), "img_center": (2,), "img_focal": (), "bbox": (4,),
           "center": (2,), "scale": ()}
REQUIRED = ("img_path", "sequence_id", "frame_id", "gt_cam_j2d", "gt_cam_full_pose", "gt_cam_betas")


def estimate_focal(width: int, height: int) -> float:
    """Focal length (pixels) assumed when a sample has none: 600 px at 640x480, scaled with the long side."""
    return DEFAULT_FOCAL * max(width, height) / 640.0


@dataclass
class Manifest:
    """Checked samples of one manifest as stacked arrays (N samples).

    img_path: absolute image paths. center (N, 2) px and scale (N,) = dilated square side / 200, as
    inference computes them from a box. j2d (N, 21, 2) px, NaN = unlabelled. full_pose (N, 48), betas
    (N, 10), j3d (N, 21, 3) metres or NaN rows where the manifest had none (``has_j3d`` False).
    img_center (N, 2), img_focal (N,) px (filled by the stated rule when absent). handedness 0 left, 1 right.
    """

    path: Path
    img_path: list[str]
    sequence_id: np.ndarray
    frame_id: np.ndarray
    handedness: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    j2d: np.ndarray
    full_pose: np.ndarray
    betas: np.ndarray
    j3d: np.ndarray
    has_j3d: np.ndarray
    img_center: np.ndarray
    img_focal: np.ndarray
    notes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.img_path)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The samples of a manifest file as a list of dicts (values as read, not yet checked).

    Raises:
        HaworInputError naming the file when it is missing, unreadable, holds code or has no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise HaworInputError(f"manifest {path}: not found; pass the JSON or NPZ annotations file.")
    if path.suffix.lower() == ".json":
        records = _read_json(path)
    elif path.suffix.lower() == ".npz":
        records = _read_npz(path)
    else:
        raise HaworInputError(f"manifest {path}: unknown format '{path.suffix}'; use .json or .npz.")
    if len(records) == 0:
        raise HaworInputError(f"manifest {path}: holds no samples; it must list at least one window of frames.")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise HaworInputError(f"manifest {path}: sample {index}: expected a dict of fields, "
                                  f"found {type(record).__name__}.")
    return [dict(r) for r in records]


def _read_json(path: Path) -> list:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HaworInputError(f"manifest {path}: not valid JSON ({exc}).") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("samples"), list):
        raise HaworInputError(f"manifest {path}: expected {{\"samples\": [...]}} at the top level.")
    return data["samples"]


def _read_npz(path: Path) -> list:
    try:
        with zipfile.ZipFile(path) as archive:
            keys = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
        if "samples" in keys:
            samples = load_npz_objects(path, "samples", MANIFEST_GLOBALS)
            return list(samples.reshape(-1))
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except RefusedGlobal as exc:
        raise HaworInputError(f"manifest {path}: field 'samples': {exc}. A manifest may hold dicts, lists, "
                              "strings, numbers and numpy arrays only; this file was not loaded.") from exc
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise HaworInputError(f"manifest {path}: holds object arrays other than 'samples'; store each field "
                                  "as a plain array or all samples as one object array 'samples'.") from exc
        raise HaworInputError(f"manifest {path}: damaged NPZ ({exc}).") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, pickle.UnpicklingError) as exc:
        raise HaworInputError(f"manifest {path}: not a readable NPZ ({type(exc).__name__}: {exc}).") from exc
    return _unstack(path, arrays)


def _unstack(path: Path, arrays: dict[str, np.ndarray]) -> list[dict]:
    lengths = {key: (len(a) if a.ndim else None) for key, a in arrays.items()}
    if not lengths or any(n is None for n in lengths.values()):
        raise HaworInputError(f"manifest {path}: a stacked NPZ needs one array per field with the samples along "
                              f"the first axis; found {sorted(arrays)}.")
    if len(set(lengths.values())) > 1:
        raise HaworInputError(f"manifest {path}: fields have different sample counts {lengths}; every field "
                              "needs one row per sample.")
    count = next(iter(lengths.values()))
    return [{key: a[i] for key, a in arrays.items()} for i in range(count)]


def load_manifest(path: str | Path, image_root: str | Path | None = None) -> Manifest:
    """Read and check every sample of a manifest (see the module docstring for the rules).

    Raises:
        HaworInputError "manifest M: sample I: field F: what is wrong, how to fix it".
    """
    path = Path(path)
    records = read_records(path)
    root = Path(image_root) if image_root is not None else path.parent
    rows = [_check_sample(path, i, r, root) for i, r in enumerate(records)]
    _fill_intrinsics(path, rows)
    j2d = np.stack([r["gt_cam_j2d"] for r in rows])
    notes = {"samples": len(rows), "unlabelled 2D joints (NaN)": int(np.isnan(j2d[..., 0]).sum()),
             "samples without gt_j3d_wo_trans": int(sum(r["gt_j3d_wo_trans"] is None for r in rows))}
    return Manifest(
        path=path,
        img_path=[r["img_path"] for r in rows],
        sequence_id=np.array([r["sequence_id"] for r in rows], dtype=str),
        frame_id=np.array([r["frame_id"] for r in rows], np.int64),
        handedness=np.array([r["handedness"] for r in rows], np.int64),
        center=np.stack([r["center"] for r in rows]),
        scale=np.array([r["scale"] for r in rows]),
        j2d=j2d,
        full_pose=np.stack([r["gt_cam_full_pose"] for r in rows]),
        betas=np.stack([r["gt_cam_betas"] for r in rows]),
        j3d=np.stack([r["gt_j3d_wo_trans"] if r["gt_j3d_wo_trans"] is not None else np.full((NUM_JOINTS, 3), np.nan)
                      for r in rows]),
        has_j3d=np.array([r["gt_j3d_wo_trans"] is not None for r in rows]),
        img_center=np.stack([r["img_center"] for r in rows]),
        img_focal=np.array([r["img_focal"] for r in rows]),
        notes=notes,
    )


def _where(path: Path, index: int, name: str) -> str:
    return f"manifest {path}: sample {index}: field '{name}'"


def _array(path, index, record, name, allow_nan=False) -> np.ndarray | None:
    if name not in record or record[name] is None:
        return None
    try:
        value = np.asarray(record[name], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HaworInputError(f"{_where(path, index, name)}: not numeric ({exc}).") from exc
    shape = _SHAPES[name]
    if value.shape != shape and not (shape == () and value.shape == (1,)):
        raise HaworInputError(f"{_where(path, index, name)}: shape {value.shape}, expected {shape}.")
    value = value.reshape(shape)
    if allow_nan and np.isnan(value).all():
        raise HaworInputError(f"{_where(path, index, name)}: every value is NaN (nothing labelled); drop the sample.")
    if (np.isinf(value) if allow_nan else ~np.isfinite(value)).any():
        raise HaworInputError(f"{_where(path, index, name)}: holds NaN or infinite values; fix or drop the sample.")
    return value


def _text(path, index, record, name) -> str:
    value = record[name]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, (str, int, np.integer)) or str(value) == "":
        raise HaworInputError(f"{_where(path, index, name)}: expected a non-empty string, found {value!r}.")
    return str(value)


def _check_sample(path: Path, index: int, record: Mapping, root: Path) -> dict:
    for name in REQUIRED:
        if name not in record or record[name] is None:
            raise HaworInputError(f"{_where(path, index, name)}: missing; every sample needs {', '.join(REQUIRED)} "
                                  "and a bbox or center + scale.")
    image = Path(_text(path, index, record, "img_path"))
    image = image if image.is_absolute() else root / image
    if not image.is_file():
        raise HaworInputError(f"{_where(path, index, 'img_path')}: image {image} not found; relative paths are "
                              f"taken from --image-root ({root}).")
    out = {"img_path": str(image), "sequence_id": _text(path, index, record, "sequence_id"),
           "frame_id": _frame_id(path, index, record["frame_id"]), "handedness": _handedness(path, index, record)}
    out["gt_cam_j2d"] = _array(path, index, record, "gt_cam_j2d", allow_nan=True)
    for name in ("gt_cam_full_pose", "gt_cam_betas", "gt_j3d_wo_trans", "img_center", "img_focal"):
        out[name] = _array(path, index, record, name)
    out["center"], out["scale"] = _box(path, index, record)
    if out["img_focal"] is not None and not out["img_focal"] > 0:
        raise HaworInputError(f"{_where(path, index, 'img_focal')}: {float(out['img_focal'])} must be positive pixels.")
    return out


def _frame_id(path, index, value) -> int:
    frame = np.asarray(value).reshape(-1)
    if frame.size != 1 or frame.dtype.kind not in "iuf" or not float(frame[0]).is_integer():
        raise HaworInputError(f"{_where(path, index, 'frame_id')}: expected one integer, found {value!r}.")
    return int(frame[0])


def _handedness(path, index, record) -> int:
    value = record.get("handedness", 1)
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value
    if isinstance(value, bytes):
        value = value.decode()
    named = {"left": 0, "right": 1}
    if isinstance(value, str) and value.lower() in named:
        return named[value.lower()]
    if isinstance(value, (int, float, np.integer, np.floating, bool)) and float(value) in (0.0, 1.0):
        return int(value)
    raise HaworInputError(f"{_where(path, index, 'handedness')}: {value!r}; use 0/'left' or 1/'right'.")


def _box(path, index, record) -> tuple[np.ndarray, float]:
    """Crop centre and scale exactly as inference derives them from a box."""
    bbox = _array(path, index, record, "bbox")
    if bbox is not None:
        wh = bbox[2:] - bbox[:2]
        if (wh <= 0).any():
            raise HaworInputError(f"{_where(path, index, 'bbox')}: {bbox.tolist()} is empty; "
                                  "expected x1 < x2, y1 < y2.")
        return bbox[:2] + wh / 2, BOX_DILATION * float(wh.max()) / BOX_SCALE_UNIT
    center, scale = _array(path, index, record, "center"), _array(path, index, record, "scale")
    if center is None or scale is None:
        name = "bbox" if center is None and scale is None else ("center" if center is None else "scale")
        raise HaworInputError(f"{_where(path, index, name)}: missing; give bbox (x1, y1, x2, y2) or center and "
                              "scale (box side / 200).")
    if not scale > 0:
        raise HaworInputError(f"{_where(path, index, 'scale')}: {float(scale)} must be positive.")
    return center, float(scale)


def _fill_intrinsics(path: Path, rows: list[dict]) -> None:
    """Principal point at the image centre and :func:`estimate_focal` where a sample gives none."""
    sizes: dict[str, tuple[int, int]] = {}
    for index, row in enumerate(rows):
        if row["img_center"] is not None and row["img_focal"] is not None:
            continue
        image = row["img_path"]
        if image not in sizes:
            sizes[image] = _image_size(path, index, image)
        width, height = sizes[image]
        if row["img_center"] is None:
            row["img_center"] = np.array([width / 2, height / 2])
        if row["img_focal"] is None:
            row["img_focal"] = np.float64(estimate_focal(width, height))


def _image_size(path: Path, index: int, image: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise HaworInputError(f"{_where(path, index, 'img_path')}: {image} is not a readable image ({exc}).") from exc
