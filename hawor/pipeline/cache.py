"""Stage cache under ``<result>/cache/``: a rerun with the same input and settings reuses a stage.

Each stage stores one ``<stage>.npz`` holding its arrays plus ``__key__``, a hash of the input
video's identity, the stage's settings and the keys of the stages it depends on. A changed
setting, weight file or upstream result therefore invalidates exactly the stages downstream of it.
Files are written atomically, so a crash never leaves a cache entry that a rerun would trust.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from hawor import __version__

from hawor.io.files import save_npz_atomic

KEY = "__key__"
META = "__meta__"
_HEAD_BYTES = 1 << 20


def file_identity(path: str | os.PathLike | None) -> dict | None:
    """Size and a hash of the first and last MiB of a file (cheap, robust to renames and touches)."""
    if path is None or not Path(path).is_file():
        return None
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(_HEAD_BYTES))
        if size > 2 * _HEAD_BYTES:
            f.seek(-_HEAD_BYTES, os.SEEK_END)
            digest.update(f.read(_HEAD_BYTES))
    return {"size": size, "sha256_head_tail": digest.hexdigest()}


def stage_key(*parts) -> str:
    """A short stable hash of JSON-serialisable parts (and the package version, so an upgrade recomputes)."""
    text = json.dumps([__version__, parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class StageCache:
    """Read/write stage results in ``folder`` (created on first write)."""

    def __init__(self, folder: str | os.PathLike, force: bool = False):
        self.folder = Path(folder)
        self.force = force

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.npz"

    def load(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """(arrays, meta) when a complete entry with this key exists and ``force`` is off."""
        path = self.path(stage)
        if self.force or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if KEY not in data or str(data[KEY]) != key:
                    return None
                arrays = {k: data[k] for k in data.files if k not in (KEY, META)}
                meta = json.loads(str(data[META])) if META in data else {}
        except (OSError, ValueError, EOFError):  # unreadable entry: recompute
            return None
        return arrays, meta

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        save_npz_atomic(self.path(stage), **arrays, **{KEY: np.str_(key), META: np.str_(json.dumps(meta or {}, default=str))})
