"""``python -m hawor doctor``: report on every component; exit 1 only when some stage cannot run at all."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hawor")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="list every component, where it is expected, and what `auto` will use")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from hawor.doctor import format_report, run_doctor

        components, choices = run_doctor()
        print(format_report(components, choices))
        return 1 if any(choice is None for choice in choices.values()) else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
