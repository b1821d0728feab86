"""Head-mounted camera paths: a head above the table looking down at the hands' workspace.

Mostly rotation (glances, occasional fast turns) with some translation (sway, leaning), short
static moments, pitched down 60 degrees or more throughout, smooth (C2); optionally the wearer
first walks up to the table, hands carried along (:func:`walking_offsets`). Poses are 4x4
camera-to-scene matrices, OpenCV camera axes (x right, y down, z forward), metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hawor.data.synthetic.curves import envelope, keyframe_track, min_jerk, smooth_noise
from hawor.data.synthetic.scene import Scene

MIN_PITCH_DEG = 60.0


@dataclass
class CameraPath:
    """T_scene_cam (N, 4, 4) camera-to-scene; pitch_deg (N,) downward pitch of the optical axis;
    events: list of (kind, start_s, end_s) for 'fast_turn', 'glance', 'lean' and 'static'."""

    T_scene_cam: np.ndarray
    pitch_deg: np.ndarray
    events: list


def look_rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera-to-scene rotations (N, 3, 3), OpenCV axes, from angles in radians.

    yaw turns about the scene's z (0 looks along +y, positive turns left towards -x), pitch tilts
    the optical axis down below the horizon, roll turns about the optical axis.
    """
    forward = np.stack([-np.sin(yaw) * np.cos(pitch), np.cos(yaw) * np.cos(pitch), -np.sin(pitch)], -1)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward], axis=-1)


def head_camera_path(rng: np.random.Generator, scene: Scene, num_frames: int, fps: float) -> CameraPath:
    """A random head-mounted path over ``num_frames`` frames at ``fps`` looking at the table's near part."""
    t = np.arange(num_frames) / fps
    duration = max(t[-1], 1e-6)
    pitch0 = np.deg2rad(rng.uniform(66.0, 74.0))
    height = rng.uniform(0.52, 0.64)  # eye above the table top
    workspace_y = rng.uniform(0.2, 0.28)  # where the optical axis meets the table
    eye0 = np.array([rng.uniform(-0.04, 0.04), workspace_y - height / np.tan(pitch0), scene.table_height + height])
    yaw0 = np.deg2rad(rng.uniform(-5.0, 5.0))
    # Keyframes of (yaw, pitch) offsets and eye offsets; events follow one another with pauses between.
    key_t, key_ang, key_eye = [0.0], [np.zeros(2)], [np.zeros(3)]
    events, quiet = [], []
    cursor = rng.uniform(0.3, 1.0)
    while cursor < duration - 0.5:
        kind = rng.choice(["glance", "fast_turn", "lean", "static"], p=[0.35, 0.25, 0.2, 0.2])
        ang, eye = key_ang[-1].copy(), key_eye[-1].copy()
        key_t.append(cursor)  # hold until the event starts
        key_ang.append(ang.copy())
        key_eye.append(eye.copy())
        if kind == "fast_turn":
            turn = np.deg2rad(rng.uniform(25, 45)) * rng.choice([-1, 1])
            move, hold, back = rng.uniform(0.3, 0.45), rng.uniform(0.3, 0.8), rng.uniform(0.4, 0.6)
            away = np.array([turn, np.deg2rad(rng.uniform(-2, 4))])
            key_t += [cursor + move, cursor + move + hold, cursor + move + hold + back]
            key_ang += [away, away, ang]
            key_eye += [eye, eye, eye]
            end = cursor + move + hold + back
        elif kind == "glance":
            move = rng.uniform(0.8, 1.5)
            ang = np.deg2rad([rng.uniform(-15, 15), rng.uniform(-3, 5)])
            key_t.append(cursor + move)
            key_ang.append(ang)
            key_eye.append(eye)
            end = cursor + move
        elif kind == "lean":
            move = rng.uniform(1.0, 1.5)
            eye = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.02, 0.08), rng.uniform(-0.06, 0.02)])
            key_t.append(cursor + move)
            key_ang.append(ang)
            key_eye.append(eye)
            end = cursor + move
        else:
            end = cursor + rng.uniform(0.4, 0.9)
            quiet.append((cursor, end))
        events.append((str(kind), float(cursor), float(end)))
        cursor = end + rng.uniform(0.4, 1.2)
    angles = keyframe_track(key_t, key_ang, t)
    eye_offset = keyframe_track(key_t, key_eye, t)
    calm = envelope(t, quiet)[:, None]
    sway = smooth_noise(rng, t, 3, np.deg2rad([1.5, 1.2, 1.0])) * calm
    drift = smooth_noise(rng, t, 3, [0.015, 0.015, 0.01]) * calm
    yaw = yaw0 + angles[:, 0] + sway[:, 0]
    pitch = pitch0 + angles[:, 1] + sway[:, 1]
    roll = sway[:, 2]
    T = np.tile(np.eye(4), (num_frames, 1, 1))
    T[:, :3, :3] = look_rotation(yaw, pitch, roll)
    T[:, :3, 3] = eye0 + eye_offset + drift
    return CameraPath(T, np.rad2deg(pitch), events)


STEP_HZ = 1.8  # steps per second of a slow walk
BOB_M = 0.015  # the head's vertical bounce per step at the walk's peak speed
MAX_WALK_M = 1.5  # the smallest room leaves 1.6 m between the table's front edge and the wall behind


def walking_offsets(t: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """A wearer walking ``distance`` metres (0 to MAX_WALK_M) up to the table (scene +y), from 20 % to 80 %
    of the clip, starting and stopping smoothly (minimum jerk: peak speed 1.875 x the mean); the walk
    ends where the head path would otherwise be.

    t (T,) seconds -> (carry (T, 3), bob (T, 3)) scene-frame metres: ``carry`` moves the body, head
    and hands alike; ``bob`` is the head's own bounce with each step, in proportion to the speed.
    """
    carry = np.zeros((len(t), 3))
    bob = np.zeros((len(t), 3))
    if distance == 0 or len(t) < 2:
        return carry, bob
    start, end = 0.2 * t[-1], 0.8 * t[-1]
    carry[:, 1] = -distance * (1 - min_jerk((t - start) / (end - start)))
    speed = np.abs(np.gradient(carry[:, 1], t))
    bob[:, 2] = BOB_M * speed / speed.max() * np.sin(2 * np.pi * STEP_HZ * (t - start))
    return carry, bob
