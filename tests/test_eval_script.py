"""scripts/eval_hawor.py on result folders and ground truth built in the test (no pipeline run)."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import eval_hawor  # noqa: E402


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """A synthetic ground-truth folder (no video) that also reads as a perfect result folder."""
    from hawor.data.synthetic.generate import simulate
    from hawor.data.synthetic.truth import write_truth

    folder = tmp_path_factory.mktemp("truth")
    write_truth(simulate(seed=3, num_frames=40, width=320, height=240, fps=30.0, hand_backend="open"), folder)
    _summary(folder, start=0)
    return folder


def _summary(folder: Path, start: int):
    selection = {"start": start, "end": None, "max_frames": None, "fps": "source rate (not resampled)"}
    (folder / "summary.json").write_text(json.dumps({"frame_selection": selection, "stages": {}}))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit(path: Path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value(arrays) if callable(value) else value
    np.savez(path, **arrays)


def _run(capsys, *argv):
    code = eval_hawor.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_perfect_result_scores_zero_and_writes_json(truth, tmp_path, capsys):
    code, out, err = _run(capsys, truth, "--gt", truth, "--json", tmp_path / "r.json", "--markdown", tmp_path / "r.md")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    for side in ("left", "right"):
        for key in ("w_mpjpe_mm", "wa_mpjpe_mm", "pa_mpjpe_mm"):
            assert report[side][key] == pytest.approx(0, abs=1e-6)
    assert report["camera_ate_m"] == pytest.approx(0, abs=1e-9)
    assert "chunks of 100" in out and "| right |" in (tmp_path / "r.md").read_text()


def test_a_shifted_and_scaled_world_keeps_aligned_errors_at_zero(truth, tmp_path, capsys):
    result = _copy(truth, tmp_path / "result")
    for side in ("left", "right"):
        _edit(result / "hands_world.npz", **{f"{side}_joints": lambda a, s=side: 1.3 * a[f"{s}_joints"] + 0.5})
    _edit(result / "camera.npz", T_world_cam=lambda a: np.concatenate(
        [np.concatenate([a["T_world_cam"][:, :3, :3], 1.3 * a["T_world_cam"][:, :3, 3:] + 0.5], 2),
         a["T_world_cam"][:, 3:]], 1))
    code, _, err = _run(capsys, result, "--gt", truth, "--json", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["right"]["wa_mpjpe_mm"] == pytest.approx(0, abs=1e-6)
    assert report["sim3_scale"] == pytest.approx(1 / 1.3) and report["path_length_ratio"] == pytest.approx(1.3)
    assert report["camera_ate_se3_m"] > 0


def test_missing_file(truth, tmp_path, capsys):
    result = _copy(truth, tmp_path / "result")
    (result / "camera.npz").unlink()
    code, _, err = _run(capsys, result, "--gt", truth)
    assert code == 2 and err.startswith("error:") and "camera.npz" in err
    code, _, err = _run(capsys, truth, "--gt", tmp_path / "nowhere")
    assert code == 2 and "nowhere" in err and "no such file" in err


def test_missing_hand_and_right_hand_only(truth, tmp_path, capsys):
    gt = _copy(truth, tmp_path / "gt")
    _edit(gt / "hands_world.npz", left_joints=None, left_valid=None, left_observed=None)
    code, _, err = _run(capsys, truth, "--gt", gt)
    assert code == 2 and "no left hand" in err and "--hands right" in err
    code, out, err = _run(capsys, truth, "--gt", gt, "--hands", "right")
    assert code == 0, err
    assert "| right |" in out and "| left |" not in out


def test_different_frame_count(truth, tmp_path, capsys):
    gt = _copy(truth, tmp_path / "gt")
    _edit(gt / "hands_world.npz", num_frames=np.int64(30),
          **{f"{s}_{k}": (lambda a, key=f"{s}_{k}": a[key][:30]) for s in ("left", "right")
             for k in ("joints", "valid", "observed")})
    _edit(gt / "camera.npz", T_world_cam=lambda a: a["T_world_cam"][:30])
    code, _, err = _run(capsys, truth, "--gt", gt)
    assert code == 2 and "40 frames" in err and "30" in err
    # a run over frames 5..34 of the video (its summary says so) is scored against those frames
    result = _copy(truth, tmp_path / "result")
    cut = {f"{s}_{k}": (lambda a, key=f"{s}_{k}": a[key][5:35]) for s in ("left", "right")
           for k in ("joints", "valid", "observed", "infilled", "global_orient", "hand_pose", "betas", "transl")}
    for name in ("hands_world.npz", "hands_camera.npz"):
        _edit(result / name, num_frames=np.int64(30), **cut)
    _edit(result / "camera.npz", T_world_cam=lambda a: a["T_world_cam"][5:35])
    _summary(result, start=5)
    code, _, err = _run(capsys, result, "--gt", truth, "--json", tmp_path / "r.json")
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["right"]["pa_mpjpe_mm"] == pytest.approx(0, abs=1e-6)


def test_ground_truth_in_millimetres(truth, tmp_path, capsys):
    gt = _copy(truth, tmp_path / "gt")
    _edit(gt / "hands_world.npz",
          **{f"{s}_joints": (lambda a, s=s: 1000 * a[f"{s}_joints"]) for s in ("left", "right")})
    _edit(gt / "camera.npz", T_world_cam=lambda a: _scale_translation(a["T_world_cam"], 1000))
    code, _, err = _run(capsys, truth, "--gt", gt)
    assert code == 2 and "--gt-unit mm" in err
    code, _, err = _run(capsys, truth, "--gt", gt, "--gt-unit", "mm", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["right"]["w_mpjpe_mm"] == pytest.approx(0, abs=1e-6)


def _scale_translation(T, factor):
    T = T.copy()
    T[:, :3, 3] *= factor
    return T


def test_ground_truth_in_another_frame(truth, tmp_path, capsys):
    # ground truth in another world frame A (allowed), but its camera file holds world-to-camera poses
    gt = _copy(truth, tmp_path / "gt")
    A = np.eye(4)
    A[:3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # a quarter turn about y, then 3 m back
    A[:3, 3] = [0.0, 0.0, -3.0]
    _edit(gt / "hands_world.npz", **{f"{s}_joints": (lambda a, s=s: a[f"{s}_joints"] @ A[:3, :3].T + A[:3, 3])
                                     for s in ("left", "right")})
    _edit(gt / "camera.npz", T_world_cam=lambda a: np.linalg.inv(A @ a["T_world_cam"]))
    code, _, err = _run(capsys, truth, "--gt", gt)
    assert code == 2 and "world-to-camera" in err
    gt2 = _copy(truth, tmp_path / "gt2")
    _edit(gt2 / "camera.npz", T_world_cam=lambda a: _turn() @ a["T_world_cam"])
    code, _, err = _run(capsys, truth, "--gt", gt2)
    assert code == 2 and "different frames" in err


def _turn():
    """Half a turn about the vertical (y) axis: what is in front of a camera ends up behind it."""
    T = np.eye(4)
    T[0, 0] = T[2, 2] = -1
    return T


def test_focal_protocols_note_what_the_run_used(truth, tmp_path, capsys):
    """The truth read back as a result whose recorded focal is 10 % above the truth's: with
    ``--focal ground_truth`` the mismatch is noted, with ``--focal estimated`` the estimate's error."""
    result = _copy(truth, tmp_path / "result")
    with np.load(truth / "camera.npz") as camera:
        true_focal = float(camera["K"][0, 0])
    for name in ("hands_world.npz", "camera.npz"):
        if "focal" in np.load(result / name).files:
            _edit(result / name, focal=np.float64(true_focal * 1.1))
    outputs = {}
    for focal in ("ground_truth", "estimated"):
        code, out, err = _run(capsys, result, "--gt", truth, "--focal", focal, "--json", tmp_path / f"{focal}.json")
        assert code == 0, err
        outputs[focal] = json.loads((tmp_path / f"{focal}.json").read_text())
    assert any("protocol says focal: ground_truth" in n for n in outputs["ground_truth"]["notes"])
    assert any("estimated focal" in n and "+10.0%" in n for n in outputs["estimated"]["notes"])


def test_the_sources_of_the_world_error_are_printed_and_written(truth, tmp_path, capsys):
    from scipy.spatial.transform import Rotation

    result = _copy(truth, tmp_path / "result")
    turn = Rotation.from_rotvec([0.5, 0.0, 0.0]).as_matrix()

    def turned(arrays):  # the right hand turned about its wrist in every frame
        joints = arrays["right_joints"]
        return (joints - joints[:, :1]) @ turn.T + joints[:, :1]

    _edit(result / "hands_world.npz", right_joints=turned)
    code, out, err = _run(capsys, result, "--gt", truth, "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "true orientation" in out
    sources = json.loads((tmp_path / "r.json").read_text())["error_sources"]["right"]
    assert sources["result"]["w_mpjpe_mm"] > 5
    assert sources["orientation"]["w_mpjpe_mm"] == pytest.approx(0, abs=1e-6)
