"""Speed of the embedded hand stages on this machine's CPU.

    .venv/bin/python bench/hands.py [--frames 150] [--fit-frames 600] [--complexity full]

1. Landmark backend with tracking on 1080p frames: zidane.jpg (ships with ultralytics) scaled
   to 1920x1080 and panned a few pixels per frame, so the hand moves and tracking is exercised.
2. Keypoint fit: one batched fit of a track of ``--fit-frames`` frames of keypoints rendered
   from the hand model (random smooth poses), noise added; its speed, and its MPJPE and
   acceleration error (30 frames/s) against the true joints.
Prints one JSON object (frames/s and the settings).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import hawor  # noqa: F401  (offline defaults)
import cv2
import numpy as np
import torch
import ultralytics

from hawor.detection.landmarks import LandmarkHandDetector, track_hands_landmarks
from hawor.detection.tracks import HandTrack
from hawor.estimation.keypoint_fit import fit_track
from hawor.eval.metrics import accel_error
from hawor.geometry import Intrinsics
from hawor.hands import HandModel


def bench_landmarks(num_frames: int, complexity: str) -> dict:
    image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"))[..., ::-1]
    image = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    detector = LandmarkHandDetector(complexity=complexity)
    frames = (np.roll(image, 2 * i, axis=1) for i in range(num_frames))
    track_hands_landmarks([image] * 3, detector=detector)  # warm-up
    start = time.perf_counter()
    tracks, notes = track_hands_landmarks(frames, detector=detector)
    elapsed = time.perf_counter() - start
    found = sum(len(t) for t in tracks.values())
    return {"frames": num_frames, "seconds": round(elapsed, 3), "fps": round(num_frames / elapsed, 1),
            "hand_frames_found": found, "notes": notes, "complexity": complexity}


def synthetic_track(model: HandModel, num_frames: int, seed: int = 0) -> tuple[HandTrack, np.ndarray]:
    """Keypoints of a smoothly moving hand 0.4-0.6 m in front of a 600 px camera, 1.5 px / 4 mm noise.

    Returns the track and the true joints (num_frames, 21, 3), metres, camera frame.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, num_frames)[:, None]
    global_orient = torch.tensor(np.array([2.5, 0.3, 0.2]) + 0.4 * np.sin(2 * np.pi * t + rng.uniform(0, 6, 3)),
                                 dtype=torch.float32)
    hand_pose = torch.tensor(0.4 + 0.3 * np.sin(2 * np.pi * 2 * t + rng.uniform(0, 6, 45)), dtype=torch.float32) * 0.5
    transl = torch.tensor(np.array([0.0, 0.05, 0.5]) + 0.1 * np.sin(2 * np.pi * t + rng.uniform(0, 6, 3)),
                          dtype=torch.float32)
    with torch.no_grad():
        joints = model(global_orient, hand_pose, torch.zeros(num_frames, 10), transl).joints.double().numpy()
    kp2d = 600 * joints[..., :2] / joints[..., 2:] + np.array([320, 240])
    track = HandTrack(side=model.side, frame_indices=np.arange(num_frames), boxes=np.zeros((num_frames, 4)),
                      scores=np.ones(num_frames), keypoints_2d=kp2d + rng.normal(0, 1.5, kp2d.shape),
                      keypoints_3d=joints - joints[:, :1] + rng.normal(0, 0.004, joints.shape))
    return track, joints


def bench_fit(num_frames: int) -> dict:
    model = HandModel("right")
    track, joints = synthetic_track(model, num_frames)
    fit_track(synthetic_track(model, 8, seed=1)[0], Intrinsics.default((640, 480), 600.0), model)  # warm-up
    start = time.perf_counter()
    hand, residual = fit_track(track, Intrinsics.default((640, 480), 600.0), model)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        pred = model(*(torch.as_tensor(getattr(hand, k), dtype=torch.float32)
                       for k in ("global_orient", "hand_pose", "betas", "transl"))).joints.double().numpy()
    return {"frames": num_frames, "seconds": round(elapsed, 3), "fps": round(num_frames / elapsed, 1),
            "ms_per_frame": round(1000 * elapsed / num_frames, 2),
            "mean_residual_px": round(float(residual.mean()), 2),
            "mpjpe_mm": round(1000 * float(np.linalg.norm(pred - joints, axis=-1).mean()), 1),
            "accel_error_m_s2": round(float(accel_error(pred, joints, fps=30).mean()), 2),
            "hand_model": model.backend}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--fit-frames", type=int, default=600)
    parser.add_argument("--complexity", default="full", choices=("full", "lite"))
    args = parser.parse_args()
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"torch threads {torch.get_num_threads()}",
              "landmarks_1080p_tracking": bench_landmarks(args.frames, args.complexity),
              "keypoint_fit": bench_fit(args.fit_frames)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
