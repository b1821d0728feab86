"""scripts/train_hawor.py end to end on generated data (tiny config, CPU): learning, exact resume after a
kill, 2-process gloo DDP, and the trained checkpoint through demo.py."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from hawor.configs import tiny_config_path
from hawor.models.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TRAIN = str(ROOT / "scripts" / "train_hawor.py")
STEPS = 300


def _run(args, **kwargs):
    return subprocess.run([PY, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)


def _config(path: Path, **overrides) -> Path:
    cfg = yaml.safe_load(tiny_config_path().read_text())
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        cfg[section][key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def _history(out: Path, split: str = "train") -> dict[int, dict]:
    """Last entry per step (a resumed run repeats the steps after its checkpoint)."""
    entries = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    return {e["step"]: e for e in entries if e["split"] == split}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three generated sequences in one folder: seq_0000 + seq_0001 train (stacked NPZ), seq_0002 validates (JSON)."""
    root = tmp_path_factory.mktemp("synth")
    done = _run([str(ROOT / "scripts" / "make_synthetic.py"), "--out", str(root), "--num-sequences", "3",
                 "--frames", "40", "--width", "160", "--height", "120", "--hand-model", "open",
                 "--outputs", "manifest,video"])
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(root / "manifest.npz") as manifest:
        arrays = {key: manifest[key] for key in manifest.files}
    train = arrays["sequence_id"] != "seq_0002"
    np.savez(root / "train.npz", **{key: value[train] for key, value in arrays.items()})
    val = [{key: value[i].tolist() for key, value in arrays.items()} for i in np.flatnonzero(~train)]
    (root / "val.json").write_text(json.dumps({"samples": val}))
    return root


def _train_args(data: Path, out: Path, config: Path, *extra, train: str = "train.npz") -> list[str]:
    return [TRAIN, "--config", str(config), "--train-annotations", str(data / train),
            "--val-annotations", str(data / "val.json"), "--image-root", str(data), "--output-dir", str(out),
            "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """The reference run: 300 steps, a checkpoint every 10."""
    work = tmp_path_factory.mktemp("run")
    config = _config(work / "train.yaml", GENERAL__TOTAL_STEPS=STEPS, GENERAL__CHECKPOINT_STEPS=10,
                     GENERAL__VAL_STEPS=150)
    out = work / "out"
    done = _run(_train_args(data, out, config))
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "config": config, "work": work}


def test_training_halves_the_loss_and_beats_the_untrained_model(trained):
    out = trained["out"]
    train = _history(out)
    assert sorted(train) == list(range(1, STEPS + 1))
    losses = np.array([train[s]["loss"] for s in sorted(train)])
    assert losses[-20:].mean() <= 0.5 * losses[:20].mean()
    val = _history(out, "val")
    assert val[STEPS]["mpjpe_mm"] < val[0]["mpjpe_mm"] and val[STEPS]["pa_mpjpe_mm"] < val[0]["pa_mpjpe_mm"]
    assert val[STEPS]["error_2d_px"] < val[0]["error_2d_px"]
    # outputs where --help says: TensorBoard events, checkpoints in the hawor.ckpt layout, the config
    assert list((out / "tensorboard" / "hawor").glob("events.out.tfevents.*"))
    best = load_checkpoint(out / "checkpoints" / "best.ckpt")
    assert min(v["loss"] for v in val.values()) == pytest.approx(best["best_val_loss"])
    keys = best["state_dict"]
    assert any(k.startswith("backbone.") for k in keys) and "mano_head.decpose.weight" in keys
    assert best["hyper_parameters"]["cfg"]["MODEL"]["ARCH"] == "tiny"
    assert (out / "model_config.yaml").is_file()


def test_killed_run_resumes_step_for_step(trained, data):
    work, reference = trained["work"], _history(trained["out"])
    out = work / "killed"
    process = subprocess.Popen([PY, *_train_args(data, out, trained["config"])], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    step = int(load_checkpoint(last)["global_step"])  # whatever the kill left is a complete checkpoint
    assert step % 10 == 0 and step < STEPS
    until = step + 10
    resumed = _run(_train_args(data, out, _config(work / "resume.yaml", GENERAL__TOTAL_STEPS=until,
                                                   GENERAL__CHECKPOINT_STEPS=10, GENERAL__VAL_STEPS=150),
                               "--resume-from-checkpoint", str(last)))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = _history(out)
    for s in range(step + 1, until + 1):
        assert again[s] == reference[s], f"step {s} differs after resuming from step {step}"


def test_two_process_gloo_ddp_trains(data, tmp_path):
    config = _config(tmp_path / "ddp.yaml", GENERAL__TOTAL_STEPS=4, GENERAL__VAL_STEPS=0, GENERAL__CHECKPOINT_STEPS=4)
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the generator's combined manifest as it is written: --image-root D --train-annotations D/manifest.npz
    done = _run(_train_args(data, out, config, "--num-gpus", "2", "--no-image-log", train="manifest.npz"), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(_history(out)) == [1, 2, 3, 4]
    assert all(np.isfinite(e["loss"]) for e in _history(out).values())
    assert int(load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"]) == 4
    assert "world size 2" in (out / "train.log").read_text()


def test_trained_checkpoint_runs_through_demo(trained, data, tmp_path):
    best = trained["out"] / "checkpoints" / "best.ckpt"  # its config: <out>/model_config.yaml (MODEL.ARCH tiny)
    video = data / "seq_0002" / "video.mp4"
    done = _run([str(ROOT / "demo.py"), "--video_path", str(video), "--checkpoint", str(best), "--hands", "learned",
                 "--no_vis", "--max_frames", "16", "--output_dir", str(tmp_path)])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "video" / "summary.json").read_text())
    assert "regressor" in json.dumps(summary)
    with np.load(tmp_path / "video" / "hands_camera.npz") as hands:
        assert np.isfinite(hands["right_hand_pose"][hands["right_valid"]]).all()


def _cli():
    spec = importlib.util.spec_from_file_location("train_hawor", TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_help_and_bad_input(tmp_path, capsys):
    cli = _cli()
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "tensorboard/hawor/" in text and "checkpoints/" in text and "--resume-from-checkpoint" in text
    missing = tmp_path / "nope.npz"
    code = cli.main(["--config", str(tiny_config_path()), "--train-annotations", str(missing),
                     "--val-annotations", str(missing), "--output-dir", str(tmp_path / "o"), "--device", "cpu"])
    assert code == 2 and f"error: manifest {missing}: not found" in capsys.readouterr().err
