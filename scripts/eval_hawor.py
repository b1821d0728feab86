"""Evaluate a result folder (docs/outputs.md) against ground truth; protocol: docs/evaluation.md.

    python scripts/eval_hawor.py example/video_0 --gt example/video_0_gt
    python scripts/eval_hawor.py out/clip --gt hot3d/clip-001234 --dataset hot3d --hands right --json eval.json
    python scripts/eval_hawor.py out/seq --gt dexycb/20200709-subject-01/20200709_141754/836212060125 \\
        --dataset dexycb --hands right --chunk 100

Prints the protocol and a markdown table (per hand: W-MPJPE, WA-MPJPE, PA-MPJPE, ...; camera: ATE
Sim3 / SE3, Sim3 scale, RPE, handedness swaps). --json writes every figure; --markdown the table.
Bad input: one "error: ..." line and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import hawor
from hawor.errors import HaworInputError


def parse_args(argv):
    from hawor.eval.datasets import DATASETS, UNITS
    from hawor.eval.metrics import DEFAULT_CHUNK
    from hawor.eval.protocol import BOXES, FOCALS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("result", type=Path, help="result folder written by demo.py / hawor.run")
    p.add_argument("--gt", type=Path, required=True, help="ground truth (file or folder, see --dataset)")
    p.add_argument("--dataset", default="synthetic", choices=DATASETS, help="layout of --gt (default synthetic)")
    p.add_argument("--hands", nargs="+", default=["left", "right"], choices=("left", "right"),
                   help="hands to score (the official HOT3D script: right)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="frames per W-/WA-MPJPE chunk (default 100)")
    p.add_argument("--boxes", default="detector", choices=BOXES, help="boxes the run used (recorded in the table)")
    p.add_argument("--focal", default="default", choices=FOCALS,
                   help="focal the run used: default 600 px or the ground truth's (checked against the result), or "
                        "its own estimate (its error is noted)")
    p.add_argument("--gt-unit", default="m", choices=tuple(UNITS), help="length unit of the ground truth (default m)")
    p.add_argument("--hand-model", default="auto", choices=("auto", "mano", "open"),
                   help="hand model that turns MANO parameters into joints (HOT3D; MANO for real data)")
    p.add_argument("--json", type=Path, default=None, help="write the full report as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="write the table as markdown")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report, table = evaluate_folder(args)
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    from hawor.io.files import write_json_atomic, write_text_atomic

    if args.json is not None:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    if args.markdown is not None:
        write_text_atomic(args.markdown, table)
        print(f"wrote {args.markdown}")
    return 0


def evaluate_folder(args) -> tuple[dict, str]:
    from hawor.eval.datasets import read_ground_truth
    from hawor.eval.protocol import Protocol, evaluate, prediction_arrays
    from hawor.eval.tables import evaluation_markdown

    protocol = Protocol(hands=tuple(args.hands), chunk=args.chunk, boxes=args.boxes, focal=args.focal)
    for name in ("hands_world.npz", "camera.npz"):
        if not (args.result / name).is_file():
            raise HaworInputError(f"result folder {args.result}: has no {name}; pass a folder written by demo.py or "
                                  "hawor.run (docs/outputs.md).")
    result = hawor.load_result(args.result)
    gt = read_ground_truth(args.gt, args.dataset, unit=args.gt_unit, hand_model=args.hand_model)
    report = evaluate(prediction_arrays(result), gt, protocol, summary=result.summary)
    report.update({"result": str(args.result), "ground_truth": str(args.gt), "dataset": args.dataset,
                   "backends": {k: v.get("backend") for k, v in result.summary.get("stages", {}).items()}})
    title = f"{args.result} against {args.gt} ({args.dataset})"
    return report, evaluation_markdown(report, title)


if __name__ == "__main__":
    sys.exit(main())
