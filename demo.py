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
from hawor.weights import weight_path

CHOICES = ("auto", "learned", "embedded")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    official = p.add_argument_group("official flags")
    official.add_argument("--video_path", default="example/video_0.mp4", help="input video file")
    official.add_argument("--vis_mode", default="world", choices=("world", "cam", "both"),
                          help="which video to render: world view, camera view (hands over the frames) or both")
    official.add_argument("--img_focal", type=float, default=None, help="focal length in pixels (default 600)")
    official.add_argument("--checkpoint", default=None,
                          help=f"HaWoR regressor checkpoint (default {weight_path('regressor')})")
    official.add_argument("--infiller_weight", default=None,
                          help=f"motion infiller weights (default {weight_path('infiller')})")
    official.add_argument("--input_type", default="file", choices=("file",), help="only video files are supported")
    extra = p.add_argument_group("extras")
    extra.add_argument("--output_dir", default=None, help="parent folder of the result folder (default: beside the video)")
    extra.add_argument("--device", default=None,
                       help="torch device of every network: auto (a GPU when visible), cpu, cuda or cuda:N "
                            "(asking for a missing GPU is an error)")
    extra.add_argument("--img_center", type=float, nargs=2, default=None, metavar=("CX", "CY"),
                       help="principal point in pixels (default: the image centre)")
    for stage, what in (("detector", "hand detection: YOLO detector.pt | embedded landmark models"),
                        ("hands", "camera-space hands: HaWoR regressor | keypoint fit"),
                        ("camera", "camera trajectory: DROID-SLAM | classical SfM"),
                        ("scale", "metric scale: Metric3D | hand-anchored"),
                        ("infiller", "gap filling: motion infiller | interpolation")):
        extra.add_argument(f"--{stage}", default="auto", choices=CHOICES, help=f"{what} (default auto)")
    extra.add_argument("--detector_weight", default=None, help=f"YOLO hand detector (default {weight_path('detector')})")
    extra.add_argument("--hand_model", default="auto", choices=("auto", "mano", "open"),
                       help="hand model: MANO files when present (auto), or the open MANO-format hand")
    extra.add_argument("--start", type=int, default=0, help="first frame to use")
    extra.add_argument("--end", type=int, default=None, help="frame to stop before (exclusive)")
    extra.add_argument("--max_frames", type=int, default=None, help="use at most this many frames")
    extra.add_argument("--fps", type=float, default=None,
                       help="resample to this frame rate (the official demo uses 30); default: keep the video's rate")
    extra.add_argument("--max_gap", type=int, default=None,
                       help="longest gap (frames) to fill; default 30 for interpolation, any for the infiller; -1: any")
    extra.add_argument("--no_vis", action="store_true", help="write the result files only, no video")
    extra.add_argument("--render_backend", default="auto", choices=("auto", "egl", "numpy"),
                       help="offscreen renderer (auto: EGL, else the numpy rasteriser)")
    extra.add_argument("--export", nargs="*", default=[], choices=("rerun", "ply", "obj"),
                       help="also write a rerun recording (hands.rrd) and/or per-frame meshes")
    extra.add_argument("--ground_truth", default=None,
                       help="ground-truth npz to evaluate against (default: <video name>_gt.npz beside the video)")
    extra.add_argument("--force", action="store_true", help="recompute every stage instead of reusing the cache")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hawor.pipeline import RunOptions, run

    try:
        options = RunOptions(
            output_dir=args.output_dir, img_focal=args.img_focal, img_center=args.img_center,
            checkpoint=args.checkpoint, scale=args.scale,
            infiller_weight=args.infiller_weight, detector_weight=args.detector_weight, device=args.device,
            detector=args.detector, hands=args.hands, camera=args.camera, infiller=args.infiller,
            hand_model=args.hand_model, start=args.start, end=args.end, max_frames=args.max_frames, fps=args.fps,
            max_gap=args.max_gap, vis_mode="none" if args.no_vis else args.vis_mode,
            render_backend=args.render_backend, exports=tuple(args.export), force=args.force,
            ground_truth=args.ground_truth)
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
