"""Checkpoints in the hawor.ckpt format, written atomically, with everything an exact resume needs.

A checkpoint is a dict: ``state_dict`` (the regressor's keys, as in hawor.ckpt), ``hyper_parameters``
``{"cfg": training config as plain data}``, ``hawor_config`` (network sizes, the layout of
:meth:`HaworConfig.from_fixture_json`), ``global_step``, ``optimizer_states``, ``lr_schedulers``,
``scaler``, ``rng`` (python, numpy, torch, CUDA states), ``best_val_loss``. It is read back with
:func:`hawor.models.checkpoint.load_checkpoint` (no pickled code runs). ``torch.save`` writes to a
temporary name that is renamed only when complete, so a kill leaves the previous file intact.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from hawor.io.files import atomic_path


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy = state["numpy"]
    np.random.set_state((numpy[0], np.asarray(numpy[1], np.uint32), *numpy[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """``torch.save(payload)`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)
