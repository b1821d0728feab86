"""Hands cut by the image border: how often the landmark backend finds each visible hand, and swaps.

    .venv/bin/python scripts/make_synthetic.py --out /tmp/trunc/eval --num-sequences 8 --frames 300 \\
        --width 1280 --height 720 --focal 1200 --seed 201 --outputs video,gt,joints2d
    .venv/bin/python bench/truncation.py /tmp/trunc/eval [--json out.json]
    .venv/bin/python bench/truncation.py BENCH_OUT --borders full   # a scripts/benchmark.py --out folder

Each sequence is run as rendered ("full": hands leave through the bottom edge as the head moves) and
cropped so that one border cuts through the hands: "bottom" keeps the image above the median height
of the palms (fingers in view, palm cut off: the hard case), "top" below it, "left" right of the left
palm's median x, "right" left of the right palm's median x. A hand is *visible* in a frame when at
least 11 of its 21 true joints project inside the (cropped) image, as the generator defines it; it is
*observed* when its side's track has a detection there that matches it, and a *swap* is a detection
in one side's track that matches the other hand (hawor.eval.hand_detection). Where the ground truth
marks hidden joints (benchmark folders generated since ``{h}_joints_unoccluded`` exists), the totals
also count the visible frames with 11 joints inside the crop and unoccluded, and those observed.
Prints a table and a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import hawor  # noqa: F401  (offline defaults)
import numpy as np

from hawor.data.synthetic.truth import project
from hawor.detection.landmarks import LandmarkHandDetector, track_hands_landmarks
from hawor.eval.hand_detection import SIDES, crop_window, score_hand_tracks
from hawor.eval.metrics import camera_points
from hawor.io.video import VideoReader

BORDERS = ("full", "bottom", "top", "left", "right")


def true_joints(folder: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 2, 21, 2) true joints of (left, right) in pixels: the generator's joints2d.npz, or projected
    from a benchmark sequence's truth, NaN where a hand is not drawn (the benchmark's one_hand clips);
    and (N, 2, 21) the truth's ``{h}_joints_unoccluded``, None in ground truth older than that key."""
    hands = np.load(folder / "hands_world.npz")
    keys = [f"{side}_joints_unoccluded" for side in SIDES]
    unoccluded = np.stack([hands[k] for k in keys], 1) if all(k in hands for k in keys) else None
    if (folder / "joints2d.npz").is_file():
        return np.load(folder / "joints2d.npz")["joints_2d"], unoccluded
    camera = np.load(folder / "camera.npz")
    sides = []
    for side in SIDES:
        uv = project(camera_points(hands[f"{side}_joints"], camera["T_world_cam"]), camera["K"])
        uv[~hands[f"{side}_observed"]] = np.nan
        sides.append(uv)
    return np.stack(sides, 1), unoccluded


def run_sequence(folder: Path, detector: LandmarkHandDetector, borders) -> dict:
    joints_2d, unoccluded = true_joints(folder)
    video = VideoReader(folder / "video.mp4")
    frames = list(video)
    results = {}
    for border in borders:
        full = (0, 0, *video.size)  # a hand never drawn (one_hand clips) has no median for the crops
        x0, y0, x1, y1 = window = full if border == "full" else crop_window(joints_2d, video.size, border)
        crops = [np.ascontiguousarray(f[y0:y1, x0:x1]) for f in frames]
        start = time.perf_counter()
        tracks, notes = track_hands_landmarks(crops, detector=detector)
        elapsed = time.perf_counter() - start
        results[border] = {"window": [int(v) for v in window], "fps": round(len(crops) / elapsed, 1),
                           **score_hand_tracks(tracks, joints_2d, window, unoccluded)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder of seq_* folders from scripts/make_synthetic.py, or "
                                                "the --out folder of scripts/benchmark.py")
    parser.add_argument("--borders", default=",".join(BORDERS))
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    detector = LandmarkHandDetector()
    borders = args.borders.split(",")
    report = {}
    for folder in sorted(args.root.glob("seq_*")) + sorted(args.root.glob("sequences/*")):
        report[folder.name] = run_sequence(folder, detector, borders)
        for border, r in report[folder.name].items():
            print(folder.name, border, r["fps"], "fps", " ".join(
                f"{s}: {r[s]['observed']}/{r[s]['visible']} swap {r[s]['swapped']} spur {r[s]['spurious']}"
                for s in SIDES), flush=True)
    summary = {}
    for border in borders:
        rates = {s: [r[border][s]["observed"] / r[border][s]["visible"] for r in report.values()
                     if r[border][s]["visible"]] or [float("nan")] for s in SIDES}  # a hand never in view: no rate
        summary[border] = {**{f"{s}_median": round(float(np.median(rates[s])), 3) for s in SIDES},
                           **{f"{s}_min": round(float(np.min(rates[s])), 3) for s in SIDES},
                           **{f"{s}_{k}": int(sum(r[border][s].get(k, 0) for r in report.values()))
                              for s in SIDES for k in ("observed", "visible", "observed_unoccluded", "unoccluded")},
                           "swapped": int(sum(r[border][s]["swapped"] for r in report.values() for s in SIDES)),
                           "spurious": int(sum(r[border][s]["spurious"] for r in report.values() for s in SIDES)),
                           "fps_median": float(np.median([r[border]["fps"] for r in report.values()]))}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"sequences": report, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
