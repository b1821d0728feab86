"""World-space 3D hand motion from an egocentric video (the official demo's flags, plus extras).

    python demo.py --video_path ./example/video_0.mp4 --vis_mode world
    python demo.py --video_path my.mp4 --vis_mode cam --img_focal 900 --output_dir out/

Writes <output_dir or the video's folder>/<video name>/ with hands_world.npz, hands_camera.npz,
camera.npz, camera_tum.txt, tracks.npz, summary.json and vis_<mode>.mp4 (see docs/outputs.md).
Every stage uses the official weights when they are present and an embedded backend otherwise.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import hawor  # noqa: F401  (offline defaults before any third-party import)
from hawor.errors import HaworInputError
from hawor.cli import add_run_options, run_options_dict

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    official = p.add_argument_group("official flags")
    official.add_argument("--video_path", default="example/video_0.mp4", help="input video file")
    official.add_argument("--input_type", default="file", choices=("file",), help="only video files are supported")
    add_run_options(p, official)
    extra = p.add_argument_group("output and evaluation")
    extra.add_argument("--output_dir", default=None, help="parent folder of the result folder (default: beside the video)")
    extra.add_argument("--ground_truth", default=None,
                       help="ground-truth npz to evaluate against (default: <video name>_gt.npz beside the video)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hawor.pipeline import RunOptions, run

    try:
        options = RunOptions(**run_options_dict(args))  # output_dir and ground_truth included
        result = run(Path(args.video_path), options)
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages are cached; rerun the same command to resume.", file=sys.stderr)
        return 130
    except Exception:  # a bug, not bad input: keep the traceback so it can be reported
        traceback.print_exc()
        print("internal error: the traceback above is a bug in hawor, not a problem with your input; please "
              "report it with the command you ran.", file=sys.stderr)
        return 1
    _report(result)
    return 0


def _report(result) -> None:
    s = result.summary
    print(f"result: {result.folder}  ({s['num_frames']} frames, {s['fps']:.2f} fps, "
          f"{s['image_size'][0]}x{s['image_size'][1]}, focal {s['focal']:g} px, hand model {s['hand_model']})")
    for name, stage in s["stages"].items():
        cached = " (cached)" if stage["cached"] else ""
        print(f"  {name:<10} {stage['backend']:<14} {stage['seconds']:8.1f} s{cached}  {stage['reason']}")
    for side in ("left", "right"):
        c = s["counts"][side]
        print(f"  {side:<5} hand: observed {c['observed']}, infilled {c['infilled']}, valid {c['valid']} "
              f"of {s['num_frames']} frames")
    for warning in s["warnings"]:
        print(f"warning: {warning}")
    evaluation = s.get("evaluation")
    if evaluation:
        print(f"evaluation against {evaluation['file']}:")
        for side in ("left", "right"):
            row = evaluation.get(side)
            if row and "w_mpjpe_mm" in row:
                print(f"  {side:<5} W-MPJPE {row['w_mpjpe_mm']:.1f} mm, WA-MPJPE {row['wa_mpjpe_mm']:.1f} mm, "
                      f"PA-MPJPE {row['pa_mpjpe_mm']:.1f} mm, observed {100 * row['observed_fraction']:.0f} % "
                      f"of visible frames")
        if "camera_ate_m" in evaluation:
            print(f"  camera ATE {100 * evaluation['camera_ate_m']:.1f} cm after Sim3 alignment (scale "
                  f"{evaluation['sim3_scale']:.2f}), {100 * evaluation['camera_ate_se3_m']:.1f} cm after SE3 "
                  f"alignment (metric); camera path {evaluation['path_length_ratio']:.2f}x its true length")
        if "handedness_swaps" in evaluation:
            swaps = evaluation["handedness_swaps"]
            print(f"  handedness swaps: left {swaps['left']}, right {swaps['right']} frames")
        if "skipped" in evaluation:
            print(f"  skipped: {evaluation['skipped']}")
    for stage, info in s["stages"].items():
        if stage.startswith("vis_"):
            print(f"  {'kept' if info['cached'] else 'wrote'} {result.folder / (stage + '.mp4')}")
    for kind, where in s["exports"].items():
        print(f"  export {kind}: {where}")


if __name__ == "__main__":
    sys.exit(main())
