"""Geometry around the embedded palm detector and landmark model (numpy, no models here).

Rotated rectangles ``rect = (cx, cy, w, h, angle)`` are in pixels of the full image; ``angle`` in
radians turns the rectangle's "up" (0, -1) towards the hand's fingers (image axes, y down). The
numbers (anchor layout, scales, shifts) are those of MediaPipe's published hand graph.
"""
from __future__ import annotations

import math

import numpy as np

PALM_INPUT = 192
LANDMARK_INPUT = 224
PALM_STRIDES = (8, 16, 16, 16)
PALM_MIN_SCALE, PALM_MAX_SCALE = 0.1484375, 0.75
# Palm rect -> landmark ROI, and landmarks -> next frame's ROI (tracking).
PALM_ROI_SCALE, PALM_ROI_SHIFT_Y = 2.6, -0.5
TRACK_ROI_SCALE, TRACK_ROI_SHIFT_Y = 2.0, -0.1
# Landmarks that outline the palm (wrist, thumb base, finger MCP/PIP joints), for the tracking ROI.
ROI_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


def palm_anchors(input_size: int = PALM_INPUT, strides=PALM_STRIDES) -> np.ndarray:
    """SSD anchor centres of the palm detector, (2016, 2) normalised x, y.

    Consecutive layers with the same stride share one grid; each layer adds two anchors per
    cell (aspect ratio 1 and the interpolated scale). Anchor sizes are fixed to 1, so only the
    centres matter.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer < len(strides) and strides[layer] == stride:
            same += 1
            layer += 1
        cells = math.ceil(input_size / stride)
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells,
                             indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], -1)
        centres.append(np.repeat(grid, 2 * same, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode_palms(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                 min_score: float = 0.5, input_size: int = PALM_INPUT):
    """Decode palm detector outputs into normalised boxes and 7 keypoints.

    Args:
        raw_boxes: (A, 18) regressions: box centre offset x, y, size w, h, then 7 (x, y) keypoints,
            in input pixels relative to the anchor centre.
        raw_scores: (A,) or (A, 1) logits.
        anchors: (A, 2) normalised anchor centres.
    Returns:
        boxes (N, 4) normalised xyxy, keypoints (N, 7, 2) normalised, scores (N,) for scores >= min_score.
    """
    logits = np.clip(raw_scores.reshape(-1), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= min_score
    raw, anc, scores = raw_boxes[keep] / input_size, anchors[keep], scores[keep]
    centre = raw[:, 0:2] + anc
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], -1)
    keypoints = raw[:, 4:18].reshape(-1, 7, 2) + anc[:, None, :]
    return boxes, keypoints, scores


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes a (N, 4) against b (M, 4) -> (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area_a = np.prod(a[:, 2:] - a[:, :2], -1)
    area_b = np.prod(b[:, 2:] - b[:, :2], -1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3):
    """Weighted non-maximum suppression: each kept detection is the score-weighted mean of its cluster.

    Returns boxes (K, 4), keypoints (K, 7, 2), scores (K,) sorted by score (the cluster's best).
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), bool)
    out_b, out_k, out_s = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        cluster = remaining & (box_iou(boxes[i:i + 1], boxes)[0] >= iou)
        cluster[i] = True
        w = scores[cluster][:, None]
        out_b.append((boxes[cluster] * w).sum(0) / w.sum())
        out_k.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[i])
        remaining &= ~cluster
    if not out_s:
        return np.zeros((0, 4)), np.zeros((0, 7, 2)), np.zeros(0)
    return np.stack(out_b), np.stack(out_k), np.array(out_s)


def _angle_up(start: np.ndarray, end: np.ndarray) -> float:
    """Rotation that turns image "up" into the direction start -> end (pixels), in [-pi, pi)."""
    angle = math.pi / 2 - math.atan2(-(end[1] - start[1]), end[0] - start[0])
    return (angle + math.pi) % (2 * math.pi) - math.pi


def transform_rect(rect, scale: float, shift_y: float) -> np.ndarray:
    """Shift a rect along its own up axis by ``shift_y`` * h, make it square (long side), scale it."""
    cx, cy, w, h, angle = rect
    dy = shift_y * h
    cx, cy = cx - dy * math.sin(angle), cy + dy * math.cos(angle)
    side = max(w, h) * scale
    return np.array([cx, cy, side, side, angle])


def palm_to_roi(box_px: np.ndarray, keypoints_px: np.ndarray) -> np.ndarray:
    """Landmark ROI from a palm detection in pixels: box (4,) xyxy, keypoints (7, 2)."""
    angle = _angle_up(keypoints_px[0], keypoints_px[2])  # wrist centre -> middle finger base
    rect = ((box_px[0] + box_px[2]) / 2, (box_px[1] + box_px[3]) / 2,
            box_px[2] - box_px[0], box_px[3] - box_px[1], angle)
    return transform_rect(rect, PALM_ROI_SCALE, PALM_ROI_SHIFT_Y)


def landmarks_to_roi(landmarks_px: np.ndarray) -> np.ndarray:
    """Next frame's landmark ROI from this frame's 21 landmarks (21, 2+) in pixels."""
    pts = landmarks_px[list(ROI_LANDMARKS), :2]
    knuckles = 0.25 * (landmarks_px[5, :2] + landmarks_px[13, :2]) + 0.5 * landmarks_px[9, :2]
    angle = _angle_up(landmarks_px[0, :2], knuckles)
    c, s = math.cos(angle), math.sin(angle)
    to_rect = np.array([[c, s], [-s, c]])  # image axes -> rect axes
    local = pts @ to_rect.T
    lo, hi = local.min(0), local.max(0)
    centre = ((lo + hi) / 2) @ to_rect  # back to image axes
    w, h = hi - lo
    return transform_rect((centre[0], centre[1], w, h, angle), TRACK_ROI_SCALE, TRACK_ROI_SHIFT_Y)


def roi_to_image_affine(rect, size: int) -> np.ndarray:
    """(2, 3) affine mapping crop pixels (u, v) of a ``size`` x ``size`` crop to image pixels."""
    cx, cy, w, h, angle = rect
    c, s = math.cos(angle), math.sin(angle)
    lin = np.array([[c, -s], [s, c]]) @ np.diag([w / size, h / size])
    offset = np.array([cx, cy]) - lin @ np.array([size / 2, size / 2])
    return np.concatenate([lin, offset[:, None]], 1)


def roi_bounds(rect) -> np.ndarray:
    """Axis-aligned xyxy bounds of a rotated rect."""
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    affine = roi_to_image_affine(rect, 1)
    pts = corners @ affine[:, :2].T + affine[:, 2]
    return np.concatenate([pts.min(0), pts.max(0)])


def roi_inside_fraction(rect, width: int, height: int, samples: int = 8) -> float:
    """Share of a rotated rect's area that lies inside a ``width`` x ``height`` image (sampled on a grid)."""
    grid = (np.arange(samples) + 0.5) / samples
    u, v = np.meshgrid(grid, grid)
    affine = roi_to_image_affine(rect, 1)
    pts = np.stack([u.ravel(), v.ravel()], 1) @ affine[:, :2].T + affine[:, 2]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < width) & (pts[:, 1] >= 0) & (pts[:, 1] < height)
    return float(inside.mean())


def box_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area of xyxy boxes a (N, 4) against b (M, 4) -> (N, M):
    1 when one box lies inside the other (IoU can stay low then, e.g. fingers inside a whole hand)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area_a = np.prod(a[:, 2:] - a[:, :2], -1)
    area_b = np.prod(b[:, 2:] - b[:, :2], -1)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None]), 1e-12)
