"""Speed and peak memory of the classical camera backend on a 1080p video (this CPU).

    .venv/bin/python bench/camera.py                      # renders a 1080p synthetic clip first
    .venv/bin/python bench/camera.py --video clip.mp4     # any video

Reports frames/s of the whole backend (decoding, masked KLT tracking, mapping, PnP) in wall-clock
and in process CPU time (the machine is shared; the 1-minute load average is printed beside), the
split between tracking and mapping, and the process's peak resident memory. Target: >= 30 frames/s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def render_clip(folder: Path, num_frames: int, size: tuple[int, int], seed: int) -> Path:
    """A synthetic egocentric clip from the project's generator (video + ground truth)."""
    from hawor.data.synthetic import generate_sequence

    return generate_sequence(folder, seed=seed, num_frames=num_frames, width=size[0], height=size[1])["video"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, help="video to run on (default: render a synthetic 1080p clip)")
    ap.add_argument("--frames", type=int, default=300, help="frames of the rendered clip")
    ap.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: 600 or ground truth)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hands", action="store_true",
                    help="ignore hands_camera.npz beside the video (no hand masks, scale fixed to 1)")
    args = ap.parse_args()

    import pycolmap  # noqa: F401  (imports are one-off costs the pipeline pays before this stage)

    import hawor.hands  # noqa: F401
    from hawor.io.video import probe_video
    from hawor.geometry import default_intrinsics
    from hawor.slam import estimate_camera

    with tempfile.TemporaryDirectory(prefix="hawor_bench_") as tmp:
        video = args.video or render_clip(Path(tmp), args.frames, (1920, 1080), args.seed)
        info = probe_video(video)
        gt = video.parent / "camera.npz"
        focal = args.focal or (float(np.load(gt)["K"][0, 0]) if gt.is_file() else 600.0)
        K = default_intrinsics(info.size, focal)
        hands_file = video.parent / "hands_camera.npz"
        hands = dict(np.load(hands_file)) if hands_file.is_file() and not args.no_hands else None
        base_rss = _peak_rss_mb()
        load_before = os.getloadavg()[0]
        start, cpu_start = time.perf_counter(), time.process_time()
        # with hands: masks rasterised from them and the hand-anchored scale, as in the pipeline
        traj = estimate_camera(video, K, hands=hands, backend="classical", scale="hand_anchored" if hands else 1.0)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        n = len(traj)
        report = {
            "video": str(args.video or "synthetic"), "size": list(info.size), "frames": n,
            "keyframes": int(len(traj.keyframes)), "seconds": round(wall, 2), "frames_per_s": round(n / wall, 1),
            "cpu_seconds": round(cpu, 2), "frames_per_cpu_s": round(n / cpu, 1),
            "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "peak_rss_mb": round(_peak_rss_mb(), 1), "rss_before_mb": round(base_rss, 1),
            "hand_masks": hands is not None, "method": traj.method, "warnings": traj.warnings,
        }
        timings = getattr(traj, "timings", None)
        if timings:
            report["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
