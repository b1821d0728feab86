"""The embedded hand models: MediaPipe's palm detector and 21-landmark model (Apache-2.0).

They ship inside the ``mediapipe==0.10.21`` wheel (later releases dropped them). The set-up
(``python -m hawor.assets`` -> :func:`ensure_landmark_models`) downloads that wheel once with
``pip download --no-deps`` into the cache and extracts the four ``.tflite`` files into
``_DATA/landmarks/``; run time only ever reads them (:func:`find_landmark_models`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from hawor._offline import cache_dir
from hawor.errors import HaworInputError
from hawor.weights import project_root

MEDIAPIPE_REQUIREMENT = "mediapipe==0.10.21"

# name -> (path inside the wheel, sha256). The files are identical in every platform's wheel.
LANDMARK_MODEL_FILES = {
    "palm_full": ("mediapipe/modules/palm_detection/palm_detection_full.tflite",
                  "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"),
    "palm_lite": ("mediapipe/modules/palm_detection/palm_detection_lite.tflite",
                  "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18"),
    "landmark_full": ("mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                      "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
    "landmark_lite": ("mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
                      "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6"),
}

# When this interpreter has no mediapipe 0.10.21 wheel (e.g. a newer Python), any platform's wheel
# carries the same model files; this one exists on PyPI.
_FALLBACK_WHEEL_TAGS = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                        "--implementation", "cp", "--abi", "cp311"]


def default_landmark_dir() -> Path:
    """``<project root>/_DATA/landmarks`` (``$HAWOR_ROOT`` overrides the root)."""
    return project_root() / "_DATA" / "landmarks"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_landmark_models(dest: str | Path | None = None) -> dict[str, str]:
    """Status of each model file: "ok", "missing" or "corrupt" (sha256 mismatch). For ``doctor``."""
    dest = Path(dest) if dest is not None else default_landmark_dir()
    status = {}
    for name, (member, sha) in LANDMARK_MODEL_FILES.items():
        path = dest / Path(member).name
        if not path.is_file():
            status[name] = "missing"
        else:
            status[name] = "ok" if _sha256(path) == sha else "corrupt"
    return status


def find_landmark_models(dest: str | Path | None = None) -> dict[str, Path] | None:
    """Paths of the four model files if all are present (size check only: cheap), else None."""
    dest = Path(dest) if dest is not None else default_landmark_dir()
    paths = {name: dest / Path(member).name for name, (member, _) in LANDMARK_MODEL_FILES.items()}
    return paths if all(p.is_file() and p.stat().st_size > 0 for p in paths.values()) else None


def _download_wheel(wheel_dir: Path) -> Path:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(wheel_dir.glob("mediapipe-0.10.21-*.whl"))
    if found:
        return found[0]
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-d", str(wheel_dir), MEDIAPIPE_REQUIREMENT]
    errors = []
    for extra in ([], _FALLBACK_WHEEL_TAGS):
        run = subprocess.run(base + extra, capture_output=True, text=True)
        found = sorted(wheel_dir.glob("mediapipe-0.10.21-*.whl"))
        if run.returncode == 0 and found:
            return found[0]
        errors.append(run.stderr.strip().splitlines()[-1:] or ["(no output)"])
    raise HaworInputError(
        f"could not download {MEDIAPIPE_REQUIREMENT} (it carries the embedded hand models) into "
        f"{wheel_dir}: {errors}. Fix: connect to PyPI and re-run `python -m hawor.assets`, or put "
        f"the wheel into {wheel_dir} by hand.")


def ensure_landmark_models(dest: str | Path | None = None,
                           wheel_cache: str | Path | None = None) -> dict[str, Path]:
    """Make sure the four ``.tflite`` files are in ``dest``; download and extract them if not.

    Args:
        dest: target folder, default :func:`default_landmark_dir`.
        wheel_cache: where the mediapipe wheel is kept, default ``<hawor cache>/wheels``.
    Returns:
        {"palm_full", "palm_lite", "landmark_full", "landmark_lite"} -> path.
    Raises:
        HaworInputError when the wheel cannot be obtained or its files do not match the hashes.
    """
    dest = Path(dest) if dest is not None else default_landmark_dir()
    status = check_landmark_models(dest)
    paths = {name: dest / Path(member).name for name, (member, _) in LANDMARK_MODEL_FILES.items()}
    if all(s == "ok" for s in status.values()):
        return paths
    wheel_dir = Path(wheel_cache) if wheel_cache is not None else cache_dir() / "wheels"
    wheel = _download_wheel(wheel_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, (member, sha) in LANDMARK_MODEL_FILES.items():
            if status[name] == "ok":
                continue
            tmp = paths[name].with_name(paths[name].name + ".tmp")
            tmp.write_bytes(archive.read(member))
            if _sha256(tmp) != sha:
                tmp.unlink()
                raise HaworInputError(
                    f"{wheel}: {member} does not have the expected sha256 {sha}. Fix: delete the "
                    f"wheel and re-run `python -m hawor.assets`.")
            os.replace(tmp, paths[name])
    return paths


def main() -> int:
    for name, path in ensure_landmark_models().items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
