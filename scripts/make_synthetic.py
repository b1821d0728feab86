"""Render synthetic egocentric sequences (textured room, head-mounted camera, two moving hands) with
exact ground truth in the result schema.

    python scripts/make_synthetic.py --out data/synth --num-sequences 4 --frames 150      # seq_0000 .. seq_0003
    python scripts/make_synthetic.py --out data/synth --outputs video,joints2d,masks,depth,manifest
    python scripts/make_synthetic.py --example        # rewrites example/video_0.mp4 + example/video_0_gt/
    python scripts/make_synthetic.py --figure docs/images/synthetic_frames.png   # one frame of seeds 0-5

Sequence k uses seed (--seed + k). With "manifest" every frame is written as seq_NNNN/frames/NNNNNN.jpg and a
combined manifest.json / manifest.npz over all sequences to --out (img_path relative to --out): everything
scripts/train_hawor.py reads (--image-root D --train-annotations D/manifest.npz). Formats:
hawor/data/synthetic/generate.py; training: docs/training.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import hawor  # noqa: F401  (offline defaults, EGL)
from hawor.errors import HaworInputError

# The bundled example: 8 s at 30 fps, 640x480, focal 600 px, this seed (both hands leave the view and come
# back, the hands meet once, the camera turns fast twice), and the open hand so that every machine, with
# or without the MANO files, reproduces the same ground truth.
EXAMPLE = {"seed": 0, "num_frames": 240, "width": 640, "height": 480, "fps": 30.0, "focal": 600.0,
           "hand_backend": "open"}
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv):
    from hawor.data.synthetic import OUTPUTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/synthetic"), help="output folder")
    parser.add_argument("--num-sequences", type=int, default=1, help="how many sequences (default 1)")
    parser.add_argument("--frames", type=int, default=150, help="frames per sequence (default 150)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--focal", type=float, default=None, help="pixels (default 600 * long side / 640)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first sequence")
    parser.add_argument("--outputs", default="video,gt",
                        help=f"comma-separated, any of {','.join(OUTPUTS)} (gt is always written)")
    parser.add_argument("--hand-model", default="auto", choices=("auto", "mano", "open"))
    parser.add_argument("--walk", type=float, default=0.0,
                        help="metres (0-1.5) the wearer walks up to the table during each clip (default 0)")
    parser.add_argument("--example", action="store_true",
                        help="regenerate example/video_0.mp4 and example/video_0_gt/ (ignores the other options; "
                             "always the open hand)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write a PNG grid of one frame from each of six seeds (--seed ..) and exit")
    return parser.parse_args(argv)


def make_figure(path: Path, first_seed: int = 0, hand_model: str = "auto") -> Path:
    """A 3x2 grid of 640x480 frames (shown at half size), one per seed, where both hands are in view if possible."""
    import cv2
    import numpy as np

    from hawor.data.synthetic.generate import render_frames, simulate
    from hawor.io.files import atomic_path

    tiles = []
    for seed in range(first_seed, first_seed + 6):
        sim = simulate(seed, 120, 640, 480, 30.0, hand_backend=hand_model)
        both = sim.hands["left"].observed & sim.hands["right"].observed
        candidates = np.flatnonzero(both[40:]) + 40
        index = int(candidates[0]) if len(candidates) else 60
        rgb = next(render_frames(sim, indices=[index]))[0]
        tiles.append(cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA))
    grid = np.concatenate([np.concatenate(tiles[k:k + 3], axis=1) for k in (0, 3)], axis=0)
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def make_example() -> dict:
    """example/video_0.mp4 and its ground truth in example/video_0_gt/."""
    from tqdm import tqdm

    from hawor.data.synthetic import generate_sequence

    gt_dir = ROOT / "example" / "video_0_gt"
    with tqdm(total=EXAMPLE["num_frames"], desc="example", unit="frame") as bar:
        return generate_sequence(gt_dir, video_path=ROOT / "example" / "video_0.mp4", outputs=("video", "gt"),
                                 progress=bar.update, **EXAMPLE)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.figure is not None:
            print(f"figure: {make_figure(args.figure, args.seed, args.hand_model)}")
            return 0
        if args.example:
            paths = make_example()
            print(f"example: {paths['video']} and {paths['meta'].parent}/")
            return 0
        return run(args)
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args) -> int:
    from tqdm import tqdm

    from hawor.data.synthetic import generate_sequence
    from hawor.data.synthetic.truth import merge_manifests, write_manifest

    outputs = tuple(o.strip() for o in args.outputs.split(",") if o.strip())
    if args.num_sequences < 1:
        raise HaworInputError(f"--num-sequences {args.num_sequences}: must be at least 1.")
    if args.out.exists() and not args.out.is_dir():
        raise HaworInputError(f"--out {args.out}: exists and is not a folder; pass a folder path.")
    manifests = []
    with tqdm(total=args.num_sequences * args.frames, desc="synthetic", unit="frame") as bar:
        for k in range(args.num_sequences):
            seq_dir = args.out / f"seq_{k:04d}"
            paths = generate_sequence(seq_dir, seed=args.seed + k, num_frames=args.frames, width=args.width,
                                      height=args.height, fps=args.fps, focal=args.focal, outputs=outputs,
                                      hand_backend=args.hand_model, progress=bar.update, walk=args.walk)
            if "manifest_npz" in paths:
                import numpy as np

                with np.load(paths["manifest_npz"]) as data:
                    part = {key: data[key] for key in data.files}
                part["img_path"] = np.array([f"{seq_dir.name}/{p}" for p in part["img_path"]], dtype=str)
                manifests.append(part)
    if manifests:
        written = write_manifest(merge_manifests(manifests), args.out)
        print(f"manifest: {written['manifest_json']} ({sum(len(m['img_path']) for m in manifests)} samples)")
    print(f"wrote {args.num_sequences} sequence(s) to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
