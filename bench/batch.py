"""Batch throughput on this machine: videos per hour with 1, 2, ... local workers (embedded defaults).

    python bench/batch.py                                       # 3 synthetic 5 s 720p30 clips, 1 and 2
                                                                # workers, with and without the world video
    python bench/batch.py --clips 2 --seconds 2 --vis_modes none   # a quick version, analysis only

Each (vis mode, worker count) runs the whole batch (run_batch of python -m hawor batch, a fresh output
folder, so nothing is skipped or cached); the wall time includes starting the worker processes. Also
reported: the CPU seconds the workers used per video and the load average before the run, since other
work on the machine stretches wall times; ``idle_estimate_videos_per_hour`` = what the workers' CPU
time allows when they get all cores (an upper bound). Prints the figures and writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hawor  # noqa: E402,F401
from hawor.batch import run_batch  # noqa: E402
from hawor.data.synthetic import generate_sequence  # noqa: E402

FOCAL = 1200.0  # the synthetic 720p clips' focal length (600 px at 640 wide, scaled)


def _cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once the pool has shut down
    return usage.ru_utime + usage.ru_stime


def measure(clips: Path, out: Path, options: dict, workers: int, frames: int) -> dict:
    load, cpu = os.getloadavg()[0], _cpu_seconds_of_children()
    start = time.perf_counter()
    rows = run_batch([str(clips)], out, options, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    cpu_per_video = (_cpu_seconds_of_children() - cpu) / len(rows)
    return {"vis_mode": options["vis_mode"], "workers": workers, "seconds": round(elapsed, 1),
            "videos_per_hour": round(3600 * len(rows) / elapsed),
            "video_hours_per_hour": round(len(rows) * frames / 30 / elapsed, 3),
            "cpu_seconds_per_video": round(cpu_per_video, 1),
            "idle_estimate_videos_per_hour": round(3600 * (os.cpu_count() or 1) / cpu_per_video),
            "pipeline_seconds_per_video": round(sum(r["seconds_total"] or 0 for r in rows) / len(rows), 1),
            "load_average_before": round(load, 2), "failed": [r["episode_id"] for r in rows if r["status"] != "done"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=3, help="number of clips in the batch")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each clip")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    p.add_argument("--vis_modes", nargs="+", default=["world", "none"], choices=("world", "none"),
                   help="world: the default world-view video; none: analysis only (--no_vis)")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    frames = int(round(30 * args.seconds))
    figures = {"clips": args.clips, "clip": f"synthetic 1280x720 @ 30 fps, {frames} frames", "cpus": os.cpu_count(),
               "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for k in range(args.clips):
            generate_sequence(work / "clips" / f"clip{k}", seed=20 + k, num_frames=frames, width=1280, height=720)
        for mode in args.vis_modes:
            for workers in args.workers:
                run = measure(work / "clips", work / f"out_{mode}_{workers}", {"img_focal": FOCAL, "vis_mode": mode},
                              workers, frames)
                figures["runs"].append(run)
                print(json.dumps(run), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
