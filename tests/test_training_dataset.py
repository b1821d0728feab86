"""Training windows as tensors: crops as at inference, mirroring, augmentation drawn once per window and
reproducible by key, and the resumable sharded stream of keys."""
from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
import torch

from hawor.configs import ConfigNode
from hawor.data.manifest import load_manifest
from hawor.estimation.crop import crop_hand, normalize_crop
from hawor.geometry import axis_angle_to_matrix, mirror_axis_angle
from hawor.training.dataset import WindowDataset, WindowStream, plan_windows
from test_manifest import _json, _records

NO_AUG = {"SCALE_FACTOR": 0.0, "ROT_FACTOR": 0, "TRANS_FACTOR": 0.0, "COLOR_SCALE": 0.0, "ROT_AUG_RATE": 0.0,
          "TRANS_AUG_RATE": 0.0, "DO_FLIP": False, "FLIP_AUG_RATE": 0.0, "EXTREME_CROP_AUG_RATE": 0.0}


@pytest.fixture
def manifest(tmp_path):
    records = _records(tmp_path, frames=18, sequences=("r", "l"))
    for r in records:
        r["handedness"] = "left" if r["sequence_id"] == "l" else "right"
    return load_manifest(_json(tmp_path, records), tmp_path)


def _dataset(manifest, aug=None):
    windows, _ = plan_windows(manifest, 16, 1)
    return WindowDataset(manifest, windows, 32, 24, None if aug is None else ConfigNode({**NO_AUG, **aug}), seed=3)


def test_crops_and_ground_truth_as_at_inference(manifest):
    data = _dataset(manifest)
    right, left = (next(k for k in range(len(data)) if manifest.handedness[data.windows[k][0]] == h) for h in (1, 0))
    item = data[right]
    row = data.windows[right][0]
    image = data._frame(row)
    expected = normalize_crop(crop_hand(image, manifest.center[row], manifest.scale[row], 32), 24)
    torch.testing.assert_close(item["images"][0], expected)
    side = 200 * manifest.scale[row]
    np.testing.assert_allclose(item["j2d"][0].numpy(), (manifest.j2d[row] - manifest.center[row]) / side, rtol=1e-5)
    item = data[left]
    row = data.windows[left][0]
    assert item["mirrored"].all()
    mirrored = crop_hand(image, manifest.center[row], manifest.scale[row], 32, mirror=True)
    torch.testing.assert_close(item["images"][0], normalize_crop(mirrored, 24))
    expected = axis_angle_to_matrix(mirror_axis_angle(torch.as_tensor(manifest.full_pose[row]).reshape(16, 3)))
    torch.testing.assert_close(item["rotmat"][0], expected.float())
    np.testing.assert_allclose(item["j3d"][0, :, 0].numpy(), -manifest.j3d[row, :, 0], rtol=1e-5)


def test_augmentation_is_one_draw_per_window_and_reproducible(manifest):
    aug = {"SCALE_FACTOR": 0.3, "ROT_FACTOR": 30, "ROT_AUG_RATE": 1.0, "TRANS_FACTOR": 0.1, "TRANS_AUG_RATE": 1.0,
           "COLOR_SCALE": 0.2, "DO_FLIP": True, "FLIP_AUG_RATE": 0.5}
    data = _dataset(manifest, {**aug, "EXTREME_CROP_AUG_RATE": 0.5})
    n = len(data)
    a, b = data[4], data[4]
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert not torch.equal(a["images"], data[4 + n]["images"])  # the next epoch draws anew
    data = _dataset(manifest, aug)
    for key in range(3 * n):
        item, rows = data[key], data.windows[key % n]
        ratio = item["scale"].numpy() / manifest.scale[rows]
        assert np.ptp(ratio) < 1e-5 and abs(ratio[0] - 1) > 1e-4  # one scale draw for the whole window
    flips = {bool(data[k]["mirrored"][0]) != (manifest.handedness[data.windows[k % n][0]] == 0) for k in range(40)}
    assert flips == {True, False}


def test_stream_resumes_and_shards():
    full = list(islice(iter(WindowStream(10, seed=1)), 35))
    assert list(islice(iter(WindowStream(10, seed=1, start=13)), 22)) == full[13:]
    assert sorted(k % 10 for k in full[:10]) == list(range(10))  # each epoch visits every window once
    ranks = [list(islice(iter(WindowStream(10, seed=1, rank=r, world=2)), 5)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == sorted(full[:10])
