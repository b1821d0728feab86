"""The Parquet export: one row per video with the per-frame arrays as list columns, read back into a Result."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import hawor.pipeline as hp
from hawor.data.synthetic import generate_sequence
from hawor.errors import HaworInputError
from hawor.pipeline.parquet import append_to_dataset, read_result_parquet, read_rows, write_result_parquet

NUM_FRAMES = 20
ISSUE_COLUMNS = ["episode_id", "fps", "camera_trajectory", "intrinsics"] + [
    f"{side}_{name}" for side in ("left", "right")
    for name in ("joints_world", "joints_camera", "T_world_wrist", "T_camera_wrist", "global_orient", "hand_pose",
                 "betas", "transl", "observed", "infilled", "valid")]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    video = generate_sequence(root / "clip", seed=11, num_frames=NUM_FRAMES, width=160, height=120)["video"]
    return hp.run(video, output_dir=root / "out", vis_mode="none")


def _assert_same(a: hp.Result, b: hp.Result):
    assert (a.fps, a.image_size, a.focal, a.hand_model, a.num_frames) == (b.fps, b.image_size, b.focal, b.hand_model,
                                                                          b.num_frames)
    np.testing.assert_array_equal(a.camera.T_world_cam, b.camera.T_world_cam)
    np.testing.assert_array_equal(a.camera.K, b.camera.K)
    for side in ("left", "right"):
        for hands, joints in ((("hands_world", "joints_world")), ("hands_camera", "joints_camera")):
            x, y = getattr(a, hands)[side], getattr(b, hands)[side]
            for key, values in x.params().items():
                np.testing.assert_array_equal(values, y.params()[key])  # NaN where not valid, on both
            np.testing.assert_array_equal(x.observed, y.observed)
            np.testing.assert_array_equal(x.infilled, y.infilled)
            np.testing.assert_array_equal(getattr(a, joints)[side], getattr(b, joints)[side])


def test_one_row_round_trips_and_names_the_columns_as_the_issue(result, tmp_path):
    path = write_result_parquet(result, tmp_path / "video.parquet", "ep0")
    table = pq.read_table(path)
    assert table.num_rows == 1 and set(ISSUE_COLUMNS) <= set(table.column_names)
    schema = pq.read_schema(path)
    assert all(schema.field(name).metadata[b"description"] for name in ISSUE_COLUMNS)
    assert len(table.column("camera_trajectory")[0]) == NUM_FRAMES
    assert np.asarray(table.column("left_joints_world")[0].as_py()).shape == (NUM_FRAMES, 21, 3)
    back = read_result_parquet(path)
    _assert_same(result, back)
    assert back.summary == json.loads(json.dumps(result.summary, default=str))


def test_wrist_poses_agree_with_joints_and_camera(result, tmp_path):
    row = read_rows(write_result_parquet(result, tmp_path / "v.parquet", "ep0"))
    T_world_cam = np.asarray(row.column("camera_trajectory")[0].as_py())
    assert any(result.hands_world[side].valid.any() for side in ("left", "right"))
    for side in ("left", "right"):
        valid = np.asarray(row.column(f"{side}_valid")[0].as_py())
        T_world_wrist = np.asarray(row.column(f"{side}_T_world_wrist")[0].as_py())
        T_camera_wrist = np.asarray(row.column(f"{side}_T_camera_wrist")[0].as_py())
        np.testing.assert_allclose(T_world_wrist[valid, :3, 3], result.joints_world[side][valid, 0])
        R = T_world_wrist[valid, :3, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
        np.testing.assert_allclose(T_world_cam[valid] @ T_camera_wrist[valid], T_world_wrist[valid], atol=1e-6)
        assert np.isnan(T_world_wrist[~valid]).all()


def test_dataset_directory_appends_one_file_per_episode(result, tmp_path):
    dataset = tmp_path / "dataset"
    for episode in ("a", "b", "a"):  # writing "a" again replaces its row
        append_to_dataset(result, dataset, episode)
    (dataset / "c.tmp-12345678.parquet").write_bytes(b"PAR1 half written")  # a worker killed mid-write
    assert sorted(read_rows(dataset).column("episode_id").to_pylist()) == ["a", "b"]
    _assert_same(result, read_result_parquet(dataset, "b"))
    with pytest.raises(HaworInputError, match="holds 2 episodes"):
        read_result_parquet(dataset)
    with pytest.raises(HaworInputError, match="no episode 'z'"):
        read_result_parquet(dataset, "z")
    (dataset / "c.tmp-12345678.parquet").unlink()
    assert pq.read_table(dataset).num_rows == 2  # plain pyarrow reads the directory as one dataset


def test_unreadable_inputs_are_named(tmp_path):
    with pytest.raises(HaworInputError, match="no such file"):
        read_result_parquet(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(HaworInputError, match="cannot be read"):
        read_result_parquet(tmp_path / "junk.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HaworInputError, match="holds no .parquet files"):
        read_result_parquet(tmp_path / "empty")
