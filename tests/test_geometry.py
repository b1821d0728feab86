import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import hawor.geometry as g

torch.manual_seed(0)
F64 = torch.float64


def random_axis_angle(n=64):
    return torch.randn(n, 3, dtype=F64) * 1.2


def test_axis_angle_known_value_and_round_trip():
    R = g.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=F64))
    expected = torch.tensor([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=F64)
    assert torch.allclose(R, expected, atol=1e-12)
    aa = random_axis_angle()
    aa = aa[aa.norm(dim=-1) < math.pi - 1e-3]
    assert torch.allclose(g.matrix_to_axis_angle(g.axis_angle_to_matrix(aa)), aa, atol=1e-10)


def test_quaternion_orders_match_scipy():
    aa = random_axis_angle(16)
    q_xyzw = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_quat())  # scipy is scalar-last
    R = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix())
    assert torch.allclose(g.quat_xyzw_to_matrix(q_xyzw), R, atol=1e-12)
    q_wxyz = q_xyzw[:, [3, 0, 1, 2]]
    assert torch.equal(g.quat_xyzw_to_wxyz(q_xyzw), q_wxyz)
    assert torch.allclose(g.quat_wxyz_to_matrix(q_wxyz), R, atol=1e-12)
    back = g.matrix_to_quat_wxyz(R)
    assert torch.allclose(back * torch.sign(back[:, :1]), q_wxyz * torch.sign(q_wxyz[:, :1]), atol=1e-10)
    assert torch.allclose(g.quat_wxyz_to_matrix(g.axis_angle_to_quat_wxyz(aa)), R, atol=1e-12)
    # identity: w first in wxyz
    assert torch.allclose(g.matrix_to_quat_wxyz(torch.eye(3, dtype=F64)), torch.tensor([1.0, 0, 0, 0], dtype=F64))
    assert torch.allclose(g.matrix_to_quat_xyzw(torch.eye(3, dtype=F64)), torch.tensor([0, 0, 0, 1.0], dtype=F64))


def test_6d_layouts_round_trip_and_differ():
    R = g.axis_angle_to_matrix(random_axis_angle())
    assert torch.allclose(g.rot6d_to_matrix(g.matrix_to_rot6d(R)), R, atol=1e-12)
    assert torch.allclose(g.rot6d_rowmajor_to_matrix(g.matrix_to_rot6d_rowmajor(R)), R, atol=1e-12)
    # regressor layout: first column then second column; infiller layout: first two columns row by row
    M = torch.arange(9, dtype=F64).reshape(3, 3)
    assert g.matrix_to_rot6d(M).tolist() == [0, 3, 6, 1, 4, 7]
    assert g.matrix_to_rot6d_rowmajor(M).tolist() == [0, 1, 3, 4, 6, 7]
    assert not torch.allclose(g.matrix_to_rot6d(R), g.matrix_to_rot6d_rowmajor(R))
    # the same 6 numbers decode to different rotations under the two layouts
    x = torch.tensor([1.0, 0.2, 0.1, 0.3, 0.9, -0.2], dtype=F64)
    assert not torch.allclose(g.rot6d_to_matrix(x), g.rot6d_rowmajor_to_matrix(x))


def test_rot6d_gram_schmidt_from_unnormalised_input():
    x = torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0], dtype=F64)
    assert torch.allclose(g.rot6d_to_matrix(x), torch.eye(3, dtype=F64))


def test_mirror_twice_is_identity_and_forms_agree():
    aa = random_axis_angle()
    assert torch.equal(g.mirror_axis_angle(g.mirror_axis_angle(aa)), aa)
    R = g.axis_angle_to_matrix(aa)
    assert torch.allclose(g.mirror_matrix(g.mirror_matrix(R)), R)
    assert torch.allclose(g.mirror_matrix(R), g.axis_angle_to_matrix(g.mirror_axis_angle(aa)), atol=1e-12)
    M = torch.diag(torch.tensor([-1.0, 1, 1], dtype=F64))
    assert torch.allclose(g.mirror_matrix(R), M @ R @ M)


def test_cliff_features_and_translation_formula_against_projection():
    f, W, H = 600.0, 640.0, 480.0
    img_center = torch.tensor([W / 2, H / 2], dtype=F64)
    center = torch.tensor([400.0, 300.0], dtype=F64)
    scale = torch.tensor(1.5, dtype=F64)  # box side 300 px
    info = g.cliff_bbox_info(center, scale, torch.tensor(f, dtype=F64), img_center)
    assert torch.allclose(info, torch.tensor([2.8 * 80 / 600, 2.8 * 60 / 600, (300 - 144) / 36], dtype=F64))
    pred_cam = torch.tensor([0.8, 0.01, -0.02], dtype=F64)
    t = g.crop_cam_to_full_transl(pred_cam, center, scale, torch.tensor(f, dtype=F64), img_center)
    assert torch.isclose(t[2], torch.tensor(2 * f / (300 * 0.8), dtype=F64))
    # a point at (-tx, -ty) in the crop camera's hand frame projects to the crop centre
    K = g.intrinsics_matrix(f, W / 2, H / 2)
    point = torch.tensor([[-pred_cam[1], -pred_cam[2], 0.0]], dtype=F64) + t
    assert torch.allclose(g.project_points(point, K)[0], center, atol=1e-9)


def test_box_to_center_scale():
    c, s = g.box_to_center_scale(torch.tensor([[10.0, 20.0, 110.0, 70.0]]))
    assert c.tolist() == [[60.0, 45.0]] and torch.allclose(s, torch.tensor([1.2 * 100 / 200]))


def test_transforms_compose_invert_apply():
    R = g.axis_angle_to_matrix(random_axis_angle(4))
    t = torch.randn(4, 3, dtype=F64)
    T = g.make_transform(R, t, scale=torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=F64))
    pts = torch.randn(4, 10, 3, dtype=F64)
    back = g.apply_transform(g.invert_transform(T), g.apply_transform(T, pts))
    assert torch.allclose(back, pts, atol=1e-12)
    T2 = g.make_transform(R.flip(0), t.flip(0))
    assert torch.allclose(g.apply_transform(g.compose_transforms(T, T2), pts),
                          g.apply_transform(T, g.apply_transform(T2, pts)), atol=1e-12)


@pytest.mark.parametrize("with_scale", [True, False])
def test_umeyama_recovers_transform(with_scale):
    src = torch.randn(50, 3, dtype=F64)
    R = g.axis_angle_to_matrix(torch.tensor([0.3, -0.5, 0.2], dtype=F64))
    s = 1.7 if with_scale else 1.0
    dst = s * src @ R.T + torch.tensor([1.0, 2.0, -3.0], dtype=F64)
    s_est, R_est, t_est = g.umeyama(src, dst, with_scale=with_scale)
    assert torch.allclose(s_est, torch.tensor(s, dtype=F64), atol=1e-9)
    assert torch.allclose(R_est, R, atol=1e-9)
    assert torch.allclose(t_est, torch.tensor([1.0, 2.0, -3.0], dtype=F64), atol=1e-9)


def test_procrustes_align_removes_similarity():
    gt = torch.randn(2, 21, 3, dtype=F64)
    R = g.axis_angle_to_matrix(torch.tensor([[0.1, 0.2, 0.3], [1.0, 0, 0]], dtype=F64))
    pred = 0.5 * gt @ R.transpose(-1, -2) + 0.3
    assert torch.allclose(g.procrustes_align(pred, gt), gt, atol=1e-9)


def test_project_points_batched():
    K = g.intrinsics_matrix(500.0, 320.0, 240.0)
    pts = torch.tensor([[[0.0, 0.0, 2.0], [0.2, -0.1, 1.0]]], dtype=F64)
    uv = g.project_points(pts, K)
    assert np.allclose(uv.numpy(), [[[320, 240], [420, 190]]])


def test_default_intrinsics_centre_and_focal():
    K = g.default_intrinsics((640, 480))
    assert K.tolist() == [[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]]
    assert g.default_intrinsics((1080, 1920), focal=1000.0)[:2, 2].tolist() == [540.0, 960.0]


def test_intrinsics_default_given_centre_and_bad_values():
    cam = g.Intrinsics.default((640, 480))
    assert cam.K().tolist() == g.default_intrinsics((640, 480)).tolist()
    off = g.Intrinsics.default((640, 480), 500.0, (300.0, 250.0))
    assert (off.fx, off.fy, off.center) == (500.0, 500.0, (300.0, 250.0))
    assert g.Intrinsics.from_K(off.K(), (640, 480)) == off
    for focal in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="img_focal"):
            g.Intrinsics.default((640, 480), focal)
    with pytest.raises(ValueError, match="img_center"):
        g.Intrinsics.default((640, 480), 500.0, (math.nan, 1.0))


def test_intrinsics_project_numpy_and_torch_and_rescale():
    cam = g.Intrinsics.default((640, 480), 500.0, (300.0, 250.0))
    pts = np.array([[0.0, 0.0, 2.0], [0.2, -0.1, 1.0], [0.1, 0.1, -1.0]])
    uv = cam.project(pts)
    assert isinstance(uv, np.ndarray) and np.allclose(uv[:2], [[300, 250], [400, 200]])
    uv_t = cam.project(torch.as_tensor(pts), min_depth=0.5)
    assert isinstance(uv_t, torch.Tensor) and np.allclose(uv_t[:2].numpy(), uv[:2])
    assert np.allclose(uv_t[2].numpy(), [300 + 500 * 0.1 / 0.5, 250 + 500 * 0.1 / 0.5])  # clamped depth
    assert np.allclose(g.project_points(torch.as_tensor(pts[:2]), cam.K_torch()).numpy(), uv[:2])
    half = cam.scaled((320, 240))
    assert half.size == (320, 240) and np.allclose(half.project(pts[:2]), uv[:2] / 2)
