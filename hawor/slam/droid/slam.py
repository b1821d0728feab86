"""Masked DROID-SLAM as HaWoR runs it: resize, black out hands, track, refine, fill every frame.

Loop: every frame -> motion filter (keyframe candidates) -> frontend (sliding-window BA); at the
end -> backend (7 + 12 global steps) -> filler (a pose per frame from unmasked frames). Hand masks
enter twice (reference section 3): hand pixels are black in the tracked images, and edge confidences
are zeroed at the source keyframe's hand cells before every BA.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as TF

from hawor.errors import HaworInputError
from hawor.geometry import Intrinsics
from hawor.slam.trajectory import CameraTrajectory

from .backend import BackendConfig, run_backend
from .filler import fill_trajectory
from .frontend import Frontend, FrontendConfig
from .lie import se3_inv, se3_to_matrix
from .motion_filter import MotionFilter
from hawor.models.droid import DroidNet
from .video import DepthVideo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DroidSlamConfig:
    """HaWoR's released settings. ``target_pixels`` fixes the working size (384*512 area)."""

    target_pixels: int = 384 * 512
    filter_thresh: float = 2.4
    buffer: int = 512
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    filler_chunk: int = 16
    filler_iters: int = 6


def working_size(width: int, height: int, target_pixels: int = 384 * 512) -> tuple[tuple[int, int], tuple[int, int]]:
    """((w1, h1) resize size, (W, H) after cropping bottom/right to multiples of 8)."""
    f = math.sqrt(target_pixels / (height * width))
    w1, h1 = int(width * f), int(height * f)
    return (w1, h1), (w1 - w1 % 8, h1 - h1 % 8)


def resize_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> torch.Tensor:
    """HaWoR's boolean mask resize: antialiased bilinear (torchvision), any coverage -> True. (h, w) bool."""
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
    return TF.resize(m, list(size_hw), antialias=True)[0] > 0


class _Frames:
    """Frames at the working size (BGR uint8 (H, W, 3)); a video file is read twice, other inputs are
    kept after the first pass (the filler needs them again)."""

    def __init__(self, frames, target_pixels: int):
        self.source, self.target_pixels = frames, target_pixels
        self.is_file = isinstance(frames, (str, Path))
        self.cache: list[np.ndarray] = []
        self.size_hw: tuple[int, int] | None = None

    def _set_size(self, w0: int, h0: int) -> None:
        self.size_hw = (h0, w0)
        self.resize_to, self.crop_to = working_size(w0, h0, self.target_pixels)
        if min(self.crop_to) < 64:  # the 4-level correlation pyramid needs a grid of at least 8x8
            raise HaworInputError(f"video frames of {w0}x{h0} px give a DROID working size of "
                                  f"{self.crop_to[0]}x{self.crop_to[1]}; both sides must reach 64 px")

    def _prepare(self, rgb) -> np.ndarray:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise HaworInputError(f"video frame has shape {rgb.shape} and dtype {rgb.dtype}; expected RGB uint8 "
                                  "(H, W, 3) frames")
        if self.size_hw is None:
            self._set_size(rgb.shape[1], rgb.shape[0])
        if rgb.shape[:2] != self.size_hw:
            raise HaworInputError(f"video frame has size {rgb.shape[1]}x{rgb.shape[0]}, the first frame "
                                  f"{self.size_hw[1]}x{self.size_hw[0]}; all frames must have one size")
        img = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), self.resize_to)
        return np.ascontiguousarray(img[:self.crop_to[1], :self.crop_to[0]])

    def first_pass(self) -> Iterable[np.ndarray]:
        if self.is_file:
            from hawor.io.video import VideoReader

            for rgb in VideoReader(self.source):
                yield self._prepare(rgb)
            return
        for rgb in self.source:
            img = self._prepare(rgb)
            self.cache.append(img)
            yield img

    def second_pass(self) -> Sequence[np.ndarray]:
        if not self.is_file:
            return self.cache
        from hawor.io.video import VideoReader

        return [self._prepare(rgb) for rgb in VideoReader(self.source)]


def _to_tensor(img_bgr: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(img_bgr).permute(2, 0, 1).to(device, torch.float32)


def _mask_source(hand_masks):
    if hand_masks is None:
        return None
    if hasattr(hand_masks, "mask"):
        return hand_masks
    from hawor.slam.masks import HandMasks

    return HandMasks.from_dense(np.asarray(hand_masks, bool))


class DroidSlam:
    """The tracking state of one video: motion filter + frontend while frames arrive, then backend and
    filler. Frames are BGR float (3, H, W) at the working size, hands already black."""

    def __init__(self, net: DroidNet, size_hw: tuple[int, int], intrinsics: torch.Tensor,
                 config: DroidSlamConfig = DroidSlamConfig(), device: str | torch.device = "cpu"):
        f = net.cfg.upsample_factor
        self.net, self.config, self.intrinsics = net, config, intrinsics
        self.video = DepthVideo(size_hw[0] // f, size_hw[1] // f, net.cfg.fnet_dim, net.cfg.hidden_dim,
                                config.buffer, device, f)
        self.filter = MotionFilter(net, self.video, config.filter_thresh)
        self.frontend = Frontend(net, self.video, config.frontend)

    @torch.no_grad()
    def track(self, t: int, image_bgr: torch.Tensor, grid_mask: torch.Tensor) -> None:
        """image_bgr (3, H, W) 0..255 with hands blacked out; grid_mask (h, w) > 0 on hand cells."""
        self.filter.track(float(t), image_bgr, self.intrinsics, grid_mask)
        self.frontend()

    @torch.no_grad()
    def terminate(self, num_frames: int, load_frames) -> tuple[torch.Tensor, list[float]]:
        """Backend, then the filler over all frames (``load_frames(indices)`` -> (M, 3, H, W) BGR,
        unmasked). Returns world-to-camera poses (num_frames, 7) and the backend errors."""
        errors = run_backend(self.net, self.video, self.config.backend)
        poses = fill_trajectory(self.net, self.video, num_frames, load_frames, self.config.filler_chunk,
                                self.config.filler_iters, self.config.frontend.ba_iters)
        return poses, errors


@torch.no_grad()
def run_droid_slam(frames, K: np.ndarray, hand_masks=None, *, net: DroidNet | None = None,
                   weights: str | Path | None = None, config: DroidSlamConfig = DroidSlamConfig(),
                   device: str | torch.device | None = None) -> CameraTrajectory:
    """Camera trajectory of a video with masked DROID-SLAM, **unscaled** (``scale`` = 1).

    Args:
        frames: a video path, or RGB uint8 (H0, W0, 3) frames (array or iterable).
        K: (3, 3) intrinsics at the input resolution (fx, fy, cx, cy are used).
        hand_masks: `hawor.slam.masks.HandMasks` or an (N, h, w) bool array, True on hand pixels; None = no hands.
        net: a loaded DroidNet (else ``weights`` or the official weights/external/droid.pth are loaded).
        device: "cuda" when available by default. CPU works but is slow: about 30-60 s per frame on 2
            cores at the 512x384 working size (bench/droid.py), i.e. a day for 1000 frames.
    Returns:
        CameraTrajectory: T_world_cam (N, 4, 4) camera-to-world up to scale, keyframes = keyframe frame
        indices, disps = (K, H, W) float32 upsampled keyframe disparity at the working size.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if net is None:
        from .loading import load_droid_net

        net = load_droid_net(weights, device=device)
    net = net.to(device).eval()
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3):
        raise HaworInputError(f"intrinsics K has shape {K.shape}, expected (3, 3)")
    masks = _mask_source(hand_masks)
    source = _Frames(frames, config.target_pixels)
    f8 = net.cfg.upsample_factor
    num_frames = 0
    for t, img in enumerate(source.first_pass()):
        num_frames = t + 1
        if t == 0:
            (w1, h1), (W, H) = source.resize_to, source.crop_to
            h0, w0 = source.size_hw
            work = Intrinsics.from_K(K, (w0, h0)).scaled((w1, h1))
            intr = torch.tensor([work.fx, work.fy, work.cx, work.cy], dtype=torch.float32, device=device)
            slam = DroidSlam(net, (H, W), intr, config, device)
        if masks is not None:
            if t >= len(masks):
                raise HaworInputError(f"hand masks: {len(masks)} masks for a video with more frames; pass one "
                                      "mask per frame")
            full = masks.mask(t)
            img = img * (~resize_mask(full, (H, W)).numpy())[..., None].astype(np.uint8)
            grid_mask = resize_mask(full, (H // f8, W // f8)).to(device, torch.float32)
        else:
            grid_mask = torch.zeros(H // f8, W // f8, device=device)
        slam.track(t, _to_tensor(img, device), grid_mask)
    if num_frames < 2:
        raise HaworInputError(f"video has {num_frames} frame(s); DROID-SLAM needs at least 2")
    return _finish(slam, source, num_frames, K, device)


def _finish(slam: DroidSlam, source: _Frames, num_frames: int, K, device) -> CameraTrajectory:
    video, config = slam.video, slam.config
    warnings = []
    n_key = video.counter
    if n_key < 2:
        warnings.append("DROID-SLAM: the camera barely moved (fewer than 2 keyframes); identity camera poses")
        T = np.tile(np.eye(4), (num_frames, 1, 1))
        return CameraTrajectory(T, K, 1.0, np.zeros(1, np.int64), "droid-slam (static)", warnings)
    if n_key < config.frontend.warmup:
        warnings.append(f"DROID-SLAM: only {n_key} keyframes (< {config.frontend.warmup}); the frontend never "
                        "initialised and the trajectory rests on the final global refinement only")
    frames = source.second_pass()
    poses, errors = slam.terminate(num_frames, lambda idx: torch.stack([_to_tensor(frames[i], device) for i in idx]))
    T_world_cam = se3_to_matrix(se3_inv(poses.double())).cpu().numpy()
    n = video.counter
    keyframes = video.tstamp[:n].round().long().cpu().numpy()
    disps = video.disps_up[:n].float().cpu().numpy()
    err = f", backend reprojection error {errors[-1]:.3f} px/8" if errors else ""
    log.info("DROID-SLAM: %d frames, %d keyframes%s", num_frames, n, err)
    return CameraTrajectory(T_world_cam, K, 1.0, keyframes, f"droid-slam ({n} keyframes{err})", warnings,
                            disps=disps)
