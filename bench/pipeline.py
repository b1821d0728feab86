"""Pipeline benchmark on this machine (embedded default backends, nothing downloaded by hand).

    python bench/pipeline.py                       # 10 s 720p30 clip, 720p rendering, 10-minute 1080p video
    python bench/pipeline.py --seconds 2 --minutes 0.2    # a quick version

Measures (1) analysis frames/s on a synthetic 720p30 clip (detection, hands, camera, world; no
rendering), (2) frames/s of the world- and camera-view video stages on that clip (rendering and
H.264 encoding; the camera view also decodes the input), and (3) the peak resident
memory of a full analysis run (demo.py --no_vis, a separate process) on a long 1080p video made by
looping a synthetic 1080p clip back and forth. Prints the figures and writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hawor  # noqa: E402,F401
from hawor.data.synthetic import generate_sequence  # noqa: E402
from hawor.io.video import VideoReader, VideoWriter  # noqa: E402
from hawor.pipeline import RunOptions, run  # noqa: E402


def analysis_speed(work: Path, seconds: float, estimate_focal: bool = False):
    frames = int(round(30 * seconds))
    paths = generate_sequence(work / "clip720", seed=11, num_frames=frames, width=1280, height=720, fps=30.0)
    start = time.perf_counter()
    result = run(paths["video"], RunOptions(output_dir=work / "out720", img_focal=None if estimate_focal else 1200.0,
                                            vis_mode="none", force=True))
    elapsed = time.perf_counter() - start
    stages = {name: stage["seconds"] for name, stage in result.summary["stages"].items()}
    return {"video": "synthetic 1280x720 @ 30 fps", "frames": frames, "seconds": round(elapsed, 2),
            "frames_per_s": round(frames / elapsed, 2), "stage_seconds": stages,
            "backends": {n: s["backend"] for n, s in result.summary["stages"].items()},
            "evaluation": result.summary.get("evaluation")}, result


def render_speed(work: Path, video: Path) -> dict:
    """The pipeline's own video stages (rendering, compositing, H.264 encoding, decoding for the
    camera view), rerun on the analysed clip: the analysis comes from the cache."""
    result = run(video, RunOptions(output_dir=work / "out720", img_focal=1200.0, vis_mode="both"))
    out = {}
    for mode in ("world", "cam"):
        stage = result.summary["stages"][f"vis_{mode}"]
        out[f"{mode}_view"] = {"backend": stage["backend"], "seconds": stage["seconds"],
                               "frames_per_s": round(result.num_frames / stage["seconds"], 2)}
    return out


def long_video_memory(work: Path, minutes: float) -> dict:
    clip = generate_sequence(work / "clip1080", seed=12, num_frames=60, width=1920, height=1080, fps=30.0)["video"]
    frames = list(VideoReader(clip))
    total = int(round(minutes * 60 * 30))
    path = work / "long1080.mp4"
    loop = frames + frames[-2:0:-1]  # back and forth: no jump where the loop restarts
    start = time.perf_counter()
    with VideoWriter(path, 30.0, (1920, 1080), preset="ultrafast") as writer:
        for k in range(total):
            writer.write(loop[k % len(loop)])
    del frames, loop
    encode = time.perf_counter() - start
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "demo.py"), "--video_path", str(path), "--img_focal", "1800",
                           "--output_dir", str(work / "outlong"), "--no_vis", "--force"],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"video": f"1920x1080 @ 30 fps, {total} frames ({minutes:g} min)", "exit_code": proc.returncode,
            "seconds": round(elapsed, 1), "frames_per_s": round(total / elapsed, 2),
            "peak_rss_gb": round(peak_kb / 1024 ** 2, 3), "encode_seconds": round(encode, 1),
            "stderr_tail": proc.stderr.strip().splitlines()[-3:] if proc.returncode else []}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of the 720p30 analysis clip")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the long 1080p video (0: skip)")
    p.add_argument("--estimate-focal", action="store_true",
                   help="analysis without --img_focal, as a default user (adds the focal stage)")
    p.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        analysis, result = analysis_speed(work, args.seconds, args.estimate_focal)
        figures = {"analysis_720p": analysis, "render_720p": render_speed(work, work / "clip720" / "video.mp4")}
        if args.minutes > 0:
            figures["long_1080p"] = long_video_memory(work, args.minutes)
    figures["command"] = " ".join(["python", "bench/pipeline.py", *sys.argv[1:]])
    text = json.dumps(figures, indent=2, default=lambda v: float(v) if isinstance(v, np.generic) else str(v))
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
