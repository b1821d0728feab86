"""Per-frame hand silhouettes for the camera stage (HaWoR masks the hands out of SLAM; docs/architecture.md).

The masks come from the camera-space hand meshes rendered with the image intrinsics (camera at
identity), left and right OR-ed, True on hand pixels. They are stored as bit-packed crops around the
hands (a 1080p video of 1000 frames takes a few MB, not 2 GB of booleans) and expanded on demand.
"""
from __future__ import annotations

import threading
from typing import Iterable, Iterator, Mapping

import cv2
import numpy as np

from hawor.errors import HaworInputError, HaworInternalError
from hawor.geometry import Intrinsics

NEAR_PLANE_M = 0.01  # triangles with a vertex closer than this are not drawn (behind or at the lens)
FOREARM_LENGTH_M = 0.30  # wrist to elbow of an adult
FOREARM_RADIUS_M = 0.045  # generous: sleeves and the thick end near the elbow
FOREARM_SIDES = 8


def rasterize_meshes(vertices_cam: Iterable[np.ndarray], faces: Iterable[np.ndarray], K: np.ndarray,
                     image_size: tuple[int, int]) -> np.ndarray:
    """Silhouette (H, W) bool of meshes given in the camera frame.

    vertices_cam: per mesh (V, 3) metres, OpenCV camera frame (NaN rows or None meshes are skipped);
    faces: per mesh (F, 3) int vertex indices; K: (3, 3); image_size: (W, H).
    """
    w, h = image_size
    # fillPoly XORs overlapping polygons, so each triangle is filled on its own; 4 subpixel bits keep
    # edges within 1/16 px
    mask = np.zeros((h, w), np.uint8)
    for verts, tri in zip(vertices_cam, faces):
        if verts is None:
            continue
        verts = np.asarray(verts, np.float64)
        if not np.isfinite(verts).all():
            continue
        tri = np.asarray(tri)
        z = verts[:, 2]
        keep = (z[tri] > NEAR_PLANE_M).all(1)
        if not keep.any():
            continue
        uv = Intrinsics.from_K(K, image_size).project(verts, min_depth=NEAR_PLANE_M)
        pts = np.round(uv[tri[keep]] * 16).astype(np.int32)
        lo, hi = pts.min(1), pts.max(1)
        visible = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < w * 16) & (lo[:, 1] < h * 16)
        for p in np.clip(pts[visible], -(1 << 20), 1 << 20):
            cv2.fillConvexPoly(mask, p, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def mask_box(mask: np.ndarray, pad: int = 0) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the rows and columns [y0, y1) x [x0, x1) holding the True pixels of an
    (H, W) mask, grown by ``pad`` pixels and clipped to the image; None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    h, w = mask.shape
    return (int(max(rows[0] - pad, 0)), int(min(rows[-1] + 1 + pad, h)),
            int(max(cols[0] - pad, 0)), int(min(cols[-1] + 1 + pad, w)))


class HandMasks:
    """Hand masks of a video, (H, W) bool per frame, True on hand pixels.

    Build with `from_dense`, `from_vertices`, `from_hands` or `from_boxes`; read with `mask(i)`
    (full resolution) or `resized(i, (w, h))` (any partial coverage counts as hand, as in HaWoR's
    boolean masks).
    """

    def __init__(self, image_size: tuple[int, int]):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._crops: list[tuple[int, int, int, int, np.ndarray] | None] = []
        self._building: _Builder | None = None

    def __len__(self) -> int:
        return self._building.num_frames if self._building is not None else len(self._crops)

    def _crop(self, i: int):
        if self._building is not None:
            self._building.wait_for(i, self)
        return self._crops[i]

    def append(self, mask: np.ndarray) -> None:
        """Add one frame's (H, W) bool mask."""
        mask = np.asarray(mask, bool)
        w, h = self.image_size
        if mask.shape != (h, w):
            raise HaworInputError(f"hand mask {len(self)} has shape {mask.shape}, expected ({h}, {w}) "
                                  "(the video's height and width)")
        box = mask_box(mask)
        if box is None:
            self._crops.append(None)
            return
        y0, y1, x0, x1 = box
        self._crops.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0), np.packbits(mask[y0:y1, x0:x1])))

    def mask(self, i: int) -> np.ndarray:
        """(H, W) bool mask of frame i."""
        w, h = self.image_size
        out = np.zeros((h, w), bool)
        crop = self._crop(i)
        if crop is not None:
            x0, y0, cw, ch, bits = crop
            out[y0:y0 + ch, x0:x0 + cw] = np.unpackbits(bits, count=cw * ch).reshape(ch, cw).astype(bool)
        return out

    def resized(self, i: int, size: tuple[int, int]) -> np.ndarray:
        """(h, w) bool mask of frame i at size (w, h); a target pixel is True if any hand covers it."""
        if self._crop(i) is None:
            return np.zeros((size[1], size[0]), bool)
        full = self.mask(i)
        if tuple(size) == self.image_size:
            return full
        # area averaging in float keeps any partial coverage above zero
        return cv2.resize(full.astype(np.float32), tuple(size), interpolation=cv2.INTER_AREA) > 1e-6

    def coverage(self, i: int) -> float:
        """Fraction of frame i covered by hands."""
        crop = self._crop(i)
        if crop is None:
            return 0.0
        x0, y0, cw, ch, bits = crop
        return float(np.unpackbits(bits, count=cw * ch).sum()) / (self.image_size[0] * self.image_size[1])

    @classmethod
    def from_dense(cls, masks: Iterable[np.ndarray], image_size: tuple[int, int] | None = None) -> "HandMasks":
        """From (H, W) bool masks (an (N, H, W) array or any iterable of frames)."""
        out = None
        for m in masks:
            m = np.asarray(m, bool)
            if out is None:
                out = cls(image_size or (m.shape[1], m.shape[0]))
            out.append(m)
        return out if out is not None else cls(image_size or (1, 1))

    @classmethod
    def from_vertices(cls, vertices_cam: Iterable, faces: list[np.ndarray], K: np.ndarray,
                      image_size: tuple[int, int], background_frames: int | None = None) -> "HandMasks":
        """From per-frame meshes: `vertices_cam` yields, per frame, a list of (V, 3) arrays (or None)
        matching `faces` (one (F, 3) array per mesh).

        background_frames: when given (the number of frames `vertices_cam` yields), the masks are
        drawn in a background thread and the call returns at once; reading frame i waits until it
        is drawn, so a reader going through the frames in order (the camera's tracker) overlaps
        with the drawing instead of waiting for all of it.
        """
        out = cls(image_size)
        K = np.asarray(K, np.float64)
        masks = (rasterize_meshes(verts, faces, K, image_size) for verts in vertices_cam)
        if background_frames is None:
            for mask in masks:
                out.append(mask)
        else:
            out._building = _Builder(out, masks, background_frames)
        return out

    @classmethod
    def from_hands(cls, hands: Mapping[str, np.ndarray], K: np.ndarray, image_size: tuple[int, int],
                   hand_models: Mapping | None = None, forearm_length_m: float = FOREARM_LENGTH_M,
                   background: bool = False) -> "HandMasks":
        """From camera-space MANO parameters in the hands_camera.npz layout.

        hands: `{h}_global_orient` (N, 3), `{h}_hand_pose` (N, 45), `{h}_betas` (N, 10), `{h}_transl`
        (N, 3) for h in left, right (either may be absent); NaN rows mean "no hand in this frame".
        hand_models: the run's {side: HandModel} (default: the default hand model of each side).
        forearm_length_m: a forearm of this length (a cylinder continuing the middle-finger-to-wrist
        axis) is masked with each hand, because arms move with the hands, not with the scene; 0 = off.
        """
        sides, faces, frames = hand_meshes(hands, hand_models)
        if not sides:
            raise HaworInputError("hand parameters: no '{left,right}_global_orient' keys found; pass the "
                                  "contents of hands_camera.npz")
        arm_faces = cylinder_faces(FOREARM_SIDES)
        all_faces = [f for hand_faces in faces for f in (hand_faces, arm_faces)]

        def with_forearms(frame):
            out = []
            for verts, joints in frame:
                arm = None
                if verts is not None and forearm_length_m > 0:
                    arm = forearm_vertices(joints[0], joints[9], forearm_length_m)
                out += [verts, arm]
            return out

        num_frames = len(hands[f"{sides[0]}_transl"]) if background else None
        return cls.from_vertices((with_forearms(frame) for frame in frames), all_faces, K, image_size, num_frames)

    @classmethod
    def from_boxes(cls, boxes: np.ndarray, image_size: tuple[int, int], enlarge: float = 1.2) -> "HandMasks":
        """From hand boxes (N, B, 4) x1, y1, x2, y2 pixels (NaN = no box), each enlarged by `enlarge`."""
        w, h = image_size
        out = cls(image_size)
        for frame_boxes in np.asarray(boxes, np.float64).reshape(len(boxes), -1, 4):
            m = np.zeros((h, w), bool)
            for x1, y1, x2, y2 in frame_boxes[np.isfinite(frame_boxes).all(1)]:
                cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * enlarge / 2, (y2 - y1) * enlarge / 2
                m[max(int(cy - hh), 0):max(int(np.ceil(cy + hh)), 0), max(int(cx - hw), 0):max(int(np.ceil(cx + hw)), 0)] = True
            out.append(m)
        return out


class _Builder:
    """Appends masks to a `HandMasks` from a background thread; readers wait for the frame they need."""

    def __init__(self, target: HandMasks, masks: Iterator[np.ndarray], num_frames: int):
        self.num_frames = num_frames
        self._ready = threading.Condition()
        self._error: BaseException | None = None
        self._done = False
        threading.Thread(target=self._run, args=(target, masks), name="hand-masks", daemon=True).start()

    def _run(self, target: HandMasks, masks: Iterator[np.ndarray]) -> None:
        import torch

        # posing the hands here uses one core (the setting is this thread's own): the reader has the other
        torch.set_num_threads(1)
        try:
            for mask in masks:
                with self._ready:
                    target.append(mask)
                    self._ready.notify_all()
        except BaseException as exc:  # raised in the reader, at its next access
            self._error = exc
        with self._ready:
            self._done = True
            self._ready.notify_all()

    def wait_for(self, i: int, target: HandMasks) -> None:
        """Block until frame i of `target` is drawn (or drawing ended); re-raise the drawing's error."""
        if i >= self.num_frames:
            return  # the list's own IndexError
        with self._ready:
            self._ready.wait_for(lambda: self._done or len(target._crops) > i)
        if len(target._crops) > i:
            return
        if self._error is not None:
            raise self._error
        raise HaworInternalError(f"hand masks: drew {len(target._crops)} frames, expected {self.num_frames}")


def hand_meshes(hands: Mapping[str, np.ndarray], hand_models: Mapping | None = None,
                block: int = 256) -> tuple[list[str], list[np.ndarray], Iterator[list[tuple]]]:
    """The hands of `hands` (hands_camera.npz layout), posed a block of frames at a time so that
    memory stays bounded on long videos.

    hand_models: the run's {side: HandModel} (default: the default hand model of each side).
    Returns the sides present, their faces (F, 3), and an iterator over frames yielding, per side,
    ((778, 3) vertices, (21, 3) joints) in the camera frame in metres, or (None, None) where absent.
    """
    from hawor.world.assemble import PARAM_NAMES

    sides = [side for side in ("left", "right") if f"{side}_global_orient" in hands]
    params = {side: {k: hands[f"{side}_{k}"] for k in PARAM_NAMES} for side in sides}
    models = default_hand_models(sides, hand_models)
    return sides, [models[side].faces for side in sides], _posed_frames(params, models, block)


def default_hand_models(sides, hand_models: Mapping | None) -> Mapping:
    """``hand_models``, or the default hand model of each side when None."""
    if hand_models is not None:
        return hand_models
    from hawor.hands import HandModel

    return {side: HandModel(side) for side in sides}


def _posed_frames(params: dict, models: Mapping, block: int) -> Iterator[list[tuple]]:
    from hawor.world.assemble import pose_blocks

    blocks = {side: pose_blocks(p, models[side], block) for side, p in params.items()}
    for posed in zip(*blocks.values()):
        for i in range(len(posed[0][0])):
            yield [(None, None) if np.isnan(v[i, 0, 0]) else (v[i], j[i]) for v, j in posed]


def cylinder_faces(sides: int) -> np.ndarray:
    """(2 * sides, 3) side faces of an open cylinder whose vertices are two rings of `sides`."""
    j = np.arange(sides)
    k = (j + 1) % sides
    return np.concatenate([np.stack([j, k, k + sides], 1), np.stack([j, k + sides, j + sides], 1)])


def forearm_vertices(wrist: np.ndarray, middle_mcp: np.ndarray, length: float,
                     radius: float = FOREARM_RADIUS_M, sides: int = FOREARM_SIDES) -> np.ndarray:
    """(2 * sides, 3) rings of a cylinder from the wrist along the middle-MCP-to-wrist direction."""
    axis = wrist - middle_mcp
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    ring = radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    return np.concatenate([wrist + ring, wrist + length * axis + ring])
