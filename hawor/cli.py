"""The per-video options that demo.py and ``python -m hawor batch`` share, as argparse flags.

The flags keep the official demo's names and map onto :class:`hawor.pipeline.run.RunOptions` field by
field (``--no_vis`` and ``--export`` are the two renamed ones), so a new RunOptions field flows through
both commands once a flag of the same name is added here.
"""
from __future__ import annotations

import argparse
import dataclasses

from hawor.vis.exports import EXPORT_FORMATS
from hawor.weights import weight_path

CHOICES = ("auto", "learned", "embedded")
STAGE_FLAGS = (("detector", "hand detection: YOLO detector.pt | embedded landmark models"),
               ("hands", "camera-space hands: HaWoR regressor | keypoint fit"),
               ("camera", "camera trajectory: DROID-SLAM | classical SfM"),
               ("scale", "metric scale: Metric3D | hand-anchored"),
               ("infiller", "gap filling: motion infiller | interpolation"))


def add_run_options(parser: argparse.ArgumentParser, official: argparse._ArgumentGroup | None = None) -> None:
    """Add every per-video option (not the video, the output folder or the ground truth).

    ``official``: the group that holds the official demo's flags (default: a new one).
    """
    official = official or parser.add_argument_group("official flags")
    official.add_argument("--vis_mode", default="world", choices=("world", "cam", "both"),
                          help="which video to render: world view, camera view (hands over the frames) or both")
    official.add_argument("--img_focal", type=float, default=None,
                          help="focal length in pixels (default: estimated from the video's rotation, else 600)")
    official.add_argument("--checkpoint", default=None,
                          help=f"HaWoR regressor checkpoint (default {weight_path('regressor')})")
    official.add_argument("--infiller_weight", default=None,
                          help=f"motion infiller weights (default {weight_path('infiller')})")
    extra = parser.add_argument_group("extras")
    extra.add_argument("--device", default=None,
                       help="torch device of every network: auto (a GPU when visible), cpu, cuda or cuda:N "
                            "(asking for a missing GPU is an error)")
    extra.add_argument("--img_center", type=float, nargs=2, default=None, metavar=("CX", "CY"),
                       help="principal point in pixels (default: the image centre)")
    for stage, what in STAGE_FLAGS:
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
    extra.add_argument("--world_view", default="follow", choices=("follow", "overview"),
                       help="world-view camera: follow the wearer (behind and above the head, smoothed, recent "
                            "path; default) or one overview of the whole trajectory")
    extra.add_argument("--export", nargs="*", default=[], choices=EXPORT_FORMATS,
                       help="also write a rerun recording (hands.rrd), per-frame meshes, a one-row Parquet "
                            "table (result.parquet) and/or an animated glTF (hands.glb)")
    extra.add_argument("--force", action="store_true", help="recompute every stage instead of reusing the cache")


def run_options_dict(args: argparse.Namespace) -> dict:
    """RunOptions fields from parsed flags (the ones the parser has; ``vis_mode`` and ``exports`` mapped)."""
    from hawor.pipeline.run import RunOptions

    fields = {f.name for f in dataclasses.fields(RunOptions)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["vis_mode"] = "none" if args.no_vis else args.vis_mode
    values["exports"] = tuple(args.export)
    return values
