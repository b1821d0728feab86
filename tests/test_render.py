"""Offscreen renderer: geometry the intrinsics predict, depth, per-mesh masks, for both backends."""
import numpy as np
import pytest
import trimesh

from hawor.errors import HaworInputError
from hawor.render import Lights, Mesh, OffscreenRenderer

W, H = 320, 240
SPHERE = trimesh.creation.icosphere(subdivisions=4, radius=0.05)


def make_renderer(backend):
    try:
        return OffscreenRenderer(W, H, backend=backend)
    except HaworInputError as exc:  # no EGL on this machine: the numpy backend still runs every check
        pytest.skip(str(exc))


@pytest.fixture(scope="module", params=["egl", "numpy"])
def renderer(request):
    r = make_renderer(request.param)
    yield r
    r.close()


def intrinsics(f=400.0, cx=W / 2, cy=H / 2):
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])


def sphere(centre, color=(0.2, 0.6, 0.8), scale=1.0):
    return Mesh(SPHERE.vertices * scale + centre, SPHERE.faces, color=color)


def disc_radius_px(f, radius, distance):
    return f * radius / np.sqrt(distance ** 2 - radius ** 2)  # outline of a sphere under a pinhole


def test_sphere_silhouette_and_depth(renderer):
    out = renderer.render(sphere([0.0, 0.0, 0.5]), intrinsics(), background=(0.0, 0.0, 0.0))
    assert out.rgb.shape == (H, W, 3) and out.rgb.dtype == np.uint8 and out.depth.shape == (H, W)
    r_px = disc_radius_px(400.0, 0.05, 0.5)
    assert (out.depth > 0).sum() == pytest.approx(np.pi * r_px ** 2, rel=0.03)
    assert out.depth[H // 2, W // 2] == pytest.approx(0.45, abs=1e-3)  # the sphere's nearest point
    assert out.depth[0, 0] == 0 and (out.rgb[0, 0] == 0).all()
    assert out.rgb[H // 2, W // 2].max() > 100  # lit
    # depth along a ray at pixel offset dx: the sphere's front surface
    dx = 30
    ray = np.array([(dx + 0.5) / 400.0, 0.5 / 400.0, 1.0])
    b = ray @ [0, 0, 0.5]
    t = (b - np.sqrt(b ** 2 - ray @ ray * (0.25 - 0.05 ** 2))) / (ray @ ray)
    assert out.depth[H // 2, W // 2 + dx] == pytest.approx(t, abs=1.5e-3)


def test_principal_point_and_camera_pose(renderer):
    K = intrinsics(cx=100.0, cy=80.0)
    point = np.array([0.03, -0.02, 0.6])
    out = renderer.render(sphere(point, scale=0.3), K)
    rows, cols = np.nonzero(out.depth > 0)
    expected = point[:2] / point[2] * 400.0 + [100.0, 80.0]
    assert cols.mean() + 0.5 == pytest.approx(expected[0], abs=0.5)
    assert rows.mean() + 0.5 == pytest.approx(expected[1], abs=0.5)
    # moving the camera instead of the mesh gives the same image
    angle = np.radians(30)
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    T_world_cam = np.eye(4)
    T_world_cam[:3, :3], T_world_cam[:3, 3] = R, [0.3, -0.1, 0.2]
    world_point = R @ point + T_world_cam[:3, 3]
    moved = renderer.render(sphere(world_point, scale=0.3), K, T_world_cam=T_world_cam)
    assert np.abs(moved.depth - out.depth).max() < 2e-3
    assert (moved.depth > 0).sum() == pytest.approx((out.depth > 0).sum(), rel=0.02)


def test_instance_masks_with_occlusion(renderer):
    back, front = sphere([0.0, 0.0, 0.6], (0.9, 0.2, 0.2)), sphere([0.04, 0.0, 0.45], (0.2, 0.9, 0.2), scale=0.5)
    out = renderer.render([back, front], intrinsics(), return_masks=True)
    assert out.masks.shape == (2, H, W) and out.masks.dtype == bool
    assert not (out.masks[0] & out.masks[1]).any()
    union = out.masks[0] | out.masks[1]
    assert (union != (out.depth > 0)).sum() < 0.01 * union.sum()
    r_front = disc_radius_px(400.0, 0.025, 0.45)
    assert out.masks[1].sum() == pytest.approx(np.pi * r_front ** 2, rel=0.04)  # unoccluded
    back_alone = renderer.render([back], intrinsics()).depth > 0
    front_alone = renderer.render([front], intrinsics()).depth > 0
    hidden = back_alone & front_alone
    assert hidden.sum() > 500  # the front sphere hides part of the back one
    assert (out.masks[0] != (back_alone & ~front_alone)).sum() < 0.01 * back_alone.sum()
    # (anti-aliased edges may disagree by a pixel between the colour and the segmentation pass)
    assert np.quantile(out.depth[out.masks[1]], 0.98) < 0.47 and np.quantile(out.depth[out.masks[0]], 0.02) > 0.54
    # colours follow the masks
    assert out.rgb[out.masks[1]][:, 1].mean() > out.rgb[out.masks[1]][:, 0].mean() + 50


def test_background_image_and_vertex_colours(renderer):
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    colors = np.zeros((len(SPHERE.vertices), 3))
    colors[SPHERE.vertices[:, 0] > 0] = [1.0, 0.0, 0.0]
    colors[SPHERE.vertices[:, 0] <= 0] = [0.0, 0.0, 1.0]
    out = renderer.render(Mesh(SPHERE.vertices + [0, 0, 0.5], SPHERE.faces, colors), intrinsics(), background=bg,
                          lights=Lights(ambient=0.6))
    empty = out.depth == 0
    empty[1:-1, 1:-1] &= empty[:-2, 1:-1] & empty[2:, 1:-1] & empty[1:-1, :-2] & empty[1:-1, 2:]  # off the edge
    assert np.abs(out.rgb[empty].astype(int) - bg[empty]).max() <= 1
    right, left = out.rgb[H // 2, W // 2 + 25], out.rgb[H // 2, W // 2 - 25]
    assert right[0] > 3 * right[2] and left[2] > 3 * left[0]


def test_backends_agree():
    gl = make_renderer("egl")
    npy = OffscreenRenderer(W, H, backend="numpy")
    meshes = [sphere([0.0, 0.01, 0.5]), sphere([0.05, 0.0, 0.42], scale=0.4)]
    a, b = gl.render(meshes, intrinsics()), npy.render(meshes, intrinsics())
    sa, sb = a.depth > 0, b.depth > 0
    assert (sa & sb).sum() / (sa | sb).sum() > 0.97
    both = sa & sb
    assert np.median(np.abs(a.depth[both] - b.depth[both])) < 5e-4
    assert np.abs(a.rgb[both].astype(int) - b.rgb[both].astype(int)).mean() < 40  # PBR vs Lambert
    gl.close()


def test_numpy_clips_a_floor_crossing_the_camera_plane():
    floor = Mesh(np.array([[-5, 0.1, -5], [5, 0.1, -5], [5, 0.1, 5], [-5, 0.1, 5]], float),
                 np.array([[0, 1, 2], [0, 2, 3]]))  # y = 0.1 below the camera (y down), facing up (-y)
    out = OffscreenRenderer(W, H, backend="numpy").render(floor, intrinsics())
    assert (out.depth[: H // 2] == 0).all()
    for row in (H // 2 + 10, H - 1):
        assert out.depth[row, W // 2] == pytest.approx(400.0 * 0.1 / (row + 0.5 - H / 2), rel=1e-6)


def test_bad_input_is_named():
    r = OffscreenRenderer(W, H, backend="numpy")
    with pytest.raises(HaworInputError, match="intrinsics"):
        r.render(sphere([0, 0, 0.5]), np.eye(2))
    with pytest.raises(HaworInputError, match="background"):
        r.render(sphere([0, 0, 0.5]), intrinsics(), background=np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(HaworInputError, match="faces"):
        Mesh(np.zeros((3, 3)), np.array([[0, 1, 5]]))
    with pytest.raises(HaworInputError, match="backend"):
        OffscreenRenderer(W, H, backend="vulkan")
