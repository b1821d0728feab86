"""python -m hawor batch: input expansion, a local run over two generated clips and a corrupt one, a
local worker killed mid-video, resuming (finished videos skipped, an interrupted one finished from its
stage cache), and the same batch as Ray tasks on a local 2-CPU Ray instance with a worker killed mid-task."""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hawor.__main__ import main
from hawor.batch import run_batch
from hawor.batch.cli import add_arguments
from hawor.cli import run_options_dict
from hawor.batch.inputs import expand_inputs
from hawor.batch.work import MARKER
from hawor.data.synthetic import generate_sequence
from hawor.errors import HaworInputError
from hawor.pipeline.parquet import read_result_parquet, read_rows

NUM_FRAMES = 20
GOOD = ("walk", "reach")
OPTIONS = ["--no_vis", "--detector", "embedded", "--hands", "embedded", "--camera", "embedded", "--scale", "embedded",
           "--infiller", "embedded"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two short generated clips (each in its own folder, both named video.mp4) and a corrupt one."""
    root = tmp_path_factory.mktemp("clips")
    for seed, name in enumerate(GOOD):
        generate_sequence(root / name, seed=seed + 5, num_frames=NUM_FRAMES, width=160, height=120)
    # fixed bytes: about one random 4 kB file in 300 parses as an audio stream (another error message)
    (root / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    return root


@pytest.fixture(scope="module")
def local_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_local")
    code = main(["batch", str(clips), "--output_dir", str(out), "--workers", "2", *OPTIONS])
    return code, out


def _rows(out):
    return {row["episode_id"]: row for row in pq.read_table(out / "batch_summary.parquet").to_pylist()}


# ---------------------------------------------------------------- inputs


def test_folders_globs_and_manifests_expand_to_unique_ids(tmp_path):
    for rel in ("a/video.mp4", "b/video.mp4", "c/clip.MOV", "c/notes.txt", "out/x/vis_world.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    items = expand_inputs([str(tmp_path)], exclude=tmp_path / "out")
    assert [i.episode_id for i in items] == ["a-video", "b-video", "clip"]  # output folder never an input
    assert [i.episode_id for i in expand_inputs([str(tmp_path / "*" / "video.mp4")])] == ["a-video", "b-video"]
    (tmp_path / "m.csv").write_text("video,episode_id,img_focal,start_s,end\na/video.mp4,ep1,500,0.5,\n"
                                    f"{tmp_path / 'c/clip.MOV'},,,,30\n")
    first, second = expand_inputs([str(tmp_path / "m.csv")])
    assert (first.episode_id, first.img_focal, first.start_s, first.end) == ("ep1", 500.0, 0.5, None)
    assert first.video == tmp_path / "a/video.mp4" and (second.episode_id, second.end) == ("clip", 30)
    (tmp_path / "m.jsonl").write_text(json.dumps({"video": "b/video.mp4", "start": 3}) + "\n")
    pq.write_table(pa.table({"video": ["a/video.mp4"], "episode_id": ["pq"]}), tmp_path / "m.parquet")
    items = expand_inputs([str(tmp_path / "m.jsonl"), str(tmp_path / "m.parquet"), str(tmp_path / "a")])
    assert [(i.episode_id, i.start) for i in items] == [("video", 3), ("pq", None)]  # a/video.mp4 listed once


@pytest.mark.parametrize("content, message", [
    ("path\nx.mp4\n", "has no 'video'"),
    ("video,img_focal\nx.mp4,wide\n", "img_focal='wide' is not a number"),
    ("video,start\nx.mp4,-2\n", "must not be negative"),
    ("video,img_focal\nx.mp4,0\n", "must be positive"),
    ("video,episode_id\nx.mp4,a\ny.mp4,a\n", "given to more than one video"),
    ("video,episode_id\nx.mp4,_hidden\n", "letters, digits"),
])
def test_bad_manifests_name_the_problem(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(HaworInputError, match=message):
        expand_inputs([str(tmp_path / "m.csv")])


def test_missing_inputs_and_bad_options_fail_before_any_video_runs(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "*.mp4"), "--output_dir", str(tmp_path / "o")]) == 2
    (tmp_path / "v.mp4").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it, as demo.py does
        main(["batch", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--export", "gif"])
    assert exit_.value.code == 2 and "invalid choice: 'gif'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- local workers


def test_local_batch_records_the_corrupt_video_and_finishes_the_others(local_run):
    code, out = local_run
    assert code == 1  # some video failed
    rows = _rows(out)
    assert rows["broken"]["status"] == "failed" and "cannot be opened as a video" in rows["broken"]["error"]
    for name in GOOD:
        row = rows[f"{name}-video"]
        assert row["status"] == "done" and row["frames"] == NUM_FRAMES and not row["error"]
        assert row["seconds_detection"] > 0 and "camera:classical" in row["backends"]
        assert (out / f"{name}-video" / "video" / "hands_world.npz").is_file()
    assert len({rows[f"{n}-video"]["worker"] for n in GOOD}) == 2  # two worker processes
    text = (out / "batch_summary.txt").read_text()
    assert "3 videos: 2 done, 0 skipped (finished earlier), 1 failed" in text
    assert "traceback" in (out / "logs" / "broken.log").read_text().lower()
    dataset = read_rows(out / "dataset")
    assert sorted(dataset.column("episode_id").to_pylist()) == [f"{n}-video" for n in sorted(GOOD)]


def _kill_worker_of(log, killed: list, stop: threading.Event):
    """SIGKILL the process that started the video logged in ``log``, half a second into its task."""
    while not stop.is_set():
        match = re.search(r"\(pid (\d+)\)", log.read_text()) if log.is_file() else None
        if match:
            time.sleep(0.5)
            os.kill(int(match.group(1)), signal.SIGKILL)
            killed.append(int(match.group(1)))
            return
        time.sleep(0.05)


def _run_killing_one_worker(log, **batch):
    """run_batch while the worker that starts the video logged in ``log`` is killed; (rows, killed pid)."""
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_worker_of, args=(log, killed, stop))
    killer.start()
    try:
        rows = run_batch(**batch, progress=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "the video never started"
    starts = re.findall(r"\(pid (\d+)\)", log.read_text())
    assert len(starts) >= 2 and int(starts[0]) == killed[0], log.read_text()  # the killed attempt, then a retry
    return {r["episode_id"]: r for r in rows}, killed[0]


def test_a_local_worker_killed_mid_video_is_replaced_and_the_video_retried(clips, tmp_path):
    rows, killed = _run_killing_one_worker(tmp_path / "logs" / "video.log", inputs=[str(clips / "walk")],
                                           output_dir=tmp_path, options=_options(), workers=1)
    assert rows["video"]["status"] == "done" and int(rows["video"]["worker"].rsplit(":", 1)[1]) != killed


# ---------------------------------------------------------------- Ray


def test_ray_problems_fail_before_any_video_runs(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    (tmp_path / "v.mp4").write_bytes(b"")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path), "--output_dir", str(out), "--ray", "127.0.0.1:1"]) == 2
    assert "--ray 127.0.0.1:1: nothing answers there" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as without the [ray] extra
    assert main(["batch", str(tmp_path), "--output_dir", str(out), "--ray", "auto"]) == 2
    assert "pip install -e '.[ray]'" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_batch_survives_a_killed_worker_and_matches_the_local_run(ray_cluster, clips, local_run, tmp_path):
    _, local_out = local_run
    by_id, killed = _run_killing_one_worker(tmp_path / "logs" / "reach-video.log", inputs=[str(clips)],
                                            output_dir=tmp_path, options=_options(), ray_address="auto", task_cpus=1)
    assert by_id["broken"]["status"] == "failed" and "cannot be opened" in by_id["broken"]["error"]
    for name in GOOD:
        episode = f"{name}-video"
        assert by_id[episode]["status"] == "done", by_id[episode]["error"]
        assert int(by_id[episode]["worker"].rsplit(":", 1)[1]) != killed  # finished by a retry elsewhere
        ray_result = read_result_parquet(tmp_path / "dataset", episode)
        local_result = read_result_parquet(local_out / "dataset", episode)
        np.testing.assert_allclose(ray_result.camera.T_world_cam, local_result.camera.T_world_cam, atol=1e-6,
                                   err_msg=episode)
        for side in ("left", "right"):
            np.testing.assert_array_equal(ray_result.hands_world[side].valid, local_result.hands_world[side].valid,
                                          err_msg=f"{episode} {side}")
            np.testing.assert_allclose(ray_result.joints_world[side], local_result.joints_world[side], atol=1e-6,
                                       err_msg=f"{episode} {side}")


# ---------------------------------------------------------------- resume (after the Ray test: it changes local_run)


def test_rerun_skips_finished_videos_and_finishes_an_interrupted_one(local_run, clips):
    _, out = local_run
    folder = out / "reach-video" / "video"
    # as if the worker died after the camera stage: no world stage, result files, marker or row yet
    for path in (folder / MARKER, folder / "summary.json", folder / "hands_world.npz", folder / "cache" / "world.npz",
                 out / "dataset" / "reach-video.parquet"):
        path.unlink()
    rows = {r["episode_id"]: r for r in run_batch([str(clips)], out, _options(), workers=1, progress=False)}
    assert rows["walk-video"]["status"] == "skipped" and rows["walk-video"]["frames"] == NUM_FRAMES
    assert rows["reach-video"]["status"] == "done" and rows["broken"]["status"] == "failed"
    stages = json.loads((folder / "summary.json").read_text())["stages"]
    assert all(stages[s]["cached"] for s in ("detection", "hands", "camera")) and not stages["world"]["cached"]
    assert read_result_parquet(out / "dataset", "reach-video").num_frames == NUM_FRAMES
    changed = run_batch([str(clips / "walk")], out, {**_options(), "max_gap": 5}, progress=False)
    assert changed[0]["status"] == "done"  # another setting: not skipped


def _options():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = run_options_dict(parser.parse_args(["x", "--output_dir", "y", *OPTIONS]))
    return {k: v for k, v in options.items() if k != "output_dir"}  # as the batch command passes them
