"""One video of a batch: run the pipeline into its result folder, add its Parquet row, return its summary row.

:func:`process_video` is what a local worker process or a Ray task runs. It never raises for a bad
video: the error becomes the row's ``error`` (and the traceback goes to ``<OUT>/logs/<id>.log``).
A finished video leaves ``batch.json`` (its settings key) in its result folder; a later batch with
the same settings skips it, and one interrupted part-way resumes from the pipeline's stage cache.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from hawor.batch.inputs import BatchItem
from hawor.errors import HaworInputError

DATASET = "dataset"
LOGS = "logs"
MARKER = "batch.json"


@dataclass(frozen=True)
class VideoJob:
    """A batch item with the batch's output folder and RunOptions fields (without output_dir)."""

    item: BatchItem
    output_dir: Path
    options: dict

    @property
    def run_dir(self) -> Path:
        """The ``output_dir`` given to the pipeline: OUT itself when the id is the file's own name (the
        result folder is then ``OUT/<id>``, as demo.py --output_dir OUT writes it), else ``OUT/<id>``."""
        name = self.item.video.name.split(".")[0]
        return self.output_dir if self.item.episode_id == name else self.output_dir / self.item.episode_id

    @property
    def folder(self) -> Path:
        from hawor.pipeline.run import result_folder

        return result_folder(self.item.video, self.run_dir)

    @property
    def parquet(self) -> Path:
        return self.output_dir / DATASET / f"{self.item.episode_id}.parquet"

    @property
    def log(self) -> Path:
        return self.output_dir / LOGS / f"{self.item.episode_id}.log"

    def settings_key(self) -> str:
        """Changes when the video file, a setting or the hawor version changes."""
        from hawor.pipeline.cache import file_identity, stage_key

        options = {k: v for k, v in self.options.items() if k != "force"}
        return stage_key("batch", file_identity(self.item.video), options, self.item.overrides(),
                         self.item.episode_id)

    def finished_summary(self) -> dict | None:
        """summary.json of an earlier run with the same settings, or None when the video must run."""
        marker, summary = self.folder / MARKER, self.folder / "summary.json"
        if self.options.get("force") or not (marker.is_file() and summary.is_file() and self.parquet.is_file()):
            return None
        try:
            if json.loads(marker.read_text()).get("settings_key") != self.settings_key():
                return None
            return json.loads(summary.read_text())
        except (OSError, ValueError):
            return None


def summary_row(job: VideoJob, status: str, summary: dict | None = None, error: str = "", trace: str = "",
                wall_s: float = 0.0) -> dict:
    """One row of batch_summary: status, frames, seconds per stage, backends, warnings, error."""
    summary = summary or {}
    stages = summary.get("stages", {})
    row = {"episode_id": job.item.episode_id, "video": str(job.item.video), "status": status,
           "result_folder": str(job.folder), "frames": summary.get("num_frames"), "fps": summary.get("fps"),
           "seconds_total": summary.get("timings_s", {}).get("total"), "wall_s": round(wall_s, 3),
           "backends": ", ".join(f"{name}:{s['backend']}" for name, s in stages.items()),
           "warnings": list(summary.get("warnings", [])), "error": error, "traceback": trace,
           "worker": f"{socket.gethostname()}:{os.getpid()}" if status != "skipped" else ""}
    row.update({f"seconds_{name}": s.get("seconds") for name, s in stages.items()})
    return row


def failed_row(job: VideoJob, error: str) -> dict:
    """The row of a video whose worker was lost (no exception reached :func:`process_video`)."""
    row = summary_row(job, "failed", error=error)
    row["worker"] = ""
    return row


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (Python and native code: the stage progress bars and
    library messages) to ``path`` while the video runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _frame_range(item: BatchItem) -> dict:
    """start / end in source frames from the manifest (seconds converted with the video's frame rate)."""
    out = {k: getattr(item, k) for k in ("start", "end") if getattr(item, k) is not None}
    if item.start_s is not None or item.end_s is not None:
        from hawor.io.video import probe_video

        rate = probe_video(item.video).fps
        if item.start_s is not None:
            out["start"] = int(round(item.start_s * rate))
        if item.end_s is not None:
            out["end"] = int(round(item.end_s * rate))
    return out


def process_video(job: VideoJob) -> dict:
    """Run one video (see the module docstring); returns its summary row."""
    started = time.perf_counter()
    with _output_to(job.log) as log:
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {job.item.video} (pid {os.getpid()})", flush=True)
        try:
            from hawor.io.files import write_json_atomic
            from hawor.pipeline.parquet import append_to_dataset
            from hawor.pipeline.run import RunOptions, run

            overrides = {**({"img_focal": job.item.img_focal} if job.item.img_focal else {}),
                         **_frame_range(job.item)}
            options = RunOptions(**{**job.options, **overrides, "output_dir": job.run_dir})
            result = run(job.item.video, options)
            append_to_dataset(result, job.parquet.parent, job.item.episode_id, str(job.item.video))
            write_json_atomic(job.folder / MARKER, {"settings_key": job.settings_key(),
                                                    "episode_id": job.item.episode_id, "video": str(job.item.video)})
            return summary_row(job, "done", result.summary, wall_s=time.perf_counter() - started)
        except Exception as exc:  # one bad video never stops the batch: its error is its row
            trace = traceback.format_exc()
            log.write(trace)
            error = str(exc) if isinstance(exc, HaworInputError) else f"{type(exc).__name__}: {exc}"
            return summary_row(job, "failed", error=error, trace=trace, wall_s=time.perf_counter() - started)
