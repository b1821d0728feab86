"""Scene objects for the world view: checkerboard backdrop, camera frustum, trajectory tube, viewpoint.

All geometry is in the world frame with OpenCV axes (the first camera's frame: x right, y down,
z forward), metres. Colours follow the official viewer.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from hawor.render import Mesh

LEFT_COLOR = (0.804, 0.600, 0.820)  # "director-purple"
RIGHT_COLOR = (0.207, 0.596, 0.792)  # "director-blue"
HAND_COLORS = {"left": LEFT_COLOR, "right": RIGHT_COLOR}
CHECKER_COLORS = (172 / 255, 215 / 255)
TILE = 0.5  # metres
TRAJECTORY_COLOR = (0.25, 0.25, 0.25)
FRUSTUM_COLOR = (0.85, 0.25, 0.2)


def checkerboard(center: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray, half_size: float,
                 tile: float = TILE) -> Mesh:
    """A square checkerboard centred at ``center`` spanning unit axes u, v (3,), tiles of ``tile`` m.

    Faces are wound so the board's front side faces u x v.
    """
    n = max(1, int(np.ceil(2 * half_size / tile)))
    start = -0.5 * n * tile
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    uv = start + tile * (np.stack([i, j], -1)[:, None, :] + corners[None])  # (T, 4, 2)
    vertices = center + uv[..., :1] * axis_u + uv[..., 1:] * axis_v
    base = 4 * np.arange(len(i))[:, None]
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]])
    shade = np.where((i + j) % 2 == 0, CHECKER_COLORS[0], CHECKER_COLORS[1])
    colors = np.repeat(np.repeat(shade[:, None], 3, 1), 4, axis=0)
    return Mesh(vertices.reshape(-1, 3), faces, color=colors, smooth=False, roughness=1.0)


@functools.lru_cache(maxsize=2)
def _checker_texture(n: int, per_tile: int) -> np.ndarray:
    """Grey uint8 texture of an n x n board, ``per_tile`` pixels a tile, rows along the board's v axis."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    shades = (np.array(CHECKER_COLORS) * 255 + 0.5).astype(np.uint8)
    return np.kron(shades[(i + j) % 2].T, np.ones((per_tile, per_tile), np.uint8))


def checkerboard_image(center: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray, half_size: float,
                       K: np.ndarray, T_world_view: np.ndarray, image_size: tuple[int, int],
                       tile: float = TILE) -> np.ndarray:
    """The board of :func:`checkerboard` as seen from ``T_world_view``, unlit, as RGB uint8 (H, W, 3).

    A moving viewpoint has to redraw its backdrop every frame, and a board that fills the screen costs
    software OpenGL ~100 ms a frame; a plane maps to the image by a homography, so one perspective
    warp of a small texture gives the same picture in a few ms. White off the board.
    """
    n = max(1, int(np.ceil(2 * half_size / tile)))
    per_tile = int(np.clip(4096 // n, 1, 64))  # texture pixels per tile: sharp edges up close
    texture = _checker_texture(n, per_tile)
    R, eye = T_world_view[:3, :3], T_world_view[:3, 3]
    plane_to_view = R.T @ np.stack([tile * axis_u, tile * axis_v, center - eye], axis=1)  # (a, b, 1) in tiles
    texture_to_plane = np.array([[1 / per_tile, 0, -0.5 * n], [0, 1 / per_tile, -0.5 * n], [0, 0, 1]])
    H = K @ plane_to_view @ texture_to_plane
    w, h = image_size
    grey = cv2.warpPerspective(texture, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=255)
    # pixels whose ray meets the plane behind the viewpoint (above the horizon) are not on the board
    scale = np.linalg.inv(H)[2]
    behind = (scale[0] * (np.arange(w) + 0.5))[None, :] + (scale[1] * (np.arange(h) + 0.5))[:, None] + scale[2] <= 0
    grey[behind] = 255
    return cv2.merge([grey] * 3)


def frustum(T_world_cam: np.ndarray, K: np.ndarray, image_size: tuple[int, int], depth: float = 0.1,
            color=FRUSTUM_COLOR) -> Mesh:
    """A closed pyramid: apex at the camera centre, base = the image rectangle at ``depth`` metres."""
    w, h = image_size
    pix = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    base = np.concatenate([(pix - K[:2, 2]) / np.diag(K)[:2] * depth, np.full((4, 1), depth)], axis=1)
    points = np.concatenate([np.zeros((1, 3)), base]) @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 3, 2], [1, 4, 3]])
    double_sided = np.concatenate([faces, faces[:, ::-1]])
    return Mesh(points, double_sided, color=color, smooth=False)


def tube(points: np.ndarray, radius: float = 0.004, color=TRAJECTORY_COLOR, max_points: int = 400) -> Mesh | None:
    """A thin square tube along a polyline (P, 3) (subsampled to ``max_points``); None if too short."""
    points = np.asarray(points, float)
    points = points[np.isfinite(points).all(1)]
    if len(points) > max_points:
        points = points[np.linspace(0, len(points) - 1, max_points).round().astype(int)]
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6])
    points = points[keep]
    if len(points) < 2:
        return None
    tangent = np.gradient(points, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(tangent[:, 1:2]) < 0.9, [[0, 1, 0]], [[1, 0, 0]])
    n1 = np.cross(tangent, helper)
    n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
    n2 = np.cross(tangent, n1)
    ring = np.stack([n1, n2, -n1, -n2], axis=1) * radius  # (P, 4, 3)
    vertices = (points[:, None] + ring).reshape(-1, 3)
    faces = []
    for k in range(4):
        a, b = k, (k + 1) % 4
        seg = 4 * np.arange(len(points) - 1)[:, None]
        faces += [seg + [a, b, b + 4], seg + [a, b + 4, a + 4]]
    faces = np.concatenate(faces)
    return Mesh(vertices, np.concatenate([faces, faces[:, ::-1]]), color=color, smooth=False)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Camera-to-world (4, 4), OpenCV axes, at ``eye`` looking at ``target`` with image-up ~ ``up``."""
    z = target - eye
    z = z / np.linalg.norm(z)
    y = -(up - np.dot(up, z) * z)
    if np.linalg.norm(y) < 1e-9:  # up parallel to the view direction
        y = np.cross(z, [1.0, 0, 0]) if abs(z[0]) < 0.9 else np.cross(z, [0, 1.0, 0])
    y = y / np.linalg.norm(y)
    T = np.eye(4)
    T[:3, :3] = np.stack([np.cross(y, z), y, z], axis=1)
    T[:3, 3] = eye
    return T


def overview_camera(points: np.ndarray, focal: float, image_size: tuple[int, int], keep: np.ndarray | None = None,
                    fill: float = 0.85) -> np.ndarray:
    """A fixed viewpoint behind and above the first camera that keeps the action in frame.

    ``points`` (P, 3): outliers allowed (2-98 percentile box); ``keep`` (K, 3): points that must all
    be in view (the camera positions). The view direction is the first camera's forward axis tilted
    30 degrees down, the look-at point the centre of the box, and the distance is refined so that the
    content spans ``fill`` of the image's width or height (whichever binds).
    """
    points = points[np.isfinite(points).all(1)]
    keep = np.zeros((0, 3)) if keep is None else keep[np.isfinite(keep).all(1)]
    if len(points) == 0:
        points = keep if len(keep) else np.zeros((1, 3))
    lo, hi = np.percentile(points, 2, axis=0), np.percentile(points, 98, axis=0)
    if len(keep):
        lo, hi = np.minimum(lo, keep.min(0)), np.maximum(hi, keep.max(0))
    center = 0.5 * (lo + hi)
    radius = max(0.5 * np.linalg.norm(hi - lo), 0.15)
    direction = np.array([0.0, np.sin(np.radians(30)), np.cos(np.radians(30))])  # forward and down (y down)
    half = 0.5 * np.asarray(image_size, float) / focal  # tan of the half fields of view (x, y)
    distance = radius / np.sin(np.arctan(half.min()))
    for _ in range(3):  # the bounding sphere is conservative: shrink until the projection fills the view
        T = look_at(center - distance * direction, center, up=np.array([0.0, -1.0, 0.0]))

        def extent(p):
            cam = (p - T[:3, 3]) @ T[:3, :3]
            return np.abs(cam[:, :2] / np.maximum(cam[:, 2:], 1e-6)) / half, (cam[:, 2] > 0.05).all()

        spread, ahead = extent(points)
        needed = np.percentile(spread, 98, axis=0).max()
        if len(keep):
            spread_keep, ahead_keep = extent(keep)
            needed, ahead = max(needed, spread_keep.max()), ahead and ahead_keep
        if not ahead:
            break
        distance *= float(np.clip(needed / fill, 0.5, 2.0))
    return look_at(center - distance * direction, center, up=np.array([0.0, -1.0, 0.0]))


def smooth_poses(T_world_cam: np.ndarray, sigma: float) -> np.ndarray:
    """Camera-to-world poses (N, 4, 4) low-passed with a Gaussian of ``sigma`` frames.

    Positions are filtered directly; rotations as sign-aligned quaternions, then renormalised (fine
    for the few tens of degrees a head turns within a window). Non-finite poses are bridged by the
    nearest finite ones.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.spatial.transform import Rotation

    T = np.array(T_world_cam, np.float64)
    finite = np.isfinite(T).all(axis=(1, 2))
    if not finite.any():
        return np.tile(np.eye(4), (len(T), 1, 1))
    idx = np.flatnonzero(finite)
    T = T[idx[np.clip(np.searchsorted(idx, np.arange(len(T))), 0, len(idx) - 1)]]
    quat = Rotation.from_matrix(T[:, :3, :3]).as_quat()
    flip = np.cumprod(np.sign(np.sum(quat[1:] * quat[:-1], axis=1) + 1e-12))
    quat[1:] *= flip[:, None]
    if sigma > 0:
        quat = gaussian_filter1d(quat, sigma, axis=0, mode="nearest")
        T[:, :3, 3] = gaussian_filter1d(T[:, :3, 3], sigma, axis=0, mode="nearest")
    T[:, :3, :3] = Rotation.from_quat(quat / np.linalg.norm(quat, axis=1, keepdims=True)).as_matrix()
    return T


def follow_cameras(T_world_cam: np.ndarray, hand_depth: float, sigma: float, hands_world: np.ndarray | None = None,
                   back: float = 0.7, up: float = 0.45) -> np.ndarray:
    """Viewpoints (N, 4, 4) behind and above the wearer's head that keep the hands in the middle.

    The viewer rides with the wearer's head: ``back`` * hand_depth behind and ``up`` * hand_depth
    above the camera centre (above = image up) in the wearer's orientation smoothed over ``sigma``
    frames (:func:`smooth_poses`), so head jitter and quick glances do not shake the view. It looks at
    the hands, ``hands_world`` (N, 3) metres, world frame, NaN where no hand is known, whose offset
    from the head is smoothed over 2 * ``sigma`` frames; frames without hands look ``hand_depth``
    metres along the optical axis, where hands work. Image-up follows the wearer's. Sizes scale with
    ``hand_depth`` (metres), so hands fill a similar share of the view.
    """
    from scipy.ndimage import gaussian_filter1d

    R = smooth_poses(T_world_cam, sigma)[:, :3, :3]
    # the head's own path is not smoothed: a walking wearer carries the hands along, and a smoothed
    # path trails a speeding-up walk by decimetres, dropping the hands to the image border
    centre = smooth_poses(T_world_cam, 0.0)[:, :3, 3]
    eyes = centre + np.einsum("nij,j->ni", R, [0.0, -up * hand_depth, -back * hand_depth])
    offsets = R[:, :, 2] * hand_depth
    if hands_world is not None:
        known = np.isfinite(hands_world).all(1)
        offsets = np.where(known[:, None], hands_world - centre, offsets)
    if sigma > 0:  # hands move about more than the head turns: their aim is smoothed twice as long
        offsets = gaussian_filter1d(offsets, 2 * sigma, axis=0, mode="nearest")
    targets = centre + offsets
    return np.stack([look_at(e, g, up=-R[k, :, 1]) for k, (e, g) in enumerate(zip(eyes, targets))])
