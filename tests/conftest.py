"""Test set-up: offline defaults before anything else, and small shared builders."""
import os
import pickle
import sys
import types

import hawor  # noqa: F401  (sets YOLO_OFFLINE, HF_HUB_OFFLINE, PYOPENGL_PLATFORM, ...)
import numpy as np
import pytest
import torch

from hawor.compat.verify import COMPAT_DATA_DIR as COMPAT_DIR  # noqa: F401  (shipped: tests/data/compat)
from hawor.compat.verify import DEFAULT_FIXTURE_DIR as FIXTURES_DIR  # noqa: F401

torch.set_num_threads(min(2, os.cpu_count() or 1))


def make_mano_layout(num_verts: int = 778, seed: int = 0) -> dict:
    """A small random model with MANO's array layout (not a hand; for IO and layout tests)."""
    rng = np.random.default_rng(seed)
    parents = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
    kintree = np.stack([np.where(parents < 0, 4294967295, parents), np.arange(16)]).astype(np.int64)
    weights = rng.random((num_verts, 16))
    J_regressor = rng.random((16, num_verts))
    return {
        "v_template": rng.normal(scale=0.05, size=(num_verts, 3)),
        "f": rng.integers(0, num_verts, size=(1538, 3)).astype(np.uint32),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": kintree,
        "J_regressor": J_regressor / J_regressor.sum(1, keepdims=True),
        "shapedirs": rng.normal(scale=1e-3, size=(num_verts, 3, 10)),
        "posedirs": rng.normal(scale=1e-4, size=(num_verts, 3, 135)),
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
    }


class _Ch:
    """Pickles like chumpy.ch.Ch: a class at that import path whose state holds the array in 'x'."""

    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        return {"x": self.x, "_cache": {}}


def write_chumpy_style_pkl(path, data: dict, chumpy_keys=("shapedirs", "v_template", "J_regressor")) -> None:
    """Write ``data`` as the official MANO pickles are laid out (some arrays as chumpy objects,
    J_regressor as a scipy sparse matrix), without chumpy being installed."""
    import scipy.sparse

    ch_module = types.ModuleType("chumpy.ch")
    _Ch.__module__, _Ch.__qualname__ = "chumpy.ch", "Ch"
    ch_module.Ch = _Ch
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = ch_module
    try:
        out = dict(data)
        out["J_regressor"] = scipy.sparse.csc_matrix(out["J_regressor"])
        for key in chumpy_keys:
            if key != "J_regressor":
                out[key] = _Ch(out[key])
        with open(path, "wb") as f:
            pickle.dump(out, f, protocol=2)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.fixture
def mano_layout():
    return make_mano_layout()


def write_audio_only(path) -> None:
    """An .m4a/.mp4 with an AAC track and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for _ in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_sliding_texture(path, seed: int = 0, num_frames: int = 12):
    """A 320x240 clip of a random texture sliding sideways, no hands: the fastest clip that runs every stage."""
    from hawor.io.video import VideoWriter

    rng = np.random.default_rng(seed)
    texture = np.kron(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    with VideoWriter(path, 30, (320, 240)) as writer:
        for i in range(num_frames):
            writer.write(np.ascontiguousarray(texture[20:260, 3 * i:3 * i + 320]))
    return path
