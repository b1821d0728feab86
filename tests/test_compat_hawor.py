"""The HaWoR regressor computes the official function: float64 fixture, every output, rtol 1e-9 / atol 1e-10."""
import json
import shutil
import subprocess
import sys

import pytest
import torch

from hawor.compat import hawor_fixture
from hawor.compat.verify import compare
from hawor.models.checkpoint import CheckpointMismatchError

from conftest import FIXTURES_DIR as FIXTURES

EXPECTED_OUTPUTS = {"bbox_info", "backbone_feat_frames", "st_feat_frames", "head_pose6d", "pred_shape", "pred_cam",
                    "pred_rotmat_0", "pred_pose", "pred_rotmat", "trans_full", "global_orient", "hand_pose", "betas"}


@pytest.fixture
def hawor_only(tmp_path):
    for name in hawor_fixture.FILES:
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def test_every_hawor_output_matches_in_float64():
    results = hawor_fixture.run(FIXTURES)
    assert set(results) == EXPECTED_OUTPUTS
    for name, (ours, reference) in results.items():
        err, ok, note = compare(ours, reference)
        assert ok, f"{name}: max abs error {err:.3e} {note}"
        assert ours.dtype == torch.float64


def test_verifier_cli_passes_the_hawor_fixture(hawor_only):
    done = subprocess.run([sys.executable, "-m", "hawor.compat", "verify", str(hawor_only)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("ok   hawor")]
    assert len(lines) == len(EXPECTED_OUTPUTS)


def test_sizes_come_from_the_fixture_json(hawor_only):
    """The network is built from hawor_config.json: a config that disagrees with the weights is refused."""
    config_path = hawor_only / "hawor_config.json"
    config = json.loads(config_path.read_text())
    config["st_module"]["nlayer"] += 1
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match=r"st_module\.trans\.layers\.2"):
        hawor_fixture.run(hawor_only)
