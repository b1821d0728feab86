"""demo.py end to end on a short generated clip (embedded backends, a forced tiny learned infiller),
the cache, and every bad-input case."""
import json

import av
import cv2
import numpy as np
import pytest
import torch

import demo
from hawor.data.synthetic import generate_sequence
from hawor.io.video import VideoWriter
from hawor.models.infiller import InfillerConfig, MotionInfiller
from hawor.pipeline import load_result
from hawor.vis.views import render_size
from hawor.world.infill import WEIGHTS_KEY
from conftest import write_audio_only, write_sliding_texture

NUM_FRAMES = 30
HAND_KEYS = {"global_orient": (3,), "hand_pose": (45,), "betas": (10,), "transl": (3,), "joints": (21, 3)}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    paths = generate_sequence(folder, seed=3, num_frames=NUM_FRAMES, width=320, height=240, fps=30.0)
    return paths["video"]


@pytest.fixture(scope="module")
def first_run(clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    code = demo.main(["--video_path", str(clip), "--img_focal", "300", "--output_dir", str(out),
                      "--vis_mode", "both", "--export", "rerun"])
    return code, out / "video"


def test_result_files_shapes_and_flags(first_run):
    code, folder = first_run
    assert code == 0
    for name in ("hands_world.npz", "hands_camera.npz", "camera.npz", "camera_tum.txt", "tracks.npz",
                 "summary.json", "vis_world.mp4", "vis_cam.mp4", "hands.rrd"):
        assert (folder / name).is_file(), name
    assert not list(folder.rglob("*.tmp-*"))  # every file was renamed into place
    for name in ("hands_world.npz", "hands_camera.npz"):
        with np.load(folder / name) as data:
            assert int(data["num_frames"]) == NUM_FRAMES and tuple(data["image_size"]) == (320, 240)
            assert float(data["focal"]) == 300.0 and str(data["hand_model"]) in ("open", "mano")
            for side in ("left", "right"):
                valid = data[f"{side}_valid"]
                assert np.array_equal(valid, data[f"{side}_observed"] | data[f"{side}_infilled"])
                assert not (data[f"{side}_observed"] & data[f"{side}_infilled"]).any()
                for key, shape in HAND_KEYS.items():
                    values = data[f"{side}_{key}"]
                    assert values.shape == (NUM_FRAMES, *shape)
                    assert np.isfinite(values[valid]).all() and np.isnan(values[~valid]).all()
    with np.load(folder / "camera.npz") as cam:
        assert cam["T_world_cam"].shape == (NUM_FRAMES, 4, 4) and cam["K"][0, 0] == 300.0
        np.testing.assert_allclose(cam["T_world_cam"][:, 3], np.tile([0, 0, 0, 1.0], (NUM_FRAMES, 1)))
    assert len((folder / "camera_tum.txt").read_text().splitlines()) == NUM_FRAMES + 1
    for name in ("vis_world.mp4", "vis_cam.mp4"):
        with av.open(str(folder / name)) as container:
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.codec_context.name == "h264" and len(frames) == NUM_FRAMES  # the last frame too
        assert min(f.mean() for f in frames) > 40  # no black frames


def test_summary_and_accuracy_against_ground_truth(first_run):
    _, folder = first_run
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["stages"]) == {"detection", "hands", "camera", "world", "vis_world", "vis_cam"}
    for stage in summary["stages"].values():
        assert stage["backend"] and stage["reason"] and stage["seconds"] >= 0
    assert summary["stages"]["detection"]["backend"] == "landmarks"  # embedded defaults
    assert summary["intrinsics"]["focal_source"] == "given" and summary["intrinsics"]["fx"] == 300
    assert summary["versions"]["torch"] == torch.__version__
    evaluation = summary["evaluation"]
    assert evaluation and evaluation["file"].endswith("hands_world.npz")
    for side in ("left", "right"):
        row = evaluation[side]
        assert row["observed_fraction"] >= 0.8, row
        if row["frames"] >= 2:
            # W-MPJPE (aligned on two frames only) mostly measures metric-scale drift: a gross-failure bound
            assert row["pa_mpjpe_mm"] < 30 and row["wa_mpjpe_mm"] < 120 and row["w_mpjpe_mm"] < 500, row
    result = load_result(folder)
    assert result.num_frames == NUM_FRAMES and result.joints_world["right"].shape == (NUM_FRAMES, 21, 3)


def test_rerun_reuses_the_cache_and_a_forced_tiny_infiller(first_run, clip, tmp_path):
    _, folder = first_run
    torch.manual_seed(0)
    network = MotionInfiller(InfillerConfig(seq_len=16, d_model=32, nhead=4, d_hid=48, nlayers=1))
    weights = tmp_path / "infiller.pt"
    torch.save({WEIGHTS_KEY: network.state_dict(), "nhead": 4}, weights)
    code = demo.main(["--video_path", str(clip), "--img_focal", "300", "--output_dir", str(folder.parent),
                      "--no_vis", "--infiller", "learned", "--infiller_weight", str(weights)])
    assert code == 0
    summary = json.loads((folder / "summary.json").read_text())
    stages = summary["stages"]
    assert stages["detection"]["cached"] and stages["hands"]["cached"] and stages["camera"]["cached"]
    assert stages["world"]["backend"] == "infiller" and not stages["world"]["cached"]
    with np.load(folder / "hands_world.npz") as data:
        for side in ("left", "right"):
            valid, observed = data[f"{side}_valid"], data[f"{side}_observed"]
            if observed.any():  # a seen hand is completed to every frame, with no NaN
                assert valid.all() and np.isfinite(data[f"{side}_transl"]).all()
                assert np.array_equal(data[f"{side}_infilled"], ~observed)


@pytest.fixture(scope="module")
def no_hands_clip(tmp_path_factory):
    return write_sliding_texture(tmp_path_factory.mktemp("nohands") / "walls.mp4", seed=0)


def test_no_hands_gives_a_valid_empty_result_with_a_warning(no_hands_clip, capsys):
    out = no_hands_clip.parent / "out"
    assert demo.main(["--video_path", str(no_hands_clip), "--output_dir", str(out), "--no_vis"]) == 0
    assert "no hands" in capsys.readouterr().out
    result = load_result(out / "walls")
    assert result.num_frames == 12
    for side in ("left", "right"):
        assert not result.hands_world[side].valid.any() and np.isnan(result.joints_world[side]).all()
    assert any("no hands" in w for w in result.summary["warnings"])
    # no --img_focal and 12 frames of a sliding texture: the focal cannot be estimated; the default, said so
    assert result.summary["intrinsics"]["focal_source"] == "default" and result.focal == 600
    assert any(w.startswith("focal: ") and "--img_focal" in w for w in result.summary["warnings"])
    with np.load(out / "walls" / "tracks.npz") as tracks:
        assert len(tracks["left_frame_indices"]) == 0 and len(tracks["right_frame_indices"]) == 0
    # --force recomputes every stage
    assert demo.main(["--video_path", str(no_hands_clip), "--output_dir", str(out), "--no_vis", "--force"]) == 0
    summary = json.loads((out / "walls" / "summary.json").read_text())
    assert not any(stage["cached"] for stage in summary["stages"].values())


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "truncated", "audio_only"])
def test_bad_input_one_clear_error_no_result_folder(case, tmp_path, no_hands_clip, capsys):
    path = tmp_path / f"{case}.mp4"
    if case == "corrupt":
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(4000))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        data = no_hands_clip.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "audio_only":
        write_audio_only(path)
    out = tmp_path / "out"
    assert demo.main(["--video_path", str(path), "--output_dir", str(out), "--no_vis"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("error:")]) == 1
    assert str(path) in err[-1]
    assert not (out / case).exists()


def test_bad_options_are_input_errors(no_hands_clip, tmp_path, capsys):
    assert demo.main(["--video_path", str(no_hands_clip), "--output_dir", str(tmp_path), "--start", "50"]) == 2
    assert "start" in capsys.readouterr().err
    assert not (tmp_path / "walls").exists()


def test_python_api_with_a_forced_tiny_regressor(first_run, clip):
    from hawor.estimation.regressor import HandRegressor
    from hawor.models.hawor_regressor import HaworConfig, HaworRegressor
    from hawor.pipeline import run

    _, folder = first_run
    torch.manual_seed(0)
    regressor = HandRegressor(HaworRegressor(HaworConfig.tiny()), device="cpu")
    result = run(clip, regressor_model=regressor, hands="learned", img_focal=300, output_dir=folder.parent,
                 vis_mode="none", ground_truth=None)
    stages = result.summary["stages"]
    assert stages["detection"]["cached"] and stages["hands"]["backend"] == "regressor"
    assert not stages["hands"]["cached"]
    with np.load(folder / "tracks.npz") as tracks:
        for side in ("left", "right"):
            seq = result.hands_camera[side]
            assert np.array_equal(np.flatnonzero(seq.observed), tracks[f"{side}_frame_indices"])
            assert np.isfinite(seq.transl[seq.observed]).all()


def test_frame_selection_trims_and_resamples(no_hands_clip):
    from hawor.pipeline.frames import FrameSelection, FrameSource

    originals = list(FrameSource(FrameSelection(no_hands_clip)))
    assert len(originals) == 12

    def picked(**kwargs):
        source = FrameSource(FrameSelection(no_hands_clip, **kwargs))
        frames = list(source)
        assert source.counted_frames == len(frames)
        return [next(i for i, o in enumerate(originals) if np.array_equal(o, f)) for f in frames]

    assert picked(start=2, end=7) == [2, 3, 4, 5, 6]
    assert picked(max_frames=3) == [0, 1, 2]
    assert picked(fps=15.0) == [0, 2, 4, 6, 8, 10]  # 30 -> 15 fps drops every other frame
    assert picked(fps=45.0, end=4) == [0, 1, 1, 2, 3, 3]  # 30 -> 45 fps repeats frames
    source = FrameSource(FrameSelection(no_hands_clip))
    read = source.reader(lookback=2)
    assert np.array_equal(read(5), originals[5]) and np.array_equal(read(1), originals[1])


def _write_variable_rate(path, frames):
    """Re-encode frames with irregular timestamps (33 and 50 ms apart): a variable-frame-rate video."""
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 33 if i % 2 else 50
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("kind", ["vertical", "variable_frame_rate", "4k"])
def test_vertical_variable_frame_rate_and_4k_videos(kind, clip, tmp_path):
    from hawor.io.video import VideoReader

    if kind == "vertical":
        video = generate_sequence(tmp_path / "v", seed=5, num_frames=20, width=240, height=320, fps=30.0)["video"]
        size = (240, 320)
    elif kind == "4k":  # the clip upscaled: every stage sees 3840x2160 frames
        video, size = tmp_path / "uhd.mp4", (3840, 2160)
        with VideoWriter(video, 30.0, size, preset="ultrafast") as writer:
            for frame in list(VideoReader(clip))[:20]:
                writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
    else:
        video = tmp_path / "vfr.mp4"
        _write_variable_rate(video, list(VideoReader(clip))[:20])
        size = (320, 240)
    out = tmp_path / "out"
    focal = 300 * size[0] / 320 if kind == "4k" else 300
    assert demo.main(["--video_path", str(video), "--img_focal", str(focal), "--output_dir", str(out),
                      "--vis_mode", "cam"]) == 0
    result = load_result(out / video.stem)
    assert result.num_frames == 20 and tuple(result.summary["image_size"]) == size
    assert any(result.hands_world[side].observed.any() for side in ("left", "right"))
    with av.open(str(out / video.stem / "vis_cam.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == render_size(size)  # 4K: 1280x720
        assert sum(1 for _ in container.decode(stream)) == 20


def test_a_rerun_after_a_crash_resumes_from_the_cache(clip, tmp_path, monkeypatch, capsys):
    from hawor.pipeline import stages

    args = ["--video_path", str(clip), "--img_focal", "300", "--output_dir", str(tmp_path), "--no_vis"]

    def crash(*_args, **_kwargs):
        raise RuntimeError("simulated crash in world assembly")

    with monkeypatch.context() as patch:
        patch.setattr(stages, "assemble_world", crash)
        assert demo.main(args) == 1  # a bug, not bad input: traceback kept, exit 1
    assert "internal error" in capsys.readouterr().err
    folder = tmp_path / "video"
    assert not (folder / "hands_world.npz").exists() and not (folder / "summary.json").exists()
    assert demo.main(args) == 0
    cached = {name: stage["cached"] for name, stage in json.loads((folder / "summary.json").read_text())["stages"].items()}
    assert cached == {"detection": True, "hands": True, "camera": True, "world": False}
