"""Metric3D v2 ViT-Large per keyframe: full size (616 x 1064), random weights.

Times HaWoR's per-keyframe call (preprocess, encoder, decoder with 8 iterations, postprocess and
resize to the SLAM size) and reports peak memory. Usage:

    .venv/bin/python bench/metric3d.py --threads 2 [--repeats 1] [--device cpu|cuda] [--bf16]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import torch

from hawor.models.metric3d import Metric3D
from hawor.depth.preprocess import postprocess_depth, preprocess_image


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(threads: int, repeats: int, device: str, bf16: bool, frame_hw=(1080, 1920)) -> dict:
    torch.set_num_threads(threads)
    device = torch.device(device)
    start = time.perf_counter()
    torch.manual_seed(0)
    model = Metric3D().to(device).eval()
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    frame = (rng.random((*frame_hw, 3)) * 255).astype(np.uint8)
    focal, grid = 600.0, (44, 76)
    runs = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        times = {}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            t0 = time.perf_counter()
            prepared = preprocess_image(frame, model.cfg.input_size)
            image = prepared.image.to(device)
            _sync(device)
            t1 = time.perf_counter()
            tokens = model.depth_model.encoder(image)
            _sync(device)
            t2 = time.perf_counter()
            out = model.depth_model.decoder(tokens, grid)
            _sync(device)
            t3 = time.perf_counter()
            depth = postprocess_depth(out.prediction.float().cpu(), prepared, focal)
            t4 = time.perf_counter()
        times.update(preprocess_s=t1 - t0, encoder_s=t2 - t1, decoder_s=t3 - t2, postprocess_s=t4 - t3,
                     total_s=t4 - t0)
        runs.append(times)
    cpu_per_keyframe = (time.process_time() - cpu_start) / repeats
    result = {
        "device": str(device), "threads": threads, "bf16_autocast": bf16, "frame_hw": list(frame_hw),
        "network_input_hw": list(model.cfg.input_size), "depth_hw": list(depth.shape),
        "parameters": sum(p.numel() for p in model.parameters()), "build_s": round(build_s, 2),
        "per_keyframe": {k: round(min(r[k] for r in runs), 3) for k in runs[0]},
        # Process CPU seconds (all threads): a contention-proof figure on a shared machine.
        "cpu_seconds_per_keyframe": round(cpu_per_keyframe, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    if device.type == "cuda":
        result["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (HaWoR runs float32)")
    args = parser.parse_args()
    print(json.dumps(bench(args.threads, args.repeats, args.device, args.bf16), indent=1))


if __name__ == "__main__":
    main()
