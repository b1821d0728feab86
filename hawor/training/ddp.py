"""Multi-process training with torch DistributedDataParallel.

``torchrun`` (or ``python -m torch.distributed.run``) sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR;
each process then drives one GPU (NCCL) or, on the CPU, one process of the gloo backend. Multi-node runs
use torchrun's own options (``--nnodes``, ``--rdzv-endpoint``). ``scripts/train_hawor.py --num-gpus N``
without torchrun starts N local processes through it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hawor.errors import HaworInputError


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def under_launcher() -> bool:
    """True inside a process started by torchrun."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init_distributed(device: str = "auto") -> Distributed:
    """Join the process group when started by torchrun; pick this process's device.

    ``device``: "auto" (CUDA when available), "cpu" or "cuda". CUDA processes use NCCL, CPU ones gloo.
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if not under_launcher() or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed(device=torch.device("cuda" if use_cuda else "cpu"))
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise HaworInputError(f"process {local} of {world} has no GPU: {torch.cuda.device_count()} visible; "
                                  "lower --num-gpus (or GENERAL.NUM_GPUS) or pass --device cpu.")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(rank, world, local, torch.device(f"cuda:{local}" if use_cuda else "cpu"))


def launch_local(num_processes: int, script: str, argv: list[str]) -> int:
    """Run ``script argv`` in ``num_processes`` local processes through torchrun; returns its exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={num_processes}",
               script, *argv]
    return subprocess.call(command)
