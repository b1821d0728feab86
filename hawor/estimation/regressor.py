"""Camera-space hands from the HaWoR regressor: one hand track in, per-frame MANO parameters out.

Same function as the official per-chunk inference (HaWoR's demo): the track is split into
runs of consecutive frames, each run into 16-frame windows, a short last window is padded by repeating
its last crop, left hands are regressed in the mirrored image and their rotations mirrored back.
Deliberate changes, all optional or output-neutral:

* many windows per forward (``batch_windows``) instead of one;
* every crop is computed once and dropped as soon as no later window needs it;
* ``overlap`` > 0 runs windows that share frames and blends them (triangular weights; rotations
  averaged and projected back onto SO(3)) to remove jumps at window borders;
* the device is chosen automatically (CUDA when available) and ``precision`` "bf16"/"fp16" runs
  the network under autocast;
* boxes that are NaN, empty, far too large or wholly outside the image are skipped with a warning
  (the official code would crash or regress from a black crop).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import roma
import torch

from hawor.configs import find_model_config, load_model_config
from hawor.detection.tracks import HandTrack
from hawor.errors import HaworInputError
from hawor.estimation.crop import crop_hand, mirror_center, normalize_crop
from hawor.estimation.result import CameraSpaceHand
from hawor.geometry import Intrinsics, box_to_center_scale, matrix_to_axis_angle, mirror_matrix
from hawor.models.checkpoint import (
    CheckpointMismatchError,
    extract_state_dict,
    load_checkpoint,
    load_state_dict_strict,
    strip_prefixes,
)
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor
from hawor.runs import consecutive_runs

log = logging.getLogger(__name__)

BOX_DILATION = 1.2
# Boxes whose side exceeds this multiple of the image's longer side are detector garbage, not hands.
MAX_BOX_TO_IMAGE = 4.0
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# Shapes of the MANO buffers a hawor.ckpt may carry (right-hand smplx MANOLayer); checked, never used.
MANO_BUFFER_SHAPES = {
    "mano.shapedirs": (778, 3, 10), "mano.v_template": (778, 3), "mano.J_regressor": (16, 778),
    "mano.posedirs": (135, 2334), "mano.parents": (16,), "mano.lbs_weights": (778, 16),
    "mano.faces_tensor": (1538, 3), "mano.hand_mean": (45,), "mano.pose_mean": (48,),
    "mano.extra_joints_idxs": (5,), "mano.joint_map": (21,), "mano.vertex_joint_selector.extra_joints_idxs": (5,),
    "mano.hand_components": (6, 45),
}


def load_regressor(checkpoint: str | Path, model_config: str | Path | None = None,
                   base_config: HaworConfig | None = None, mmap: bool = False) -> HaworRegressor:
    """The regressor with the weights of ``checkpoint`` (e.g. weights/hawor/checkpoints/hawor.ckpt).

    The sizes come from ``model_config`` or, as in the official code, ``<ckpt dir>/../model_config.yaml``,
    applied over ``base_config`` (default: the released sizes, which the official code hard-codes;
    ``MODEL.ARCH: tiny`` selects :meth:`HaworConfig.tiny`, the tests' tiny official-layout files).
    Loading is strict over every key except the ``mano.*`` buffers, whose shapes are checked.
    ``mmap``: map the tensors from the file instead of reading them (checks of the multi-GB file).

    Raises:
        HaworInputError (CheckpointMismatchError) naming the file and the first mismatched keys/shapes.
    """
    checkpoint = Path(checkpoint)
    config_path = Path(model_config) if model_config is not None else find_model_config(checkpoint)
    model_cfg = load_model_config(config_path)
    try:
        cfg = HaworConfig.from_model_config(model_cfg, base=base_config)
    except ValueError as exc:  # HaworInputError included
        raise HaworInputError(f"regressor config {config_path}: {exc}") from exc
    state = strip_prefixes(extract_state_dict(load_checkpoint(checkpoint, mmap=mmap), source=str(checkpoint)))
    _check_mano_buffers(state, source=str(checkpoint))
    state = {k: v for k, v in state.items() if not k.startswith("mano.")}
    # Built on the meta device and the checked tensors adopted (assign) instead of copied: no second 2.8 GB.
    with torch.device("meta"):
        model = HaworRegressor(cfg)
    load_state_dict_strict(model, state, source=f"{checkpoint} (config {config_path})", assign=True)
    return model.float().eval()


def _check_mano_buffers(state: dict, source: str) -> None:
    wrong = [f"{k}: file {tuple(v.shape)} vs MANO {MANO_BUFFER_SHAPES[k]}" for k, v in state.items()
             if k in MANO_BUFFER_SHAPES and tuple(v.shape) != MANO_BUFFER_SHAPES[k]]
    if wrong:
        raise CheckpointMismatchError(f"{source}: its mano.* buffers do not have MANO's shapes — "
                                      f"{'; '.join(wrong[:5])}. Is it the right file?")


@dataclass
class RegressorPrediction:
    """Regressor output for one track; rows follow ``hand.frame_indices``.

    Attributes:
        hand: camera-space MANO parameters (left hands already in left-MANO convention).
        rotmats: (M, 16, 3, 3) root + 15 finger rotations of ``hand`` as matrices.
        pred_cam: (M, 3) weak-perspective crop camera (s, tx, ty), original (un-mirrored) image.
        skipped_frames: frame indices of the track whose boxes were unusable.
    """

    hand: CameraSpaceHand
    rotmats: np.ndarray
    pred_cam: np.ndarray
    skipped_frames: np.ndarray


def _frame_reader(frames) -> Callable[[int], np.ndarray]:
    if callable(frames):
        return frames
    if hasattr(frames, "__getitem__"):
        return frames.__getitem__
    if hasattr(frames, "read"):
        return lambda index: frames.read([index])[0]
    raise HaworInputError(f"frames: expected a callable index -> RGB frame or an indexable sequence, "
                          f"got {type(frames).__name__}.")


def plan_windows(length: int, window: int, overlap: int) -> list[np.ndarray]:
    """Windows over a run of ``length`` frames, as (window,) arrays of positions in the run.

    ``overlap`` 0: consecutive windows, the last one padded by repeating the run's last frame (official).
    ``overlap`` > 0: windows start every ``window - overlap`` frames and the last one ends on the run's end;
    a run shorter than a window is padded as above.
    """
    if length <= window or overlap == 0:
        starts = range(0, length, window)
    else:
        stride = window - overlap
        starts = list(range(0, length - window + 1, stride))
        if starts[-1] != length - window:
            starts.append(length - window)
    return [np.minimum(np.arange(start, start + window), length - 1) for start in starts]


def blend_weights(window: int, overlap: int) -> np.ndarray:
    """(window,) weights of a window's frames when windows overlap: small at the borders, 1 without overlap."""
    if overlap == 0:
        return np.ones(window)
    k = np.arange(window)
    return np.minimum(k + 1, window - k).astype(np.float64)


class HandRegressor:
    """Runs a :class:`HaworRegressor` over hand tracks.

    Args:
        model: the network (e.g. from :func:`load_regressor`).
        device: "auto" (CUDA when available), "cpu", "cuda", ...
        batch_windows: windows per forward.
        overlap: frames shared by consecutive windows (0 = official non-overlapping windows).
        precision: "fp32", "bf16" or "fp16" (autocast; fp16 only on CUDA).
    """

    def __init__(self, model: HaworRegressor, device: str = "auto", batch_windows: int = 8, overlap: int = 0,
                 precision: str = "fp32"):
        window = model.cfg.window
        if not 0 <= overlap < window:
            raise HaworInputError(f"overlap {overlap}: must be in [0, {window - 1}] for {window}-frame windows.")
        if batch_windows < 1:
            raise HaworInputError(f"batch_windows {batch_windows}: must be at least 1.")
        if precision not in PRECISIONS:
            raise HaworInputError(f"precision {precision!r}: choose one of {sorted(PRECISIONS)}.")
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        if precision == "fp16" and self.device.type != "cuda":
            raise HaworInputError("precision 'fp16' needs a CUDA device; use 'bf16' on the CPU.")
        self.model = model.to(self.device).eval()
        self.batch_windows = batch_windows
        self.overlap = overlap
        self.precision = precision

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, model_config: str | Path | None = None, **options):
        """Load ``checkpoint`` with :func:`load_regressor`; ``options`` as for the constructor."""
        return cls(load_regressor(checkpoint, model_config), **options)

    def predict(self, frames: Callable[[int], np.ndarray] | Sequence[np.ndarray], track: HandTrack,
                intrinsics: Intrinsics | None = None) -> RegressorPrediction:
        """Regress every usable frame of ``track``.

        Args:
            frames: RGB uint8 (H, W, 3) frames by index: a callable or an indexable sequence.
            track: one hand's detections (frame indices, xyxy boxes, scores).
            intrinsics: the full image's camera (default: 600 px, principal point at the image centre).
        """
        read = _frame_reader(frames)
        frame_indices, boxes, scores = _validate_track(track)
        if len(frame_indices) == 0:
            return _empty_prediction(track.side, frame_indices)
        first = np.asarray(read(int(frame_indices[0])))
        if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
            raise HaworInputError(f"frames: expected RGB uint8 (H, W, 3) images, frame {int(frame_indices[0])} "
                                  f"is {first.dtype} {first.shape}; convert it (e.g. drop alpha) first.")
        height, width = first.shape[:2]
        camera = intrinsics if intrinsics is not None else Intrinsics.default((width, height))
        usable = _usable_boxes(boxes, width, height)
        skipped = frame_indices[~usable]
        if len(skipped):
            warnings.warn(f"{track.side} hand track: skipped {len(skipped)} frame(s) with unusable boxes "
                          f"(NaN, empty, too large or outside the {width}x{height} image), first: "
                          f"{skipped[:5].tolist()}", stacklevel=2)
        frame_indices, boxes, scores = frame_indices[usable], boxes[usable], scores[usable]
        if len(frame_indices) == 0:
            return _empty_prediction(track.side, frame_indices, skipped)

        center, scale = (t.numpy() for t in box_to_center_scale(torch.from_numpy(boxes), BOX_DILATION))
        mirror = track.side == "left"
        # Left hands are regressed as right hands in the mirrored image (official convention x -> W - x - 1).
        net_center = mirror_center(center, width) if mirror else center
        raw = self._run_windows(read, frame_indices, center, net_center, scale, camera.focal, camera.center, mirror)
        rotmats = raw["rotmat"]
        if mirror:
            rotmats = mirror_matrix(torch.from_numpy(rotmats)).numpy()
        axis_angle = matrix_to_axis_angle(torch.from_numpy(rotmats)).numpy()
        hand = CameraSpaceHand(
            side=track.side, frame_indices=frame_indices, global_orient=axis_angle[:, 0],
            hand_pose=axis_angle[:, 1:].reshape(len(frame_indices), -1), betas=raw["betas"],
            transl=raw["transl"], confidence=scores,
        )
        return RegressorPrediction(hand=hand, rotmats=rotmats, pred_cam=raw["cam"], skipped_frames=skipped)

    def _run_windows(self, read, frame_indices, center, net_center, scale, focal, img_center,
                     mirror) -> dict[str, np.ndarray]:
        """Network outputs per track row, blended over the windows that hold the row.

        ``center`` is the box centre in the image, ``net_center`` the one the network sees (mirrored for left).
        """
        cfg = self.model.cfg
        window = cfg.window
        windows = [run.start + positions for run in consecutive_runs(frame_indices)
                   for positions in plan_windows(run.stop - run.start, window, self.overlap)]
        weights = blend_weights(window, self.overlap)
        rows = len(frame_indices)
        acc = {"rotmat": np.zeros((rows, cfg.num_joints, 3, 3)), "betas": np.zeros((rows, cfg.head.nshape)),
               "transl": np.zeros((rows, 3)), "cam": np.zeros((rows, 3))}
        total_weight = np.zeros(rows)
        crops: dict[int, torch.Tensor] = {}
        for first in range(0, len(windows), self.batch_windows):
            batch = np.stack(windows[first:first + self.batch_windows])
            for row in np.unique(batch):
                if row not in crops:
                    crop = crop_hand(np.asarray(read(int(frame_indices[row]))), center[row], float(scale[row]),
                                     cfg.crop_size, mirror=mirror)
                    crops[row] = normalize_crop(crop, cfg.vit.img_size[1])
            out = self._forward(batch, crops, net_center, scale, focal, img_center, mirror)
            for w, positions in enumerate(batch):
                # A padded window repeats its last row; only the first occurrence is a real frame.
                _, keep = np.unique(positions, return_index=True)
                for name, value in out.items():
                    np.add.at(acc[name], positions[keep], weights[keep].reshape(-1, *[1] * (value.ndim - 2))
                              * value[w, keep])
                np.add.at(total_weight, positions[keep], weights[keep])
            still_needed = windows[first + self.batch_windows][0] if first + self.batch_windows < len(windows) else rows
            for row in [r for r in crops if r < still_needed]:
                del crops[row]
        result = {name: value / total_weight.reshape(-1, *[1] * (value.ndim - 1)) for name, value in acc.items()}
        if self.overlap:
            # The weighted mean of rotation matrices is not a rotation; project it back (chordal L2 mean).
            result["rotmat"] = roma.special_procrustes(torch.from_numpy(result["rotmat"])).numpy()
        return result

    def _forward(self, batch, crops, center, scale, focal, img_center, mirror) -> dict[str, np.ndarray]:
        """One network call on windows ``batch`` (B, T) of track rows -> float64 numpy outputs (B, T, ...)."""
        device = self.device
        images = torch.stack([torch.stack([crops[r] for r in positions]) for positions in batch]).to(device)
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        b, t = batch.shape
        center_t = as_tensor(center[batch])
        scale_t = as_tensor(scale[batch])
        focal_t = torch.full((b, t), float(focal), device=device)
        img_center_t = as_tensor(img_center).expand(b, t, 2)
        flip = torch.full((b, t), mirror, dtype=torch.bool, device=device)
        dtype = PRECISIONS[self.precision]
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = self.model(images, center_t, scale_t, focal_t, img_center_t, do_flip=flip)
        to_np = lambda x: x.detach().double().cpu().numpy()  # noqa: E731
        return {"rotmat": to_np(out.pred_rotmat), "betas": to_np(out.pred_shape),
                "transl": to_np(out.trans_full), "cam": to_np(out.pred_cam)}


def _validate_track(track: HandTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if track.side not in ("left", "right"):
        raise HaworInputError(f"hand track: side {track.side!r} must be 'left' or 'right'.")
    frame_indices = np.asarray(track.frame_indices, dtype=np.int64).reshape(-1)
    boxes = np.asarray(track.boxes, dtype=np.float64)
    if boxes.shape != (len(frame_indices), 4):
        raise HaworInputError(f"{track.side} hand track: boxes have shape {boxes.shape}, expected "
                              f"({len(frame_indices)}, 4) xyxy pixels, one row per frame index.")
    if len(frame_indices) > 1 and np.any(np.diff(frame_indices) <= 0):
        raise HaworInputError(f"{track.side} hand track: frame indices must be strictly increasing; "
                              "merge duplicate detections first.")
    if np.any(frame_indices < 0):
        raise HaworInputError(f"{track.side} hand track: negative frame index {int(frame_indices.min())}.")
    scores = np.asarray(track.scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(frame_indices):
        scores = np.ones(len(frame_indices))
    return frame_indices, boxes, scores


def _usable_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(M,) bool: finite, non-empty, not absurdly large, and overlapping the image."""
    finite = np.isfinite(boxes).all(axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    w, h = safe[:, 2] - safe[:, 0], safe[:, 3] - safe[:, 1]
    inside = (safe[:, 2] > 0) & (safe[:, 0] < width) & (safe[:, 3] > 0) & (safe[:, 1] < height)
    sane = np.maximum(w, h) <= MAX_BOX_TO_IMAGE * max(width, height)
    return finite & (w > 0) & (h > 0) & inside & sane


def _empty_prediction(side: str, frame_indices: np.ndarray, skipped: np.ndarray | None = None) -> RegressorPrediction:
    empty = np.zeros((0,))
    hand = CameraSpaceHand(side=side, frame_indices=np.zeros(0, np.int64), global_orient=np.zeros((0, 3)),
                           hand_pose=np.zeros((0, 45)), betas=np.zeros((0, 10)), transl=np.zeros((0, 3)),
                           confidence=empty)
    return RegressorPrediction(hand=hand, rotmats=np.zeros((0, 16, 3, 3)), pred_cam=np.zeros((0, 3)),
                               skipped_frames=np.zeros(0, np.int64) if skipped is None else skipped)
