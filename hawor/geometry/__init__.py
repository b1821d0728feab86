"""Geometry at the bottom of the stack: rotations, cameras, rigid/similarity transforms, alignment."""
from hawor.geometry.alignment import procrustes_align, umeyama
from hawor.geometry.camera import (
    BOX_SCALE_UNIT,
    box_to_center_scale,
    cliff_bbox_info,
    crop_cam_to_full_transl,
    default_intrinsics,
    intrinsics_matrix,
    project_points,
)
from hawor.geometry.intrinsics import DEFAULT_FOCAL, Intrinsics
from hawor.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quat_wxyz,
    matrix_to_axis_angle,
    matrix_to_quat_wxyz,
    matrix_to_quat_xyzw,
    matrix_to_rot6d,
    matrix_to_rot6d_rowmajor,
    mirror_axis_angle,
    mirror_matrix,
    quat_wxyz_to_matrix,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_matrix,
    quat_xyzw_to_wxyz,
    rot6d_rowmajor_to_matrix,
    rot6d_to_matrix,
)
from hawor.geometry.transforms import apply_transform, compose_transforms, invert_transform, make_transform

__all__ = [name for name in dir() if not name.startswith("_") and name not in {"alignment", "camera", "intrinsics", "rotations", "transforms"}]
