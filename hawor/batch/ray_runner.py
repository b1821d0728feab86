"""The batch on a Ray cluster: one Ray task per video (no scheduler of our own).

Each task asks for ``task_cpus`` CPUs and ``task_gpus`` GPUs; Ray reruns a task whose worker process
or node is lost (``max_retries``), and :func:`hawor.batch.work.process_video` turns a bad video into
a failed row instead of an exception, so only worker loss is retried. Results go to the batch's
output folder, which must be a path every node can write (a shared file system).
"""
from __future__ import annotations

import re
import socket
from typing import Iterator

from hawor.batch.work import VideoJob, failed_row, process_video
from hawor.errors import HaworInputError

LEARNED_STAGES = ("detector", "hands", "camera", "scale", "infiller")


def _ray():
    try:
        import ray
    except ImportError:
        raise HaworInputError("--ray: Ray is not installed. Install the extra: pip install -e '.[ray]' "
                              "(or pip install ray), or leave --ray out to use local workers.") from None
    return ray


def connect(address: str | None):
    """Connect to a cluster (``auto``, ``host:port``, ``ray://...``; ``local`` starts one here) unless
    this process is already connected; returns the ray module."""
    ray = _ray()
    if not ray.is_initialized():
        if address and re.fullmatch(r"[\w.-]+:\d+", address):  # ray.init would retry a dead address for minutes
            host, port = address.rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=5).close()
            except OSError as exc:
                raise HaworInputError(f"--ray {address}: nothing answers there ({exc}). Start a cluster with "
                                      "`ray start --head` and pass its address, or --ray auto / --ray local.") from exc
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as exc:
            raise HaworInputError(f"--ray {address}: no Ray cluster there ({exc}). Start one with "
                                  "`ray start --head`, or pass --ray local.") from exc
    return ray


def default_task_gpus(ray, options: dict) -> float:
    """1 when the cluster has GPUs and some stage may take its learned backend, else 0."""
    learned = any(options.get(stage, "auto") != "embedded" for stage in LEARNED_STAGES)
    return 1.0 if learned and ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def run_ray(jobs: list[VideoJob], address: str | None, task_cpus: float, task_gpus: float | None,
            max_retries: int) -> Iterator[dict]:
    """Yield one summary row per job, in the order they finish."""
    ray = connect(address)
    gpus = default_task_gpus(ray, jobs[0].options) if task_gpus is None else task_gpus
    task = ray.remote(process_video).options(num_cpus=task_cpus, num_gpus=gpus, max_retries=max_retries,
                                             retry_exceptions=False, name="hawor_video")
    refs = {task.remote(job): job for job in jobs}
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        job = refs.pop(done[0])
        try:
            yield ray.get(done[0])
        except ray.exceptions.RayError as exc:
            yield failed_row(job, f"Ray task lost after {max_retries} retries: {type(exc).__name__}: {exc}")
