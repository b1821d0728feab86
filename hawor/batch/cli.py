"""``python -m hawor batch``: flags and entry point.

Exit 0: every video done or skipped; 1: some video failed (the others ran); 2: bad input.
"""
from __future__ import annotations

import argparse
import sys

from hawor.cli import add_run_options, run_options_dict

DESCRIPTION = """Run the pipeline (the stages and options of demo.py) over many videos.

INPUT: video files, folders (searched recursively), globs ("data/**/*.mp4") or manifests (.csv,
.parquet, .jsonl with a `video` column and optional episode_id, img_focal, start/end (frames),
start_s/end_s (seconds)). Writes OUT/<episode_id>/ per video, OUT/dataset/<episode_id>.parquet
(one row per video), OUT/logs/<episode_id>.log and OUT/batch_summary.parquet / .txt.
Rerunning skips finished videos and resumes interrupted ones from their stage cache."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, folders, globs or manifests")
    parser.add_argument("--output_dir", required=True, help="where the result folders and the summary go")
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes (default: one per 4 cores, at least 1)")
    ray = parser.add_argument_group("Ray (pip install -e '.[ray]')")
    ray.add_argument("--ray", default=None, metavar="ADDRESS",
                     help="run one Ray task per video on this cluster: auto, HOST:PORT, ray://HOST:PORT, or local")
    ray.add_argument("--task_cpus", type=float, default=2, help="CPUs each video's task asks for (default 2)")
    ray.add_argument("--task_gpus", type=float, default=None,
                     help="GPUs each task asks for (default: 1 when the cluster has GPUs and a learned stage may run)")
    ray.add_argument("--max_retries", type=int, default=3, help="reruns of a task whose worker was lost (default 3)")
    add_run_options(parser)


def main(args: argparse.Namespace) -> int:
    from hawor.batch.run import run_batch
    from hawor.batch.summary import format_table
    from hawor.errors import HaworInputError

    if args.workers is not None and args.workers < 1:
        print(f"error: --workers {args.workers}: must be at least 1.", file=sys.stderr)
        return 2
    try:
        options = {k: v for k, v in run_options_dict(args).items() if k != "output_dir"}  # set per video
        rows = run_batch(args.inputs, args.output_dir, options, workers=args.workers,
                         ray_address=args.ray, task_cpus=args.task_cpus, task_gpus=args.task_gpus,
                         max_retries=args.max_retries)
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(f"summary: {args.output_dir}/batch_summary.parquet, {args.output_dir}/batch_summary.txt; "
          f"rows: {args.output_dir}/dataset/")
    return 1 if any(row["status"] == "failed" for row in rows) else 0
