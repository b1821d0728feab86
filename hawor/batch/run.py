"""The batch driver: inputs -> jobs -> skipped / run locally or on Ray -> summary files."""
from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from hawor.batch.inputs import expand_inputs
from hawor.batch.local import default_workers, run_local
from hawor.batch.ray_runner import connect, run_ray
from hawor.batch.summary import write_summary
from hawor.batch.work import DATASET, VideoJob, summary_row


def run_batch(inputs: list[str], output_dir: str | Path, options: dict, workers: int | None = None,
              ray_address: str | None = None, task_cpus: float = 2, task_gpus: float | None = None,
              max_retries: int = 3, progress: bool = True) -> list[dict]:
    """Process every video named by ``inputs`` into ``output_dir``; returns the summary rows (input order).

    options: RunOptions fields (the demo's option names) except ``output_dir``; checked before any
    video runs (HaworInputError). workers: local processes (default :func:`default_workers`);
    ray_address: run one Ray task per video instead (``auto``, ``host:port``, ``ray://...``, ``local``;
    a process already connected to Ray keeps its connection), with ``task_cpus`` / ``task_gpus``
    (None: 1 GPU when the cluster has GPUs and a learned stage may run) and ``max_retries`` on worker loss.
    """
    from hawor.pipeline.run import RunOptions

    RunOptions(**options)  # a bad option or an unreachable cluster fails the batch before any video runs
    if ray_address is not None:
        connect(ray_address)
    output_dir = Path(output_dir)
    items = expand_inputs(list(inputs), exclude=output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    jobs = [VideoJob(item, output_dir, dict(options)) for item in items]
    rows, todo = {}, []
    for job in jobs:
        summary = job.finished_summary()
        if summary is not None:
            rows[job.item.episode_id] = summary_row(job, "skipped", summary)
        else:
            todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(rows), unit="video", desc="batch", disable=not progress, file=sys.stderr)
    try:
        if todo:
            results = (run_ray(todo, ray_address, task_cpus, task_gpus, max_retries) if ray_address is not None
                       else run_local(todo, workers or default_workers()))
            for row in results:
                rows[row["episode_id"]] = row
                bar.update(1)
                bar.set_postfix(failed=sum(r["status"] == "failed" for r in rows.values()), refresh=False)
    finally:
        bar.close()
        ordered = [rows[job.item.episode_id] for job in jobs if job.item.episode_id in rows]
        write_summary(ordered, output_dir)
        for stale in (output_dir / DATASET).glob("*.tmp-*"):  # left by a worker killed mid-write
            stale.unlink(missing_ok=True)
    return ordered

