"""Reading MANO-format model files (.pkl or .npz) without chumpy and without running pickled code.

The official MANO pickles store some arrays as ``chumpy.ch.Ch`` objects; chumpy does not import on
Python >= 3.11. A restricted unpickler admits only numpy arrays, scipy sparse matrices, plain
containers and chumpy nodes (turned into their stored ndarray); any other class is refused.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

from hawor.errors import HaworInputError
from hawor.io.safe_pickle import NUMPY_GLOBALS, any_policy, names_policy, restricted_loads

_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix"}

REQUIRED_KEYS = ("v_template", "f", "weights", "kintree_table", "J_regressor", "shapedirs", "posedirs")


class _ChumpyNode:
    """Stand-in for any chumpy class: keeps the pickled state so the array can be taken out."""

    def __setstate__(self, state):
        self.state = state


def _mano_policy(module: str, name: str):
    if module.startswith("chumpy"):
        return _ChumpyNode
    if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
        return getattr(scipy.sparse, name)
    return None


_POLICY = any_policy(_mano_policy, names_policy(NUMPY_GLOBALS))


def _plain(value, key: str, path: Path):
    if isinstance(value, _ChumpyNode):
        state = value.state
        if isinstance(state, dict) and isinstance(state.get("x"), np.ndarray):
            return state["x"]
        raise HaworInputError(f"MANO file {path}: entry '{key}' is a chumpy expression, not a stored array; "
                              "convert the file once with an environment that has chumpy, or use the "
                              "official MANO_RIGHT.pkl / MANO_LEFT.pkl from the MANO website.")
    if scipy.sparse.issparse(value):
        return value.toarray()
    return value


def read_mano_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MANO-format model file into plain numpy arrays.

    Accepts the official pickles (chumpy entries included), plain-numpy pickles and .npz files.
    Checks that the arrays have MANO's layout: v_template (V, 3), f (F, 3), weights (V, 16),
    kintree_table (2, 16), J_regressor (16, V), shapedirs (V, 3, >=10), posedirs (V, 3, 135).

    Raises:
        HaworInputError naming the file and what is wrong (missing, truncated, wrong layout).
    """
    path = Path(path)
    if not path.is_file():
        raise HaworInputError(f"MANO file {path}: not found. Download MANO from the MANO website and place "
                              "MANO_RIGHT.pkl at _DATA/data/mano/ and MANO_LEFT.pkl at _DATA/data_left/mano_left/, "
                              "or use the open hand (--hand_model open).")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        else:
            raw = restricted_loads(path.read_bytes(), _POLICY, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, OSError, AttributeError, IndexError, TypeError) as exc:
        raise HaworInputError(f"MANO file {path}: cannot be read ({type(exc).__name__}: {exc}). The file is "
                              "truncated or not a MANO model; download it again.") from exc
    if not isinstance(raw, dict):
        raise HaworInputError(f"MANO file {path}: holds a {type(raw).__name__}, expected a dict of arrays.")
    data = {k: _plain(v, k, path) for k, v in raw.items()}
    _check_layout(data, path)
    return data


def _check_layout(data: dict, path: Path) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise HaworInputError(f"MANO file {path}: missing {missing}; a MANO model needs {list(REQUIRED_KEYS)}.")
    num_verts = np.shape(data["v_template"])[0]
    expected = {
        "v_template": (num_verts, 3), "weights": (num_verts, 16), "kintree_table": (2, 16),
        "J_regressor": (16, num_verts), "posedirs": (num_verts, 3, 135),
    }
    for key, shape in expected.items():
        if tuple(np.shape(data[key])) != shape:
            raise HaworInputError(f"MANO file {path}: '{key}' has shape {tuple(np.shape(data[key]))}, "
                                  f"expected {shape}. The file is not a MANO hand model.")
    shapedirs = np.shape(data["shapedirs"])
    if len(shapedirs) != 3 or shapedirs[:2] != (num_verts, 3) or shapedirs[2] < 10:
        raise HaworInputError(f"MANO file {path}: 'shapedirs' has shape {shapedirs}, expected ({num_verts}, 3, >=10).")
    if np.ndim(data["f"]) != 2 or np.shape(data["f"])[1] != 3:
        raise HaworInputError(f"MANO file {path}: 'f' has shape {np.shape(data['f'])}, expected (F, 3) triangles.")
    if num_verts <= max(744, 671):
        raise HaworInputError(f"MANO file {path}: {num_verts} vertices; MANO's fingertip vertices need 778.")
