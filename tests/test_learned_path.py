"""demo.py on every learned backend: official-layout weight files at tiny sizes (tests/learned_weights.py),
placed where weights/README.md says under a project root (HAWOR_ROOT), alone and all together.

Each run is a `demo.py` subprocess on one short generated clip; the weights are built once per
session and the runs share two workers. Every test checks from summary.json that the learned backend
ran, and from the result files that its output is the one used (compared with the same network run
here, or with the all-embedded run on the same clip). A run compared with the embedded one starts
from a copy of that run's result folder with the stages it changes cleared from the stage cache, so
both share their upstream results exactly (the landmark detector is not bit-reproducible across
processes, and one flipped detection would change everything downstream).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import learned_weights as lw
from conftest import make_mano_layout, write_chumpy_style_pkl
from hawor.data.synthetic import generate_sequence
from hawor.io.video import VideoReader
from hawor.pipeline.cache import StageCache
from hawor.weights import OFFICIAL_PATHS

REPO = Path(__file__).resolve().parents[1]
FOCAL = 300.0  # the generator's focal at 320 x 240
# seed 5: both hands in view, the right one leaves it for frames 14-16 (a gap for the infiller)
CLIP = dict(seed=5, num_frames=30, width=320, height=240, fps=30.0)
METRIC3D_DEPTH_M = 0.55  # inside HaWoR's arm's-reach band, so every keyframe gives a scale

# name -> (learned files installed, extra demo arguments, MANO-layout files installed,
#          stages recomputed on a copy of the embedded run's result, or None for a fresh run)
RUNS = {
    "detector": (("detector",), (), False, None),
    "regressor": (("regressor",), (), False, None),
    "infiller": (("infiller",), (), False, ("world",)),
    "droid": (("droid",), (), False, None),
    "metric3d": (("metric3d",), (), False, ("camera", "world")),
    "all": (lw.LEARNED, (), False, None),
    "open_over_mano": ((), ("--hand_model", "open"), True, ("camera", "world")),
}


@dataclass
class Run:
    code: int
    stderr: str
    root: Path
    folder: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.folder / "summary.json").read_text())

    def npz(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.folder / name, allow_pickle=False) as data:
            return dict(data)

    def ran(self, stage: str) -> str:
        """The backend the run used for a stage (plan names: detection, hands, camera, scale, infilling)."""
        return self.summary["plan"]["stages"][stage]["backend"]


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> dict[str, Path]:
    return generate_sequence(tmp_path_factory.mktemp("learned_clip"), **CLIP, outputs=("video", "gt", "joints2d"))


@pytest.fixture(scope="session")
def frames(clip) -> list[np.ndarray]:
    return list(VideoReader(clip["video"]))


@pytest.fixture(scope="session")
def network_attempts():
    """Addresses anything tried to reach while the weights were built (filled by ``built``)."""
    return []


@pytest.fixture(scope="session")
def built(tmp_path_factory, clip, frames, network_attempts) -> dict[str, Path]:
    store = tmp_path_factory.mktemp("learned_weights")
    boxes = np.load(clip["joints2d"])["bbox"]

    def refuse(*args, **kwargs):
        network_attempts.append(args[1:] if len(args) > 1 else args)
        raise OSError("network access during the test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        detector = lw.write_detector(store / "detector.pt", frames, boxes, store / "yolo")
    depth_bin, _ = lw.constant_depth_bin(METRIC3D_DEPTH_M, FOCAL, (CLIP["width"], CLIP["height"]))
    ckpt, config = lw.write_regressor(store / "hawor" / "checkpoints" / "hawor.ckpt", store / "hawor" / "model_config.yaml")
    return {"detector": detector, "regressor": ckpt, "regressor_config": config,
            "infiller": lw.write_infiller(store / "infiller.pt"), "droid": lw.write_droid(store / "droid.pth"),
            "metric3d": lw.write_metric3d(store / "metric3d.pth", depth_bin)}


def _install_mano_layout(root: Path) -> None:
    """MANO-layout files (random values) where the licensed MANO goes: 'auto' would then pick MANO."""
    for side, key in (("right", "mano_right"), ("left", "mano_left")):
        path = root / OFFICIAL_PATHS[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        assert path.parent.resolve().is_relative_to(root.resolve())  # never into the repository's _DATA
        write_chumpy_style_pkl(path, make_mano_layout(seed=1 if side == "left" else 0))


def _run(name: str, base: Path, video: Path, built: dict[str, Path], embedded: Run | None = None) -> Run:
    names, extra, mano, recomputed = RUNS[name] if name in RUNS else ((), (), False, None)
    root = lw.project_root(base / name / "root")
    lw.install(root, built, names)
    if mano:
        _install_mano_layout(root)
    out = base / name / "out"
    if recomputed is not None:
        shutil.copytree(embedded.folder, out / video.stem)
        cache = StageCache(out / video.stem / "cache")
        for stage in recomputed:
            cache.path(stage).unlink()
    # Two runs at a time on one thread each: small tensor ops on a busy 2-core machine lose more to
    # thread synchronisation than they gain (DROID's encoder: 30x slower with 2 threads there).
    env = {**os.environ, "HAWOR_ROOT": str(root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "demo.py"), "--video_path", str(video), "--img_focal", str(FOCAL),
                           "--output_dir", str(out), "--no_vis", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return Run(done.returncode, done.stderr[-4000:], root, out / video.stem)


@pytest.fixture(scope="session")
def runs(tmp_path_factory, clip, built) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("learned_runs")
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(_run, "embedded", base, clip["video"], built)
        fresh = {name: pool.submit(_run, name, base, clip["video"], built) for name, spec in RUNS.items()
                 if spec[3] is None}
        embedded = _ok(first.result())
        from_embedded = {name: pool.submit(_run, name, base, clip["video"], built, embedded)
                         for name, spec in RUNS.items() if spec[3] is not None}
        return {"embedded": embedded, **{name: f.result() for name, f in {**fresh, **from_embedded}.items()}}


def _ok(run: Run) -> Run:
    assert run.code == 0, run.stderr
    return run


def _compared(runs: dict[str, Run], name: str) -> tuple[Run, Run]:
    """(run, embedded run) after checking that the run reused exactly the embedded run's upstream stages."""
    run, embedded = _ok(runs[name]), _ok(runs["embedded"])
    recomputed = RUNS[name][3]
    cached = {stage for stage, record in run.summary["stages"].items() if record["cached"]}
    assert cached == {"detection", "hands", "camera", "world"} - set(recomputed)
    return run, embedded


# ---------------------------------------------------------------- the weight files themselves

def test_the_detector_was_trained_offline(built, network_attempts):
    assert built["detector"].is_file() and not network_attempts


def test_every_file_is_in_its_official_layout(built):
    from hawor.detection.yolo import check_detector_file
    from hawor.models.checkpoint import load_checkpoint

    assert check_detector_file(built["detector"]) == {0: "left", 1: "right"}
    assert "state_dict" in load_checkpoint(built["regressor"])
    assert "mano.faces_tensor" in load_checkpoint(built["regressor"])["state_dict"]
    assert "transformer_encoder_state_dict" in load_checkpoint(built["infiller"])
    droid = load_checkpoint(built["droid"])
    assert all(k.startswith("module.") for k in droid) and droid["module.update.weight.2.weight"].shape[0] == 3
    assert all(k.startswith("depth_model.") for k in load_checkpoint(built["metric3d"])["model_state_dict"])


# ---------------------------------------------------------------- one learned file at a time

def test_without_weights_every_stage_is_embedded(runs):
    run = _ok(runs["embedded"])
    assert {stage: run.ran(stage) for stage in ("detection", "hands", "camera", "scale", "infilling")} == {
        "detection": "landmarks", "hands": "keypoint_fit", "camera": "classical", "scale": "hand_anchored",
        "infilling": "interpolation"}


def test_detector_alone_leaves_detection_to_the_landmarks_the_fit_needs(runs):
    """Without hawor.ckpt the hands come from the keypoint fit, which needs landmarks: YOLO is not used."""
    run = _ok(runs["detector"])
    assert run.ran("detection") == "landmarks" and run.ran("hands") == "keypoint_fit"
    assert str(run.npz("tracks.npz")["backend"]) == "landmarks"


def test_regressor_alone_gives_the_camera_space_hands(runs, built, frames):
    from hawor.detection.tracks import HandTrack
    from hawor.estimation.regressor import HandRegressor
    from hawor.geometry.intrinsics import Intrinsics

    run = _ok(runs["regressor"])
    assert run.ran("hands") == "regressor" and run.summary["stages"]["hands"]["backend"] == "regressor"
    tracks, hands = run.npz("tracks.npz"), run.npz("hands_camera.npz")
    regressor = HandRegressor.from_checkpoint(run.root / OFFICIAL_PATHS["regressor"], device="cpu")
    for side in ("left", "right"):
        track = HandTrack(side, tracks[f"{side}_frame_indices"], tracks[f"{side}_boxes"], tracks[f"{side}_scores"])
        expected = regressor.predict(frames, track, Intrinsics.default((CLIP["width"], CLIP["height"]), FOCAL)).hand
        assert len(expected.frame_indices)
        np.testing.assert_allclose(hands[f"{side}_betas"][expected.frame_indices], expected.betas, atol=1e-5)
        np.testing.assert_allclose(hands[f"{side}_hand_pose"][expected.frame_indices], expected.hand_pose, atol=1e-4)


def test_infiller_alone_fills_the_gaps(runs):
    run, embedded = _compared(runs, "infiller")
    assert run.ran("infilling") == "infiller" and run.summary["stages"]["world"]["backend"] == "infiller"
    ours, interpolated = run.npz("hands_world.npz"), embedded.npz("hands_world.npz")
    for side in ("left", "right"):
        observed = ours[f"{side}_observed"]
        np.testing.assert_array_equal(observed, interpolated[f"{side}_observed"])
        np.testing.assert_allclose(ours[f"{side}_transl"][observed], interpolated[f"{side}_transl"][observed])
    filled = ours["right_infilled"]
    assert filled.any()  # the right hand's gap
    # The network's poses, not the interpolation's, fill the gap.
    assert not np.allclose(ours["right_hand_pose"][filled], interpolated["right_hand_pose"][filled], atol=1e-3)


def test_droid_alone_gives_the_camera_trajectory(runs):
    """The tiny random DROID network sees no motion (learned_weights.write_droid): its trajectory, a
    camera at rest with one keyframe, is the one written, not the classical one."""
    run, embedded = _ok(runs["droid"]), _ok(runs["embedded"])
    assert run.ran("camera") == "droid" and run.summary["stages"]["camera"]["backend"] == "droid"
    camera = run.npz("camera.npz")
    assert str(camera["method"]).startswith("droid") and list(camera["keyframes"]) == [0]
    np.testing.assert_array_equal(camera["T_world_cam"], np.tile(np.eye(4), (CLIP["num_frames"], 1, 1)))
    assert not np.allclose(embedded.npz("camera.npz")["T_world_cam"], camera["T_world_cam"])


def test_metric3d_alone_sets_the_metric_scale(runs):
    """Same classical trajectory as the embedded run, scaled by Metric3D's scale instead of the hands'."""
    run, embedded = _compared(runs, "metric3d")
    assert run.ran("camera") == "classical" and run.ran("scale") == "metric3d"
    assert "scale: metric3d" in run.summary["stages"]["camera"]["reason"]
    ours, hands_scaled = run.npz("camera.npz"), embedded.npz("camera.npz")
    assert float(ours["scale"]) > 0 and not np.isclose(float(ours["scale"]), float(hands_scaled["scale"]))
    unscaled = ours["T_world_cam"][:, :3, 3] / float(ours["scale"])
    np.testing.assert_allclose(unscaled, hands_scaled["T_world_cam"][:, :3, 3] / float(hands_scaled["scale"]),
                               atol=1e-9)


def test_the_chosen_hand_model_reaches_every_stage(runs):
    """--hand_model open with MANO files present: the camera stage (hand masks, scale) uses the open
    model too, so the trajectory is the one of the run that has no MANO at all."""
    run, embedded = _compared(runs, "open_over_mano")
    assert run.summary["hand_model"] == "open" and run.ran("hand_model") == "open"
    np.testing.assert_array_equal(run.npz("camera.npz")["T_world_cam"], embedded.npz("camera.npz")["T_world_cam"])


# ---------------------------------------------------------------- everything together

def test_all_learned_backends_together(runs, built, frames):
    from hawor.detection.yolo import load_yolo, track_hands_yolo

    run = _ok(runs["all"])
    assert {stage: run.ran(stage) for stage in ("detection", "hands", "camera", "scale", "infilling")} == {
        "detection": "yolo", "hands": "regressor", "camera": "droid", "scale": "metric3d", "infilling": "infiller"}
    stages = run.summary["stages"]
    assert [stages[s]["backend"] for s in ("detection", "hands", "camera", "world")] == [
        "yolo", "regressor", "droid", "infiller"]
    # This DROID file sees no motion (one keyframe, no disparity): Metric3D has no map to scale, and
    # the run says so instead of falling back silently.
    assert any("Metric3D" in warning for warning in stages["camera"]["warnings"])
    # The boxes are the trained detector's on this clip (it learned this clip: both hands, in many frames).
    tracks = run.npz("tracks.npz")
    expected, _ = track_hands_yolo(frames, model=load_yolo(built["detector"]))
    for side in ("left", "right"):
        assert len(expected[side].frame_indices) >= CLIP["num_frames"] // 3
        np.testing.assert_array_equal(tracks[f"{side}_frame_indices"], expected[side].frame_indices)
        np.testing.assert_allclose(tracks[f"{side}_boxes"], expected[side].boxes, atol=1e-3)
    assert float(run.npz("camera.npz")["scale"]) > 0
