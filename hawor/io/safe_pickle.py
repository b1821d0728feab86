"""Unpickling that cannot run code: a pickle may only name the globals a policy admits.

A pickle names every class or function it needs (``find_class``) and the stock unpickler imports and
calls whatever it is told; that is how a weight file runs ``os.system``. Here each name goes through
a policy first and anything the policy does not admit is refused by name, before it is imported.

One mechanism for every pickle the project reads: MANO files, checkpoints (through
``torch.load(pickle_module=...)``), the YOLO ``detector.pt`` and object arrays in manifests.
"""
from __future__ import annotations

import importlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

# A policy maps (module, name) to the object to use, or None to refuse.
Policy = Callable[[str, str], object]

# What numpy arrays and scalars need (np.save of an object array; MANO pickles). Protocol-2 pickles
# spell builtins "__builtin__" and store array bytes through _codecs.encode.
NUMPY_GLOBALS = frozenset({
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.ndarray", "numpy.dtype", "_codecs.encode",
    "copyreg._reconstructor", "builtins.object",
})
_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global that the policy does not admit (it may be code)."""


def names_policy(names: Iterable[str]) -> Policy:
    """A policy admitting exactly the qualified names given (``"module.name"``), imported on first use.

    ``numpy.dtypes.*DType`` classes (the dtype of a pickled array on numpy >= 1.25) are admitted
    whenever ``numpy.dtype`` is.
    """
    allowed = frozenset(names)
    resolved: dict[str, object] = {}

    def policy(module: str, name: str):
        module = _ALIASES.get(module, module)
        qualified = f"{module}.{name}"
        if qualified not in allowed and not (module == "numpy.dtypes" and name.endswith("DType")
                                             and "numpy.dtype" in allowed):
            return None
        if qualified not in resolved:
            resolved[qualified] = getattr(importlib.import_module(module), name)
        return resolved[qualified]

    return policy


def any_policy(*policies: Policy) -> Policy:
    """The first answer of several policies (None when all refuse)."""
    def policy(module: str, name: str):
        for candidate in policies:
            found = candidate(module, name)
            if found is not None:
                return found
        return None

    return policy


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from ``policy``."""

    def __init__(self, file, policy: Policy, **kwargs):
        super().__init__(file, **kwargs)
        self.policy = policy

    def find_class(self, module: str, name: str):
        found = self.policy(module, name)
        if found is None:
            raise RefusedGlobal(f"refusing to load '{module}.{name}': this file may hold data, not code")
        return found


def _as_policy(allowed: Policy | Iterable[str]) -> Policy:
    return allowed if callable(allowed) else names_policy(allowed)


def restricted_loads(data: bytes, allowed: Policy | Iterable[str] = NUMPY_GLOBALS, **kwargs) -> object:
    """Unpickle ``data`` admitting only ``allowed`` (a policy or qualified names).

    Raises:
        RefusedGlobal for a name outside ``allowed``; pickle.UnpicklingError / EOFError for bad data.
    """
    return RestrictedUnpickler(io.BytesIO(data), _as_policy(allowed), **kwargs).load()


def torch_pickle_module(allowed: Policy | Iterable[str]):
    """A ``pickle_module`` for ``torch.load`` that unpickles through ``allowed``.

    torch.load reads zip checkpoints with ``pickle_module.Unpickler`` and the legacy and raw-pickle
    forms with ``pickle_module.load``, so both paths are restricted.
    """
    policy = _as_policy(allowed)

    class Unpickler(RestrictedUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, policy, **kwargs)

    class Module:
        __name__ = "hawor_restricted_pickle"

        @staticmethod
        def load(file, **kwargs):
            return Unpickler(file, **kwargs).load()

    Module.Unpickler = Unpickler
    return Module


def read_npy(f, source: str, allowed: Policy | Iterable[str] = NUMPY_GLOBALS) -> np.ndarray:
    """The array in an open .npy stream; object arrays go through the restricted unpickler.

    ``np.load(allow_pickle=True)`` would run any code an object array carries; this admits only
    ``allowed`` (default: numpy arrays and scalars inside plain dicts, lists, strings and numbers).

    Raises:
        RefusedGlobal for code; ValueError (naming ``source``) for a damaged or unsupported file.
    """
    version = np.lib.format.read_magic(f)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"{source} uses .npy format {version}; save it with numpy's default format")
    shape, fortran, dtype = read_header(f)
    if not dtype.hasobject:
        count = int(np.prod(shape))
        data = np.frombuffer(bytearray(f.read(count * dtype.itemsize)), dtype=dtype, count=count)
        return data.reshape(shape, order="F" if fortran else "C")
    array = restricted_loads(f.read(), allowed, encoding="latin1")
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(f"{source} does not hold the {shape} array its header announces")
    return array


def load_npz_objects(path: str | Path, key: str, allowed: Policy | Iterable[str] = NUMPY_GLOBALS) -> np.ndarray:
    """Array ``key`` of an .npz file, object arrays read by :func:`read_npy`.

    Raises:
        KeyError when the archive has no such array; RefusedGlobal for code; ValueError for a
        damaged file.
    """
    with zipfile.ZipFile(path) as archive:
        member = f"{key}.npy"
        if member not in archive.namelist():
            raise KeyError(key)
        with archive.open(member) as f:
            return read_npy(f, f"{path}: '{key}'", allowed)
