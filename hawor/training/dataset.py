"""Temporal windows of a manifest and the tensors one window feeds to the network.

Windows: the samples of one hand (sequence_id, handedness) sorted by frame_id split into runs of
consecutive frames (a missing frame_id ends a run). Training windows start every DATASETS.WINDOW_STRIDE
frames of a run, plus one ending on the run's last frame, so every frame is seen; validation windows
do not overlap except the last. A run shorter than the model's window is skipped with a warning (the
log counts its samples); no run long enough is an error. Two samples of one hand with the same
frame_id are an error.

Crops are cut by :func:`hawor.estimation.crop.crop_hand` and normalised by ``normalize_crop``, as at
inference; left hands (handedness 0) are mirrored exactly as at inference (image, box centre, and their
ground truth), so the network only sees right hands.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from hawor.configs import ConfigNode
from hawor.data.manifest import Manifest
from hawor.errors import HaworInputError
from hawor.estimation.crop import crop_hand, mirror_center, normalize_crop
from hawor.geometry import axis_angle_to_matrix, mirror_axis_angle
from hawor.runs import consecutive_runs
from hawor.training.augmentation import WindowAugmentation

log = logging.getLogger(__name__)

_FRAME_CACHE = 64


def _run_starts(length: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def plan_windows(manifest: Manifest, window: int, stride: int) -> tuple[np.ndarray, dict[str, int]]:
    """(M, window) sample indices of every window, and counts of what was skipped (see the module docstring).

    Raises:
        HaworInputError naming the manifest, the sample and the field (frame_id duplicates; no usable run).
    """
    windows, skipped_runs, skipped_samples, first_short = [], 0, 0, None
    keys = np.char.add(np.char.add(manifest.sequence_id, "\x00"), manifest.handedness.astype(str))
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        members = members[np.argsort(manifest.frame_id[members], kind="stable")]
        frames = manifest.frame_id[members]
        duplicate = np.flatnonzero(np.diff(frames) == 0)
        if len(duplicate):
            i = members[duplicate[0] + 1]
            raise HaworInputError(f"manifest {manifest.path}: sample {i}: field 'frame_id': "
                                  f"frame {frames[duplicate[0]]} "
                                  f"of sequence '{manifest.sequence_id[i]}' appears twice for the same hand.")
        for run in (members[r] for r in consecutive_runs(frames)):
            if len(run) < window:
                skipped_runs += 1
                skipped_samples += len(run)
                first_short = first_short if first_short is not None else run[0]
                continue
            windows += [run[s:s + window] for s in _run_starts(len(run), window, stride)]
    report = {"windows": len(windows), "short runs skipped": skipped_runs, "samples in short runs": skipped_samples}
    if skipped_runs:
        i = first_short
        log.warning("manifest %s: skipped %d run(s) of fewer than %d consecutive frames (%d samples), first at "
                    "sample %d (field 'sequence_id' = '%s', frame_id %d)", manifest.path, skipped_runs, window,
                    skipped_samples, i, manifest.sequence_id[i], manifest.frame_id[i])
    if not windows:
        i = first_short if first_short is not None else 0
        raise HaworInputError(f"manifest {manifest.path}: sample {i}: field 'sequence_id': no sequence has {window} "
                              f"consecutive frames of one hand (sequence '{manifest.sequence_id[i]}' is the first too "
                              "short); the model needs windows of that length.")
    return np.stack(windows), report


def fill_missing_joints(manifest: Manifest, hand_backend: str = "auto") -> str | None:
    """Compute ``gt_j3d_wo_trans`` from the hand model where a sample has none; returns the model used (or None)."""
    missing = np.flatnonzero(~manifest.has_j3d)
    if not len(missing):
        return None
    from hawor.hands import HandModel

    backend = None
    for hand, side in ((0, "left"), (1, "right")):
        rows = missing[manifest.handedness[missing] == hand]
        if not len(rows):
            continue
        model = HandModel(side, backend=hand_backend)
        backend = model.backend
        pose = torch.as_tensor(manifest.full_pose[rows], dtype=torch.float32)
        with torch.no_grad():
            joints = model(pose[:, :3], pose[:, 3:], torch.as_tensor(manifest.betas[rows], dtype=torch.float32)).joints
        manifest.j3d[rows] = joints.double().numpy()
    manifest.has_j3d[missing] = True
    log.info("manifest %s: gt_j3d_wo_trans of %d sample(s) computed from the %s hand model", manifest.path,
             len(missing), backend)
    return backend


class WindowDataset(Dataset):
    """Item ``key`` -> window ``key % M``; in training its augmentation is drawn from ``(seed, key)``, so the
    same key gives the same tensors in any worker, process or resumed run.

    Returns a dict of tensors (T = window): images (T, 3, H, W); center (T, 2) px and img_center (T, 2) px as
    the network sees them; scale (T,); focal (T,); j2d (T, 21, 2) ground truth in normalised crop coordinates
    ((p - center) / box side, rotated with the crop); j2d_conf (T, 21); rotmat (T, 16, 3, 3); betas (T, 10);
    j3d (T, 21, 3) metres without translation; mirrored (T,) bool; window () int.
    """

    def __init__(self, manifest: Manifest, windows: np.ndarray, crop_size: int, crop_width: int,
                 augment: ConfigNode | None = None, seed: int = 0):
        self.manifest = manifest
        self.windows = windows
        self.crop_size = crop_size
        self.crop_width = crop_width
        self.augment = augment
        self.seed = seed
        self._frames: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.windows)

    def _frame(self, index: int) -> np.ndarray:
        path = self.manifest.img_path[index]
        frame = self._frames.get(path)
        if frame is None:
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                raise HaworInputError(f"manifest {self.manifest.path}: sample {index}: field 'img_path': {path} "
                                      "cannot be decoded as an image.")
            frame = np.ascontiguousarray(bgr[:, :, ::-1])
            self._frames[path] = frame
            if len(self._frames) > _FRAME_CACHE:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(path)
        return frame

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        key = int(key)
        rows = self.windows[key % len(self.windows)]
        m = self.manifest
        aug = WindowAugmentation.draw(np.random.default_rng([self.seed, key]), self.augment) \
            if self.augment is not None else WindowAugmentation()
        mirror = (m.handedness[rows[0]] == 0) != aug.flip
        rot2d = aug.rotation_matrix()[:2, :2]
        images, centers, scales, j2d = [], [], [], []
        for row in rows:
            frame = self._frame(row)
            width = frame.shape[1]
            center, scale = aug.box(m.center[row], m.scale[row], m.j2d[row])
            crop = aug.rotate_crop(crop_hand(frame, center, scale, self.crop_size, mirror=mirror))
            images.append(normalize_crop(crop, self.crop_width))
            keypoints = m.j2d[row].copy()
            if mirror:
                center = mirror_center(center, width)
                keypoints[:, 0] = width - keypoints[:, 0] - 1
            centers.append(center)
            scales.append(scale)
            j2d.append((keypoints - center) / (200 * scale) @ rot2d.T)
        j2d = np.stack(j2d)
        pose = torch.as_tensor(m.full_pose[rows], dtype=torch.float64).reshape(-1, 16, 3)
        joints = torch.as_tensor(m.j3d[rows], dtype=torch.float64)
        if mirror:
            pose = mirror_axis_angle(pose)
            joints = joints * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
        rotmat = axis_angle_to_matrix(pose)
        turn = torch.as_tensor(aug.rotation_matrix())
        rotmat[:, 0] = turn @ rotmat[:, 0]
        joints = joints @ turn.T
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        return {
            "images": torch.stack(images), "center": f32(np.stack(centers)), "scale": f32(scales),
            "focal": f32(m.img_focal[rows]), "img_center": f32(m.img_center[rows]),
            "j2d": f32(np.nan_to_num(j2d)), "j2d_conf": f32(np.isfinite(j2d).all(-1)),
            "rotmat": rotmat.float(), "betas": f32(m.betas[rows]), "j3d": joints.float(),
            "mirrored": torch.full((len(rows),), bool(mirror)), "window": torch.tensor(key % len(self.windows)),
        }


class WindowStream(Sampler):
    """Endless, resumable stream of dataset keys for one process.

    Epoch e visits the windows in the permutation drawn from ``(seed, e)``, split over ``world`` processes
    (rank r takes every world-th; the permutation wraps so all ranks get equally many). ``start`` skips that
    many keys of this rank's stream: resuming after k steps of batch b starts at k * b.
    """

    def __init__(self, num_windows: int, seed: int = 0, rank: int = 0, world: int = 1, start: int = 0):
        self.num_windows, self.seed, self.rank, self.world, self.start = num_windows, seed, rank, world, start
        self.per_epoch = -(-num_windows // world)

    def __iter__(self):
        epoch, offset = divmod(self.start, self.per_epoch)
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
            order = np.resize(order, self.per_epoch * self.world)[self.rank::self.world]
            for k in range(offset, self.per_epoch):
                yield int(epoch * self.num_windows + order[k])
            epoch, offset = epoch + 1, 0
