"""The whole learned pipeline at full size: demo.py with all five official-layout weight files.

    .venv/bin/python bench/learned_path.py                      # 3 s of 1280x720 (90 frames)
    .venv/bin/python bench/learned_path.py --frames 30 --json out.json

Builds random weights of the released sizes in the released file layouts (hawor.compat.official_files):
WiLoR-size YOLOv8m detector.pt (its class biases set so both hands are found in every frame, as a
trained detector would), the 692.7 M-parameter hawor.ckpt with the released model_config.yaml,
infiller.pt, droid.pth and the ViT-Large Metric3D file, under a scratch project root (HAWOR_ROOT).
Then runs demo.py once on a generated 720p clip (--no_vis) and reports each stage's time from
summary.json, the run's wall time, CPU time and frames/s, and the peak resident memory of the demo
process (sampled every 50 ms). Random weights exercise the same compute as the released ones, except where
a network's output steers the work: DROID's random flow finds no motion (one keyframe, so Metric3D
runs once), and the detector finds exactly one box per hand per frame.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hawor.compat import official_files  # noqa: E402
from hawor.weights import OFFICIAL_PATHS  # noqa: E402


def build_weights(root: Path) -> dict[str, float]:
    """Write the five files at their official paths under ``root``; seconds spent per file."""
    from hawor.models.droid import DroidNet
    from hawor.models.hawor_regressor import HaworRegressor
    from hawor.models.infiller import MotionInfiller
    from hawor.models.metric3d import Metric3D

    seconds = {}
    torch.manual_seed(0)
    for name, write in (
        ("detector", lambda p: _write_detector(p)),
        ("regressor", lambda p: official_files.save_hawor_ckpt(HaworRegressor(), p)),
        ("infiller", lambda p: official_files.save_infiller(MotionInfiller(), p)),
        ("droid", lambda p: official_files.save_droid(DroidNet(), p)),
        ("metric3d", lambda p: official_files.save_metric3d(Metric3D(), p)),
    ):
        path = root / OFFICIAL_PATHS[name]
        if not path.is_file():
            start = time.perf_counter()
            write(path)
            seconds[name] = round(time.perf_counter() - start, 1)
    config = root / OFFICIAL_PATHS["regressor_config"]
    config.write_text((ROOT / "tests" / "data" / "model_config_bindir0.yaml").read_text())  # the released one
    return seconds


def _write_detector(path: Path) -> Path:
    """An ultralytics checkpoint of YOLOv8m with classes {0: left, 1: right} (WiLoR's detector.pt is
    53.6 MB, YOLOv8m's size in half precision). The coarsest level's class biases say "right", the
    next one's "left", so every frame gets one box of each side."""
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel

    arch = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml").read_text())
    arch.update(nc=2, scale="m")
    model = DetectionModel(arch, nc=2, verbose=False)
    model.names = {0: "left", 1: "right"}
    with torch.no_grad():
        for level, logits in enumerate([(-9.0, -9.0), (4.0, -9.0), (-9.0, 9.0)]):
            model.model[-1].cv3[level][-1].bias.copy_(torch.tensor(logits))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.half(), "train_args": {}}, path)
    return path


class PeakRss:
    """Peak resident memory of a process and its children, sampled from /proc."""

    def __init__(self, pid: int, period_s: float = 0.05):
        self.pid, self.period_s, self.peak = pid, period_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        total = 0
        for pid in [self.pid, *self._children(self.pid)]:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                return [int(c) for c in f.read().split()]
        except FileNotFoundError:
            return []

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.period_s)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=90, help="clip length in frames at 30 fps (default 90)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--work", type=Path, default=Path("/tmp/hawor_bench_learned"),
                        help="scratch folder; the ~5 GB of weights are kept there and reused")
    parser.add_argument("--device", default=None, help="demo.py --device (default: auto)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from hawor.data.synthetic import generate_sequence

    root = args.work / "root"
    (root / "_DATA").mkdir(parents=True, exist_ok=True)
    for entry in (ROOT / "_DATA").iterdir():  # hand models, landmark models, mean parameters
        if not (root / "_DATA" / entry.name).exists():
            (root / "_DATA" / entry.name).symlink_to(entry)
    build_seconds = build_weights(root)
    clip_dir = args.work / f"clip_{args.width}x{args.height}_{args.frames}"
    video = clip_dir / "video.mp4"
    if not video.is_file():
        generate_sequence(clip_dir, seed=0, num_frames=args.frames, width=args.width, height=args.height, fps=30.0)

    out = args.work / "out"
    command = [sys.executable, str(ROOT / "demo.py"), "--video_path", str(video), "--output_dir", str(out),
               "--no_vis", "--force", *(["--device", args.device] if args.device else [])]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "HAWOR_ROOT": str(root)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = PeakRss(child.pid)
    _, stderr = child.communicate()
    peak = sampler.stop()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        print(stderr[-3000:], file=sys.stderr)
        return child.returncode
    summary = json.loads((out / "video" / "summary.json").read_text())
    stages = {name: {"backend": s["backend"], "seconds": s["seconds"]} for name, s in summary["stages"].items()}
    figures = {
        "frames": args.frames, "size": [args.width, args.height], "device": summary.get("device"),
        "torch_threads": torch.get_num_threads(), "load_average_1min": os.getloadavg()[0],
        "stages": stages, "pipeline_seconds": summary["timings_s"].get("total"),
        "wall_seconds": round(wall, 1), "frames_per_second": round(args.frames / wall, 3),
        # All threads of the demo process: on a shared machine, CPU seconds / cores estimates idle wall time.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_gib": round(peak / 2**30, 2), "weights_build_seconds": build_seconds,
        "command": " ".join(["bench/learned_path.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
