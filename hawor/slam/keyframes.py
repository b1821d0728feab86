"""Hand-masked KLT tracking and keyframe selection (the classical front-end).

Shi-Tomasi corners outside the hand mask are tracked frame to frame by pyramidal Lucas-Kanade with a
forward-backward check; tracks that enter a hand are cut. A frame becomes a keyframe when the median
displacement of the tracks it shares with the last keyframe exceeds a fraction of the image width, or
when too few of that keyframe's tracks survive (the role of DROID's motion filter).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class TrackerOptions:
    """Front-end settings; pixel values are at the tracking resolution."""

    max_corners: int = 600
    min_corner_distance: int = 10
    corner_quality: float = 0.005
    reseed_fraction: float = 0.7  # re-detect corners when fewer than this fraction of max_corners live
    window: int = 15
    levels: int = 3
    fb_max_px: float = 1.0
    border_px: int = 8
    keyframe_motion: float = 0.04  # median displacement since the last keyframe / image width
    keyframe_survival: float = 0.6
    max_keyframe_gap: int = 8  # frames; short gaps keep the map dense where the head barely moves


@dataclass
class FrameTracks:
    """KLT observations of one frame: track ids (M,) int64 and positions (M, 2) float32 pixels."""

    ids: np.ndarray
    xy: np.ndarray


@dataclass
class TrackingResult:
    """All frames' observations, keyframe indices and per-frame diagnostics."""

    frames: list[FrameTracks] = field(default_factory=list)
    keyframes: list[int] = field(default_factory=list)
    motion_px: list[float] = field(default_factory=list)  # median displacement to the last keyframe
    texture_ok: list[bool] = field(default_factory=list)  # False where no corner could be found


def _no_mask_zone(shape: tuple[int, int], hand_mask: np.ndarray | None, border: int) -> np.ndarray:
    """uint8 (H, W): 255 where corners may be detected (away from hands and the image border)."""
    allowed = np.zeros(shape, np.uint8)
    allowed[border:shape[0] - border, border:shape[1] - border] = 255
    if hand_mask is not None:
        allowed[hand_mask] = 0
    return allowed


class KLTTracker:
    """Streams grey frames; call `push(gray, hand_mask)` once per frame, then read `.result`."""

    def __init__(self, options: TrackerOptions | None = None):
        self.opt = options or TrackerOptions()
        self.result = TrackingResult()
        self._prev: np.ndarray | None = None
        self._ids = np.zeros(0, np.int64)
        self._xy = np.zeros((0, 2), np.float32)
        self._next_id = 0
        self._kf_ids = np.zeros(0, np.int64)
        self._kf_xy = np.zeros((0, 2), np.float32)
        self._lk = dict(winSize=(self.opt.window, self.opt.window), maxLevel=self.opt.levels,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))

    def push(self, gray: np.ndarray, hand_mask: np.ndarray | None = None) -> None:
        """gray: (H, W) uint8 frame; hand_mask: (H, W) bool, True on hand pixels (already dilated)."""
        h, w = gray.shape
        allowed = _no_mask_zone((h, w), hand_mask, self.opt.border_px)
        if self._prev is not None and len(self._xy):
            self._track(gray, allowed)
        self._reseed(gray, allowed)
        self._prev = gray
        frame = len(self.result.frames)
        self.result.frames.append(FrameTracks(self._ids.copy(), self._xy.copy()))
        self.result.texture_ok.append(len(self._ids) >= 8)
        self._update_keyframes(frame, w)

    def _track(self, gray: np.ndarray, allowed: np.ndarray) -> None:
        p0 = self._xy.reshape(-1, 1, 2)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(self._prev, gray, p0, None, **self._lk)
        p0b, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self._prev, p1, None, **self._lk)
        p1, p0b = p1.reshape(-1, 2), p0b.reshape(-1, 2)
        fb = np.linalg.norm(p0b - self._xy, axis=1)
        h, w = gray.shape
        xi = np.clip(np.round(p1[:, 0]).astype(np.int64), 0, w - 1)
        yi = np.clip(np.round(p1[:, 1]).astype(np.int64), 0, h - 1)
        inside = (p1[:, 0] >= 0) & (p1[:, 0] < w) & (p1[:, 1] >= 0) & (p1[:, 1] < h)
        keep = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < self.opt.fb_max_px) & inside
        keep &= allowed[yi, xi] > 0  # a track entering a hand (or the border) is cut
        self._ids, self._xy = self._ids[keep], p1[keep].astype(np.float32)

    def _reseed(self, gray: np.ndarray, allowed: np.ndarray) -> None:
        need = self.opt.max_corners - len(self._ids)
        if need < self.opt.max_corners * (1 - self.opt.reseed_fraction):
            return
        free = allowed
        if len(self._xy):
            h, w = gray.shape
            taken = np.zeros((h, w), np.uint8)
            xi = np.clip(self._xy[:, 0].astype(np.int64), 0, w - 1)
            yi = np.clip(self._xy[:, 1].astype(np.int64), 0, h - 1)
            taken[yi, xi] = 255
            r = self.opt.min_corner_distance
            taken = cv2.dilate(taken, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            free = cv2.bitwise_and(allowed, cv2.bitwise_not(taken))
        pts = cv2.goodFeaturesToTrack(gray, need, self.opt.corner_quality, self.opt.min_corner_distance,
                                      mask=free, blockSize=5)
        if pts is None:
            return
        pts = pts.reshape(-1, 2).astype(np.float32)
        new_ids = np.arange(self._next_id, self._next_id + len(pts), dtype=np.int64)
        self._next_id += len(pts)
        self._ids = np.concatenate([self._ids, new_ids])
        self._xy = np.concatenate([self._xy, pts])

    def _update_keyframes(self, frame: int, width: int) -> None:
        res, opt = self.result, self.opt
        if not res.keyframes:
            if len(self._ids) >= 8:  # the first frame with texture starts the map
                self._set_keyframe(frame)
            res.motion_px.append(0.0)
            return
        common, ia, ib = np.intersect1d(self._kf_ids, self._ids, return_indices=True)
        motion = float(np.median(np.linalg.norm(self._xy[ib] - self._kf_xy[ia], axis=1))) if len(common) else 0.0
        res.motion_px.append(motion)
        survival = len(common) / max(len(self._kf_ids), 1)
        gap = frame - res.keyframes[-1]
        moved = motion > opt.keyframe_motion * width
        if len(self._ids) >= 8 and (moved or survival < opt.keyframe_survival
                                    or (gap >= opt.max_keyframe_gap and motion > 1.0)):
            self._set_keyframe(frame)

    def _set_keyframe(self, frame: int) -> None:
        self.result.keyframes.append(frame)
        self._kf_ids, self._kf_xy = self._ids.copy(), self._xy.copy()
