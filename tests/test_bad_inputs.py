"""Bad inputs, damaged files and kills: one `error:` line with exit 2 for what the user can fix, no file
that runs code, no half-written or mixed result folder, and a rerun after any kill that equals an
uninterrupted run."""
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import demo
from hawor.detection.yolo import check_detector_file
from hawor.errors import HaworInputError
from hawor.hands.mano_io import read_mano_file
from hawor.io.video import VideoWriter
from hawor.models.checkpoint import load_checkpoint
from hawor.pipeline import load_result
from hawor.pipeline.cache import file_identity
from hawor.weights import project_root
from conftest import write_audio_only, write_sliding_texture

ROOT = Path(__file__).resolve().parents[1]
MARKER_NAME = "hawor-pickle-ran"


@pytest.fixture(scope="module")
def walls(tmp_path_factory):
    return write_sliding_texture(tmp_path_factory.mktemp("walls") / "walls.mp4", seed=1)


def _write_frames(path, frames, fps=30):
    with VideoWriter(path, fps, (frames[0].shape[1], frames[0].shape[0])) as writer:
        for frame in frames:
            writer.write(frame)


def _one_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------- videos

def _make_video(case: str, tmp_path: Path, walls: Path) -> Path:
    data = walls.read_bytes()
    path = tmp_path / f"{case}.mp4"
    if case == "renamed_text":
        path.write_text("this is a text file with a video suffix\n")
    elif case == "truncated_30_percent":
        path.write_bytes(data[: int(len(data) * 0.3)])
    elif case == "bit_flipped":
        flipped = bytearray(data)
        for i in np.random.default_rng(0).integers(len(data) // 3, len(data), 40):
            flipped[i] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif case == "directory":
        path.mkdir()
    elif case == "audio_only":
        write_audio_only(path)
    return path


@pytest.mark.parametrize("case", ["renamed_text", "truncated_30_percent", "bit_flipped", "directory", "audio_only"])
def test_unusable_videos_are_one_error_and_no_result_folder(case, tmp_path, walls, capsys):
    video = _make_video(case, tmp_path, walls)
    out = tmp_path / "out"
    assert demo.main(["--video_path", str(video), "--output_dir", str(out), "--no_vis"]) == 2
    line = _one_error(capsys, str(video))
    if case == "truncated_30_percent":
        assert "truncated" in line and "--end" in line
    if case == "bit_flipped":
        assert "damaged" in line or "corrupt" in line
    if case == "directory":
        assert "folder" in line
    assert not (out / case).exists()


def test_the_frames_before_the_damage_can_still_be_used(tmp_path, walls, capsys):
    data = walls.read_bytes()
    video = tmp_path / "truncated_70_percent.mp4"
    video.write_bytes(data[: int(len(data) * 0.9)])
    out = tmp_path / "out"
    assert demo.main(["--video_path", str(video), "--output_dir", str(out), "--no_vis"]) == 2
    end = int(_one_error(capsys).split("--end ")[1].split()[0])
    assert 0 < end < 12
    assert demo.main(["--video_path", str(video), "--output_dir", str(out), "--no_vis", "--end", str(end)]) == 0
    assert load_result(out / "truncated_70_percent").num_frames == end


@pytest.mark.parametrize("case", ["one_frame", "two_frames", "black", "noise", "tiny", "vertical", "png_image",
                                  "unicode_path"])
def test_odd_but_valid_videos_give_a_result_or_one_clear_error(case, tmp_path, walls, capsys):
    rng = np.random.default_rng(0)
    video = tmp_path / f"{case}.mp4"
    if case in ("one_frame", "two_frames"):
        _write_frames(video, [rng.integers(0, 255, (240, 320, 3), np.uint8)] * (1 if case == "one_frame" else 2))
    elif case == "black":
        _write_frames(video, [np.zeros((240, 320, 3), np.uint8)] * 8)
    elif case == "noise":
        _write_frames(video, [rng.integers(0, 255, (240, 320, 3), np.uint8) for _ in range(8)])
    elif case == "tiny":
        _write_frames(video, [rng.integers(0, 255, (16, 16, 3), np.uint8) for _ in range(4)])
    elif case == "vertical":
        _write_frames(video, [rng.integers(0, 255, (320, 180, 3), np.uint8) for _ in range(4)])
    elif case == "png_image":
        import cv2

        video = tmp_path / "frame.png"
        cv2.imwrite(str(video), rng.integers(0, 255, (240, 320, 3), np.uint8))
    elif case == "unicode_path":
        video = tmp_path / "vidéo 手.mp4"
        video.write_bytes(walls.read_bytes())
    out = tmp_path / "out"
    code = demo.main(["--video_path", str(video), "--output_dir", str(out), "--no_vis"])
    if code == 2:
        _one_error(capsys, str(video))
        assert not any(out.glob("*")) if out.exists() else True
    else:
        assert code == 0
        result = load_result(out / video.name.split(".")[0])
        assert result.num_frames >= 1 and result.camera.T_world_cam.shape == (result.num_frames, 4, 4)


# ---------------------------------------------------------------- options and output folders

@pytest.mark.parametrize("focal", ["inf", "nan", "-1", "0"])
def test_bad_focal_is_an_input_error(focal, walls, tmp_path, capsys):
    assert demo.main(["--video_path", str(walls), "--output_dir", str(tmp_path), f"--img_focal={focal}"]) == 2
    _one_error(capsys, "img_focal")
    assert not (tmp_path / "walls").exists()


@pytest.mark.parametrize("case", ["output_dir_is_a_file", "result_name_taken_by_a_file", "read_only"])
def test_unwritable_output_is_an_input_error(case, walls, tmp_path, capsys):
    if case == "output_dir_is_a_file":
        out = tmp_path / "file"
        out.write_text("x")
    elif case == "result_name_taken_by_a_file":
        out = tmp_path
        (out / "walls").write_text("x")
    else:
        out = Path("/proc/self/hawor-out")  # a file system that refuses new folders, even to root
    assert demo.main(["--video_path", str(walls), "--output_dir", str(out), "--no_vis"]) == 2
    _one_error(capsys, "--output_dir")


def test_two_videos_with_one_result_folder_name_are_refused(walls, tmp_path, capsys):
    first, second = tmp_path / "clip.part1.mp4", tmp_path / "clip.part2.mp4"
    first.write_bytes(walls.read_bytes())
    second.write_bytes(walls.read_bytes())
    out = tmp_path / "out"
    assert demo.main(["--video_path", str(first), "--output_dir", str(out), "--no_vis"]) == 0
    before = (out / "clip" / "summary.json").read_text()
    assert demo.main(["--video_path", str(second), "--output_dir", str(out), "--no_vis"]) == 2
    _one_error(capsys, "clip.part1.mp4", "clip.part2.mp4")
    assert (out / "clip" / "summary.json").read_text() == before
    load_result(out / "clip")


# ---------------------------------------------------------------- weight files

class _RunsCode:
    """Unpickling this would create a marker file (what an attacker's os.system would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _malicious(path: Path, form: str, marker: Path) -> Path:
    payload = {"state_dict": {"x": torch.zeros(1)}, "model": _RunsCode(marker)}
    if form == "zip":
        torch.save(payload, path)
    elif form == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


LOADERS = {
    "detector.pt": check_detector_file,
    "hawor.ckpt": load_checkpoint,
    "infiller.pt": load_checkpoint,
    "droid.pth": load_checkpoint,
    "metric_depth_vit_large_800k.pth": load_checkpoint,
    "MANO_RIGHT.pkl": read_mano_file,
}


# MANO files are plain pickles (torch's zip and legacy containers are not a MANO format)
WEIGHT_FORMS = [(name, form) for name in sorted(LOADERS) for form in ("zip", "legacy", "raw_pickle")
                if not (name.endswith(".pkl") and form != "raw_pickle")]


@pytest.mark.parametrize(("name", "form"), WEIGHT_FORMS)
def test_no_weight_file_runs_code(name, form, tmp_path):
    marker = tmp_path / MARKER_NAME
    path = _malicious(tmp_path / name, form, marker)
    with pytest.raises(HaworInputError, match="refusing|cannot be read"):
        LOADERS[name](path)
    assert not marker.exists()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root in tmp_path with the embedded assets linked in (weights are added per test)."""
    root = tmp_path / "project"
    for asset in ("_DATA/landmarks", "_DATA/open_hand"):
        (root / asset).parent.mkdir(parents=True, exist_ok=True)
        (root / asset).symlink_to(project_root() / asset)
    monkeypatch.setenv("HAWOR_ROOT", str(root))
    return root


@pytest.mark.parametrize("placement", ["official_path_auto", "flag_learned"])
def test_a_malicious_detector_never_runs_through_the_demo(placement, project, walls, tmp_path, capsys):
    marker = tmp_path / MARKER_NAME
    if placement == "official_path_auto":
        evil = project / "weights/external/detector.pt"
        evil.parent.mkdir(parents=True)
        args = []
    else:
        evil = tmp_path / "evil.pt"
        args = ["--detector", "learned", "--detector_weight", str(evil)]
    _malicious(evil, "zip", marker)
    code = demo.main(["--video_path", str(walls), "--output_dir", str(tmp_path / "out"), "--no_vis", *args])
    assert code == 2 and not marker.exists()
    # asked for by flag without a regressor, the plan refuses the combination before any file is read
    _one_error(capsys, *((str(evil), "refusing") if placement == "official_path_auto" else ()))


def test_an_empty_detector_is_an_input_error(project, walls, tmp_path, capsys):
    (project / "weights/external").mkdir(parents=True)
    (project / "weights/external/detector.pt").write_bytes(b"")
    assert demo.main(["--video_path", str(walls), "--output_dir", str(tmp_path / "out"), "--no_vis"]) == 2
    _one_error(capsys, "detector.pt", "empty")


@pytest.mark.parametrize("case", ["only_right", "both_right_broken"])
def test_a_broken_or_lonely_mano_file_is_an_error_not_a_silent_switch(case, project, walls, tmp_path, capsys):
    right = project / "_DATA/data/mano/MANO_RIGHT.pkl"
    right.parent.mkdir(parents=True)
    right.write_bytes(b"not a pickle")
    if case == "both_right_broken":
        left = project / "_DATA/data_left/mano_left/MANO_LEFT.pkl"
        left.parent.mkdir(parents=True)
        left.write_bytes((project_root() / "_DATA/open_hand/MANO_LEFT.pkl").read_bytes())
    assert demo.main(["--video_path", str(walls), "--output_dir", str(tmp_path / "out"), "--no_vis"]) == 2
    _one_error(capsys, "MANO")


def test_an_infiller_with_wrong_shapes_is_an_input_error(walls, tmp_path, capsys):
    bad = tmp_path / "infiller.pt"
    torch.save({"transformer_encoder_state_dict": {"att_layers.0.weight": torch.zeros(3, 3)}}, bad)
    code = demo.main(["--video_path", str(walls), "--output_dir", str(tmp_path / "out"), "--no_vis",
                      "--infiller", "learned", "--infiller_weight", str(bad)])
    assert code == 2
    _one_error(capsys, str(bad))


# ---------------------------------------------------------------- cache and result folders

@pytest.fixture(scope="module")
def finished(walls, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    assert demo.main(["--video_path", str(walls), "--output_dir", str(out), "--no_vis"]) == 0
    return out / "walls"


def _arrays(folder: Path) -> dict:
    out = {}
    for name in ("hands_world.npz", "hands_camera.npz", "camera.npz", "tracks.npz"):
        with np.load(folder / name, allow_pickle=False) as data:
            out.update({f"{name}/{k}": data[k] for k in data.files if k != "run_id"})
    return out


def _assert_same_result(a: Path, b: Path) -> None:
    left, right = _arrays(a), _arrays(b)
    assert left.keys() == right.keys()
    for key in left:
        assert np.array_equal(left[key], right[key], equal_nan=left[key].dtype.kind == "f"), key


def _copy(folder: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(folder, to)
    return to


@pytest.mark.parametrize("damage", ["truncated", "bit_flipped", "edited_values"])
def test_a_damaged_cache_entry_is_reported_and_recomputed(damage, finished, walls, tmp_path, capsys):
    out = tmp_path / "out"
    folder = _copy(finished, out / "walls")
    entry = folder / "cache" / "camera.npz"
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "bit_flipped":  # one bit inside the compressed poses
        with zipfile.ZipFile(entry) as archive:
            info = archive.getinfo("T_world_cam.npy")
        flipped = bytearray(data)
        flipped[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0x10
        entry.write_bytes(bytes(flipped))
    else:  # a valid entry with its key kept and its rotations scaled
        with np.load(entry, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["T_world_cam"][:, :3, :3] *= 2.0
        np.savez_compressed(entry, **arrays)
    assert demo.main(["--video_path", str(walls), "--output_dir", str(out), "--no_vis"]) == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert any("cache" in w and "camera.npz" in w for w in summary["warnings"])
    assert summary["stages"]["camera"]["cached"] is False
    _assert_same_result(folder, finished)
    R = load_result(folder).camera.T_world_cam[:, :3, :3]
    assert np.allclose(np.linalg.det(R), 1.0)


def test_the_video_identity_covers_the_whole_file(tmp_path):
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).bytes(3 << 20))
    path.write_bytes(bytes(data))
    before = file_identity(path)
    data[(3 << 20) // 2] ^= 1  # past the first MiB and before the last one
    path.write_bytes(bytes(data))
    assert file_identity(path) != before


def test_a_code_change_invalidates_every_stage_key(monkeypatch):
    from hawor.pipeline import cache

    key = cache.stage_key("hands", "upstream", 1.5)
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited-source")
    assert cache.stage_key("hands", "upstream", 1.5) != key


def test_a_folder_mixing_two_runs_is_refused(finished, tmp_path):
    folder = _copy(finished, tmp_path / "walls")
    with np.load(folder / "hands_camera.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["run_id"] = np.str_("another-run")
    np.savez_compressed(folder / "hands_camera.npz", **arrays)
    with pytest.raises(HaworInputError, match="two runs"):
        load_result(folder)
    (folder / "summary.json").unlink()
    with pytest.raises(HaworInputError, match="did not finish"):
        load_result(folder)


# ---------------------------------------------------------------- kills

KILL_POINTS = {
    # after the camera stage has cached its result, before the world stage runs
    "between_stages": """
import hawor.pipeline.stages as target
original = target.estimate_trajectory
def patched(*args, **kwargs):
    out = original(*args, **kwargs)
    os._exit(137)
target.estimate_trajectory = patched
""",
    # hands_world.npz written, hands_camera.npz half-written under its temporary name
    "writing_results": """
import importlib
target = importlib.import_module("hawor.pipeline.run")
original = target.save_npz_atomic
def patched(path, *args, **kwargs):
    if path.name == "hands_camera.npz":
        path.with_name("hands_camera.tmp-deadbeef.npz").write_bytes(b"PK half")
        os._exit(137)
    return original(path, *args, **kwargs)
target.save_npz_atomic = patched
""",
    # the world view's encoder has written some frames
    "rendering": """
import hawor.io.video as target
original = target.VideoWriter.write
def patched(self, frame):
    original(self, frame)
    if self.frames_written == 5:
        os._exit(137)
target.VideoWriter.write = patched
""",
}


def _demo_subprocess(args: list[str], inject: str = "") -> subprocess.CompletedProcess:
    code = f"import os, sys\nsys.path.insert(0, {str(ROOT)!r})\n{inject}\nimport demo\nsys.exit(demo.main({args!r}))\n"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(walls, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    assert demo.main(["--video_path", str(walls), "--output_dir", str(out), "--vis_mode", "world"]) == 0
    return out / "walls"


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_run_killed_anywhere_reruns_to_the_uninterrupted_result(point, walls, uninterrupted, tmp_path):
    out = tmp_path / "out"
    args = ["--video_path", str(walls), "--output_dir", str(out), "--vis_mode", "world"]
    killed = _demo_subprocess(args, KILL_POINTS[point])
    assert killed.returncode == 137, killed.stderr
    folder = out / "walls"
    with pytest.raises(HaworInputError):
        load_result(folder)  # incomplete: refused, never read as a result
    assert demo.main(args) == 0
    _assert_same_result(folder, uninterrupted)
    assert not list(folder.rglob("*.tmp-*"))
    summary = load_result(folder).summary
    assert summary["num_frames"] == 12 and (folder / "vis_world.mp4").is_file()


def test_an_interrupted_rerun_with_other_options_is_refused_until_finished(walls, finished, tmp_path):
    out = tmp_path / "out"
    folder = _copy(finished, out / "walls")
    args = ["--video_path", str(walls), "--output_dir", str(out), "--no_vis", "--max_frames", "6"]
    killed = _demo_subprocess(args, KILL_POINTS["writing_results"])
    assert killed.returncode == 137
    with np.load(folder / "hands_world.npz") as data:
        assert int(data["num_frames"]) == 6  # the new run's file beside the old run's others
    with pytest.raises(HaworInputError, match="two runs"):
        load_result(folder)
    assert demo.main(args) == 0
    assert load_result(folder).num_frames == 6
