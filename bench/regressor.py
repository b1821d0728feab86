"""Speed and peak memory of the full-size HaWoR regressor (random weights) on this machine.

    .venv/bin/python bench/regressor.py            # fp32 and bf16, batches of 1 and 8 windows
    .venv/bin/python bench/regressor.py --quick    # one timed forward per setting, no warm-up

Times the network forward (16-frame windows of 256x192 crops; cropping is not included) and reports
frames/s (wall clock, and estimated for an idle machine from the process's CPU time), the
process's peak resident memory (CPU, sampled) or peak allocated memory (CUDA), the
machine's load average, and how far bf16 autocast lands from fp32 on the same input (random weights:
rotation difference in degrees, translation and betas differences).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hawor.estimation.regressor import PRECISIONS  # noqa: E402
from hawor.models.hawor_regressor import HaworConfig, HaworRegressor  # noqa: E402


class PeakRss:
    """Samples the resident set size every few milliseconds (ru_maxrss cannot be reset per run)."""

    def __init__(self, period_s: float = 0.005):
        self.period_s, self.peak, self._stop = period_s, 0, threading.Event()

    @staticmethod
    def current_bytes() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _loop(self):
        while not self._stop.wait(self.period_s):
            self.peak = max(self.peak, self.current_bytes())

    def __enter__(self):
        self.peak = self.current_bytes()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current_bytes())


def random_model(cfg: HaworConfig, device: torch.device) -> HaworRegressor:
    torch.manual_seed(0)
    model = HaworRegressor(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.02 + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return model.to(device).eval()


def random_inputs(cfg: HaworConfig, windows: int, device: torch.device) -> tuple:
    g = torch.Generator().manual_seed(windows)
    b, t = windows, cfg.window
    images = torch.randn(b, t, 3, *cfg.vit.img_size, generator=g)
    center = torch.rand(b, t, 2, generator=g) * torch.tensor([1280.0, 720.0])
    scale = 0.5 + torch.rand(b, t, generator=g)
    focal = torch.full((b, t), 600.0)
    img_center = torch.tensor([640.0, 360.0]).expand(b, t, 2)
    return tuple(x.to(device) for x in (images, center, scale, focal, img_center))


def forward(model, inputs, precision: str):
    dtype = PRECISIONS[precision]
    device_type = inputs[0].device.type
    with torch.inference_mode(), torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(*inputs)
    if device_type == "cuda":
        torch.cuda.synchronize()
    return out


def time_setting(model, cfg, device, precision: str, windows: int, repeats: int, warmup: bool):
    """Timing row of one setting, and the network output (reused for the bf16 deviation)."""
    inputs = random_inputs(cfg, windows, device)
    if warmup:
        forward(model, inputs, precision)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with PeakRss() as rss:
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            out = forward(model, inputs, precision)
        seconds = (time.perf_counter() - start) / repeats
        cpu_seconds = (time.process_time() - cpu_start) / repeats
    frames = windows * cfg.window
    # On a shared CPU the wall clock depends on the other processes; CPU time spread over our threads
    # estimates what an otherwise idle machine would give.
    row = {"precision": precision, "windows": windows, "frames": frames, "seconds_per_forward": round(seconds, 2),
           "frames_per_s": round(frames / seconds, 3), "cpu_seconds_per_forward": round(cpu_seconds, 2),
           "frames_per_s_if_idle": round(frames * torch.get_num_threads() / cpu_seconds, 3),
           "peak_rss_gb": round(rss.peak / 2**30, 2)}
    if device.type == "cuda":
        row["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row, out


def _max_angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    rel = a.double().transpose(-1, -2) @ b.double()
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return round(float(torch.rad2deg(torch.acos(cos)).max()), 4)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / a.double().norm())


def bf16_deviation(ref, low) -> dict:
    """bf16 autocast vs fp32 outputs on the same input. With random weights PAM emits near-zero 6D vectors,
    whose Gram-Schmidt is ill-conditioned, so the head's rotations (before PAM) are the meaningful angles."""
    return {
        "backbone_feat_rel": _relative_error(ref.backbone_feat, low.backbone_feat),
        "st_feat_rel": _relative_error(ref.st_feat, low.st_feat),
        "max_rotation_head_deg": _max_angle_deg(ref.pred_rotmat_0, low.pred_rotmat_0),
        "max_rotation_deg": _max_angle_deg(ref.pred_rotmat, low.pred_rotmat),
        "max_transl_abs": float((ref.trans_full.double() - low.trans_full.double()).abs().max()),
        "max_transl_rel": float(((ref.trans_full - low.trans_full).abs() / ref.trans_full.abs().clamp_min(1e-6)).max()),
        "max_betas_abs": float((ref.pred_shape.double() - low.pred_shape.double()).abs().max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one timed forward per setting, no warm-up")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 8], help="16-frame windows per forward")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=sorted(PRECISIONS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="smoke run with the tiny test model instead of full size")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    cfg = HaworConfig.tiny() if args.tiny else HaworConfig.full()
    start = time.perf_counter()
    model = random_model(cfg, device)
    report = {"model": "tiny" if args.tiny else "full", "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "model_build_s": round(time.perf_counter() - start, 1),
              "load_average_before": os.getloadavg(), "results": []}
    outputs = {}
    for precision in args.precisions:
        for windows in args.windows:
            row, outputs[precision, windows] = time_setting(model, cfg, device, precision, windows,
                                                            1 if args.quick else args.repeats, not args.quick)
            row["load_average"] = [round(v, 2) for v in os.getloadavg()]
            print(json.dumps(row), flush=True)
            report["results"].append(row)
    smallest = min(args.windows)
    if ("fp32", smallest) in outputs and ("bf16", smallest) in outputs:
        report["bf16_vs_fp32"] = bf16_deviation(outputs["fp32", smallest], outputs["bf16", smallest])
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
