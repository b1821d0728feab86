"""Per-frame cost of the pure-PyTorch DROID-SLAM on this machine (CPU by default).

    .venv/bin/python bench/droid.py [--size 512x384] [--edges 24] [--device cpu] [--threads 2]

Times, at HaWoR's working size (a 640x480 video becomes 512x384, grid 64x48), with random weights
(timing does not depend on the weight values):
1. motion filter per frame (fnet + one single-edge update), and cnet per keyframe candidate;
2. one frontend update (update operator + GraphAgg over ``--edges`` edges + 3 BA iterations), per edge;
3. one dense BA iteration with 48 edges over 25 keyframes (the frontend's largest window);
4. the trajectory filler per frame (fnet + 6 motion-only updates on 2 edges per frame, chunks of 16).
It then estimates the per-frame cost of a whole run with the reference model of HaWoR's loop
(docs: reference section 7): K_c/N keyframe candidates per frame, <= 48 frontend edges x ~5.5
updates per candidate, 19 backend passes over ~10 edges per keyframe, and the filler. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _time(fn, repeat: int = 1) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="512x384", help="working size WxH (multiples of 8)")
    ap.add_argument("--edges", type=int, default=24, help="edges in the timed frontend update")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidate-ratio", type=float, default=0.2, help="keyframe candidates per frame (K_c/N)")
    ap.add_argument("--keyframe-ratio", type=float, default=0.15, help="final keyframes per frame (K/N)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from hawor.slam.droid import DroidNet
    from hawor.slam.droid.ba import bundle_adjust
    from hawor.slam.droid.factor_graph import FactorGraph
    from hawor.slam.droid.filler import fill_trajectory
    from hawor.slam.droid.lie import se3_exp
    from hawor.slam.droid.motion_filter import MotionFilter
    from hawor.slam.droid.video import DepthVideo

    W, H = (int(v) for v in args.size.split("x"))
    h, w = H // 8, W // 8
    dev = torch.device(args.device)
    torch.manual_seed(0)
    net = DroidNet().eval().to(dev)
    frames = torch.randint(0, 256, (26, 3, H, W), device=dev).float()
    intr = torch.tensor([400.0, 400.0, W / 2, H / 2], device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out: dict = {"device": args.device if dev.type == "cuda" else platform.processor() or "cpu",
                 "threads": args.threads, "size": args.size, "grid": f"{w}x{h}"}

    with torch.no_grad():
        x = net.normalize(frames[:1][None])
        out["fnet_s"] = _time(lambda: (net.fnet(x), sync()))
        out["cnet_s"] = _time(lambda: (net.context(x), sync()))
        video = DepthVideo(h, w, 128, 128, buffer=64, device=dev)
        mf = MotionFilter(net, video, thresh=1e9)  # never appends after frame 0: every call is a full test
        mask = torch.zeros(h, w, device=dev)
        mf.track(0.0, frames[0], intr, mask)
        out["motion_filter_per_frame_s"] = _time(lambda: (mf.track(1.0, frames[1], intr, mask), sync()), 2)

        # a 25-keyframe state with plausible poses, as in the frontend window
        fm = net.fnet(net.normalize(frames[:25][None]))[0]
        hid, inp = net.context(net.normalize(frames[:25][None]))
        for k in range(25):
            pose = se3_exp(torch.tensor([0.02 * k, 0, 0, 0, 0.005 * k, 0], device=dev))
            video.counter = k
            video.append(float(k), intr / 8, fm[k], hid[0, k], inp[0, k], mask, pose=pose, disp=1.0)
        graph = FactorGraph(video, net.update, upsample=True)
        pairs = [(i, j) for i in range(25) for j in range(25) if 0 < abs(i - j) <= 3][:args.edges]
        graph.add_factors([p[0] for p in pairs], [p[1] for p in pairs])
        t_upd = _time(lambda: (graph.update(None, None), sync()))
        out["frontend_update_edges"] = len(pairs)
        out["frontend_update_s"] = t_upd
        out["update_per_edge_iteration_s"] = t_upd / len(pairs)

        ii = torch.tensor([p[0] for p in pairs] * 2, device=dev)[:48]
        jj = torch.tensor([p[1] for p in pairs] * 2, device=dev)[:48]
        tgt, _ = video.reproject(ii, jj)
        wts = torch.rand(len(ii), h, w, 2, device=dev)
        eta = torch.full((25, h, w), 1e-3, device=dev)
        out["ba_iteration_48_edges_s"] = _time(lambda: (bundle_adjust(
            video.poses[:25], video.disps[:25], video.K, tgt, wts, eta, ii, jj, 1, 25, iters=1), sync()))

        video.counter = 25
        t0 = time.perf_counter()
        fill_trajectory(net, video, 16, lambda idx: frames[[i % 26 for i in idx]])
        sync()
        out["filler_per_frame_s"] = (time.perf_counter() - t0) / 16

    e = out["update_per_edge_iteration_s"]
    track = out["motion_filter_per_frame_s"] + args.candidate_ratio * (out["cnet_s"] + 5.5 * 48 * e
                                                                      + 5.5 * 3 * out["ba_iteration_48_edges_s"])
    backend = args.keyframe_ratio * 10 * 19 * e
    out["estimated_whole_run_per_frame_s"] = round(track + backend + out["filler_per_frame_s"], 2)
    out["estimate_split_s"] = {"tracking": round(track, 2), "backend": round(backend, 2),
                               "filler": round(out["filler_per_frame_s"], 2)}
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
