"""Run numeric fixtures (official networks, random weights, float64 references) against our modules.

Each network has a module ``hawor.compat.<name>_fixture`` with ``present(dir) -> bool`` and
``run(dir) -> {output name: (ours, reference)}``; it builds the network from the fixture's own config
JSON, loads the fixture's state dict and runs in float64. A network whose module is not there yet is
reported as skipped, never as passed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch

from hawor._offline import PROJECT_ROOT

# Shipped with the repository (plain files, see its README) so a fresh clone can prove exactness.
COMPAT_DATA_DIR = PROJECT_ROOT / "tests" / "data" / "compat"
DEFAULT_FIXTURE_DIR = COMPAT_DATA_DIR / "fixtures"
FIXTURE_CHECKS = ("hawor", "infiller", "droid", "metric3d")
RTOL, ATOL = 1e-9, 1e-10


@dataclass
class OutputCheck:
    network: str
    output: str
    max_abs_error: float
    passed: bool
    note: str = ""

    def line(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        return f"{status} {self.network:9s} {self.output:32s} max abs err {self.max_abs_error:.3e} {self.note}".rstrip()


def compare(ours: torch.Tensor, reference: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> tuple[float, bool, str]:
    """Max abs error and whether ``ours`` matches ``reference`` elementwise within rtol/atol."""
    ours, reference = torch.as_tensor(ours), torch.as_tensor(reference)
    if ours.shape != reference.shape:
        return float("inf"), False, f"shape {tuple(ours.shape)} vs reference {tuple(reference.shape)}"
    if not ours.is_floating_point():
        equal = bool(torch.equal(ours, reference.to(ours.dtype)))
        return (0.0 if equal else float("inf")), equal, ""
    diff = (ours.double() - reference.double()).abs()
    err = float(diff.max()) if diff.numel() else 0.0
    ok = bool(torch.all(diff <= atol + rtol * reference.double().abs()))
    return err, ok, ""


def verify(fixture_dir: str | Path) -> tuple[list[OutputCheck], list[str]]:
    """Run every fixture found in ``fixture_dir``; returns the checks and the skipped networks (with why)."""
    fixture_dir = Path(fixture_dir)
    checks: list[OutputCheck] = []
    skipped: list[str] = []
    for network in FIXTURE_CHECKS:
        try:
            module = importlib.import_module(f"hawor.compat.{network}_fixture")
        except ModuleNotFoundError as exc:
            if exc.name != f"hawor.compat.{network}_fixture":
                raise
            skipped.append(f"{network}: not supported yet")
            continue
        if not module.present(fixture_dir):
            skipped.append(f"{network}: no fixture files in {fixture_dir}")
            continue
        for output, (ours, reference) in module.run(fixture_dir).items():
            err, ok, note = compare(ours, reference)
            checks.append(OutputCheck(network, output, err, ok, note))
    return checks, skipped
