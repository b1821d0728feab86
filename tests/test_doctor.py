import os
import shutil
import subprocess
import sys
from pathlib import Path

import hawor
from hawor.doctor import auto_choices, run_doctor
from hawor.weights import weight_path

ROOT = Path(hawor.__file__).parent.parent


def test_doctor_on_the_set_up_tree_lists_embedded_backends():
    result = subprocess.run([sys.executable, "-m", "hawor", "doctor"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line_start in ("open hand (embedded)", "landmark models (embedded)"):
        line = next(l for l in out.splitlines() if l.startswith(line_start))
        assert " yes " in line and " no " not in line, line
    assert "weights/hawor/checkpoints/hawor.ckpt" in out and "thirdparty/Metric3D/weights" in out
    assert "NOTHING CAN RUN" not in out


def test_doctor_reports_a_broken_checkpoint(tmp_path, monkeypatch):
    for name in ("open_hand_right", "landmarks"):
        src = weight_path(name) if name == "landmarks" else weight_path(name).parent
        dst = tmp_path / src.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, dst)
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path))
    ckpt = weight_path("regressor")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    components, choices = run_doctor()
    regressor = next(c for c in components if c.name.startswith("regressor (HaWoR)"))
    assert regressor.present and not regressor.loadable and "hawor.ckpt" in regressor.detail
    assert choices["camera-space hands"] == "keypoint fit"
    assert choices["hand model"] == "open hand"


def test_nothing_can_run_without_embedded_assets():
    from hawor.doctor import Component

    missing = {name: Component(name, "", False, False, "") for name in
               ("mano_right", "mano_left", "open_hand", "detector", "landmarks", "regressor", "regressor_config",
                "droid", "metric3d", "infiller", "renderer", "codec")}
    choices = auto_choices(missing)
    assert choices["detection"] is None and choices["hand model"] is None
    assert choices["camera trajectory"] == "classical SfM"
