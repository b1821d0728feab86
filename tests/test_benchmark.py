"""scripts/benchmark.py: the CI run (--quick) yields valid figures; category helpers; bad input."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import benchmark  # noqa: E402


def test_quick_run_writes_valid_tables(tmp_path):
    """One short fresh sequence (seed drawn at run time, printed), the embedded backends, every figure
    finite and in range; nothing asserted about how good the figures are."""
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "sequences: low_light:" in run.stdout
    data = json.loads((tmp_path / "benchmark.json").read_text())
    (record,) = data["records"]
    assert benchmark.problems(record) == []
    assert record["stage_backends"]["detection"] == "landmarks"
    assert set(record["report"]) >= {"left", "right", "camera_ate_m", "camera_ate_se3_m", "sim3_scale"}
    table = (tmp_path / "benchmark.md").read_text()
    assert "| low_light |" in table and "ATE Sim3 cm" in table and "--sequences low_light:" in table
    rpe = f"{1000 * record['report']['rpe_trans_m']:.2f}"  # frame-to-frame jitter: camera table, summary rows
    assert table.count(f"| {rpe} |") == 1 and table.count(f"| {rpe} ({rpe}) |") == 2


def test_problems_flags_non_finite_and_out_of_range():
    record = {"frames": 10, "speed": {"total_fps": 3.0},
              "report": {"left": {"w_mpjpe_mm": float("nan"), "observed_fraction": 1.5, "precision": float("nan")},
                         "camera_ate_m": 0.01, "handedness_swaps": {"left": 11, "right": 0}}}
    found = benchmark.problems(record)
    assert any("w_mpjpe_mm" in p for p in found) and any("observed_fraction" in p for p in found)
    assert any("handedness_swaps left" in p for p in found) and not any("precision" in p for p in found)
    assert benchmark.problems({"error": "ValueError: boom"}) == ["run failed: ValueError: boom"]


def test_motion_kernel_follows_the_image_motion():
    T = np.tile(np.eye(4), (2, 1, 1))
    T[1, :3, :3] = [[np.cos(0.05), 0, np.sin(0.05)], [0, 1, 0], [-np.sin(0.05), 0, np.cos(0.05)]]  # pan about y
    sim = SimpleNamespace(T_world_cam=T, K=np.diag([600.0, 600.0, 1.0]))
    kernel = benchmark._motion_kernel(sim, 0)
    assert kernel.sum() == pytest.approx(1.0)
    rows, cols = np.nonzero(kernel)
    assert np.ptp(cols) > 5 * max(np.ptp(rows), 1)  # a horizontal streak of about 0.5 * 600 * tan(0.05) px
    assert np.ptp(cols) + 1 == pytest.approx(0.5 * 600 * np.tan(0.05), abs=2)


def test_low_light_darkens():
    rgb = np.full((8, 8, 3), 200, np.uint8)
    dark = benchmark.degrade("low_light", None, 0, rgb, np.random.default_rng(0))
    assert dark.mean() < 0.4 * rgb.mean()
    assert benchmark.degrade("baseline", None, 0, rgb, None) is rgb


def test_bad_sequence_spec_is_an_error(capsys):
    assert benchmark.main(["--sequences", "underwater:3", "--out", "/nonexistent"]) == 2
    assert capsys.readouterr().err.startswith("error: --sequences 'underwater:3'")


def test_walk_is_asked_for_not_cycled():
    default = benchmark.parse_args(["--num", "8", "--seed", "5"])
    assert "walk" not in {c for c, _ in benchmark.sequence_specs(default)}  # the earlier sets stay as they were
    walks = benchmark.parse_args(["--categories", "walk", "--num", "2", "--seed", "5"])
    assert benchmark.sequence_specs(walks) == [("walk", 5), ("walk", 105)]
    assert benchmark.walk_distance("walk", 5) == benchmark.walk_distance("walk", 5)
    assert benchmark.WALK_M[0] <= benchmark.walk_distance("walk", 5) <= benchmark.WALK_M[1]
    assert benchmark.walk_distance("baseline", 5) == 0.0
    sim = benchmark.simulate_category("walk", 5, 40, 160, 120, select=False)
    centres = sim.T_world_cam[:, :3, 3]
    assert np.linalg.norm(centres[-1] - centres[0]) > 0.7  # metres walked up to the table
