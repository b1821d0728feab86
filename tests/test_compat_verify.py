"""`python -m hawor.compat verify` with no argument proves every network from a fresh clone's own files."""
import shutil
import subprocess
import sys
from pathlib import Path

from hawor.compat.verify import COMPAT_DATA_DIR, DEFAULT_FIXTURE_DIR, FIXTURE_CHECKS

REPO = Path(__file__).resolve().parents[1]


def test_fixtures_and_manifests_ship_with_the_repository():
    assert DEFAULT_FIXTURE_DIR == REPO / "tests" / "data" / "compat" / "fixtures"
    for network in ("hawor", "infiller", "droid", "metric3d"):
        assert (COMPAT_DATA_DIR / f"{network}_state_dict.json").is_file()
    # Plain files, not git LFS pointers (a pointer is a ~130-byte text file).
    for path in DEFAULT_FIXTURE_DIR.rglob("*.pt"):
        assert not path.read_bytes()[:40].startswith(b"version https://git-lfs"), path


def test_verify_without_argument_passes_every_fixture_in_a_fresh_clone(tmp_path):
    """A copy of the package and its fixtures alone, run from elsewhere, with nothing beside it."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "hawor", clone / "hawor", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(COMPAT_DATA_DIR, clone / "tests" / "data" / "compat")
    done = subprocess.run([sys.executable, "-m", "hawor.compat", "verify"], cwd=clone, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(clone)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"fixtures: {clone / 'tests' / 'data' / 'compat' / 'fixtures'}" in done.stdout
    assert "0 failed, 0 skipped" in done.stdout
    assert {line.split()[1] for line in done.stdout.splitlines() if line.startswith("ok ")} == set(FIXTURE_CHECKS)


def test_verify_reports_a_missing_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hawor.compat", "verify", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "tests/data/compat/fixtures" in done.stderr
