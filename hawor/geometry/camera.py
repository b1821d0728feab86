"""Pinhole cameras and the crop-camera geometry of the regressor (CLIFF features, full-image translation).

Pixel convention: u = f x / z + cx, v = f y / z + cy; OpenCV camera axes (x right, y down, z forward).
A hand box is described by its centre (pixels) and ``scale`` = (dilated square side) / 200 pixels.
"""
from __future__ import annotations

import torch

from hawor.geometry.intrinsics import Intrinsics

BOX_SCALE_UNIT = 200.0


def default_intrinsics(image_size: tuple[int, int], focal: float | None = None):
    """K (3, 3) float64 numpy of :meth:`Intrinsics.default` (centred principal point)."""
    return Intrinsics.default(image_size, focal).K()


def intrinsics_matrix(focal, cx, cy) -> torch.Tensor:
    """K (..., 3, 3) = [[f, 0, cx], [0, f, cy], [0, 0, 1]] from scalars or tensors of equal shape."""
    focal, cx, cy = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=torch.float64) for v in (focal, cx, cy)))
    K = torch.zeros(*focal.shape, 3, 3, dtype=focal.dtype)
    K[..., 0, 0] = focal
    K[..., 1, 1] = focal
    K[..., 0, 2] = cx
    K[..., 1, 2] = cy
    K[..., 2, 2] = 1.0
    return K


def project_points(points_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Project points (..., N, 3) metres, camera frame, with K (..., 3, 3) -> pixels (..., N, 2)."""
    uvw = points_cam @ K.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:3]


def box_to_center_scale(boxes: torch.Tensor, dilation: float = 1.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (..., 4) x1, y1, x2, y2 pixels -> centre (..., 2) pixels and scale (...,).

    scale = dilation * max(w, h) / 200, i.e. the crop is a square of side 200 * scale pixels.
    """
    wh = boxes[..., 2:4] - boxes[..., 0:2]
    center = boxes[..., 0:2] + wh / 2
    scale = dilation * wh.max(dim=-1).values / BOX_SCALE_UNIT
    return center, scale


def cliff_bbox_info(center: torch.Tensor, scale: torch.Tensor, focal: torch.Tensor,
                    img_center: torch.Tensor) -> torch.Tensor:
    """CLIFF box features (..., 3) that tell the temporal modules where the crop sits in the image.

    Args:
        center: (..., 2) crop centre, pixels. scale: (...,) side / 200. focal: (...,) pixels.
        img_center: (..., 2) principal point, pixels.
    Returns:
        (2.8 (cx - px) / f, 2.8 (cy - py) / f, (b - 0.24 f) / (0.06 f)) with b = 200 * scale.
    """
    focal = torch.as_tensor(focal, dtype=center.dtype)
    side = BOX_SCALE_UNIT * scale
    offset = 2.8 * (center - img_center) / focal[..., None]
    size = (side - 0.24 * focal) / (0.06 * focal)
    return torch.cat((offset, size[..., None]), dim=-1)


def crop_cam_to_full_transl(pred_cam: torch.Tensor, center: torch.Tensor, scale: torch.Tensor,
                            focal: torch.Tensor, img_center: torch.Tensor) -> torch.Tensor:
    """Weak-perspective crop camera (s, tx, ty) (..., 3) -> translation (..., 3) metres, camera frame.

    t = (tx + 2 (cx - px) / (b s), ty + 2 (cy - py) / (b s), 2 f / (b s)), b = 200 * scale; this is
    the MANO ``transl`` of the hand in the full image's camera.
    """
    focal = torch.as_tensor(focal, dtype=pred_cam.dtype)
    bs = BOX_SCALE_UNIT * scale * pred_cam[..., 0]
    txy = pred_cam[..., 1:3] + 2 * (center - img_center) / bs[..., None]
    tz = 2 * focal / bs
    return torch.cat((txy, tz[..., None]), dim=-1)
