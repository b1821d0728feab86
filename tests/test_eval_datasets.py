"""Ground-truth readers on small files written in each dataset's public layout by the test."""
import json
import pickle

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hawor.errors import HaworInputError
from hawor.eval.datasets import read_ground_truth

RNG = np.random.default_rng(7)


def _hand(centre):
    """21 joints around ``centre`` with a 9 cm wrist -> middle-base distance (a hand in metres)."""
    joints = RNG.normal(0, 0.02, (21, 3)) + centre
    joints[9] = joints[0] + [0, -0.09, 0]
    return joints


def test_hot3d_clip(tmp_path):
    from hawor.hands import HandModel
    from hawor.hands.mano_io import read_mano_file
    from hawor.hands.model import model_file

    q = Rotation.from_euler("y", 20, degrees=True).as_quat()  # xyzw
    cam = {"214-1": {"T_world_from_camera": {"quaternion_wxyz": [q[3], *q[:3]], "translation_xyz": [0.1, 0.0, -0.5]},
                     "calibration": {"projection_params": [300.0, 352.0, 352.0, 0, 0, 0], "image_width": 704,
                                     "image_height": 704, "projection_model_type": "CameraModelType.FISHEYE624"}}}
    thetas = RNG.normal(0, 0.5, 15)
    wrist = [0.1, -0.2, 0.3, 0.05, 0.02, 0.0]  # axis-angle, then metres in front of the camera
    (tmp_path / "__hand_shapes.json__").write_text(json.dumps({"mano": [0.0] * 10}))
    for i in range(3):
        hands = {"right": {"mano_pose": {"thetas": thetas.tolist(), "wrist_xform": wrist}}}
        if i < 2:
            hands["left"] = {"mano_pose": {"thetas": [0.0] * 15, "wrist_xform": [0, 0, 0, -0.1, 0.0, 0.0]}}
        (tmp_path / f"{i:06d}.hands.json").write_text(json.dumps(hands))
        (tmp_path / f"{i:06d}.cameras.json").write_text(json.dumps(cam))
    gt = read_ground_truth(tmp_path, "hot3d", hand_model="open")
    basis = read_mano_file(model_file("right", "open"))
    pose = thetas @ basis["hands_components"][:15] + basis["hands_mean"]
    with torch.no_grad():
        expected = HandModel("right", "open").double()(torch.tensor(wrist[:3]), torch.as_tensor(pose),
                                                        torch.zeros(10, dtype=torch.float64),
                                                        torch.tensor(wrist[3:])).joints.numpy()
    assert gt["right_joints"][1] == pytest.approx(expected, abs=1e-7)  # float32 skinning inside
    assert list(gt["left_valid"]) == [True, True, False] and gt["right_valid"].all()
    assert gt["T_world_cam"][0][:3, :3] == pytest.approx(Rotation.from_quat(q).as_matrix())
    assert gt["K"][0, 0] == 300.0 and gt["fps"] == 30.0 and gt["num_frames"] == 3


def test_dexycb_camera_folder(tmp_path):
    serial = tmp_path / "20200709-subject-01" / "20200709_141754" / "836212060125"
    serial.mkdir(parents=True)
    (serial.parent / "meta.yml").write_text("serials: ['836212060125']\nmano_sides: [left]\nnum_frames: 3\n")
    intrinsics = tmp_path / "calibration" / "intrinsics"
    intrinsics.mkdir(parents=True)
    (intrinsics / "836212060125_640x480.yml").write_text("color: {fx: 615.0, fy: 615.5, ppx: 320.0, ppy: 240.0}\n")
    hands = [_hand([0.0, 0.05, 0.6]), None, _hand([2.0, 0.0, 0.6])]  # frame 1 not annotated, frame 2 out of view
    for i, joints in enumerate(hands):
        joint_3d = np.full((1, 21, 3), -1.0, np.float32) if joints is None else joints[None].astype(np.float32)
        np.savez(serial / f"labels_{i:06d}.npz", joint_3d=joint_3d, joint_2d=np.zeros((1, 21, 2), np.float32))
    gt = read_ground_truth(serial, "dexycb")
    assert "right_joints" not in gt and gt["left_joints"][0] == pytest.approx(hands[0], abs=1e-6)
    assert list(gt["left_valid"]) == [True, False, True] and list(gt["left_observed"]) == [True, False, False]
    assert gt["K"][1, 1] == 615.5 and (gt["T_world_cam"] == np.eye(4)).all()


def _arctic_file(path, payload):
    np.save(path, np.array(payload, dtype=object), allow_pickle=True)


def test_arctic_processed_sequence(tmp_path):
    n = 4
    world = {s: np.stack([_hand([x, 0.0, 0.5]) for _ in range(n)]) for s, x in (("left", -0.1), ("right", 0.1))}
    R = Rotation.from_euler("xyz", [10, -30, 5], degrees=True).as_matrix()
    t = np.array([0.2, -0.1, 0.3])
    cam = {s: world[s] @ R.T + t for s in world}  # view 0; views 1.. are other cameras
    K = np.array([[1000.0, 0, 1000], [0, 1000.0, 1400], [0, 0, 1]])
    payload = {"world_coord": {f"joints.{s}": world[s] for s in world},
               "cam_coord": {f"joints.{s}": np.stack([cam[s], cam[s] + 5], 1) for s in cam},
               "params": {"K_ego": np.repeat(K[None], n, 0)}}
    path = tmp_path / "box_grab_01.npy"
    _arctic_file(path, payload)
    gt = read_ground_truth(path, "arctic")
    T_cam_world = np.eye(4)
    T_cam_world[:3, :3], T_cam_world[:3, 3] = R, t
    assert gt["T_world_cam"][2] == pytest.approx(np.linalg.inv(T_cam_world), abs=1e-9)
    assert gt["right_joints"] == pytest.approx(world["right"]) and gt["right_observed"].all()
    assert tuple(gt["image_size"]) == (2000, 2800)


def test_arctic_file_with_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    path = tmp_path / "evil.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(Payload(), f)
    with pytest.raises(HaworInputError, match="evil.npy"):
        read_ground_truth(path, "arctic")


def test_unknown_dataset_and_unit():
    with pytest.raises(HaworInputError, match="choose one of synthetic"):
        read_ground_truth(".", "h2o")
    with pytest.raises(HaworInputError, match="unit 'inch'"):
        read_ground_truth(".", "synthetic", unit="inch")


def test_hot3d_without_mano_is_refused_unless_the_open_hand_is_asked_for(tmp_path, monkeypatch):
    import hawor.hands.model

    monkeypatch.setattr(hawor.hands.model, "resolve_backend",
                        lambda backend="auto": "open" if backend != "mano" else backend)
    (tmp_path / "__hand_shapes.json__").write_text(json.dumps({"mano": [0.0] * 10}))
    cam = {"214-1": {"T_world_from_camera": {"quaternion_wxyz": [1, 0, 0, 0], "translation_xyz": [0, 0, 0]},
                     "calibration": {"projection_params": [300.0, 352.0, 352.0], "image_width": 704,
                                     "image_height": 704}}}
    (tmp_path / "000000.cameras.json").write_text(json.dumps(cam))
    (tmp_path / "000000.hands.json").write_text(json.dumps({}))
    with pytest.raises(HaworInputError, match="MANO files are not installed"):
        read_ground_truth(tmp_path, "hot3d")
