"""The open hand: a MANO-format hand model generated here, deterministically, under the project's licence.

It is a drop-in for MANO_RIGHT.pkl / MANO_LEFT.pkl: the same keys and array shapes (778 vertices, 1538
faces, 16 joints in MANO's order and kinematic tree, 10 shape blend shapes, 135 pose correctives), the
fingertip vertices at MANO's indices (thumb 744, index 320, middle 443, ring 554, pinky 671) and the
wrist opening bounded by the 16 vertices that MANO's 14 wrist-closing faces use, in the same order, so
``hawor.hands.joints.WRIST_CLOSING_FACES`` closes it into a watertight 1552-face mesh. smplx loads it
like MANO. What it is not: a scan-based model. It carries no pose prior (``hands_components`` is the
identity, ``hands_mean`` zero) and no pose correctives (``posedirs`` zero); its shape space is built
from anthropometric proportions, not learned, so betas do not mean what MANO's betas mean.

Canonical frame (metres), as in MANO's right template: fingers point along -x, the palm faces -y, the
thumb lies on the +z side; the wrist joint sits at MANO's rest wrist (0.0957, 0.0064, 0.0062) and finger
flexion is a positive rotation about +z. The left model is the right one mirrored (x -> -x, faces
reversed), so a mirrored pose ((x, y, z) -> (x, -y, -z) per joint) gives the mirrored mesh.

Geometry. A palm tube (a 16-vertex wrist ring, a 21-vertex ring sized so the total is 778, five
32-vertex rows and a knuckle row
made of the four finger bases joined by webs), four finger tubes (8-vertex rings, 13 rings and a
fingertip vertex each) and a thumb tube (10-vertex rings) grown out of a 2x3-quad hole in the palm's
radial-palmar side. Bone lengths (joint centre to joint centre; the last one to the finger tip, soft
tissue included) for an adult hand of length ~18.6 cm (wrist joint to middle-finger tip), breadth
~8.0 cm (across the metacarpal heads) and wrist breadth ~5.8 cm. Sources (values rounded to mm):
  - phalanx and metacarpal proportions: Buryanov A., Kotiuk V. (2010), "Proportions of hand segments",
    Int. J. Morphol. 28(3):755-758;
  - link lengths between joint centres: Garrett J.W. (1971), "The adult human hand: some anthropometric
    and biomechanical considerations", Human Factors 13(2):117-131;
  - hand length / breadth / wrist breadth of adults: Pheasant S., Haslegrave C.M. (2006), "Bodyspace",
    3rd ed., CRC Press, hand dimensions of British adults (length about 19 cm for men and 17.5 cm for
    women, breadth at the metacarpals about 8.7 and 7.7 cm).
Proximal / middle / distal segment lengths used (mm): index 40/23/21, middle 45/27/22, ring 41/26/22,
pinky 32/19/19, thumb metacarpal 44, proximal 32, distal (to tip) 27.

Skinning: each ring belongs to the bone it lies on; weights blend smoothly over +-5 mm around the
PIP/DIP/IP joints, 50/50 on the knuckle rows and half-and-half between palm and thumb metacarpal on the
thenar hole. J_regressor rows are convex weights over the rings around each joint, reproducing the
joint centres to 1e-6 m. Shape blend shapes (per unit beta, roughly one standard deviation of adult
variation): 0 overall size (+4.5 %), 1 palm breadth (+5 %), 2 finger length (+5 %), 3 girth (+7 %),
4 palm length (+5 %), 5 thumb length (+6 %), 6 index longer / ring shorter (+-4 %), 7 pinky length
(+7 %), 8 finger taper (thicker tips), 9 knuckle breadth relative to the wrist (+5 %).
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np

from hawor.hands.joints import FINGERTIP_VERTEX_IDS, MANO_PARENTS, NUM_VERTICES

log = logging.getLogger(__name__)

OPEN_HAND_VERSION = "open-hand-1"
MANO_REST_WRIST = np.array([0.0957, 0.0064, 0.0062])  # MANO's right-template wrist joint, metres
NUM_FACES = 1538

# Local construction frame: a = distal (towards the fingers), b = radial (towards the thumb), c = dorsal.
# It maps onto MANO's frame as x = -a, y = c, z = b (a proper rotation).
_LOCAL_TO_MANO = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # rows: x, y, z in (a, b, c)

# Fingers from radial to ulnar: MANO joint ids (MCP, PIP, DIP), MCP centre (a, b, c), spread (deg, + radial),
# segment lengths (proximal, middle, distal-to-tip), half-widths at (MCP, PIP, DIP, tip).
_FINGERS = (
    ("index", (1, 2, 3), (0.088, 0.026, 0.000), 5.0, (0.040, 0.023, 0.021), (0.0106, 0.0096, 0.0087, 0.0079)),
    ("middle", (4, 5, 6), (0.092, 0.005, 0.000), 0.0, (0.045, 0.027, 0.022), (0.0108, 0.0099, 0.0090, 0.0081)),
    ("ring", (10, 11, 12), (0.087, -0.015, -0.001), -5.0, (0.041, 0.026, 0.022), (0.0102, 0.0093, 0.0085, 0.0077)),
    ("pinky", (7, 8, 9), (0.078, -0.034, -0.003), -11.0, (0.032, 0.019, 0.019), (0.0092, 0.0083, 0.0076, 0.0069)),
)
_THUMB_JOINTS = (13, 14, 15)
_THUMB_CMC = np.array([0.018, 0.021, -0.007])
_THUMB_DIRS = ((0.55, 0.75, -0.38), (0.70, 0.62, -0.33), (0.80, 0.52, -0.28))
_THUMB_LENGTHS = (0.044, 0.032, 0.027)
_THUMB_RADII = ((0.022, 0.0135), (0.044, 0.0118), (0.076, 0.0104), (0.103, 0.0092))  # (arc length, half-width)

_FINGER_RING = 8
_THUMB_RING = 10
_PALM_RING = 32
_WRIST_A, _TRANSITION_A = -0.016, -0.004
_PALM_ROWS_A = (0.000, 0.016, 0.032, 0.048, 0.066)  # then the knuckle row at the MCPs
# Palm cross-section control points over a: centre b, half-width, centre c, half-thickness.
_PALM_PROFILE = np.array([
    # a       b0      hw      c0      ht
    [-0.016, 0.000, 0.0290, 0.0010, 0.0185],
    [0.000, -0.001, 0.0335, -0.0010, 0.0175],
    [0.020, -0.002, 0.0385, -0.0015, 0.0165],
    [0.045, -0.003, 0.0410, -0.0015, 0.0150],
    [0.066, -0.004, 0.0410, -0.0010, 0.0138],
])
_HOLE_ROWS = (0, 1, 2)          # palm rows bounding the thumb hole
_HOLE_COLUMNS = (29, 30, 31, 0)  # palm ring positions (radial-palmar corner)
# MANO's wrist-opening vertices in ring order, counter-clockwise seen from the fingers (radial side first).
_WRIST_RING_IDS = (92, 234, 239, 279, 215, 214, 121, 78, 79, 108, 120, 119, 117, 118, 122, 38)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _superellipse(s: np.ndarray, exponent: float) -> np.ndarray:
    return np.power(np.clip(1.0 - np.abs(s) ** exponent, 0.0, 1.0), 1.0 / exponent)


class _Builder:
    """Collects vertices (local frame), faces, bone labels and joint-regressor rings in build order."""

    def __init__(self):
        self.verts: list[np.ndarray] = []
        self.faces: list[tuple[int, int, int]] = []
        self.skin: list[dict[int, float]] = []   # per vertex: joint -> weight
        self.digit: list[int] = []               # per vertex: -1 palm, 0..3 fingers, 4 thumb
        self.axial: list[float] = []             # per vertex: arc length along its digit (0 on the palm)

    def add(self, points: np.ndarray, skin: list[dict[int, float]], digit: int, axial) -> np.ndarray:
        start = len(self.verts)
        self.verts.extend(np.atleast_2d(points))
        self.skin.extend(skin)
        self.digit.extend([digit] * len(skin))
        self.axial.extend(np.broadcast_to(axial, (len(skin),)).tolist())
        return np.arange(start, len(self.verts))

    def band(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """Triangles between two closed rings (any sizes, both counter-clockwise about the distal axis)."""
        m, n = len(lower), len(upper)
        i = j = 0
        while i < m or j < n:
            if j == n or (i < m and (i + 1) / m < (j + 1) / n):
                self.faces.append((lower[i % m], lower[(i + 1) % m], upper[j % n]))
                i += 1
            else:
                self.faces.append((lower[i % m], upper[(j + 1) % n], upper[j % n]))
                j += 1

    def fan(self, ring: np.ndarray, apex: int) -> None:
        for j in range(len(ring)):
            self.faces.append((ring[j], ring[(j + 1) % len(ring)], apex))


def _palm_profile(a: float) -> tuple[float, float, float, float]:
    return tuple(np.interp(a, _PALM_PROFILE[:, 0], _PALM_PROFILE[:, k]) for k in range(1, 5))


def _finger_frame(spread_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.radians(spread_deg)
    u = np.array([np.cos(t), np.sin(t), 0.0])
    e_b = np.array([-np.sin(t), np.cos(t), 0.0])
    return u, e_b, np.cross(u, e_b)


def _ring(centre, e1, e2, r1, r2, angles) -> np.ndarray:
    return centre + np.outer(r1 * np.cos(angles), e1) + np.outer(r2 * np.sin(angles), e2)


def _blend(s: float, joints_s: list[float], joint_ids: list[int], parent: int, half: float = 0.005) -> dict:
    """Skin weights at arc length s along a digit whose bones start at joints_s (bone k driven by joint_ids[k])."""
    weights = {parent: 1.0}
    for s_joint, jid in zip(joints_s, joint_ids):
        t = np.clip((s - s_joint + half) / (2 * half), 0.0, 1.0)
        w = t * t * (3 - 2 * t)
        weights = {k: v * (1 - w) for k, v in weights.items()}
        weights[jid] = weights.get(jid, 0.0) + w
    return {k: v for k, v in weights.items() if v > 1e-9}


def _build_right_local():
    """Right hand in the local frame: (builder, special vertex ids, joint targets, regressor rings)."""
    B = _Builder()
    joints = np.zeros((16, 3))
    rings_for_joint: dict[int, np.ndarray] = {}

    # Knuckle row: four finger bases of 8 vertices, dorsal half then palmar half.
    base_angles = np.radians(22.5 + 45.0 * np.arange(_FINGER_RING))
    finger_info = []
    knuckle_pos = np.zeros((_PALM_RING, 3))
    for f, (name, jids, mcp, spread, lengths, radii) in enumerate(_FINGERS):
        u, e_b, e_c = _finger_frame(spread)
        mcp = np.asarray(mcp)
        loop = _ring(mcp, e_b, e_c, radii[0] * 0.95, radii[0] * 0.85, base_angles)
        dorsal = np.arange(4 * f, 4 * f + 4)
        palmar = _PALM_RING - 1 - np.arange(4 * f, 4 * f + 4)
        knuckle_pos[dorsal] = loop[:4]
        knuckle_pos[palmar[::-1]] = loop[4:]
        finger_info.append((name, jids, mcp, u, e_b, e_c, lengths, radii, dorsal, palmar))
        joints[jids[0]] = mcp
        joints[jids[1]] = mcp + lengths[0] * u
        joints[jids[2]] = mcp + (lengths[0] + lengths[1]) * u

    # Palm rows share the knuckle row's radial-to-ulnar pattern so no ring twists.
    kb0, khw = (knuckle_pos[:, 1].max() + knuckle_pos[:, 1].min()) / 2, np.ptp(knuckle_pos[:, 1]) / 2
    pattern = np.clip((knuckle_pos[:, 1] - kb0) / khw, -1, 1) * 0.94
    dorsal_side = np.r_[np.ones(16), -np.ones(16)]
    hole = {(r, c) for r in _HOLE_ROWS for c in _HOLE_COLUMNS}
    hole_interior = {(1, c) for c in _HOLE_COLUMNS[1:-1]}
    hole_edge = hole - hole_interior

    wrist_angles = 2 * np.pi * np.arange(16) / 16
    b0, hw, c0, ht = _palm_profile(_WRIST_A)
    wrist = _ring(np.array([_WRIST_A, b0, c0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), hw, ht, wrist_angles)
    wrist_ids = B.add(wrist, [{0: 1.0}] * 16, -1, 0.0)

    num_fixed = 16 + _PALM_RING * (len(_PALM_ROWS_A) + 1) - len(hole_interior) \
        + len(_FINGERS) * (13 * _FINGER_RING + 1)
    thumb_rings_s = (0.031, 0.038, 0.044, 0.051, 0.058, 0.064, 0.070, 0.076, 0.082, 0.088)
    num_fixed += (len(thumb_rings_s) + 3) * _THUMB_RING + 1
    n_transition = NUM_VERTICES - num_fixed
    b0, hw, c0, ht = _palm_profile(_TRANSITION_A)
    angles = 2 * np.pi * np.arange(n_transition) / n_transition
    trans = _ring(np.array([_TRANSITION_A, b0, c0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), hw, ht, angles)
    trans_ids = B.add(trans, [{0: 1.0}] * n_transition, -1, 0.0)
    B.band(wrist_ids, trans_ids)

    rows = []
    for r, a in enumerate(_PALM_ROWS_A):
        b0, hw, c0, ht = _palm_profile(a)
        pts = np.stack([np.full(_PALM_RING, a), b0 + hw * pattern,
                        c0 + dorsal_side * ht * _superellipse(pattern, 2.6)], 1)
        ids = np.full(_PALM_RING, -1)
        for col in range(_PALM_RING):
            if (r, col) in hole_interior:
                continue
            skin = {0: 0.5, 13: 0.5} if (r, col) in hole_edge else {0: 1.0}
            ids[col] = B.add(pts[col], [skin], -1, 0.0)[0]
        rows.append(ids)
    knuckle_skin = [None] * _PALM_RING
    for name, jids, *_rest in finger_info:
        dorsal, palmar = _rest[-2], _rest[-1]
        for col in np.r_[dorsal, palmar]:
            knuckle_skin[col] = {0: 0.5, jids[0]: 0.5}
    rows.append(B.add(knuckle_pos, knuckle_skin, -1, 0.0))
    B.band(trans_ids, rows[0])
    for r in range(len(rows) - 1):
        lo, hi = rows[r], rows[r + 1]
        for col in range(_PALM_RING):
            nxt = (col + 1) % _PALM_RING
            if r in _HOLE_ROWS[:-1] and col in _HOLE_COLUMNS[:-1]:
                continue
            B.faces.append((lo[col], lo[nxt], hi[nxt]))
            B.faces.append((lo[col], hi[nxt], hi[col]))
    knuckles = rows[-1]
    for f in range(len(_FINGERS) - 1):  # webs between neighbouring finger bases
        d3, d4 = knuckles[4 * f + 3], knuckles[4 * f + 4]
        p3, p4 = knuckles[_PALM_RING - 1 - (4 * f + 3)], knuckles[_PALM_RING - 1 - (4 * f + 4)]
        B.faces.extend([(d3, d4, p4), (d3, p4, p3)])

    # Joint regressor support: the wrist from the rings around it, the MCPs from the finger bases.
    rings_for_joint[0] = np.r_[wrist_ids, trans_ids, rows[0], rows[1]]
    rings_for_joint[0] = rings_for_joint[0][rings_for_joint[0] >= 0]

    tips = {}
    for f, (name, jids, mcp, u, e_b, e_c, lengths, radii, dorsal, palmar) in enumerate(finger_info):
        loop = np.r_[knuckles[dorsal], knuckles[palmar[::-1]]]
        rings_for_joint[jids[0]] = loop
        tips[name] = _grow_finger(B, loop, f, mcp, u, e_b, lengths, radii, jids, rings_for_joint, base_angles)

    # Thumb: a tube out of the hole in the radial-palmar side of the palm.
    hole_loop = np.r_[rows[0][list(_HOLE_COLUMNS)], rows[1][_HOLE_COLUMNS[-1]],
                      rows[2][list(_HOLE_COLUMNS)][::-1], rows[1][_HOLE_COLUMNS[0]]]
    dirs = [_unit(d) for d in _THUMB_DIRS]
    joints[13] = _THUMB_CMC
    joints[14] = joints[13] + _THUMB_LENGTHS[0] * dirs[0]
    joints[15] = joints[14] + _THUMB_LENGTHS[1] * dirs[1]
    tips["thumb"] = _grow_thumb(B, hole_loop, dirs, thumb_rings_s, rings_for_joint)
    around = np.r_[rows[0], rows[2]]
    around = around[around >= 0]
    rings_for_joint[13] = np.r_[hole_loop, around[np.asarray(B.verts)[around][:, 1] > 0.0]]
    return B, wrist_ids, tips, joints, rings_for_joint


def _grow_finger(B, loop, digit, base, u, e_b, lengths, radii, jids, rings_for_joint, angles) -> int:
    """Finger tube from its base loop: rings along the bones, a rounded cap and the tip vertex."""
    L1, L2, L3 = lengths
    s_pip, s_dip, s_tip = L1, L1 + L2, L1 + L2 + L3
    r_tip = radii[3]
    cap = [(s_tip - r_tip * (1 - np.cos(al)), np.sin(al)) for al in np.radians((75.0, 50.0, 25.0))]
    stations = [(L1 * x, 1.0) for x in (0.22, 0.5, 0.78)] + [(s_pip, 1.0)] \
        + [(L1 + L2 * x, 1.0) for x in (0.25, 0.55, 0.8)] + [(s_dip, 1.0)] \
        + [(s_dip + L3 * x, 1.0) for x in (0.3, 0.55)] + cap
    radius_s = (0.0, s_pip, s_dip, s_tip - r_tip)
    e_c = np.cross(u, e_b)
    prev = loop
    for s, shrink in stations:
        r = np.interp(s, radius_s, radii) * shrink
        ring = _ring(base + s * u, e_b, e_c, r, r * 0.86, angles)
        skin = _blend(s, [0.0, s_pip, s_dip], list(jids), 0)
        ids = B.add(ring, [skin] * len(ring), digit, s)
        B.band(prev, ids)
        if s in (s_pip, s_dip):
            rings_for_joint[jids[1] if s == s_pip else jids[2]] = ids
        prev = ids
    tip = B.add(base + s_tip * u, [_blend(s_tip, [0.0, s_pip, s_dip], list(jids), 0)], digit, s_tip)[0]
    B.fan(prev, tip)
    return tip


def _thumb_point(s: float, dirs) -> tuple[np.ndarray, np.ndarray]:
    """Point and tangent at arc length s along the thumb's bone polyline from the CMC."""
    p = _THUMB_CMC.copy()
    for k, (d, length) in enumerate(zip(dirs, _THUMB_LENGTHS)):
        if s <= length or k == 2:
            return p + s * d, d
        p, s = p + length * d, s - length
    raise AssertionError


def _grow_thumb(B, hole_loop, dirs, ring_s, rings_for_joint) -> int:
    s_mcp, s_ip = _THUMB_LENGTHS[0], _THUMB_LENGTHS[0] + _THUMB_LENGTHS[1]
    s_tip = sum(_THUMB_LENGTHS)
    radius_s, radius_r = np.array(_THUMB_RADII).T
    r_tip = radius_r[-1]
    stations = list(ring_s) + [s_tip - r_tip * (1 - np.cos(al)) for al in np.radians((70.0, 45.0, 22.0))]
    shrink = [1.0] * len(ring_s) + list(np.sin(np.radians((70.0, 45.0, 22.0))))
    hole_pts = np.array([B.verts[i] for i in hole_loop])
    # Start the rings at the hole loop's angles so the first band does not twist.
    p0, u0 = _thumb_point(stations[0], dirs)
    e1 = _unit(np.cross(np.array([0.0, 0.0, 1.0]), u0))
    e2 = np.cross(u0, e1)
    rel = hole_pts - p0
    hole_angles = np.unwrap(np.arctan2(rel @ e2, rel @ e1))
    if hole_angles[-1] < hole_angles[0]:
        raise AssertionError("thumb hole loop must turn counter-clockwise about the thumb")
    uniform = hole_angles[0] + 2 * np.pi * np.arange(_THUMB_RING) / _THUMB_RING
    prev = hole_loop
    for k, (s, sh) in enumerate(zip(stations, shrink)):
        p, u = _thumb_point(s, dirs)
        e1 = _unit(np.cross(np.array([0.0, 0.0, 1.0]), u))
        e2 = np.cross(u, e1)
        mix = min(k / 2.0, 1.0)
        angles = (1 - mix) * hole_angles + mix * uniform
        r = np.interp(s, radius_s, radius_r) * sh
        ring = _ring(p, e1, e2, r, r * 0.88, angles)
        skin = _blend(s, [0.0, s_mcp, s_ip], list(_THUMB_JOINTS), 0)
        skin = {k2: v for k2, v in skin.items() if k2 != 0} or skin
        ids = B.add(ring, [skin] * len(ring), 4, s)
        B.band(prev, ids)
        if abs(s - s_mcp) < 1e-9:
            rings_for_joint[14] = ids
        if abs(s - s_ip) < 1e-9:
            rings_for_joint[15] = ids
        prev = ids
    p, _ = _thumb_point(s_tip, dirs)
    tip = B.add(p, [{15: 1.0}], 4, s_tip)[0]
    B.fan(prev, tip)
    return tip


def _regressor_row(verts: np.ndarray, support: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights over ``support``, near uniform, sum 1, whose weighted mean is ``target``."""
    from scipy.optimize import lsq_linear

    A = np.vstack([verts[support].T, np.ones(len(support))])
    b = np.r_[target, 1.0]
    w0 = np.full(len(support), 1.0 / len(support))
    w = w0 + np.linalg.lstsq(A, b - A @ w0, rcond=None)[0]  # nearest to uniform (rings are planar: rank 3)
    if w.min() >= 0:
        return w
    stiff = 1e4  # bounded version: the constraints dominate; closeness to uniform spreads the weights
    system = np.vstack([stiff * A, np.eye(len(support)) * 1e-2])
    w = lsq_linear(system, np.r_[stiff * b, w0 * 1e-2], bounds=(0.0, np.inf), tol=1e-12).x
    w /= w.sum()
    if np.abs(A[:3] @ w - target).max() > 1e-6:
        raise AssertionError("joint centre is not inside its rings")
    return w


def _shape_dirs(B: _Builder, verts: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(N, 3, 10) shape blend shapes in the local frame (displacement per unit beta)."""
    axial = np.asarray(B.axial)
    digit = np.asarray(B.digit)
    e_a, e_b, e_c = np.eye(3)
    m_palm = weights[:, 0]
    m_thumb = weights[:, list(_THUMB_JOINTS)].sum(1)
    m_fing = [weights[:, list(jids)].sum(1) for _n, jids, *_r in _FINGERS]
    mcps = [np.asarray(mcp) for _n, _j, mcp, *_r in _FINGERS]
    axes = [_finger_frame(spread)[0] for _n, _j, _m, spread, *_r in _FINGERS]
    cmc = _THUMB_CMC
    b_c = np.mean([m[1] for m in mcps])
    a_k = np.mean([m[0] for m in mcps])
    # Axis points: palm vertices that belong partly to a digit sit at its base (axial 0).
    thumb_dirs = [_unit(d) for d in _THUMB_DIRS]
    thumb_axis = np.array([_thumb_point(s, thumb_dirs)[0] for s in axial])
    finger_axis = [m + axial[:, None] * u for m, u in zip(mcps, axes)]

    def per_part(palm, fingers, thumb):
        d = m_palm[:, None] * palm + m_thumb[:, None] * thumb
        for m, fd in zip(m_fing, fingers):
            d = d + m[:, None] * fd
        return d

    zeros = np.zeros_like(verts)
    S = np.zeros(verts.shape + (10,))
    S[..., 0] = 0.045 * (verts - joints[0])
    breadth = lambda b: np.outer(b - b_c, e_b)  # noqa: E731
    S[..., 1] = 0.05 * per_part(breadth(verts[:, 1]), [breadth(np.full(len(verts), m[1])) for m in mcps],
                                breadth(np.full(len(verts), cmc[1])))
    S[..., 2] = 0.05 * per_part(zeros, [axial[:, None] * u * (digit == f)[:, None] for f, u in enumerate(axes)],
                                thumb_axis - cmc)
    palm_thickness = np.outer(verts[:, 2] - np.array([_palm_profile(a)[2] for a in verts[:, 0]]), e_c)
    S[..., 3] = 0.07 * per_part(palm_thickness, [verts - fa for fa in finger_axis], verts - thumb_axis)
    S[..., 4] = 0.05 * per_part(np.outer(verts[:, 0] - joints[0, 0], e_a),
                                [np.outer(np.full(len(verts), m[0]), e_a) for m in mcps],
                                np.outer(np.full(len(verts), cmc[0]), e_a))
    S[..., 5] = 0.06 * m_thumb[:, None] * (thumb_axis - cmc)
    S[..., 6] = 0.04 * (m_fing[0][:, None] * axial[:, None] * axes[0] * (digit == 0)[:, None]
                        - m_fing[2][:, None] * axial[:, None] * axes[2] * (digit == 2)[:, None])
    S[..., 7] = 0.07 * m_fing[3][:, None] * axial[:, None] * axes[3] * (digit == 3)[:, None]
    tip_len = np.array([sum(f[4]) for f in _FINGERS] + [sum(_THUMB_LENGTHS)])
    rel = np.where(digit >= 0, axial / tip_len[np.clip(digit, 0, 4)], 0.0)
    taper = (2 * rel - 1)[:, None]
    S[..., 8] = 0.07 * per_part(zeros, [taper * (verts - fa) * (digit == f)[:, None] for f, fa in enumerate(finger_axis)],
                                taper * (verts - thumb_axis) * (digit == 4)[:, None])
    ramp = np.clip((verts[:, 0] - joints[0, 0]) / a_k, 0.0, 1.0)
    S[..., 9] = 0.05 * per_part(breadth(verts[:, 1]) * ramp[:, None],
                                [breadth(np.full(len(verts), m[1])) for m in mcps],
                                breadth(np.full(len(verts), cmc[1])) * (cmc[0] / a_k))
    return S


def build_open_hand(side: str = "right") -> dict[str, np.ndarray]:
    """The open hand as a MANO-format dict (see the module docstring), deterministic.

    Keys: v_template (778, 3) metres, f (1538, 3) int64, weights (778, 16), kintree_table (2, 16),
    J_regressor (16, 778), shapedirs (778, 3, 10), posedirs (778, 3, 135) zeros, hands_components
    (45, 45), hands_mean (45,), open_hand_version (str). The wrist opening is closed by MANO's
    ``WRIST_CLOSING_FACES`` (reversed for the left hand), as for MANO itself.
    """
    if side not in ("left", "right"):
        from hawor.errors import HaworInputError
        raise HaworInputError(f"open hand side '{side}': expected 'left' or 'right'.")
    B, wrist_ids, tips, joints, rings = _build_right_local()
    verts = np.asarray(B.verts)
    faces = np.asarray(B.faces, dtype=np.int64)
    if len(verts) != NUM_VERTICES or len(faces) != NUM_FACES:
        raise AssertionError(f"open hand has {len(verts)} vertices / {len(faces)} faces")

    # Place MANO's special vertices at MANO's indices; everything else keeps its build order.
    new_index = np.full(len(verts), -1)
    new_index[wrist_ids] = _WRIST_RING_IDS
    tip_ids = dict(zip(("thumb", "index", "middle", "ring", "pinky"), FINGERTIP_VERTEX_IDS))
    for name, vid in tips.items():
        new_index[vid] = tip_ids[name]
    free = np.setdiff1d(np.arange(len(verts)), new_index[new_index >= 0])
    new_index[new_index < 0] = free
    order = np.argsort(new_index)  # order[new] = old

    weights = np.zeros((len(verts), 16))
    for i, skin in enumerate(B.skin):
        for j, w in skin.items():
            weights[i, j] = w
    weights /= weights.sum(1, keepdims=True)
    regressor = np.zeros((16, len(verts)))
    for j in range(16):
        support = np.unique(rings[j])
        regressor[j, support] = _regressor_row(verts, support, joints[j])
    shapedirs = _shape_dirs(B, verts, weights, joints)

    R = _LOCAL_TO_MANO
    v_template = verts @ R.T + (MANO_REST_WRIST - R @ joints[0])
    model = {
        "v_template": v_template[order],
        "f": new_index[faces],
        "weights": weights[order],
        "kintree_table": np.stack([np.array(MANO_PARENTS, dtype=np.int64), np.arange(16)]),
        "J_regressor": regressor[:, order],
        "shapedirs": np.einsum("ij,vjk->vik", R, shapedirs)[order],
        "posedirs": np.zeros((len(verts), 3, 135)),
        "hands_components": np.eye(45),
        "hands_mean": np.zeros(45),
        "open_hand_version": OPEN_HAND_VERSION,
    }
    model["kintree_table"][0, 0] = 4294967295  # MANO stores the root's parent as uint32 -1
    return mirror_model(model) if side == "left" else model


def mirror_model(model: dict) -> dict:
    """The mirrored (x -> -x) hand: faces reversed, shape blend shapes and pose prior mirrored."""
    out = dict(model)
    flip = np.array([-1.0, 1.0, 1.0])
    out["v_template"] = model["v_template"] * flip
    out["shapedirs"] = model["shapedirs"] * flip[:, None]
    out["f"] = model["f"][:, [0, 2, 1]]
    aa_flip = np.tile([1.0, -1.0, -1.0], 15)  # axis-angle mirror per joint: (x, y, z) -> (x, -y, -z)
    out["hands_mean"] = model["hands_mean"] * aa_flip
    out["hands_components"] = model["hands_components"] * aa_flip[None, :]
    return out


OPEN_HAND_FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
_CHECKED: dict[Path, tuple] = {}  # folder -> _stamp when last found current in this process


def default_open_hand_dir() -> Path:
    """Where the open hand lives: _DATA/open_hand/ under the project root (``HAWOR_ROOT`` overrides)."""
    from hawor.weights import weight_path
    return weight_path("open_hand_right").parent


def ensure_open_hand(folder: str | Path | None = None) -> Path:
    """Write MANO_RIGHT.pkl and MANO_LEFT.pkl of the open hand into ``folder`` unless already current.

    A file is current when it reads back equal to a fresh build (so a changed generator rewrites it).
    Files are plain-numpy pickles (protocol 2, no chumpy), written to a temporary name and renamed.

    Args:
        folder: target folder; default _DATA/open_hand/ of the project.
    Returns:
        The folder.
    """
    from hawor.io.files import atomic_path

    folder = Path(folder) if folder is not None else default_open_hand_dir()
    if _CHECKED.get(folder.resolve()) == _stamp(folder):  # checked in this process and untouched since
        return folder
    for side, name in OPEN_HAND_FILES.items():
        path = folder / name
        model = build_open_hand(side)
        if _matches(path, model):
            continue
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                pickle.dump(model, f, protocol=2)
        log.info("open hand: wrote %s", path)
    _CHECKED[folder.resolve()] = _stamp(folder)
    return folder


def _stamp(folder: Path) -> tuple:
    """(mtime, size) of the model files: a rebuild to compare against costs ~40 ms per side."""
    paths = [folder / name for name in OPEN_HAND_FILES.values()]
    return tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None for p in paths)


def _matches(path: Path, model: dict) -> bool:
    from hawor.errors import HaworInputError
    from hawor.hands.mano_io import read_mano_file

    if not path.is_file():
        return False
    try:
        stored = read_mano_file(path)
    except HaworInputError:
        return False
    return stored.keys() == model.keys() and all(
        stored[k] == model[k] if isinstance(model[k], str)
        else np.shape(stored[k]) == np.shape(model[k]) and np.array_equal(stored[k], model[k]) for k in model)
