"""Two-handed manipulation motion in the scene frame: reach, grasp, hold, release, gesture, rest, and
leaving the view and coming back; fingers articulated within joint limits.

Poses are built from directions, not from numbers tied to one hand model: a :class:`HandRig` reads
the model's rest skeleton (forward = wrist -> middle knuckle, palm normal, the thumb side) and derives
each joint's flexion and spread axes, so MANO and the open hand get the same gestures. MANO joint
rotations act in frames aligned with the rest pose (no rest rotations), so an axis taken from the
rest skeleton flexes a whole finger chain consistently.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from hawor.data.synthetic.curves import keyframe_track, rotation_track, smooth_noise
from hawor.data.synthetic.scene import Scene

# OpenPose joint indices (base knuckle .. tip) and the MANO joints (1..15) of each finger.
FINGERS = {
    "index": ((5, 6, 7, 8), (1, 2, 3)),
    "middle": ((9, 10, 11, 12), (4, 5, 6)),
    "ring": ((13, 14, 15, 16), (10, 11, 12)),
    "pinky": ((17, 18, 19, 20), (7, 8, 9)),
}
THUMB = ((1, 2, 3, 4), (13, 14, 15))

# Finger parameters, degrees: curl (knuckle, middle, end joint) of index, middle, ring, pinky; spread of
# the four fingers (positive towards the thumb); thumb (opposition, knuckle flexion, end flexion).
LIMITS_LOW = np.array([-10, 0, 0] * 4 + [-20] * 4 + [-10, -10, -10], np.float64)
LIMITS_HIGH = np.array([90, 105, 80] * 4 + [20] * 4 + [70, 60, 80], np.float64)
GESTURES = {
    "open": [5, 5, 5, 3, 5, 5, 3, 5, 5, 5, 5, 5] + [12, 2, -8, -16] + [0, 0, 5],
    "relaxed": [20, 25, 15, 25, 30, 20, 30, 35, 20, 35, 40, 25] + [4, 0, -3, -6] + [15, 10, 15],
    "point": [0, 5, 5, 75, 95, 50, 80, 95, 50, 80, 95, 50] + [0, 0, 0, -4] + [45, 30, 35],
    "grasp": [50, 60, 35, 55, 60, 35, 55, 65, 35, 60, 65, 40] + [2, 0, -2, -4] + [55, 25, 30],
    "pinch": [45, 45, 30, 35, 40, 25, 35, 45, 25, 40, 45, 30] + [2, 0, -2, -4] + [50, 20, 30],
}


@dataclass
class HandRig:
    """Direction frame of one rest hand and its joint axes.

    rest_joints (21, 3) at zero pose, model frame; frame (3, 3) columns = forward, palm normal
    (out of the palm), forward x palm; flex_axes / spread_axes (15, 3) per MANO joint 1..15.
    """

    side: str
    rest_joints: np.ndarray
    frame: np.ndarray
    flex_axes: np.ndarray
    spread_axes: np.ndarray

    @classmethod
    def from_rest_joints(cls, side: str, joints: np.ndarray) -> "HandRig":
        joints = np.asarray(joints, np.float64)
        forward = _unit(joints[9] - joints[0])
        thumb_side = joints[5] - joints[17]  # pinky knuckle -> index knuckle
        thumb_side = _unit(thumb_side - forward * (thumb_side @ forward))
        # Seen from the palm with the fingers up, a right thumb points to the viewer's right.
        palm = _unit(np.cross(thumb_side, forward)) * (1.0 if side == "right" else -1.0)
        flex = np.zeros((15, 3))
        spread = np.zeros((15, 3))
        for chain, mano in FINGERS.values():
            direction = _unit(joints[chain[3]] - joints[chain[0]])
            flex[np.array(mano) - 1] = _unit(np.cross(direction, palm))
            spread[np.array(mano) - 1] = _unit(np.cross(direction, thumb_side))
        chain, mano = THUMB
        direction = _unit(joints[chain[3]] - joints[chain[1]])
        across = _unit(palm - thumb_side)  # thumb flexion moves the tip over the palm towards the pinky
        flex[np.array(mano) - 1] = _unit(np.cross(direction, across))
        spread[mano[0] - 1] = _unit(np.cross(_unit(joints[chain[3]] - joints[chain[0]]), palm))
        frame = np.stack([forward, palm, np.cross(forward, palm)], axis=1)
        return cls(side, joints, frame, flex, spread)

    def hand_pose(self, params: np.ndarray) -> np.ndarray:
        """Finger parameters (..., 19) degrees (see GESTURES) -> MANO hand_pose (..., 45) axis-angle."""
        p = np.deg2rad(np.clip(params, LIMITS_LOW, LIMITS_HIGH))
        angles_flex = np.zeros(p.shape[:-1] + (15,))
        angles_spread = np.zeros(p.shape[:-1] + (15,))
        for k, (_, mano) in enumerate(FINGERS.values()):
            idx = np.array(mano) - 1
            angles_flex[..., idx] = p[..., 3 * k:3 * k + 3]
            angles_spread[..., idx[0]] = p[..., 12 + k]
        t_idx = np.array(THUMB[1]) - 1
        angles_spread[..., t_idx[0]] = p[..., 16]  # opposition swings the thumb over the palm
        angles_flex[..., t_idx[1]] = p[..., 17]
        angles_flex[..., t_idx[2]] = p[..., 18]
        aa = angles_flex[..., None] * self.flex_axes + angles_spread[..., None] * self.spread_axes
        return aa.reshape(*p.shape[:-1], 45)

    def orientation(self, forward: np.ndarray, palm: np.ndarray) -> Rotation:
        """Rotation taking the rest hand to one whose forward and palm normal point along the given
        scene directions (palm is made orthogonal to forward)."""
        forward = _unit(forward)
        palm = _unit(palm - forward * (palm @ forward))
        target = np.stack([forward, palm, np.cross(forward, palm)], axis=1)
        return Rotation.from_matrix(target @ self.frame.T)


@dataclass
class HandMotion:
    """One hand over N frames in the scene frame: wrist (N, 3) metres, orientation (N, 3, 3) rest->scene,
    hand_pose (N, 45) axis-angle, the elbow anchor (3,) or (N, 3) the forearm points to, and the
    (kind, start_s, end_s) actions."""

    wrist: np.ndarray
    orientation: np.ndarray
    hand_pose: np.ndarray
    elbow: np.ndarray
    actions: list = field(default_factory=list)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class _Keys:
    """Keyframes of one hand: time, wrist position, (forward, palm) directions and finger parameters."""

    def __init__(self, t0: float, wrist, forward, palm, fingers):
        self.t, self.wrist, self.forward, self.palm, self.fingers = [t0], [wrist], [forward], [palm], [fingers]

    def add(self, dt: float, wrist=None, forward=None, palm=None, fingers=None) -> None:
        self.t.append(self.t[-1] + dt)
        self.wrist.append(self.wrist[-1] if wrist is None else np.asarray(wrist, np.float64))
        self.forward.append(self.forward[-1] if forward is None else np.asarray(forward, np.float64))
        self.palm.append(self.palm[-1] if palm is None else np.asarray(palm, np.float64))
        self.fingers.append(self.fingers[-1] if fingers is None else np.asarray(fingers, np.float64))


def hand_motion(rng: np.random.Generator, rig: HandRig, scene: Scene, num_frames: int, fps: float,
                meet: tuple[float, float] | None = None, leave_at: float | None = None) -> HandMotion:
    """Random manipulation motion for one hand.

    Args:
        meet: (start_s, end_s) when both hands come together over the table centre (they overlap).
        leave_at: a time (s) after which the hand leaves the view once if it has not yet.
    """
    sign = 1.0 if rig.side == "right" else -1.0
    top = scene.table_height
    t_end = (num_frames - 1) / fps
    elbow = np.array([sign * 0.24, -0.12, top + 0.02])

    def pose_at(wrist, yaw_deg=0.0, roll_deg=0.0, pitch_deg=0.0):
        """Forward from the elbow through the wrist, turned by yaw/pitch; palm down, rolled thumb-up."""
        base = _unit(np.asarray(wrist) - elbow)
        turn = Rotation.from_euler("z", -sign * yaw_deg, degrees=True)
        forward = turn.apply(base)
        forward = _unit(forward + np.array([0, 0, -np.sin(np.deg2rad(pitch_deg))]))
        palm = Rotation.from_rotvec(forward * np.deg2rad(sign * roll_deg)).apply([0, 0, -1.0])
        return forward, palm

    def fingers(name):
        return np.clip(np.asarray(GESTURES[name], np.float64) + rng.normal(0, 4, 19), LIMITS_LOW, LIMITS_HIGH)

    home = _beside_objects(scene, [sign * rng.uniform(0.1, 0.16), rng.uniform(0.16, 0.26),
                                   top + rng.uniform(0.06, 0.08)], sign)
    keys = _Keys(0.0, home, *pose_at(home, rng.uniform(-10, 10), rng.uniform(10, 30)), fingers("relaxed"))
    actions: list = []
    left_view = False
    cursor = 0.0
    while cursor < t_end:
        if meet is not None and cursor >= meet[0] - 1.2:
            kind = "meet"
        elif leave_at is not None and not left_view and cursor >= leave_at:
            kind = "leave"
        else:
            kind = str(rng.choice(["rest", "grasp", "gesture", "leave"], p=[0.2, 0.4, 0.28, 0.12]))
        start = keys.t[-1]
        if kind == "rest":
            spot = _beside_objects(scene, home + rng.normal(0, 0.02, 3) * [1, 1, 0.3], sign)
            keys.add(rng.uniform(0.5, 0.9), spot, *pose_at(spot, rng.uniform(-10, 10), rng.uniform(10, 35)),
                     fingers(str(rng.choice(["relaxed", "open"]))))
            keys.add(rng.uniform(0.3, 1.0))
        elif kind == "grasp" and scene.objects:
            _grasp(rng, keys, scene, pose_at, fingers, sign, home)
        elif kind == "meet":
            centre = _beside_objects(scene, [0.0, 0.3, top + 0.07])  # the same for both hands
            spot = centre + [sign * 0.02, 0.0, 0.1 if sign > 0 else 0.0]  # right hand over the left
            keys.add(max(meet[0] - keys.t[-1], 0.6), spot, *pose_at(spot, 25, 60), fingers("open"))
            keys.add(max(meet[1] - keys.t[-1], 0.4), spot + [sign * 0.02, 0.02, 0], fingers=fingers("relaxed"))
            keys.add(0.7, home, *pose_at(home, 0, 20), fingers("relaxed"))
            meet = None
        elif kind == "leave":
            away = np.array([sign * rng.uniform(0.62, 0.75), rng.uniform(-0.1, 0.1), top + rng.uniform(0.1, 0.25)])
            keys.add(rng.uniform(0.6, 0.8), away, *pose_at(away, 0, 40), fingers("relaxed"))
            keys.add(rng.uniform(0.6, 1.4))
            keys.add(rng.uniform(0.6, 0.8), home, *pose_at(home, 0, 20), fingers("relaxed"))
            left_view = True
        else:  # gesture: point or show an open hand, palm sideways or up, with a small wave
            spot = _beside_objects(scene, [sign * rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.38),
                                           top + rng.uniform(0.1, 0.18)], sign)
            name = str(rng.choice(["point", "open"]))
            roll = rng.uniform(30, 80) if name == "point" else rng.uniform(60, 170)
            keys.add(rng.uniform(0.6, 0.9), spot, *pose_at(spot, rng.uniform(-15, 15), roll), fingers(name))
            for _ in range(int(rng.integers(1, 3))):
                keys.add(rng.uniform(0.3, 0.5), spot + rng.normal(0, 0.015, 3),
                         *pose_at(spot, rng.uniform(-25, 25), roll + rng.uniform(-15, 15)))
            keys.add(rng.uniform(0.2, 0.6))
        if keys.t[-1] > start:
            actions.append((kind, float(start), float(keys.t[-1])))
        cursor = keys.t[-1]
    return _sample(rng, rig, keys, num_frames, fps, elbow, actions)


def _beside_objects(scene: Scene, point, sign: float = 0.0, gap: float = 0.09) -> np.ndarray:
    """``point`` (3,) moved sideways until it is ``gap`` beyond the footprint of every object, so that a
    hand resting or gesturing there is not inside one; a hand (``sign`` +1 right, -1 left) is not pushed
    over to the other hand's side of the table (it moves towards or away from the body instead)."""
    point = np.array(point, np.float64)
    for _ in range(3):  # a few passes settle points between objects
        for obj in scene.objects:
            offset = point[:2] - obj.top_center[:2]
            distance = np.linalg.norm(offset)
            if distance >= obj.radius + gap:
                continue
            radial = offset / distance if distance > 1e-9 else np.array([0.0, -1.0])
            for direction in (radial, np.array([0.0, -1.0]), np.array([0.0, 1.0])):
                moved = obj.top_center[:2] + direction * (obj.radius + gap)
                if sign * moved[0] >= 0.02:
                    break
            point[:2] = moved
    return point


def _grasp(rng, keys: _Keys, scene: Scene, pose_at, fingers, sign: float, home: np.ndarray) -> None:
    """Reach an object on this hand's side, close the fingers, hold (lift a little), release, retract."""
    xs = np.array([o.top_center[0] for o in scene.objects])
    order = np.argsort(-sign * xs)  # objects on this hand's side first
    target = scene.objects[int(order[int(rng.integers(0, max(1, (len(order) + 1) // 2)))])]
    grip = "pinch" if target.kind in ("box", "book") and rng.random() < 0.5 else "grasp"
    if target.kind == "cup":  # from the side: palm towards the cup, thumb up, fingers around it
        roll, tilt = rng.uniform(70, 95), 0.0
        centre = target.top_center - [0, 0, 0.45 * (target.top_center[2] - scene.table_height)]
        wrist = centre - [sign * 0.1, 0.08, 0]
        for _ in range(3):  # the forward direction depends on where the wrist ends up
            forward, palm = pose_at(wrist, 0, roll, tilt)
            palm = _unit(palm - forward * (palm @ forward))
            wrist = centre - palm * (target.radius + 0.03) - forward * 0.065
        hover = wrist - forward * 0.05 - palm * 0.04
    else:  # from above
        roll, tilt = rng.uniform(10, 45), 20.0
        approach_dir = _unit(np.array([target.top_center[0] - sign * 0.25, target.top_center[1] + 0.12, 0.0]))
        wrist = target.top_center - approach_dir * 0.085 + [0, 0, 0.045]
        hover = wrist + [0, -0.04, 0.05]
    keys.add(rng.uniform(0.5, 0.8), hover, *pose_at(hover, 0, roll, tilt / 2), fingers("open"))
    keys.add(rng.uniform(0.25, 0.4), wrist, *pose_at(wrist, 0, roll, tilt))
    keys.add(rng.uniform(0.3, 0.45), fingers=fingers(grip))
    lifted = wrist + [0, 0, rng.uniform(0.0, 0.03)]
    keys.add(rng.uniform(0.4, 1.1), lifted)
    keys.add(rng.uniform(0.25, 0.4), wrist, fingers=fingers("open"))
    keys.add(rng.uniform(0.5, 0.8), home, *pose_at(home, 0, rng.uniform(10, 30)), fingers("relaxed"))


def _sample(rng, rig: HandRig, keys: _Keys, num_frames: int, fps: float, elbow: np.ndarray,
            actions: list) -> HandMotion:
    t = np.arange(num_frames) / fps
    key_t = np.asarray(keys.t)
    wrist = keyframe_track(key_t, np.asarray(keys.wrist), t) + smooth_noise(rng, t, 3, 0.004, (0.3, 1.5))
    rotations = Rotation.concatenate([rig.orientation(f, p) for f, p in zip(keys.forward, keys.palm)])
    jitter = Rotation.from_rotvec(smooth_noise(rng, t, 3, np.deg2rad(2.5), (0.2, 1.2)))
    orientation = (jitter * rotation_track(key_t, rotations, t)).as_matrix()
    fingers = keyframe_track(key_t, np.asarray(keys.fingers), t) + smooth_noise(rng, t, 19, 2.0, (0.2, 1.0))
    return HandMotion(wrist, orientation, rig.hand_pose(fingers), elbow, actions)
