"""The open hand: a deterministic MANO-format model that smplx skins like MANO."""
import contextlib
import io
import os

import numpy as np
import pytest
import smplx
import torch
import trimesh
from smplx.utils import Struct

from hawor.hands import HandModel
from hawor.hands.joints import FINGERTIP_VERTEX_IDS, MANO_PARENTS, WRIST_CLOSING_FACES
from hawor.hands.open_hand import NUM_FACES, build_open_hand, ensure_open_hand

FINGER_JOINTS = {"index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12),
                 "thumb": (13, 14, 15)}
TIPS = dict(zip(("thumb", "index", "middle", "ring", "pinky"), FINGERTIP_VERTEX_IDS))
MIRROR_AA = torch.tensor([1.0, -1.0, -1.0])


@pytest.fixture(scope="module")
def models():
    return {side: build_open_hand(side) for side in ("right", "left")}


def layer_for(model, side):
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.MANO("open", is_rhand=side == "right", data_struct=Struct(**model), use_pca=False,
                          flat_hand_mean=True, dtype=torch.float64)


def skin(layer, hand_pose, betas=None, global_orient=None):
    hand_pose = torch.as_tensor(hand_pose, dtype=torch.float64).reshape(1, 45)
    betas = torch.zeros(1, 10, dtype=torch.float64) if betas is None else torch.as_tensor(betas).reshape(1, 10)
    root = torch.zeros(1, 3, dtype=torch.float64) if global_orient is None else global_orient.reshape(1, 3)
    out = layer(global_orient=root, hand_pose=hand_pose, betas=betas.double())
    return out.vertices[0].detach().numpy(), out.joints[0].detach().numpy()


def closed_mesh(model, side, vertices=None):
    closing = WRIST_CLOSING_FACES if side == "right" else WRIST_CLOSING_FACES[:, [0, 2, 1]]
    faces = np.concatenate([model["f"], closing])
    return trimesh.Trimesh(model["v_template"] if vertices is None else vertices, faces, process=False)


def test_deterministic_layout(models):
    again = build_open_hand("right")
    right = models["right"]
    for key, value in right.items():
        assert np.array_equal(np.asarray(value), np.asarray(again[key])), key
    shapes = {"v_template": (778, 3), "f": (NUM_FACES, 3), "weights": (778, 16), "kintree_table": (2, 16),
              "J_regressor": (16, 778), "shapedirs": (778, 3, 10), "posedirs": (778, 3, 135),
              "hands_components": (45, 45), "hands_mean": (45,)}
    for key, shape in shapes.items():
        assert right[key].shape == shape, key
    parents = right["kintree_table"][0].astype(np.int64)
    assert list(parents[1:]) == list(MANO_PARENTS[1:])
    assert np.allclose(right["weights"].sum(1), 1) and right["weights"].min() >= 0
    assert np.allclose(right["J_regressor"].sum(1), 1) and right["J_regressor"].min() >= 0
    assert np.unique(right["f"]).size == 778  # every vertex is used


@pytest.mark.parametrize("side", ["right", "left"])
def test_watertight_with_mano_wrist_faces(models, side):
    mesh = closed_mesh(models[side], side)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 2e-4  # outward normals; an adult hand is ~3-4e-4 m^3
    assert mesh.euler_number == 2  # a sphere: no handles, no stray components
    open_mesh = trimesh.Trimesh(models[side]["v_template"], models[side]["f"], process=False)
    boundary = trimesh.grouping.group_rows(open_mesh.edges_sorted, require_count=1)
    assert set(np.unique(open_mesh.edges_sorted[boundary])) == set(np.unique(WRIST_CLOSING_FACES))


def test_fingertips_and_proportions(models):
    model = models["right"]
    v, J = model["v_template"], model["J_regressor"] @ model["v_template"]
    for name, joints in FINGER_JOINTS.items():
        members = np.flatnonzero(model["weights"][:, joints[-1]] > 0.5)
        reach = np.linalg.norm(v[members] - J[joints[0]], axis=1)
        assert v[TIPS[name]] in v[members] and reach.max() == pytest.approx(
            np.linalg.norm(v[TIPS[name]] - J[joints[0]]), abs=1e-3), name
    hand_length = np.linalg.norm(v[TIPS["middle"]] - J[0])
    breadth = np.linalg.norm(J[1] - J[7])
    assert 0.17 < hand_length < 0.20 and 0.05 < breadth < 0.07
    # MANO's frame: fingers along -x from the wrist, thumb on +z, wrist at MANO's rest position
    assert v[TIPS["middle"], 0] < J[0, 0] - 0.15 and J[13, 2] > J[7, 2]
    assert np.allclose(J[0], [0.0957, 0.0064, 0.0062], atol=1e-6)


def test_bending_index_moves_only_the_index(models):
    layer = layer_for(models["right"], "right")
    rest_v, rest_j = skin(layer, np.zeros(45))
    pose = np.zeros((15, 3))
    pose[0] = [0.0, 0.0, np.pi / 2]  # MANO joint 1 (index MCP): flexion about +z
    v, j = skin(layer, pose)
    w = models["right"]["weights"]
    index_weight = w[:, [1, 2, 3]].sum(1)
    moved = np.linalg.norm(v - rest_v, axis=1) > 1e-9
    assert np.array_equal(moved, index_weight > 0)
    # the fingertip, PIP and DIP rotate rigidly about the MCP; the finger bends toward the palm (-y)
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    for rest_point, point in ((rest_v[320], v[320]), (rest_j[2], j[2]), (rest_j[3], j[3])):
        assert np.allclose(point, rest_j[1] + R @ (rest_point - rest_j[1]), atol=1e-9)
    assert v[320, 1] < rest_v[320, 1] - 0.08
    assert np.allclose(np.delete(j, [2, 3], axis=0), np.delete(rest_j, [2, 3], axis=0))


def test_left_is_mirrored_right(models):
    gen = torch.Generator().manual_seed(0)
    pose = 0.4 * torch.randn(15, 3, generator=gen, dtype=torch.float64)
    root = 0.5 * torch.randn(3, generator=gen, dtype=torch.float64)
    betas = torch.randn(10, generator=gen, dtype=torch.float64)
    right_v, right_j = skin(layer_for(models["right"], "right"), pose, betas, root)
    left_v, left_j = skin(layer_for(models["left"], "left"), pose * MIRROR_AA, betas, root * MIRROR_AA)
    flip = np.array([-1.0, 1.0, 1.0])
    assert np.allclose(left_v, right_v * flip, atol=1e-9)
    assert np.allclose(left_j, right_j * flip, atol=1e-9)


def bone_lengths(model, betas):
    shaped = model["v_template"] + model["shapedirs"] @ betas
    J = model["J_regressor"] @ shaped
    tips = {name: shaped[vid] for name, vid in TIPS.items()}
    fingers = {}
    for name, (a, b, c) in FINGER_JOINTS.items():
        fingers[name] = np.array([np.linalg.norm(J[b] - J[a]), np.linalg.norm(J[c] - J[b]),
                                  np.linalg.norm(tips[name] - J[c])])
    return fingers, np.linalg.norm(J[1] - J[7]), np.linalg.norm(J[4] - J[0])


def test_shape_blend_shapes_change_bones_plausibly(models):
    model = models["right"]
    fingers0, breadth0, palm0 = bone_lengths(model, np.zeros(10))
    # adult proportions at the mean: middle proximal phalanx longest, pinky distal shortest among fingers
    assert 0.040 < fingers0["middle"][0] < 0.050 and 0.015 < fingers0["pinky"][2] < 0.025
    size = np.zeros(10)
    size[0] = 2.0
    fingers, breadth, palm = bone_lengths(model, size)
    ratio = np.concatenate([fingers[k] / fingers0[k] for k in fingers])
    assert np.allclose(ratio, 1.09, atol=0.005) and breadth / breadth0 == pytest.approx(1.09, abs=0.005)
    length = np.zeros(10)
    length[2] = 2.0
    fingers, breadth, palm = bone_lengths(model, length)
    for k in ("index", "middle", "ring", "pinky"):
        assert np.allclose(fingers[k] / fingers0[k], 1.10, atol=0.01), k
    assert breadth == pytest.approx(breadth0, rel=1e-6) and palm == pytest.approx(palm0, rel=1e-6)
    wide = np.zeros(10)
    wide[1] = 2.0
    fingers, breadth, palm = bone_lengths(model, wide)
    assert breadth / breadth0 == pytest.approx(1.10, abs=0.01)
    assert all(np.allclose(fingers[k], fingers0[k], rtol=0.005) for k in fingers)  # the thumb's CMC is in the palm
    for k in range(10):  # every component changes the mesh; three sigmas stay a hand (no inverted faces)
        betas = np.zeros(10)
        betas[k] = 3.0
        shaped = model["v_template"] + model["shapedirs"] @ betas
        assert np.abs(shaped - model["v_template"]).max() > 1e-3, k
        assert closed_mesh(model, "right", shaped).volume > 1.5e-4, k


def test_files_written_once_and_loaded_by_smplx(models, tmp_path):
    folder = ensure_open_hand(tmp_path / "open_hand")
    right, left = folder / "MANO_RIGHT.pkl", folder / "MANO_LEFT.pkl"
    stamp = (right.stat().st_mtime_ns, left.stat().st_mtime_ns)
    ensure_open_hand(folder)
    assert (right.stat().st_mtime_ns, left.stat().st_mtime_ns) == stamp  # current: not rewritten
    right.write_bytes(right.read_bytes()[:1000])  # truncated: rewritten
    ensure_open_hand(folder)
    assert right.stat().st_size > 1_000_000
    assert not [p for p in os.listdir(folder) if "tmp" in p]
    for side in ("right", "left"):
        with contextlib.redirect_stdout(io.StringIO()):
            layer = smplx.MANO(model_path=str(folder), is_rhand=side == "right", use_pca=False,
                               flat_hand_mean=True, dtype=torch.float64)
        pose = np.full(45, 0.2)
        assert np.allclose(skin(layer, pose)[0], skin(layer_for(models[side], side), pose)[0])
        # the project's hand model closes the wrist with outward-facing triangles on both sides
        hand = HandModel(side, model_path=folder / f"MANO_{side.upper()}.pkl")
        out = hand(torch.zeros(3), torch.full((45,), 0.2), torch.zeros(10))
        mesh = trimesh.Trimesh(out.vertices.detach().numpy(), hand.faces, process=False)
        assert hand.faces.shape == (1552, 3) and mesh.is_watertight and mesh.volume > 2e-4


def test_renders_with_the_expected_size(models):
    from hawor.render import Mesh, OffscreenRenderer

    model = models["right"]
    centred = model["v_template"] - model["v_template"].mean(0)
    # rotate (x, y, z) -> (x, -z, y): the palm (-y) faces the camera, 0.5 m in front of it
    v = np.stack([centred[:, 0], -centred[:, 2], centred[:, 1] + 0.5], axis=1)
    K = np.array([[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]])
    faces = np.concatenate([model["f"], WRIST_CLOSING_FACES])
    out = OffscreenRenderer(320, 240, backend="numpy").render(Mesh(v, faces), K)
    rows, cols = np.nonzero(out.depth > 0)
    uv = v[:, :2] / v[:, 2:] * 500.0 + [160, 120]
    assert cols.max() - cols.min() == pytest.approx(np.ptp(uv[:, 0]), abs=2)
    assert rows.max() - rows.min() == pytest.approx(np.ptp(uv[:, 1]), abs=2)
    assert 0.3 < len(rows) / (np.ptp(uv[:, 0]) * np.ptp(uv[:, 1])) < 0.7  # a hand fills about half its box
