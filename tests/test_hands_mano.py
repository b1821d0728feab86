"""MANO loading without chumpy, from files built here in the official layout."""
import pickle

import numpy as np
import pytest
import torch

from conftest import make_mano_layout, write_chumpy_style_pkl
from hawor.errors import HaworInputError
from hawor.hands import FINGERTIP_VERTEX_IDS, HandModel, resolve_backend
from hawor.hands.mano_io import read_mano_file


@pytest.fixture
def mano_root(tmp_path, monkeypatch):
    """A project root with MANO files in the official places (random arrays in MANO's layout)."""
    data = make_mano_layout()
    right = tmp_path / "_DATA/data/mano/MANO_RIGHT.pkl"
    left = tmp_path / "_DATA/data_left/mano_left/MANO_LEFT.pkl"
    for path in (right, left):
        path.parent.mkdir(parents=True)
        write_chumpy_style_pkl(path, data)
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path))
    return tmp_path, data


def test_plain_pickle_needs_chumpy_but_reader_does_not(tmp_path):
    data = make_mano_layout()
    write_chumpy_style_pkl(tmp_path / "MANO_RIGHT.pkl", data)
    with pytest.raises(ModuleNotFoundError, match="chumpy"):
        with open(tmp_path / "MANO_RIGHT.pkl", "rb") as f:
            pickle.load(f, encoding="latin1")
    loaded = read_mano_file(tmp_path / "MANO_RIGHT.pkl")
    for key in ("shapedirs", "v_template", "J_regressor", "posedirs", "weights"):
        assert np.array_equal(loaded[key], data[key]), key


def test_npz_and_pkl_give_the_same_model(tmp_path):
    data = make_mano_layout()
    write_chumpy_style_pkl(tmp_path / "MANO_RIGHT.pkl", data)
    np.savez(tmp_path / "MANO_RIGHT.npz", **data)
    a = HandModel("right", model_path=tmp_path / "MANO_RIGHT.pkl")
    b = HandModel("right", model_path=tmp_path / "MANO_RIGHT.npz")
    pose = torch.randn(3, 45) * 0.3
    out_a = a(torch.randn(3, 3) * 0.5, pose, torch.randn(3, 10), torch.randn(3, 3))
    torch.manual_seed(0)
    out_b = b(torch.zeros(3, 3), pose, torch.zeros(3, 10))
    assert out_a.vertices.shape == (3, 778, 3) and out_a.joints.shape == (3, 21, 3)
    out_a0 = a(torch.zeros(3, 3), pose, torch.zeros(3, 10))
    assert torch.allclose(out_a0.vertices, out_b.vertices, atol=1e-6)


def test_joint_order_tips_and_faces(mano_root):
    model = HandModel("right")
    assert model.backend == "mano"
    out = model(torch.zeros(1, 3), torch.zeros(1, 45), torch.zeros(1, 10))
    verts = out.vertices[0]
    # OpenPose order: thumb tip is joint 4, index tip 8, middle 12, ring 16, pinky 20
    for joint, vertex in zip((4, 8, 12, 16, 20), FINGERTIP_VERTEX_IDS):
        assert torch.equal(out.joints[0, joint], verts[vertex])
    assert model.faces.shape == (1552, 3)
    assert torch.allclose(out.joints[0, 0], model.wrist_rest(torch.zeros(1, 10))[0], atol=1e-6)


def test_translation_and_wrist_rotation(mano_root):
    model = HandModel("right")
    betas = torch.randn(2, 10)
    base = model(torch.zeros(2, 3), torch.zeros(2, 45), betas)
    moved = model(torch.zeros(2, 3), torch.zeros(2, 45), betas, transl=torch.tensor([[0.1, 0.2, 0.3]] * 2))
    assert torch.allclose(moved.vertices - base.vertices, torch.tensor([0.1, 0.2, 0.3]).expand(2, 778, 3), atol=1e-6)
    # MANO rotates about the wrist joint: it stays put under any global rotation
    turned = model(torch.tensor([[0.5, -0.3, 1.0]] * 2), torch.zeros(2, 45), betas)
    assert torch.allclose(turned.joints[:, 0], base.joints[:, 0], atol=1e-6)


def test_left_mano_gets_the_shapedirs_fix(mano_root):
    _, data = mano_root
    left, right = HandModel("left"), HandModel("right")
    sd_left, sd_right = left.layer.shapedirs, right.layer.shapedirs
    assert torch.allclose(sd_left[:, 0], -sd_right[:, 0]) and torch.allclose(sd_left[:, 1:], sd_right[:, 1:])
    # left faces close the wrist with reversed winding
    assert np.array_equal(left.faces[-14:], right.faces[-14:][:, [0, 2, 1]])


def test_backend_selection(mano_root, tmp_path, monkeypatch):
    assert resolve_backend("auto") == "mano"
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path / "empty"))
    assert resolve_backend("auto") == "open"
    assert resolve_backend("mano") == "mano"
    with pytest.raises(HaworInputError, match="unknown"):
        resolve_backend("smpl")


def test_bad_mano_files(tmp_path):
    with pytest.raises(HaworInputError, match="not found.*MANO_RIGHT.pkl"):
        read_mano_file(tmp_path / "MANO_RIGHT.pkl")
    data = make_mano_layout()
    write_chumpy_style_pkl(tmp_path / "full.pkl", data)
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "full.pkl").read_bytes()[:5000])
    with pytest.raises(HaworInputError, match="cut.pkl: cannot be read"):
        read_mano_file(tmp_path / "cut.pkl")
    wrong = dict(data, posedirs=np.zeros((778, 3, 10)))
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(HaworInputError, match=r"'posedirs' has shape \(778, 3, 10\), expected \(778, 3, 135\)"):
        read_mano_file(tmp_path / "wrong.npz")
    missing = {k: v for k, v in data.items() if k != "J_regressor"}
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(HaworInputError, match="missing \\['J_regressor'\\]"):
        read_mano_file(tmp_path / "missing.npz")


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo hacked",))

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"v_template": Evil()}, f, protocol=2)
    with pytest.raises(HaworInputError, match="refusing to load"):
        read_mano_file(tmp_path / "evil.pkl")
