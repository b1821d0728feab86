"""The one restricted unpickler: data comes back, code is refused before it runs."""
import os
import pickle

import numpy as np
import pytest

from hawor.io.safe_pickle import RefusedGlobal, load_npz_objects, restricted_loads


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_object_arrays_of_plain_data_round_trip(tmp_path):
    samples = [{"img_path": "a.jpg", "bbox": np.arange(4.0), "frame_id": 3, "score": np.float64(0.5)},
               {"img_path": "b.jpg", "bbox": np.ones(4), "frame_id": 4, "tags": ["x", 1.5]}]
    path = tmp_path / "m.npz"
    np.savez(path, samples=np.array(samples, dtype=object), plain=np.asfortranarray(np.arange(6.0).reshape(2, 3)))
    loaded = load_npz_objects(path, "samples")
    assert loaded[0]["img_path"] == "a.jpg" and np.array_equal(loaded[0]["bbox"], np.arange(4.0))
    assert loaded[1]["tags"] == ["x", 1.5] and loaded[0]["score"] == 0.5
    plain = load_npz_objects(path, "plain")
    assert np.array_equal(plain, np.arange(6.0).reshape(2, 3))
    plain[0, 0] = 7.0  # callers get a writable array
    with pytest.raises(KeyError):
        load_npz_objects(path, "missing")


def test_code_in_an_object_array_or_a_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.npz"
    np.savez(path, samples=np.array([{"x": _RunsCode(marker)}], dtype=object))
    with pytest.raises(RefusedGlobal, match="system"):
        load_npz_objects(path, "samples")
    with pytest.raises(RefusedGlobal):
        restricted_loads(pickle.dumps(_RunsCode(marker)))
    assert not marker.exists()
    assert restricted_loads(pickle.dumps({"a": [1, 2.0, "b"]})) == {"a": [1, 2.0, "b"]}
