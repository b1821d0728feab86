"""Rendering speed of the synthetic sequence generator (hawor.data.synthetic).

    python bench/render_synth.py                    # 640x480, 120 frames, video + ground truth only
    python bench/render_synth.py --width 320 --height 240 --frames 40

Prints frames/s for rendering alone (scene + hands + blur/noise) and for a whole generate_sequence
call (simulation, rendering, H.264 encoding, ground-truth files), with CPU time and the machine's
load average, since other processes sharing the CPU slow it down.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import hawor  # noqa: F401  (offline defaults, EGL)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from hawor.data.synthetic import generate_sequence, simulate
    from hawor.data.synthetic.generate import render_frames

    simulate(args.seed, 2, args.width, args.height)  # load the hand models once (not timed)
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    sim = simulate(args.seed, args.frames, args.width, args.height)
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in render_frames(sim):
        pass
    t2, c2 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        generate_sequence(tmp, seed=args.seed, num_frames=args.frames, width=args.width, height=args.height)
    t3, c3 = time.perf_counter(), time.process_time()
    n = args.frames
    print(f"synthetic {args.width}x{args.height}, {n} frames, seed {args.seed}, cpu count {os.cpu_count()}, "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"simulate (scene, camera, motion, truth): {t1 - t0:.2f} s wall, {c1 - c0:.2f} s cpu")
    print(f"render only: {n / (t2 - t1):.1f} frames/s wall ({1000 * (t2 - t1) / n:.1f} ms/frame, "
          f"{1000 * (c2 - c1) / n:.1f} ms cpu/frame)")
    print(f"generate_sequence (video + gt): {n / (t3 - t2):.1f} frames/s wall ({t3 - t2:.2f} s, "
          f"{c3 - c2:.2f} s cpu)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
