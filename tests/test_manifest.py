"""Manifest reading and checking (hawor.data.manifest) and window planning, on small hand-made files."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from hawor.data.manifest import estimate_focal, load_manifest
from hawor.errors import HaworInputError
from hawor.training.dataset import plan_windows

WINDOW = 16


def _records(tmp_path, frames=20, sequences=("a",), width=64, height=48):
    (tmp_path / "img").mkdir(exist_ok=True)
    image = np.full((height, width, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    records = []
    for seq in sequences:
        for i in range(frames):
            name = f"img/{seq}_{i:03d}.jpg"
            cv2.imwrite(str(tmp_path / name), image)
            records.append({
                "img_path": name, "sequence_id": seq, "frame_id": i, "bbox": [10.0, 8.0, 40.0, 36.0],
                "gt_cam_j2d": rng.uniform(10, 40, (21, 2)).tolist(),
                "gt_cam_full_pose": rng.normal(0, 0.2, 48).tolist(),
                "gt_cam_betas": np.zeros(10).tolist(), "gt_j3d_wo_trans": rng.normal(0, 0.05, (21, 3)).tolist(),
                "handedness": 1,
            })
    return records


def _json(tmp_path, records, name="m.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"samples": records}))
    return path


def test_three_forms_read_the_same(tmp_path):
    records = _records(tmp_path)
    from_json = load_manifest(_json(tmp_path, records), tmp_path)
    objects = tmp_path / "objects.npz"
    np.savez(objects, samples=np.array([{k: np.asarray(v) if isinstance(v, list) else v for k, v in r.items()}
                                        for r in records], dtype=object))
    stacked = tmp_path / "stacked.npz"
    np.savez(stacked, **{k: np.array([r[k] for r in records]) for k in records[0]})
    for other in (load_manifest(objects, tmp_path), load_manifest(stacked, tmp_path)):
        assert other.img_path == from_json.img_path
        np.testing.assert_allclose(other.j2d, from_json.j2d)
        np.testing.assert_allclose(other.center, from_json.center)
        np.testing.assert_allclose(other.scale, from_json.scale)
    # box (10, 8, 40, 36): centre (25, 22), side 1.2 * 30 / 200 as at inference; intrinsics by the stated rule
    np.testing.assert_allclose(from_json.center[0], [25, 22])
    assert from_json.scale[0] == pytest.approx(1.2 * 30 / 200)
    np.testing.assert_allclose(from_json.img_center[0], [32, 24])
    assert from_json.img_focal[0] == pytest.approx(estimate_focal(64, 48)) == pytest.approx(60.0)


def test_center_scale_and_named_handedness(tmp_path):
    records = _records(tmp_path, frames=2)
    for r in records:
        del r["bbox"]
        r.update(center=[20.0, 20.0], scale=0.2, handedness="left", img_focal=500.0, img_center=[30.0, 20.0])
    m = load_manifest(_json(tmp_path, records), tmp_path)
    assert m.handedness.tolist() == [0, 0] and m.scale.tolist() == [0.2, 0.2] and m.img_focal[0] == 500.0


@pytest.mark.parametrize("case, field, message", [
    ("missing", "gt_cam_betas", "missing"),
    ("shape", "gt_cam_j2d", r"shape \(21, 3\), expected \(21, 2\)"),
    ("nan", "gt_cam_full_pose", "NaN"),
    ("image", "img_path", "not found"),
    ("nobox", "bbox", "missing"),
])
def test_bad_samples_name_manifest_sample_and_field(tmp_path, case, field, message):
    records = _records(tmp_path, frames=5)
    bad = records[3]
    if case == "missing":
        del bad["gt_cam_betas"]
    elif case == "shape":
        bad["gt_cam_j2d"] = np.zeros((21, 3)).tolist()
    elif case == "nan":
        bad["gt_cam_full_pose"][7] = float("nan")
    elif case == "image":
        bad["img_path"] = "img/nope.jpg"
    else:
        del bad["bbox"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"samples": records}).replace("NaN", "NaN"))
    with pytest.raises(HaworInputError, match=rf"manifest {path}: sample 3: field '{field}': .*{message}"):
        load_manifest(path, tmp_path)


def test_unlabelled_2d_joints_are_counted_not_errors(tmp_path):
    records = _records(tmp_path, frames=3)
    records[1]["gt_cam_j2d"][4] = [float("nan"), float("nan")]
    m = load_manifest(_json(tmp_path, records), tmp_path)
    assert m.notes["unlabelled 2D joints (NaN)"] == 1


def test_empty_manifest_and_bad_files(tmp_path):
    with pytest.raises(HaworInputError, match="holds no samples"):
        load_manifest(_json(tmp_path, []), tmp_path)
    with pytest.raises(HaworInputError, match="not found"):
        load_manifest(tmp_path / "none.npz")
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(HaworInputError, match="g.npz: not a readable NPZ"):
        load_manifest(garbage)


class _Payload:
    """Unpickling this calls os.mkdir: a stand-in for code hidden in a manifest."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_npz_holding_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    records = _records(tmp_path, frames=2)
    records[0]["gt_cam_betas"] = _Payload(str(marker))
    path = tmp_path / "evil.npz"
    np.savez(path, samples=np.array(records, dtype=object))
    with pytest.raises(HaworInputError, match=rf"manifest {path}: field 'samples': refusing to load 'posix.mkdir'"):
        load_manifest(path, tmp_path)
    assert not marker.exists()


def test_windows_runs_gaps_and_short_sequences(tmp_path, caplog):
    records = _records(tmp_path, frames=40, sequences=("long", "short"))
    records = [r for r in records if not (r["sequence_id"] == "long" and r["frame_id"] == 20)]  # a gap
    records = [r for r in records if not (r["sequence_id"] == "short" and r["frame_id"] >= 10)]
    m = load_manifest(_json(tmp_path, records), tmp_path)
    windows, report = plan_windows(m, WINDOW, stride=2)
    # "long" has runs 0-19 and 21-39 (20 and 19 frames); "short" 10 frames, skipped and counted
    assert report["short runs skipped"] == 1 and report["samples in short runs"] == 10
    assert "skipped 1 run(s)" in caplog.text and "'sequence_id' = 'short'" in caplog.text
    frames = m.frame_id[windows]
    assert (np.diff(frames, axis=1) == 1).all() and (m.sequence_id[windows] == "long").all()
    assert frames[:, 0].tolist() == [0, 2, 4, 21, 23, 24]  # the last window of a run ends on its last frame
    only_short = [r for r in records if r["sequence_id"] == "short"]
    short = load_manifest(_json(tmp_path, only_short, "short.json"), tmp_path)
    with pytest.raises(HaworInputError, match=r"short.json: sample 0: field 'sequence_id': no sequence has 16"):
        plan_windows(short, WINDOW, 1)


def test_duplicate_frames_are_an_error(tmp_path):
    records = _records(tmp_path, frames=20)
    records[5]["frame_id"] = 4
    m = load_manifest(_json(tmp_path, records), tmp_path)
    with pytest.raises(HaworInputError, match=r"sample 5: field 'frame_id': frame 4 .* appears twice"):
        plan_windows(m, WINDOW, 1)
