"""Process-wide offline defaults, set before any third-party library can reach for the network.

ultralytics checks connectivity, pip-installs missing packages and fetches a font at run time;
huggingface_hub retries downloads for ~46 s. None of that may happen here, so every entry point
imports :mod:`hawor` (which calls :func:`apply`) before those libraries.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The project's cache folder (``$HAWOR_CACHE`` or ``~/.cache/hawor``)."""
    return Path(os.environ.get("HAWOR_CACHE", Path.home() / ".cache" / "hawor"))


def _place_local_font(config_dir: Path) -> None:
    # ultralytics downloads Arial.ttf unless a file of that name is in its config dir;
    # any TTF works, and matplotlib (an ultralytics dependency) ships DejaVuSans.
    target = config_dir / "Ultralytics" / "Arial.ttf"
    if target.exists():
        return
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return
    source = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


def apply() -> None:
    """Set the offline environment defaults (user-set values win)."""
    yolo_dir = cache_dir() / "ultralytics"
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(yolo_dir))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        _place_local_font(Path(os.environ["YOLO_CONFIG_DIR"]))
    except OSError:
        pass  # a read-only home only costs ultralytics a failed font lookup
