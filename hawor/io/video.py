"""Video reading (streamed, never all frames in RAM) and H.264 writing with PyAV.

H.264 (libx264, yuv420p, +faststart) is what browsers play; OpenCV's pip wheels cannot write it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

from hawor.errors import HaworInputError
from hawor.io.files import atomic_path


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame rate (frames/s), frame count (estimated from the container when
    it does not store one), and size (W, H) in pixels."""

    path: Path
    fps: float
    num_frames: int
    size: tuple[int, int]
    exact_count: bool = False  # num_frames is the container's own count, not an estimate


def _open(path: Path):
    if not path.is_file():
        raise HaworInputError(f"video {path}: no such file. Check --video_path.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise HaworInputError(f"video {path}: cannot be opened as a video ({exc}). "
                              "Re-encode it, e.g. ffmpeg -i in.mov -c:v libx264 out.mp4.") from exc
    if not container.streams.video:
        container.close()
        raise HaworInputError(f"video {path}: has no video stream (audio-only or not a video). "
                              "Pass a file with a video track.")
    return container


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read frame rate, frame count and size without decoding the whole file."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        count = stream.frames
        exact = bool(count)
        if not count and stream.duration and stream.time_base:
            count = int(round(float(stream.duration * stream.time_base) * float(rate)))
        if not count:
            count = sum(1 for _ in container.decode(stream))
        size = (stream.codec_context.width, stream.codec_context.height)
    if count <= 0 or min(size) <= 0:
        raise HaworInputError(f"video {path}: contains no frames. Pass a video with at least one frame.")
    return VideoInfo(path, float(rate), int(count), size, exact)


class VideoReader:
    """Stream RGB uint8 (H, W, 3) frames from a video file.

    Iterating decodes frames in order; ``read(indices)`` returns selected frames (one decoding pass).
    Attributes ``fps``, ``num_frames`` (from the container; the decoded count may differ by a few
    frames for some encoders) and ``size`` (W, H).
    """

    def __init__(self, path: str | os.PathLike):
        self.info = probe_video(path)
        self.path = self.info.path
        self.fps = self.info.fps
        self.num_frames = self.info.num_frames
        self.size = self.info.size

    def __iter__(self) -> Iterator[np.ndarray]:
        """Decode every frame in order (see :meth:`frames`)."""
        return self.frames()

    def frames(self, grey_size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """Decode every frame in order: RGB uint8 (H, W, 3), or with ``grey_size`` (w, h) grey uint8
        (h, w) made by the decoder's scaler (trackers need only small luma; skipping the full-size RGB
        conversion saves more than the tracking costs at 720p and above).

        Damage is an error, never a silently shorter or garbled video (docs/outputs.md): a decoding
        failure, a frame the decoder had to conceal errors in, or an end before the frame count the
        container announces raise HaworInputError naming the frame. A caller that stops early (a
        frame range) never reaches the damage past its range.
        """
        decoded = 0
        with _open(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    if frame.is_corrupt:
                        raise HaworInputError(
                            f"video {self.path}: frame {decoded} is damaged (the decoder had to conceal errors); "
                            f"the file is corrupt. Fix: download or copy it again, or re-encode it; --end {decoded} "
                            "uses only the frames before the damage.")
                    if grey_size is None:
                        yield frame.to_ndarray(format="rgb24")
                    else:
                        yield frame.reformat(width=grey_size[0], height=grey_size[1], format="gray",
                                             interpolation="BILINEAR").to_ndarray()
                    decoded += 1
            except av.error.FFmpegError as exc:
                raise HaworInputError(f"video {self.path}: decoding failed at frame {decoded} ({exc}); the file is "
                                      f"corrupt or truncated. Fix: download or copy it again; --end {decoded} uses "
                                      "only the frames before the damage.") from exc
        if self.info.exact_count and decoded < self.num_frames - max(1, self.num_frames // 200):
            raise HaworInputError(f"video {self.path}: decoding ended at frame {decoded} of the {self.num_frames} "
                                  f"the file announces; it is truncated. Fix: download or copy it again; "
                                  f"--end {decoded} uses only the frames that are there.")

    def read(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Frames at the given indices (any order, repeats allowed), as RGB uint8 arrays."""
        wanted = set(int(i) for i in indices)
        found: dict[int, np.ndarray] = {}
        last = max(wanted) if wanted else -1
        for index, frame in enumerate(self):
            if index in wanted:
                found[index] = frame
            if index >= last:
                break
        missing = wanted - found.keys()
        if missing:
            raise HaworInputError(f"video {self.path}: frames {sorted(missing)[:5]} do not exist "
                                  f"(the video decodes to {index + 1 if last >= 0 else 0} frames).")
        return [found[int(i)] for i in indices]


class VideoWriter:
    """Write RGB uint8 frames to a browser-playable H.264 .mp4, atomically.

    Use as a context manager; the file appears under its final name only after a clean close.
    Odd sizes are padded by one pixel (yuv420p needs even width and height). Encoding is lossy but
    repeatable: the same frames give the same file contents.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], crf: int = 23,
                 preset: str = "veryfast"):
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self._even = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4",
                                  options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self._even
        self._stream.pix_fmt = "yuv420p"
        # x264's macroblock-tree rate control gave other bits for the same frames from run to run on
        # this project's CPUs (its assembly: asm=0 made it exact too), so a regenerated benchmark
        # sequence or test clip was another video; without it, encoding is repeatable
        self._stream.options = {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
        self.frames_written = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame of the writer's size."""
        if frame_rgb.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame of shape {frame_rgb.shape} does not match the writer size {self.size}")
        if self._even != self.size:
            frame_rgb = np.pad(frame_rgb, ((0, self._even[1] - self.size[1]), (0, self._even[0] - self.size[0]), (0, 0)),
                               mode="edge")
        # A copy: the encoder may hold the frame for look-ahead after this call returns, and callers
        # (renderers) reuse their output buffers.
        frame = av.VideoFrame.from_ndarray(np.array(frame_rgb, dtype=np.uint8, order="C"), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self, ok: bool = True) -> None:
        """Flush and close; with ok=False the partial file is discarded."""
        if self._container is None:
            return
        try:
            if ok:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
            if ok:
                self._atomic.__exit__(None, None, None)
            else:
                self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)
