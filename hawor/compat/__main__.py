"""``python -m hawor.compat verify [DIR]``: one line per output, non-zero exit if any output misses.

DIR defaults to the fixtures that ship with the repository (tests/data/compat/fixtures).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hawor.compat.verify import ATOL, DEFAULT_FIXTURE_DIR, RTOL, verify
from hawor.errors import HaworInputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hawor.compat")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("verify", help="check every network fixture in DIR (float64, rtol 1e-9, atol 1e-10)")
    run.add_argument("fixture_dir", type=Path, nargs="?", default=DEFAULT_FIXTURE_DIR,
                     help=f"folder of fixture files (default: {DEFAULT_FIXTURE_DIR})")
    args = parser.parse_args(argv)
    if not args.fixture_dir.is_dir():
        print(f"error: fixture folder {args.fixture_dir} does not exist; pass the folder holding the "
              "*_config.json fixture files (the repository ships them in tests/data/compat/fixtures)",
              file=sys.stderr)
        return 2
    try:
        checks, skipped = verify(args.fixture_dir)
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fixtures: {args.fixture_dir}")
    for check in checks:
        print(check.line())
    for line in skipped:
        print(f"skip {line}")
    failed = [c for c in checks if not c.passed]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed, {len(skipped)} skipped "
          f"(rtol {RTOL:g}, atol {ATOL:g})")
    return 1 if failed or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
