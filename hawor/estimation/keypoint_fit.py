"""Camera-space hands without the HaWoR regressor: fit the hand model to 21 detected keypoints.

Per track, one batched optimisation over all observed frames (one shape per track):

- reprojection of the 21 joints with the run's pinhole camera (:class:`hawor.geometry.Intrinsics`),
  its pixel error expressed in metres at the hand's depth so that it weighs like the 3D term;
- the metric wrist-relative 3D keypoints (MediaPipe world landmarks), which fix the hand's size
  and finger articulation; compared after the best rotation per frame, because their out-of-plane
  orientation is their weakest part (on rendered hands it was off by 20-40 degrees; the 2D
  keypoints set the orientation better); weighted 0.5: at 0.1 the fitted hands came out flatter
  than the truth and 5 cm too far (median over 15 rendered tracks; 3.3 cm at 0.5);
- joint limits (non-thumb fingers flex towards the palm, barely twist, MCPs abduct a little),
  a weak pose prior, a shape prior and a weak velocity prior between consecutive frames;
- an acceleration prior over each run of consecutive frames, applied once the per-frame terms have
  converged: a Whittaker smoother (second differences, weight ``accel``) of the depth-bearing wrist
  position (as its image direction and its depth), the root rotation (as a matrix, projected back)
  and the finger angles. Left to the per-frame terms, monocular depth follows the hand's image size
  and jittered by centimetres, root and fingers by degrees (acceleration error 5-7 m/s^2 on
  keypoints with 1.5-4 px noise, 0.3-0.6 after); inside Adam the same prior, stiff and coupling all
  frames, kept the fingers from converging. Its cut-off (weight 3: about 4 Hz at 30 frames/s) keeps
  real hand motion. The depth of a hand the image border may cut (:func:`depth_confidence`) is held
  from the frames around it (weight ``hold_depth`` on its first differences).

Initialisation is closed-form: root rotation by Kabsch on the palm joints, wrist position by
linear least squares on the reprojection. Only the 21 joints are skinned while fitting.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve

from hawor.detection.tracks import HandTrack
from hawor.errors import HaworInputError
from hawor.estimation.result import CameraSpaceHand
from hawor.geometry import Intrinsics, axis_angle_to_matrix, matrix_to_axis_angle, umeyama
from hawor.hands import HandModel
from hawor.hands.joints import MANO_TO_OPENPOSE, PALM_JOINTS

# Non-thumb MANO joints (index, middle, pinky, ring; base -> tip) and their limits in radians:
# flexion range, max |abduction|, max |twist|.
_FINGER_LIMITS = {0: ((-0.35, 1.7), 0.4, 0.2), 1: ((-0.15, 1.9), 0.12, 0.12), 2: ((-0.15, 1.5), 0.12, 0.12)}
_FINGER_STARTS = (1, 4, 7, 10)
METRE_SCALE = 0.01  # residuals are in centimetres: 1 cm weighs 1
HOLD_MAX_GAP = 30  # frames: a cut hand's depth is held from detections at most this far apart


class JointSkinner(torch.nn.Module):
    """The 21 joints of a :class:`HandModel` (same values as its forward) without skinning all vertices.

    Forward kinematics run level by level (wrist, then the five digits' first, second and third
    joints at once) rather than joint by joint, and only the five fingertip vertices are skinned.
    """

    def __init__(self, model: HandModel):
        super().__init__()
        layer = model.layer
        tips = torch.as_tensor(model.tip_ids).long()
        self.register_buffer("j_template", layer.J_regressor @ layer.v_template)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vcl->jcl", layer.J_regressor, layer.shapedirs))
        self.register_buffer("tip_template", layer.v_template[tips])
        self.register_buffer("tip_shapedirs", layer.shapedirs[tips])
        posedirs = layer.posedirs.reshape(layer.posedirs.shape[0], -1, 3)[:, tips]  # (135, 5, 3)
        self.register_buffer("tip_posedirs", posedirs)
        self.register_buffer("tip_weights", layer.lbs_weights[tips])
        parents = layer.parents.long()
        depth = [0] * 16
        for j in range(1, 16):
            depth[j] = depth[int(parents[j])] + 1
        self.levels = [[j for j in range(16) if depth[j] == d] for d in range(1, max(depth) + 1)]
        self.register_buffer("parents", parents)
        self.register_buffer("order", torch.as_tensor(MANO_TO_OPENPOSE).long())

    def rest_skeleton(self, betas: torch.Tensor) -> torch.Tensor:
        """(..., 16, 3) MANO skeleton joints at zero pose."""
        return self.j_template + torch.einsum("...l,jcl->...jc", betas, self.j_shapedirs)

    def forward(self, rotations: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor) -> torch.Tensor:
        """rotations (B, 16, 3, 3) root + fingers (local), betas (B, 10), transl (B, 3) -> joints (B, 21, 3)."""
        batch = rotations.shape[0]
        rest = self.rest_skeleton(betas).expand(batch, 16, 3)
        world_rot = [None] * 16
        world_pos = [None] * 16
        world_rot[0], world_pos[0] = rotations[:, 0], rest[:, 0]
        for level in self.levels:
            parent = self.parents[level].tolist()
            parent_rot = torch.stack([world_rot[p] for p in parent], 1)
            parent_pos = torch.stack([world_pos[p] for p in parent], 1)
            offset = rest[:, level] - rest[:, parent]
            pos = parent_pos + torch.einsum("bjrc,bjc->bjr", parent_rot, offset)
            rot = parent_rot @ rotations[:, level]
            for k, j in enumerate(level):
                world_rot[j], world_pos[j] = rot[:, k], pos[:, k]
        rot = torch.stack(world_rot, 1)
        pos = torch.stack(world_pos, 1)
        eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        pose_feature = (rotations[:, 1:] - eye).reshape(batch, -1)
        tips = self.tip_template + torch.einsum("...l,vcl->...vc", betas, self.tip_shapedirs)
        tips = tips + torch.einsum("bp,pvc->bvc", pose_feature, self.tip_posedirs)
        # linear blend skinning of the tips: sum_j w_vj (R_j (v - rest_j) + pos_j)
        local = tips[:, None] - rest[:, :, None]  # (B, 16, 5, 3)
        moved = torch.einsum("bjrc,bjvc->bjvr", rot, local) + pos[:, :, None]
        tips = torch.einsum("vj,bjvr->bvr", self.tip_weights, moved)
        joints = torch.cat([pos, tips], 1)[:, self.order]
        return joints + transl[:, None]


def finger_axes(model: HandModel) -> torch.Tensor:
    """(12, 3, 3) per non-thumb MANO joint: rows flexion, abduction, twist axes in the rest pose.

    The palm normal follows from the side: for a right hand, (index base - pinky base) x
    (middle base - wrist) points out of the palm; mirrored for a left hand. Flexion turns the
    bone (d) towards the palm normal (n): axis d x n.
    """
    skinner = JointSkinner(model)
    with torch.no_grad():
        rest = skinner(torch.eye(3).expand(1, 16, 3, 3).to(skinner.j_template), torch.zeros(1, 10).to(
            skinner.j_template), torch.zeros(1, 3).to(skinner.j_template))[0].double()
    normal = torch.linalg.cross(rest[5] - rest[17], rest[9] - rest[0])
    normal = normal if model.side == "right" else -normal
    normal = normal / normal.norm()
    openpose_of = {m: o for o, m in enumerate(MANO_TO_OPENPOSE)}
    rows = []
    for start in _FINGER_STARTS:
        for k in range(3):
            o = openpose_of[start + k]
            bone = rest[o + 1] - rest[o]
            bone = bone / bone.norm()
            side_n = normal - (normal @ bone) * bone
            side_n = side_n / side_n.norm()
            flex = torch.linalg.cross(bone, side_n)
            rows.append(torch.stack([flex, side_n, bone]))
    return torch.stack(rows).float()


def joint_limit_penalty(hand_pose: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """(..., 45) axis-angle, axes from :func:`finger_axes` -> (...,) squared excess over the limits."""
    aa = hand_pose.reshape(*hand_pose.shape[:-1], 15, 3)
    idx = [s - 1 + k for s in _FINGER_STARTS for k in range(3)]
    comp = torch.einsum("...jc,jac->...ja", aa[..., idx, :], axes)  # flex, abduction, twist
    lo = torch.tensor([_FINGER_LIMITS[k][0][0] for _ in _FINGER_STARTS for k in range(3)]).to(comp)
    hi = torch.tensor([_FINGER_LIMITS[k][0][1] for _ in _FINGER_STARTS for k in range(3)]).to(comp)
    abd = torch.tensor([_FINGER_LIMITS[k][1] for _ in _FINGER_STARTS for k in range(3)]).to(comp)
    twist = torch.tensor([_FINGER_LIMITS[k][2] for _ in _FINGER_STARTS for k in range(3)]).to(comp)
    excess = (torch.relu(lo - comp[..., 0]) + torch.relu(comp[..., 0] - hi)) ** 2
    excess = excess + torch.relu(comp[..., 1].abs() - abd) ** 2 + torch.relu(comp[..., 2].abs() - twist) ** 2
    thumb = aa[..., 12:, :]
    return excess.sum(-1) + (torch.relu(thumb.abs() - 1.2) ** 2).sum((-1, -2))


def solve_translation(points_rel: torch.Tensor, pixels: torch.Tensor, focal: float,
                      centre: torch.Tensor) -> torch.Tensor:
    """Translation t with project(points_rel + t) ~= pixels, linear least squares.

    points_rel (B, N, 3) metres, pixels (B, N, 2) -> t (B, 3). From (u - cx)(Z + tz) = f (X + tx).
    """
    uv = pixels - centre
    b, n = points_rel.shape[:2]
    a = torch.zeros(b, n, 2, 3, dtype=points_rel.dtype)
    a[..., 0, 0] = focal
    a[..., 1, 1] = focal
    a[..., :, 2] = -uv
    rhs = uv * points_rel[..., 2:] - focal * points_rel[..., :2]
    sol = torch.linalg.lstsq(a.reshape(b, 2 * n, 3), rhs.reshape(b, 2 * n, 1)).solution[..., 0]
    sol[:, 2] = sol[:, 2].clamp_min(0.05 - points_rel[..., 2].min(-1).values)  # in front of the camera
    return sol


def _second_differences(triples: torch.Tensor, length: int) -> sparse.csr_matrix:
    """(K, length) sparse operator x -> x[b+1] - 2 x[b] + x[b-1] for each middle frame b in ``triples``."""
    mid = triples.numpy()
    rows = np.repeat(np.arange(len(mid)), 3)
    return sparse.csr_matrix((np.tile([1.0, -2.0, 1.0], len(mid)), (rows, (mid[:, None] + [-1, 0, 1]).ravel())),
                             shape=(len(mid), length))


def smooth_sequence(values: torch.Tensor, triples: torch.Tensor, weight: float,
                    confidence: torch.Tensor | None = None, pairs: torch.Tensor | None = None,
                    hold: torch.Tensor | None = None) -> torch.Tensor:
    """argmin_x sum_m c_m |x_m - values_m|^2 + weight * sum_b |x[b+1] - 2 x[b] + x[b-1]|^2
    + sum_a hold_a |x[a+1] - x[a]|^2 (Whittaker smoother; frames of low confidence c follow their
    neighbours: held constant across pairs with a large ``hold``, extrapolated linearly elsewhere).

    values (M, C), triples (K,) middle frames of consecutive triples, confidence (M,) > 0 (default 1),
    pairs (L,) first frames of consecutive pairs with hold (L,) their weights -> (M, C), same dtype.
    """
    diff = _second_differences(triples, len(values))
    c = np.ones(len(values)) if confidence is None else confidence.double().numpy()
    system = sparse.diags(c) + weight * (diff.T @ diff)
    if hold is not None and len(pairs):
        a = pairs.numpy()
        first = sparse.csr_matrix((np.tile([-1.0, 1.0], len(a)), (np.repeat(np.arange(len(a)), 2),
                                   (a[:, None] + [0, 1]).ravel())), shape=(len(a), len(values)))
        system = system + first.T @ sparse.diags(hold.double().numpy()) @ first
    system = system.tocsc()
    out = spsolve(system, c[:, None] * values.double().numpy().reshape(len(values), -1))
    return torch.as_tensor(out.reshape(values.shape), dtype=values.dtype)


def depth_confidence(keypoints_2d: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int],
                     margin: float = 0.01, cut: float = 1e-3) -> torch.Tensor:
    """Confidence of the depth that the keypoints imply: 1 for a hand inside the image, ``cut`` for one
    that its border may cut (its box or a keypoint within ``margin`` x the short side of the border).

    keypoints_2d (M, 21, 2) and boxes (M, 4) x1 y1 x2 y2, pixels of an image of ``size`` (W, H) -> (M,).
    Depth comes from the hand's image size. The landmark model squeezes the unseen part of a cut hand
    inside the image, and the fit put such hands 20-40 cm too far (rendered clips), so their depth is
    taken from the frames around them instead.
    """
    m = margin * min(size)
    lo = torch.minimum(keypoints_2d.min(-2).values, boxes[:, :2])
    hi = torch.maximum(keypoints_2d.max(-2).values, boxes[:, 2:])
    limit = torch.tensor([size[0], size[1]], dtype=keypoints_2d.dtype) - m
    inside = (lo >= m).all(-1) & (hi <= limit).all(-1)
    return torch.where(inside, 1.0, cut).to(keypoints_2d.dtype)


def _hand_size_px(keypoints_2d: torch.Tensor) -> torch.Tensor:
    span = keypoints_2d.max(-2).values - keypoints_2d.min(-2).values
    return span.norm(dim=-1).clamp_min(1.0)


# Adam's step per unit (radians, metres, shape coefficients), cosine-decayed to settle.
LEARNING_RATES = {"angles": 0.05, "metres": 0.01, "betas": 0.05}
DEFAULT_WEIGHTS = {"kp2d": 1.0, "kp3d": 0.5, "limits": 100.0, "pose": 1e-3, "betas": 1e-2, "smooth": 0.1,
                   "accel": 3.0, "hold_depth": 1.0}


@contextlib.contextmanager
def _single_thread():
    # The fit is thousands of tiny tensor ops: extra threads gain nothing, and on a busy CPU
    # their spin-waiting made it 10-40x slower (measured with 2 threads under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_track(track: HandTrack, intrinsics: Intrinsics, model: HandModel | None = None,
              iterations: int = 60, weights: dict | None = None) -> tuple[CameraSpaceHand, np.ndarray]:
    """Fit the hand model to one track's keypoints.

    Args:
        track: with keypoints_2d (M, 21, 2) px and, if available, keypoints_3d (M, 21, 3) metres,
            wrist-relative (without them the hand keeps the mean shape and the fit is 2D only).
        intrinsics: the full image's camera (square pixels: fx is the focal length).
        model: HandModel for the track's side (default ``HandModel(track.side)``).
        iterations: Adam steps of the full fit (a third as many first fit root, wrist and shape).
        weights: overrides of :data:`DEFAULT_WEIGHTS`.
    Returns:
        (CameraSpaceHand, residual (M,) mean 2D reprojection error in pixels). The hand's
        confidence is exp(-residual / (0.1 * hand size in pixels)).
    """
    if len(track) == 0:
        empty = np.zeros((0, 3))
        return CameraSpaceHand(track.side, np.zeros(0, np.int64), empty, np.zeros((0, 45)), np.zeros((0, 10)),
                               empty, np.zeros(0)), np.zeros(0)
    if track.keypoints_2d is None:
        raise HaworInputError(f"{track.side} track has no 2D keypoints: the keypoint fit needs the landmark "
                              f"backend (detect_hands(..., backend='landmarks')) or the HaWoR regressor")
    model = model or HandModel(track.side)
    with _single_thread():
        fit = _TrackFit(track, intrinsics, model, {**DEFAULT_WEIGHTS, **(weights or {})})
        fit.run(iterations)
        return fit.result()


class _TrackFit:
    """The parameters and the objective of one track's fit (see the module docstring)."""

    def __init__(self, track: HandTrack, intrinsics: Intrinsics, model: HandModel, weights: dict):
        self.track, self.model, self.w, self.camera = track, model, weights, intrinsics
        self.focal = float(intrinsics.focal)
        self.skinner = JointSkinner(model).float()
        self.axes = finger_axes(model)
        m = self.m = len(track)
        self.kp2d = torch.as_tensor(track.keypoints_2d, dtype=torch.float32)
        self.centre = torch.tensor(intrinsics.center, dtype=torch.float32)
        self.scores = torch.as_tensor(track.scores, dtype=torch.float32).clamp(0.05, 1.0)
        self.depth_confidence = depth_confidence(self.kp2d, torch.as_tensor(track.boxes, dtype=torch.float32),
                                                 intrinsics.size)
        self.consecutive = torch.as_tensor(np.diff(track.frame_indices) == 1)
        # middle frames b of consecutive triples b-1, b, b+1
        self.triples = torch.nonzero(self.consecutive[1:] & self.consecutive[:-1])[:, 0] + 1
        rest = self.skinner(torch.eye(3).expand(m, 16, 3, 3).contiguous(), torch.zeros(m, 10), torch.zeros(m, 3))
        rest = rest - rest[:, :1]
        if track.keypoints_3d is not None:
            kp3d = torch.as_tensor(track.keypoints_3d, dtype=torch.float32)
            kp3d = kp3d - kp3d[:, :1]
            _, root, _ = umeyama(rest[:, PALM_JOINTS], kp3d[:, PALM_JOINTS], with_scale=False)
            wrist = solve_translation(kp3d, self.kp2d, self.focal, self.centre)
        else:
            kp3d = None
            root = _root_from_2d(rest, self.kp2d)
            wrist = solve_translation(torch.einsum("bij,bnj->bni", root, rest), self.kp2d, self.focal, self.centre)
        self.kp3d = kp3d
        self.global_orient = matrix_to_axis_angle(root).clone().requires_grad_(True)
        self.hand_pose = torch.zeros(m, 45, requires_grad=True)
        self.betas = torch.zeros(1, 10, requires_grad=True)
        self.wrist = wrist.clone().requires_grad_(True)

    def joints(self) -> torch.Tensor:
        """(M, 21, 3) metres, camera frame."""
        m = self.m
        rot = axis_angle_to_matrix(torch.cat([self.global_orient[:, None], self.hand_pose.reshape(m, 15, 3)], 1))
        j = self.skinner(rot, self.betas.expand(m, 10), torch.zeros(m, 3))
        return j - j[:, :1] + self.wrist[:, None]

    def project(self, joints: torch.Tensor) -> torch.Tensor:
        return self.camera.project(joints, min_depth=1e-3)

    def loss(self, free_fingers: bool) -> torch.Tensor:
        w, joints = self.w, self.joints()
        depth = joints[..., 2:].detach().clamp_min(0.05)
        err2d = (self.project(joints) - self.kp2d) * depth / self.focal / METRE_SCALE  # pixels -> cm at the hand
        loss = w["kp2d"] * (_robust(err2d).sum(-1) * self.scores).mean()
        if self.kp3d is not None:
            rel = joints - joints[:, :1]
            # rotation-invariant: the landmarks' out-of-plane orientation is their weakest part. The best
            # rotation is a constant for the gradient (it is optimal, so its own derivative drops out).
            with torch.no_grad():
                _, rot, shift = umeyama(self.kp3d, rel, with_scale=False)
            err3d = (rel - torch.einsum("bij,bnj->bni", rot, self.kp3d) - shift[:, None]) / METRE_SCALE
            loss = loss + w["kp3d"] * (_robust(err3d).sum(-1) * self.scores).mean()
        loss = loss + w["betas"] * (self.betas ** 2).sum()
        if free_fingers:
            loss = loss + w["limits"] * joint_limit_penalty(self.hand_pose, self.axes).mean()
            loss = loss + w["pose"] * (self.hand_pose ** 2).sum(-1).mean()
        if self.consecutive.any():
            step = (joints[1:] - joints[:-1])[self.consecutive] / METRE_SCALE
            loss = loss + w["smooth"] * (step ** 2).sum((-1, -2)).mean()
        return loss

    def run(self, iterations: int) -> None:
        """Root, wrist and shape first, then everything; the wrist is re-solved in closed form
        between stages (depth follows the hand's size only slowly under gradient steps)."""
        angles, metres, shape = LEARNING_RATES["angles"], LEARNING_RATES["metres"], LEARNING_RATES["betas"]
        first = [(self.global_orient, angles), (self.wrist, metres), (self.betas, shape)]
        full = first + [(self.hand_pose, angles)]
        half = max(5, iterations // 2)
        for free_fingers, params, steps in ((False, first, max(10, iterations // 3)), (True, full, half),
                                            (True, full, iterations - half)):
            self._resolve_wrist()
            optimiser = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in params])
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps, eta_min=0.0)
            for _ in range(steps):
                optimiser.zero_grad()
                self.loss(free_fingers).backward()
                optimiser.step()
                schedule.step()
        self._smooth_motion()

    def _smooth_motion(self) -> None:
        """Acceleration prior, as a Gaussian smoother around the fitted values: the per-frame fit
        leaves depth, root orientation and fingers jittering (centimetres, degrees)."""
        if self.m < 2 or self.w["accel"] <= 0:
            return
        with torch.no_grad():
            m = self.m
            root = axis_angle_to_matrix(self.global_orient).reshape(m, 9)  # matrices: axis-angle wraps at pi
            # the wrist as its image direction and its depth: only the depth of a cut hand is unreliable
            depth = self.wrist[:, 2:].clamp_min(0.05)
            ray = self.wrist[:, :2] / depth
            smooth = smooth_sequence(torch.cat([root, self.hand_pose, ray], 1), self.triples, self.w["accel"])
            conf = self.depth_confidence
            # successive detections, also across short gaps: a cut hand often shows in single frames
            gaps = np.diff(self.track.frame_indices)
            pairs = torch.as_tensor(np.flatnonzero(gaps <= HOLD_MAX_GAP))
            hold = self.w["hold_depth"] * (1 - torch.minimum(conf[pairs], conf[pairs + 1]))
            depth = smooth_sequence(depth, self.triples, self.w["accel"], conf, pairs, hold).clamp_min(0.05)
            u, _, vt = torch.linalg.svd(smooth[:, :9].reshape(m, 3, 3))
            fix = torch.ones(m, 3)
            fix[:, 2] = torch.det(u @ vt)
            self.global_orient.copy_(matrix_to_axis_angle(u @ torch.diag_embed(fix) @ vt))
            self.hand_pose.copy_(smooth[:, 9:54])
            self.wrist.copy_(torch.cat([smooth[:, 54:] * depth, depth], 1))

    def _resolve_wrist(self) -> None:
        with torch.no_grad():
            joints = self.joints()
            self.wrist.copy_(solve_translation(joints - joints[:, :1], self.kp2d, self.focal, self.centre))

    def result(self) -> tuple[CameraSpaceHand, np.ndarray]:
        m = self.m
        with torch.no_grad():
            residual = (self.project(self.joints()) - self.kp2d).norm(dim=-1).mean(-1)
            transl = self.wrist - self.model.wrist_rest(self.betas.double()).float().expand(m, 3)
        confidence = torch.exp(-residual / (0.1 * _hand_size_px(self.kp2d)))
        hand = CameraSpaceHand(
            side=self.track.side, frame_indices=self.track.frame_indices.astype(np.int64),
            global_orient=self.global_orient.detach().double().numpy(),
            hand_pose=self.hand_pose.detach().double().numpy(),
            betas=self.betas.detach().double().expand(m, 10).numpy().copy(), transl=transl.double().numpy(),
            confidence=confidence.double().numpy())
        return hand, residual.double().numpy()


def _robust(err: torch.Tensor, delta: float = 3.0) -> torch.Tensor:
    """Per-component Huber-like cost of (..., C) residuals (quadratic below ``delta``)."""
    sq = (err ** 2).sum(-1, keepdim=True)
    return torch.where(sq < delta ** 2, sq, 2 * delta * sq.clamp_min(1e-12).sqrt() - delta ** 2)[..., 0]


def _root_from_2d(rest_rel: torch.Tensor, kp2d: torch.Tensor) -> torch.Tensor:
    """Root rotation when only 2D keypoints exist: Kabsch on the palm in the image plane, unit depth."""
    palm2d = kp2d[:, PALM_JOINTS] - kp2d[:, :1]
    span = palm2d.norm(dim=-1).max(-1).values.clamp_min(1.0)
    rest_span = rest_rel[:, PALM_JOINTS].norm(dim=-1).max(-1).values
    lifted = torch.cat([palm2d / span[:, None, None] * rest_span[:, None, None],
                        torch.zeros_like(palm2d[..., :1])], -1)
    _, root, _ = umeyama(rest_rel[:, PALM_JOINTS], lifted, with_scale=False)
    return root


__all__ = ["DEFAULT_WEIGHTS", "JointSkinner", "finger_axes", "fit_track", "joint_limit_penalty",
           "solve_translation"]
