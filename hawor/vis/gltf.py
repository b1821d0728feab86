"""An animated glTF binary (.glb) of a result: both hands and the camera, playable in any glTF viewer.

trimesh builds the static scene (one hand mesh node per frame, a camera marker, the camera path as
a line strip); the animation is then added to the glTF JSON: each hand node is shown (scale 1) only
during its own frame (STEP keys) and the camera marker follows T_world_cam (LINEAR keys). The scene
without animation shows the first frame. A root node turns the OpenCV world (y down, z forward)
into glTF's y-up axes. Node names: ``left_hand_<frame:06d>``, ``right_hand_<frame:06d>``,
``camera``, ``camera_path``. Size: about 11 kB per hand and frame (a mesh per frame).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
import trimesh

from hawor.errors import HaworInternalError
from hawor.geometry import matrix_to_quat_xyzw
from hawor.hands import HandModel
from hawor.io.files import atomic_path
from hawor.vis.objects import frustum
from hawor.vis.views import FRUSTUM_DEPTH, hand_meshes_per_frame
from hawor.world.sequence import HandSequence

GLB_MAGIC, JSON_CHUNK, BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0, 1.0])
FLOAT = 5126


def hand_node_name(side: str, frame: int) -> str:
    return f"{side}_hand_{frame:06d}"


def export_glb(path: str | Path, hands: dict[str, HandSequence], models: dict[str, HandModel],
               T_world_cam: np.ndarray, K: np.ndarray, image_size: tuple[int, int], fps: float) -> Path:
    """Write the animated GLB to ``path`` (atomically); returns ``path``.

    hands: world-frame sequences (N frames); T_world_cam: (N, 4, 4) metres; K: (3, 3); fps: playback rate.
    """
    scene = _static_scene(hands, models, T_world_cam, K, image_size)
    gltf, binary = _split_glb(trimesh.exchange.gltf.export_glb(scene))
    times = np.arange(len(T_world_cam), dtype=np.float32) / np.float32(fps)
    binary = _animate(gltf, binary, times, np.asarray(T_world_cam, np.float64))
    # trimesh writes no node without geometry, so the axis change goes on a root node added here
    gltf["nodes"].append({"name": "world", "matrix": OPENCV_TO_GLTF.T.ravel().tolist(),
                          "children": gltf["scenes"][0]["nodes"]})
    gltf["scenes"][0]["nodes"] = [len(gltf["nodes"]) - 1]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(_join_glb(gltf, binary))
    return path


def _static_scene(hands, models, T_world_cam, K, image_size) -> trimesh.Scene:
    scene = trimesh.Scene()
    frames = np.arange(len(T_world_cam))
    for t, meshes in zip(frames, hand_meshes_per_frame(hands, models, frames)):
        sides = [side for side, seq in hands.items() if seq.valid[t]]
        for side, mesh in zip(sides, meshes):
            rgba = (255 * np.append(np.broadcast_to(mesh.color, (3,)), 1.0)).round().astype(np.uint8)
            geometry = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False,
                                       vertex_colors=np.tile(rgba, (len(mesh.vertices), 1)))
            name = hand_node_name(side, int(t))
            scene.add_geometry(geometry, node_name=name, geom_name=name)
    marker = frustum(np.eye(4), K, image_size, depth=FRUSTUM_DEPTH)
    rgba = (255 * np.append(marker.color, 1.0)).round().astype(np.uint8)
    scene.add_geometry(trimesh.Trimesh(marker.vertices, marker.faces, process=False, face_colors=rgba),
                       node_name="camera", geom_name="camera", transform=T_world_cam[0])
    centres = T_world_cam[:, :3, 3]
    if np.ptp(centres, axis=0).max() > 0:  # a camera held in place has no path to draw
        scene.add_geometry(trimesh.load_path(centres), node_name="camera_path", geom_name="camera_path")
    return scene


def _split_glb(data: bytes) -> tuple[dict, bytes]:
    if struct.unpack_from("<I", data, 0)[0] != GLB_MAGIC:
        raise HaworInternalError("trimesh's export_glb did not return a GLB")
    length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20:20 + length])
    offset = 20 + length
    binary = b""
    if offset < len(data):
        bin_length = struct.unpack_from("<I", data, offset)[0]
        binary = data[offset + 8:offset + 8 + bin_length]
    return gltf, binary


def _join_glb(gltf: dict, binary: bytes) -> bytes:
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(text), JSON_CHUNK) + text + struct.pack("<II", len(binary), BIN_CHUNK) + binary
    return struct.pack("<III", GLB_MAGIC, 2, 12 + len(chunks)) + chunks


def _animate(gltf: dict, binary: bytes, times: np.ndarray, T_world_cam: np.ndarray) -> bytes:
    """Add one animation (hand visibility, camera motion) to ``gltf``; returns the grown binary buffer."""
    buffer = bytearray(binary)
    gltf.setdefault("accessors", [])
    gltf.setdefault("bufferViews", [])

    def accessor(values: np.ndarray, kind: str) -> int:
        values = np.ascontiguousarray(values, np.float32)
        buffer.extend(b"\0" * (-len(buffer) % 4))
        gltf["bufferViews"].append({"buffer": 0, "byteOffset": len(buffer), "byteLength": values.nbytes})
        buffer.extend(values.tobytes())
        entry = {"bufferView": len(gltf["bufferViews"]) - 1, "componentType": FLOAT, "count": len(values), "type": kind}
        if kind == "SCALAR":  # glTF requires min/max on animation inputs
            entry.update(min=[float(values.min())], max=[float(values.max())])
        gltf["accessors"].append(entry)
        return len(gltf["accessors"]) - 1

    nodes = {node.get("name"): i for i, node in enumerate(gltf["nodes"])}
    samplers, channels = [], []

    def track(node: int, path: str, key_times: np.ndarray, values: np.ndarray, kind: str, interpolation: str):
        samplers.append({"input": accessor(key_times, "SCALAR"), "output": accessor(values, kind),
                         "interpolation": interpolation})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    last = len(times) - 1
    for name, node in nodes.items():
        if not (name or "").startswith(("left_hand_", "right_hand_")):
            continue
        t = int(name.rsplit("_", 1)[1])
        keys = ([0] if t > 0 else []) + [t] + ([t + 1] if t < last else [])
        shown = np.array([[float(k == t)] * 3 for k in keys])
        if t > 0:
            gltf["nodes"][node]["scale"] = [0.0, 0.0, 0.0]  # the static scene shows frame 0
        if len(keys) > 1:
            track(node, "scale", times[keys], shown, "VEC3", "STEP")
    camera = nodes["camera"]
    gltf["nodes"][camera].pop("matrix", None)  # animated nodes must use TRS
    rotations = matrix_to_quat_xyzw(torch.as_tensor(T_world_cam[:, :3, :3])).numpy()
    # q and -q are one rotation; keep neighbours on one side so LINEAR keys take the short way round
    signs = np.cumprod(np.where(np.sum(rotations[1:] * rotations[:-1], axis=1) < 0, -1.0, 1.0))
    rotations[1:] *= signs[:, None]
    gltf["nodes"][camera].update(translation=T_world_cam[0, :3, 3].tolist(), rotation=rotations[0].tolist())
    if len(times) > 1:
        track(camera, "translation", times, T_world_cam[:, :3, 3], "VEC3", "LINEAR")
        track(camera, "rotation", times, rotations, "VEC4", "LINEAR")
    if channels:
        gltf.setdefault("animations", []).append({"name": "hawor", "samplers": samplers, "channels": channels})
    gltf["buffers"] = [{"byteLength": len(buffer)}]
    return bytes(buffer)
