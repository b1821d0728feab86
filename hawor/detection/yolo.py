"""YOLO hand detector (WiLoR's weights/external/detector.pt) with a stock ultralytics tracker.

As the official ``detect_track``: classes 0 = left, 1 = right; confidence 0.2; per frame only
the first (most confident) box of each side is kept; a track id is the tracker's id, or a fixed
id per side when the tracker gives none. Tracks are merged into sides by
:func:`hawor.detection.tracks.merge_tracks`.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

import hawor  # noqa: F401  (offline ultralytics settings before it is imported)
from hawor.detection.frames import iter_rgb_frames
from hawor.detection.tracks import Detection, HandTrack, merge_tracks
from hawor.errors import HaworInputError
from hawor.io.safe_pickle import NUMPY_GLOBALS, RefusedGlobal, any_policy, names_policy, torch_pickle_module

# Track ids the official code gives boxes the tracker returned no id for.
UNTRACKED_ID = {0: 5000, 1: 10000}


# What an ultralytics detection checkpoint pickles besides tensors: its network (nn.Module classes of
# ultralytics and torch, rebuilt from their attributes, never called while unpickling) and the plain
# values of its training record.
_DETECTOR_MODULE_PREFIXES = ("ultralytics.nn.", "torch.nn.modules.")
_DETECTOR_EXTRA = NUMPY_GLOBALS | {
    "builtins.set", "builtins.frozenset", "builtins.list", "builtins.dict", "builtins.tuple", "builtins.slice",
    "collections.OrderedDict", "collections.defaultdict", "types.SimpleNamespace",
    "ultralytics.utils.IterableSimpleNamespace", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.Path",
}


def _module_class(module: str, name: str):
    if not module.startswith(_DETECTOR_MODULE_PREFIXES):
        return None
    import importlib

    import torch

    found = getattr(importlib.import_module(module), name, None)
    return found if isinstance(found, type) and issubclass(found, torch.nn.Module) else None


@functools.lru_cache(maxsize=None)
def _detector_pickle_module():
    from torch._weights_only_unpickler import _get_allowed_globals

    torch_globals = dict(_get_allowed_globals())
    return torch_pickle_module(any_policy(lambda module, name: torch_globals.get(f"{module}.{name}"),
                                          names_policy(_DETECTOR_EXTRA), _module_class))


def check_detector_file(weights: str | Path) -> dict[int, str]:
    """Read ``weights`` with a restricted unpickler before ultralytics (which unpickles fully) may.

    Admits only what an ultralytics detection checkpoint holds: tensors, plain values and network
    layers of ultralytics and torch, by name. Returns the class names {index: name}.

    Raises:
        HaworInputError naming the file: missing, empty or truncated, holding code, or not a detector.
    """
    import torch

    weights = Path(weights)
    if not weights.is_file():
        raise HaworInputError(f"hand detector weights {weights}: not found. Fix: put WiLoR's detector.pt "
                              "there, or use the embedded detector (--detector embedded).")
    try:
        checkpoint = torch.load(weights, map_location="cpu", weights_only=False,
                                pickle_module=_detector_pickle_module())
    except RefusedGlobal as exc:
        raise HaworInputError(f"hand detector weights {weights}: {exc}. It was not loaded; use WiLoR's "
                              "detector.pt from a source you trust, or --detector embedded.") from exc
    except Exception as exc:  # torch raises many types for damaged files
        raise HaworInputError(f"hand detector weights {weights}: cannot be read ({type(exc).__name__}: {exc}); "
                              "it is empty, truncated or not an ultralytics checkpoint. Download it again, "
                              "or use --detector embedded.") from exc
    model = (checkpoint.get("ema") or checkpoint.get("model")) if isinstance(checkpoint, dict) else None
    names = getattr(model, "names", None)
    if not isinstance(model, torch.nn.Module) or not isinstance(names, (dict, list)):
        raise HaworInputError(f"hand detector weights {weights}: not an ultralytics detection checkpoint (no "
                              "network with class names). Use WiLoR's detector.pt, or --detector embedded.")
    return dict(enumerate(names)) if isinstance(names, list) else {int(k): str(v) for k, v in names.items()}


def load_yolo(weights: str | Path):
    """Load an ultralytics YOLO checkpoint whose classes are 0 = left hand, 1 = right hand.

    The file is checked by :func:`check_detector_file` first: ultralytics itself would run any
    code the file carries.
    """
    names = check_detector_file(weights)
    if len(names) != 2:
        raise HaworInputError(f"hand detector weights {weights}: {len(names)} classes; a hand detector "
                              "has 2 (0 left, 1 right). Use WiLoR's detector.pt, or --detector embedded.")
    from ultralytics import YOLO

    return YOLO(str(weights))


def track_hands_yolo(frames, weights: str | Path | None = None, model=None, conf: float = 0.2,
                     tracker: str = "botsort.yaml", device: str | None = None,
                     fix_swaps: bool = True) -> tuple[dict[str, HandTrack], list[str]]:
    """Detect and track hands with YOLO over frames.

    Args:
        frames: iterable of RGB uint8 (H, W, 3) frames (grayscale and RGBA are converted).
        weights: path of detector.pt (or pass a loaded ``model``).
        conf: detection confidence threshold (official 0.2).
        tracker: an ultralytics tracker config ("botsort.yaml", the official default, or "bytetrack.yaml").
    Returns:
        ({"left": HandTrack, "right": HandTrack} without keypoints, notes).
    """
    model = model if model is not None else load_yolo(weights)
    detections = []
    for index, rgb in iter_rgb_frames(frames):
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        # the first call starts fresh trackers, later calls keep them
        result = model.track(bgr, conf=conf, persist=index > 0, tracker=tracker, verbose=False,
                             device=device)[0]
        detections.extend(_first_box_per_side(result, index))
    return merge_tracks(detections, fix_swaps=fix_swaps)


def _first_box_per_side(result, frame: int) -> list[Detection]:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float64)
    scores = boxes.conf.cpu().numpy().astype(np.float64)
    classes = boxes.cls.cpu().numpy().astype(int)
    ids = boxes.id.cpu().numpy().astype(int) if boxes.id is not None else None
    out, seen = [], set()
    for i in range(len(xyxy)):
        side = int(classes[i] > 0)
        if side in seen:
            continue
        seen.add(side)
        track_id = int(ids[i]) if ids is not None else UNTRACKED_ID[side]
        out.append(Detection(track_id=track_id, frame=frame, box=xyxy[i], score=float(scores[i]), right=float(side)))
    return out
