"""The animated GLB: trimesh loads it with one hand mesh per valid frame; the animation keys every frame."""
import json
import struct

import numpy as np
import pytest
import trimesh

from hawor.data.synthetic import generate_sequence
from hawor.hands import HandModel
from hawor.vis.gltf import export_glb, hand_node_name
from hawor.world.assemble import posed_hands
from hawor.world.sequence import HandSequence

NUM_FRAMES = 20
FPS = 30.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The GLB of a generated clip's ground truth (world hands, moving camera), with each hand hidden
    on some frames as a run would leave them."""
    root = tmp_path_factory.mktemp("gltf")
    paths = generate_sequence(root / "clip", seed=12, num_frames=NUM_FRAMES, width=160, height=120, fps=FPS,
                              outputs=("gt",))
    with np.load(paths["hands_world"]) as data:
        hands = {side: HandSequence.from_arrays(data, side) for side in ("left", "right")}
        hand_model = str(data["hand_model"])
    with np.load(paths["camera"]) as data:
        T_world_cam, K = data["T_world_cam"], data["K"]
    gone = {"left": np.arange(NUM_FRAMES) % 3 == 0, "right": np.arange(NUM_FRAMES) >= NUM_FRAMES - 4}
    hands = {side: seq.with_params(observed=seq.observed & ~gone[side], infilled=seq.infilled & ~gone[side])
             for side, seq in hands.items()}
    models = {side: HandModel(side, hand_model).double() for side in hands}
    path = export_glb(root / "hands.glb", hands, models, T_world_cam, K, (160, 120), FPS)
    return path, hands, models, T_world_cam


def _gltf_json(path) -> dict:
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20:20 + length])


def _accessor(path, gltf: dict, index: int, width: int) -> np.ndarray:
    """The float32 values of an accessor, (count, width), from the GLB's binary chunk."""
    data = path.read_bytes()
    binary = 20 + struct.unpack_from("<I", data, 12)[0] + 8
    accessor = gltf["accessors"][index]
    view = gltf["bufferViews"][accessor["bufferView"]]
    start = binary + view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    return np.frombuffer(data, np.float32, accessor["count"] * width, start).reshape(-1, width)


def test_trimesh_loads_one_hand_mesh_per_valid_frame(exported):
    path, hands, models, _ = exported
    scene = trimesh.load(path)
    assert isinstance(scene, trimesh.Scene)
    for side, seq in hands.items():
        frames = sorted(int(n.rsplit("_", 1)[1]) for n in scene.geometry if n.startswith(f"{side}_hand_"))
        assert frames == list(np.flatnonzero(seq.valid)) and len(frames) > 0
        t = frames[len(frames) // 2]
        vertices = posed_hands(seq, models[side], np.array([t]))[0][0]
        np.testing.assert_allclose(scene.geometry[hand_node_name(side, t)].vertices, vertices, atol=1e-6)
    assert "camera" in scene.geometry and "camera_path" in scene.geometry


def test_animation_shows_each_hand_on_its_frame_and_moves_the_camera(exported):
    path, hands, _, T_world_cam = exported
    gltf = _gltf_json(path)
    names = [node.get("name") for node in gltf["nodes"]]
    root = gltf["nodes"][gltf["scenes"][0]["nodes"][0]]
    assert root["name"] == "world" and root["matrix"][5] == -1.0 and root["matrix"][10] == -1.0  # OpenCV -> y up
    (animation,) = gltf["animations"]
    by_target = {(names[c["target"]["node"]], c["target"]["path"]): animation["samplers"][c["sampler"]]
                 for c in animation["channels"]}
    times = gltf["accessors"][by_target[("camera", "translation")]["input"]]
    assert times["count"] == NUM_FRAMES and times["max"][0] == pytest.approx((NUM_FRAMES - 1) / FPS)
    translations = _accessor(path, gltf, by_target[("camera", "translation")]["output"], 3)
    np.testing.assert_allclose(translations, T_world_cam[:, :3, 3], atol=1e-6)
    quaternions = _accessor(path, gltf, by_target[("camera", "rotation")]["output"], 4)
    assert len(quaternions) == NUM_FRAMES and (np.sum(quaternions[1:] * quaternions[:-1], axis=1) > 0).all()
    hand_tracks = [key for key in by_target if key[1] == "scale"]
    assert len(hand_tracks) == sum(int(seq.valid.sum()) for seq in hands.values())
    assert all(by_target[key]["interpolation"] == "STEP" for key in hand_tracks)
    shown_at_start = [n["name"] for n in gltf["nodes"] if n.get("name", "").endswith("_000000") and "scale" not in n]
    assert shown_at_start and all(n.get("scale") == [0.0, 0.0, 0.0] for n in gltf["nodes"]
                                  if "_hand_" in n.get("name", "") and not n["name"].endswith("_000000"))


def test_a_camera_turning_full_circle_keeps_its_quaternions_on_one_side(exported, tmp_path):
    _, hands, models, _ = exported
    angles = np.linspace(0, 2 * np.pi, NUM_FRAMES)
    T_world_cam = np.tile(np.eye(4), (NUM_FRAMES, 1, 1))
    T_world_cam[:, 0, 0] = T_world_cam[:, 2, 2] = np.cos(angles)
    T_world_cam[:, 0, 2], T_world_cam[:, 2, 0] = np.sin(angles), -np.sin(angles)
    T_world_cam[:, 0, 3] = np.sin(angles)  # and moving: a circle
    path = export_glb(tmp_path / "spin.glb", hands, models, T_world_cam, np.diag([100.0, 100.0, 1.0]), (160, 120), FPS)
    gltf = _gltf_json(path)
    names = [node.get("name") for node in gltf["nodes"]]
    (animation,) = gltf["animations"]
    sampler = next(animation["samplers"][c["sampler"]] for c in animation["channels"]
                   if names[c["target"]["node"]] == "camera" and c["target"]["path"] == "rotation")
    q = _accessor(path, gltf, sampler["output"], 4)
    assert (np.sum(q[1:] * q[:-1], axis=1) > 0).all()  # a viewer interpolating them turns 19 short steps
    assert abs(q[0] @ q[-1]) == pytest.approx(1.0, abs=1e-6) and q[0] @ q[-1] < 0  # 360 degrees: q -> -q
