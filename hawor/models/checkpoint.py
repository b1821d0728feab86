"""Reading checkpoints safely and loading them strictly.

Lightning ``.ckpt`` files keep the training config object (a yacs CfgNode or an omegaconf
DictConfig) under ``hyper_parameters``, which ``torch.load(weights_only=True)`` refuses. Loading
with ``weights_only=False`` would run any code a file carries. This reader unpickles tensors, plain
containers and numpy arrays, maps config objects to plain dicts, and refuses everything else.
"""
from __future__ import annotations

import functools
import pickle
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from hawor.errors import HaworInputError
from hawor.io.safe_pickle import NUMPY_GLOBALS, RefusedGlobal, any_policy, names_policy, torch_pickle_module

# Config-object classes are replaced by plain stand-ins; their content survives as dicts.
_CONFIG_MODULES = ("yacs", "omegaconf", "pytorch_lightning", "lightning", "lightning_fabric", "argparse")
_EXTRA_GLOBALS = NUMPY_GLOBALS | {
    "collections.defaultdict", "builtins.list", "builtins.dict", "builtins.tuple", "builtins.int",
    "builtins.float", "builtins.str", "builtins.bool", "builtins.frozenset", "builtins.slice",
}


class CheckpointMismatchError(HaworInputError):
    """A state dict that does not fit the network (missing, unexpected or mis-shaped keys)."""


class _ConfigStandIn(dict):
    """Receives a pickled config object: dict items stay, pickled attributes are kept aside."""

    def __setstate__(self, state):
        self.__dict__["pickled_state"] = state


def _checkpoint_policy():
    # torch's own weights-only allowlist (tensors, storages, dtypes, Size, OrderedDict, ...).
    from torch._weights_only_unpickler import _get_allowed_globals

    torch_globals = dict(_get_allowed_globals())

    def config_stand_in(module: str, name: str):
        return _ConfigStandIn if module.split(".")[0] in _CONFIG_MODULES else None

    return any_policy(lambda module, name: torch_globals.get(f"{module}.{name}"), names_policy(_EXTRA_GLOBALS),
                      config_stand_in)


@functools.lru_cache(maxsize=None)
def checkpoint_pickle_module():
    """The restricted ``pickle_module`` torch.load uses for checkpoints."""
    return torch_pickle_module(_checkpoint_policy())


def _to_plain(value):
    if isinstance(value, _ConfigStandIn):
        state = value.__dict__.get("pickled_state")
        content = dict(value)
        if not content and isinstance(state, dict):
            content = _omegaconf_content(state)
        return {k: _to_plain(v) for k, v in content.items()}
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_plain(v) for v in value)
    return value


def _omegaconf_content(state: dict):
    # omegaconf nodes pickle their payload under '_content' (containers) or '_val' (leaves).
    if "_content" in state:
        content = state["_content"]
        if isinstance(content, dict):
            return {k: _node_value(v) for k, v in content.items()}
        return content
    return state


def _node_value(node):
    if isinstance(node, _ConfigStandIn):
        state = node.__dict__.get("pickled_state")
        if isinstance(state, dict) and "_val" in state:
            return state["_val"]
        if isinstance(state, dict) and "_content" in state:
            inner = _omegaconf_content(state)
            return {k: _to_plain(v) for k, v in inner.items()} if isinstance(inner, dict) else inner
    return node


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict:
    """Read a Lightning ``.ckpt`` or a ``torch.save`` dict without running pickled code.

    Config objects inside (yacs CfgNode, omegaconf DictConfig, Lightning AttributeDict) come back as
    plain dicts. ``mmap=True`` maps tensor data lazily instead of reading it (fast checks of big files).

    Raises:
        HaworInputError naming the file: missing, truncated/corrupt, or holding code references.
    """
    path = Path(path)
    if not path.is_file():
        raise HaworInputError(f"checkpoint {path}: not found. See weights/README.md for where to put it.")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False,
                         pickle_module=checkpoint_pickle_module(), mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        if isinstance(exc, RefusedGlobal):
            raise HaworInputError(f"checkpoint {path}: {exc}. Only load checkpoints from a source you trust; "
                                  "this one was not loaded.") from exc
        raise HaworInputError(f"checkpoint {path}: not a readable checkpoint ({exc}). Download it again.") from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, AttributeError, KeyError) as exc:
        raise HaworInputError(f"checkpoint {path}: cannot be read ({type(exc).__name__}: {exc}); it is truncated "
                              "or not a PyTorch checkpoint. Download it again.") from exc
    return _to_plain(obj)


def extract_state_dict(obj: Mapping, key: str | None = None, source: str = "checkpoint") -> dict:
    """The tensor dict inside a loaded checkpoint: ``obj[key]`` if given, else ``state_dict`` or the
    object itself when it is already flat."""
    if key is not None:
        if key not in obj:
            raise HaworInputError(f"{source}: has no '{key}' entry (top-level keys: {sorted(obj)[:8]}); "
                                  "is it the right file?")
        obj = obj[key]
    elif "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise HaworInputError(f"{source}: holds no tensors; it is not a weight file.")
    return tensors


def strip_prefixes(state_dict: Mapping[str, torch.Tensor],
                   prefixes: Iterable[str] = ("module.", "model.")) -> dict[str, torch.Tensor]:
    """Remove leading wrapper prefixes (DataParallel ``module.``, Lightning ``model.``) and every
    ``_orig_mod.`` segment that torch.compile inserts."""
    prefixes = tuple(prefixes)
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key.replace("_orig_mod.", "")] = value
    return out


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           ignore_prefixes: Iterable[str] = (), source: str = "checkpoint",
                           assign: bool = False) -> None:
    """Load strictly over every key not under ``ignore_prefixes``; report mismatches by name.

    ``assign=True`` puts the given tensors into the module instead of copying (for modules built on
    the meta device, so a multi-GB network never exists twice in memory).

    Raises:
        CheckpointMismatchError listing the first missing, unexpected and mis-shaped keys.
    """
    ignore = tuple(ignore_prefixes)
    wanted = {k: v for k, v in module.state_dict().items() if not k.startswith(ignore)}
    given = {k: v for k, v in state_dict.items() if not k.startswith(ignore)}
    missing = [k for k in wanted if k not in given]
    unexpected = [k for k in given if k not in wanted]
    misshaped = [f"{k}: file {tuple(given[k].shape)} vs network {tuple(v.shape)}"
                 for k, v in wanted.items() if k in given and tuple(given[k].shape) != tuple(v.shape)]
    if missing or unexpected or misshaped:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{label} {len(items)}: {', '.join(items[:5])}{more}")
        raise CheckpointMismatchError(f"{source}: does not match {type(module).__name__} — " + "; ".join(parts)
                                      + ". Is it the right file, and does its config match the weights?")
    module.load_state_dict(given, strict=False, assign=assign)
