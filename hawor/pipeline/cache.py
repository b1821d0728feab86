"""Stage cache under ``<result>/cache/``: a rerun with the same input and settings reuses a stage.

Each stage stores one ``<stage>.npz`` holding its arrays plus ``__key__``, a hash of the input
video's identity (its whole content), the stage's settings, the package's code and the keys of the
stages it depends on. A changed setting, weight file or upstream result therefore invalidates exactly the stages
downstream of it. Files are written atomically, so a crash never leaves a cache entry that a rerun
would trust, and each entry carries a checksum of its content: an entry that is damaged or was
edited is reported, discarded and recomputed.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from hawor import __version__

from hawor.io.files import save_npz_atomic

KEY = "__key__"
META = "__meta__"
CHECKSUM = "__checksum__"
_CHUNK = 8 << 20


def file_identity(path: str | os.PathLike | None) -> dict | None:
    """Size and SHA-256 of a file's whole content (None when there is no file).

    The whole file, because a video edited in place past any sampled region must not reuse a stage;
    hashing runs at disk speed (docs/performance.md has the cost on a 1 GB file).
    """
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return {"size": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the package's own source: a changed stage must not be served from an older cache,
    even when the version number was not bumped."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stage_key(*parts) -> str:
    """A short stable hash of JSON-serialisable parts, the package version and its code (so an
    upgrade or a code change recomputes)."""
    text = json.dumps([__version__, code_fingerprint(), parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class StageCache:
    """Read/write stage results in ``folder`` (created on first write)."""

    def __init__(self, folder: str | os.PathLike, force: bool = False):
        self.folder = Path(folder)
        self.force = force
        self.discarded: list[str] = []

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.npz"

    def load(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """(arrays, meta) when an intact entry with this key exists and ``force`` is off.

        A damaged or edited entry is discarded with a warning (also kept in ``discarded``).
        """
        path = self.path(stage)
        if self.force or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if KEY not in data or str(data[KEY]) != key:
                    return None
                arrays = {k: data[k] for k in data.files if k != CHECKSUM}
                stored = str(data[CHECKSUM]) if CHECKSUM in data else ""
        except Exception as exc:  # zipfile, zlib and numpy raise many types for a damaged file
            return self._discard(path, f"cannot be read ({type(exc).__name__}: {exc})")
        if stored != _checksum(arrays):
            return self._discard(path, "does not match its checksum (damaged or edited)")
        meta = json.loads(str(arrays.pop(META))) if META in arrays else {}
        arrays.pop(KEY)
        return arrays, meta

    def _discard(self, path: Path, why: str) -> None:
        message = f"cache entry {path} {why}; discarded and recomputed"
        warnings.warn(message, stacklevel=3)
        self.discarded.append(message)
        path.unlink(missing_ok=True)
        return None

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        entry = {**arrays, KEY: np.str_(key), META: np.str_(json.dumps(meta or {}, default=str))}
        save_npz_atomic(self.path(stage), **entry, **{CHECKSUM: np.str_(_checksum(entry))})
