import subprocess
import sys
from pathlib import Path

import hawor
import plan_weights as pw
from hawor.doctor import format_report, run_doctor
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
    assert "NOTHING CAN RUN" not in out and "device" in out


def test_doctor_reports_a_broken_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path))
    pw.embedded_root(tmp_path)
    ckpt = weight_path("regressor")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    weight_path("regressor_config").write_text("MODEL:\n  IMAGE_SIZE: 256\n")
    components, picks = run_doctor()
    regressor = next(c for c in components if c.name.startswith("regressor (HaWoR)"))
    assert regressor.present and not regressor.loadable and "hawor.ckpt" in regressor.detail
    assert picks["camera-space hands"] is None  # the run refuses it too: an error, not a silent switch
    assert "hawor.ckpt" in picks["cannot run (camera-space hands)"]
    assert picks["hand model"].startswith("open")


def test_nothing_can_run_without_embedded_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path))  # an empty tree: no landmark models, no detector
    _, picks = run_doctor()
    assert picks["detection"] is None
    assert picks["camera trajectory"].startswith("classical")
    assert "NOTHING CAN RUN" in format_report(*run_doctor())
