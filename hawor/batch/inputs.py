"""What a batch runs on: video files, folders, globs and manifests expanded into :class:`BatchItem` s.

Manifests (chosen by extension): ``.csv``, ``.parquet``, ``.jsonl`` / ``.ndjson`` (one JSON object per
line). Columns: ``video`` (required; relative paths are relative to the manifest's folder),
``episode_id``, ``img_focal`` (pixels), ``start`` / ``end`` (frames, end exclusive) or ``start_s`` /
``end_s`` (seconds); other columns are ignored. Empty cells mean "not given".
"""
from __future__ import annotations

import csv
import glob
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hawor.errors import HaworInputError

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
MANIFEST_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")
NUMBER_COLUMNS = {"img_focal": float, "start": int, "end": int, "start_s": float, "end_s": float}
# ids name files and folders, and Parquet readers skip names starting with "." or "_"
EPISODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class BatchItem:
    """One video of a batch and its per-video settings (None: the batch's setting)."""

    video: Path
    episode_id: str
    img_focal: float | None = None
    start: int | None = None
    end: int | None = None
    start_s: float | None = None
    end_s: float | None = None

    def overrides(self) -> dict:
        """The per-video settings that were given, by their RunOptions / manifest names."""
        return {k: v for k, v in (("img_focal", self.img_focal), ("start", self.start), ("end", self.end),
                                  ("start_s", self.start_s), ("end_s", self.end_s)) if v is not None}


def expand_inputs(inputs: list[str], exclude: Path | None = None) -> list[BatchItem]:
    """Every video named by ``inputs`` (files, folders searched recursively, globs, manifests), in the
    order given, each once; ``exclude``: a folder whose files are never inputs (the batch's output)."""
    rows: list[dict] = []
    for text in inputs:
        rows += _expand_one(text)
    exclude = exclude.resolve() if exclude is not None else None
    seen, unique = set(), []
    for row in rows:
        path = row["video"].resolve()
        if path in seen or (exclude is not None and exclude in path.parents):
            continue
        seen.add(path)
        unique.append(row)
    if not unique:
        raise HaworInputError(f"inputs {inputs}: no videos found (looked for {', '.join(VIDEO_SUFFIXES)} files).")
    return _with_ids(unique)


def _expand_one(text: str) -> list[dict]:
    path = Path(text)
    if any(ch in text for ch in "*?["):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise HaworInputError(f"input '{text}': the pattern matches no file.")
        return [row for m in matches for row in _expand_path(Path(m), from_glob=True)]
    if not path.exists():
        raise HaworInputError(f"input {path}: no such file or folder. Pass video files, folders, globs "
                              f"or a manifest ({', '.join(MANIFEST_SUFFIXES)}).")
    return _expand_path(path, from_glob=False)


def _expand_path(path: Path, from_glob: bool) -> list[dict]:
    if path.is_dir():
        return [{"video": p} for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    suffix = path.suffix.lower()
    if suffix in MANIFEST_SUFFIXES:
        return read_manifest(path)
    if suffix in VIDEO_SUFFIXES or not from_glob:
        return [{"video": path}]  # a named file is taken as a video whatever its suffix; decoding will tell
    return []


def read_manifest(path: Path) -> list[dict]:
    """Rows of a manifest as dicts with ``video`` (a Path) and the optional columns that are set."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with open(path, newline="") as f:
                records = list(csv.DictReader(f))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            records = pq.read_table(path).to_pylist()
        else:
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise HaworInputError(f"manifest {path}: cannot be read ({exc}).") from exc
    rows = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict) or not record.get("video"):
            raise HaworInputError(f"manifest {path}, row {number}: has no 'video' (the video file's path).")
        video = Path(str(record["video"]))
        row = {"video": video if video.is_absolute() else path.parent / video}
        if record.get("episode_id") not in (None, ""):
            row["episode_id"] = str(record["episode_id"])
        for column, kind in NUMBER_COLUMNS.items():
            row.update(_number(record.get(column), column, kind, path, number))
        rows.append(row)
    return rows


def _number(value, column: str, kind, path: Path, row: int) -> dict:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return {}
    try:
        number = kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
    except (TypeError, ValueError):
        raise HaworInputError(f"manifest {path}, row {row}: {column}={value!r} is not a "
                              f"{'whole number' if kind is int else 'number'}.") from None
    if column == "img_focal" and not number > 0:
        raise HaworInputError(f"manifest {path}, row {row}: img_focal={value!r} must be positive (pixels).")
    if number < 0:
        raise HaworInputError(f"manifest {path}, row {row}: {column}={value!r} must not be negative.")
    return {column: number}


def _derived_id(video: Path, depth: int) -> str:
    folders = video.resolve().parent.parts
    name = "-".join([*(folders[len(folders) - depth:] if depth else ()), video.name.split(".")[0]])
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-") or "video"


def _with_ids(rows: list[dict]) -> list[BatchItem]:
    """Items with unique episode ids: the manifest's, else the file name up to its first dot, made
    unique with the names of the folders above it when two videos share a name."""
    given = Counter(row["episode_id"] for row in rows if "episode_id" in row)
    repeated = sorted(i for i, n in given.items() if n > 1)
    if repeated:
        raise HaworInputError(f"episode_id {repeated}: given to more than one video; ids must be unique.")
    names = [row.get("episode_id") or _derived_id(row["video"], 0) for row in rows]
    for depth in range(1, 64):
        counts = Counter(names)
        clashing = [k for k, row in enumerate(rows) if counts[names[k]] > 1 and "episode_id" not in row]
        if not clashing:
            break
        for k in clashing:
            names[k] = _derived_id(rows[k]["video"], depth)
    counts = Counter(names)
    clashes = sorted(n for n, c in counts.items() if c > 1)
    if clashes:
        raise HaworInputError(f"episode_id {clashes}: more than one video gets this id; give ids in a manifest.")
    items = []
    for row, name in zip(rows, names):
        if not EPISODE_ID.fullmatch(name):
            raise HaworInputError(f"episode_id '{name}' ({row['video']}): use letters, digits, '.', '_' "
                                  "and '-' only, starting with a letter or digit.")
        settings = {k: v for k, v in row.items() if k not in ("video", "episode_id")}
        items.append(BatchItem(row["video"], name, **settings))
    return items
