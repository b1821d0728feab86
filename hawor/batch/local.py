"""Parallel workers on one machine: a pool of processes, one video at a time each.

Processes, not threads: every stage holds the GIL in parts, and a crash in native code (a decoder,
an out-of-memory kill) then takes down one worker, not the batch. A worker lost that way fails its
pool; the videos it took down are retried in a fresh pool, and one lost ``MAX_RETRIES + 1`` times
is recorded as failed.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from hawor.batch.work import VideoJob, failed_row, process_video

MAX_RETRIES = 2


def default_workers(cpus: int | None = None) -> int:
    """One worker per 4 cores (at least 1): each video's stages already use several cores (the
    landmark models run on every core, pycolmap maps chunks side by side), so more workers than
    that mostly compete for the same cores and memory (docs/batch.md has the measurements)."""
    return max(1, (cpus or os.cpu_count() or 1) // 4)


def _limit_threads(threads: int) -> None:
    # before torch / OpenCV load in the fresh process: their pools then fit the worker's share
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def run_local(jobs: list[VideoJob], workers: int) -> Iterator[dict]:
    """Yield one summary row per job, in the order they finish."""
    pending, lost = list(jobs), Counter()
    threads = max(1, (os.cpu_count() or 1) // workers)
    while pending:
        context = multiprocessing.get_context("spawn")  # no fork of a parent holding torch threads
        with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                 initializer=_limit_threads, initargs=(threads,)) as pool:
            futures = {pool.submit(process_video, job): job for job in pending}
            pending = []
            for future in as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except BrokenProcessPool:
                    lost[job.item.episode_id] += 1
                    if lost[job.item.episode_id] > MAX_RETRIES:
                        yield failed_row(job, f"worker process died {lost[job.item.episode_id]} times "
                                              "(a crash in native code or out of memory); see its log")
                    else:
                        pending.append(job)
