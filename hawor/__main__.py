"""``python -m hawor doctor``: report on every component; exit 1 only when some stage cannot run at all.
``python -m hawor batch INPUT... --output_dir OUT``: the pipeline over many videos (docs/batch.md)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hawor")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="list every component, where it is expected, and what `auto` will use")
    from hawor.batch import cli as batch_cli

    batch_cli.add_arguments(sub.add_parser("batch", help="run the pipeline over many videos (local workers or Ray)",
                                           description=batch_cli.DESCRIPTION,
                                           formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from hawor.doctor import format_report, run_doctor

        components, choices = run_doctor()
        print(format_report(components, choices))
        return 1 if any(choice is None for choice in choices.values()) else 0
    if args.command == "batch":
        return batch_cli.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
