"""The frames a run works on: a streamed, optionally trimmed and resampled view of a video file.

Output frame k is source frame ``start + round(k * source_fps / fps)`` (nearest-frame resampling by
dropping or repeating frames, like ffmpeg's fps filter). Nothing is held in memory beyond the frame
being decoded, except a short look-back buffer for random access in increasing order.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from hawor.errors import HaworInputError
from hawor.io.prefetch import prefetch
from hawor.io.video import VideoInfo, VideoReader, probe_video


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of ``path`` to use.

    Attributes:
        start: first source frame (inclusive). end: last source frame (exclusive) or None for all.
        max_frames: cap on the number of output frames, or None.
        fps: output frame rate, or None to keep the source rate (no resampling).
    """

    path: Path
    start: int = 0
    end: int | None = None
    max_frames: int | None = None
    fps: float | None = None

    def __post_init__(self):
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise HaworInputError(f"frame range start={self.start} end={self.end}: need 0 <= start < end.")
        if self.max_frames is not None and self.max_frames < 1:
            raise HaworInputError(f"max_frames {self.max_frames}: must be at least 1.")
        if self.fps is not None and not self.fps > 0:
            raise HaworInputError(f"fps {self.fps}: must be positive.")

    def settings(self) -> dict:
        return {"start": self.start, "end": self.end, "max_frames": self.max_frames, "fps": self.fps}


class FrameSource:
    """Streams the selected frames of a video (RGB uint8 (H, W, 3)).

    ``info`` describes the source; ``fps`` is the output rate; ``expected_frames`` is an estimate
    (the container's count); the exact count is known after one pass (``counted_frames``).
    """

    def __init__(self, selection: FrameSelection):
        self.selection = selection
        self.info: VideoInfo = probe_video(selection.path)  # raises HaworInputError on bad files
        self.size = self.info.size
        self.fps = selection.fps or self.info.fps
        self.counted_frames: int | None = None

    @property
    def expected_frames(self) -> int:
        sel = self.selection
        source = min(self.info.num_frames, sel.end or self.info.num_frames) - sel.start
        n = max(0, int(round(source * self.fps / self.info.fps)))
        return min(n, sel.max_frames) if sel.max_frames else n

    def __iter__(self) -> Iterator[np.ndarray]:
        return prefetch(self._selected_frames())  # decoding overlaps whatever consumes the frames

    def _selected_frames(self) -> Iterator[np.ndarray]:
        sel, count = self.selection, 0
        ratio = self.info.fps / self.fps
        for src, frame in enumerate(VideoReader(sel.path)):
            if src < sel.start:
                continue
            # emit every output frame k whose source frame start + round(k * ratio) is this one
            while round(count * ratio) + sel.start == src:
                if sel.max_frames is not None and count >= sel.max_frames:
                    break
                yield frame
                count += 1
            # stop at the range's last frame: the decoder must not look past it (damage there is not ours)
            if (sel.max_frames is not None and count >= sel.max_frames) or (sel.end is not None and src + 1 >= sel.end):
                break
        if count == 0:
            raise HaworInputError(f"video {sel.path}: no frames in the selected range (start={sel.start}, "
                                  f"end={sel.end}); the video decodes to fewer frames. Check --start/--end.")
        self.counted_frames = count

    def progress(self, desc: str) -> Iterator[np.ndarray]:
        """Iterate with a progress bar."""
        total = self.counted_frames or self.expected_frames
        return iter(tqdm(self, total=total, desc=desc, unit="frame", leave=False))

    def reader(self, lookback: int = 32) -> "SequentialReader":
        return SequentialReader(self, lookback)


class SequentialReader:
    """Frame access by output index, efficient when indices mostly increase (one decoder kept open;
    a request for an earlier frame outside the look-back buffer restarts decoding)."""

    def __init__(self, source: FrameSource, lookback: int = 32):
        self.source, self.lookback = source, lookback
        self._iter: Iterator[np.ndarray] | None = None
        self._next = 0
        self._buffer: OrderedDict[int, np.ndarray] = OrderedDict()

    def __call__(self, index: int) -> np.ndarray:
        index = int(index)
        if index in self._buffer:
            return self._buffer[index]
        if self._iter is None or index < self._next:
            self._iter, self._next = iter(self.source), 0
            self._buffer.clear()
        for frame in self._iter:
            self._buffer[self._next] = frame
            self._next += 1
            if len(self._buffer) > self.lookback:
                self._buffer.popitem(last=False)
            if self._next > index:
                return frame
        raise HaworInputError(f"video {self.source.selection.path}: frame {index} does not exist "
                              f"(the selection has {self._next} frames).")
