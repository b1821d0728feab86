"""Procedural indoor scenes: a room, a table or counter, and a few objects, all image-textured.

The scene frame is gravity-aligned: z up, the floor at z = 0, the person stands or sits on the -y
side of the table, whose near edge runs along y = 0 and whose top is at z = ``table_height``.
Units are metres. Everything is deterministic given the generator.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hawor.data.synthetic import textures


@dataclass
class TexturedMesh:
    """A static triangle mesh with one image texture.

    vertices (V, 3) metres, scene frame; faces (F, 3) int, counter-clockwise seen from outside;
    uv (V, 2) texture coordinates (may exceed 1: the texture repeats); texture (H, W, 3) uint8 RGB.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    roughness: float = 1.0  # 1 = matte (no highlight)


@dataclass
class SceneObject:
    """An object on the table that hands reach for: centre of its top (3,) and footprint radius, metres."""

    kind: str
    top_center: np.ndarray
    radius: float


@dataclass
class Scene:
    """Meshes plus the facts the camera and hand motion need (table extent, objects)."""

    meshes: list[TexturedMesh]
    table_height: float
    table_size: tuple[float, float]  # (width along x, depth along y)
    objects: list[SceneObject] = field(default_factory=list)


def quad(name: str, corners: np.ndarray, texture: np.ndarray, repeats: tuple[float, float] = (1, 1),
         roughness: float = 1.0) -> TexturedMesh:
    """Planar quad from 4 corners (4, 3) in counter-clockwise order seen from the visible side."""
    uv = np.array([[0, 0], [repeats[0], 0], [repeats[0], repeats[1]], [0, repeats[1]]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]], np.int64)
    return TexturedMesh(name, np.asarray(corners, np.float32), faces, uv, texture, roughness)


def box(name: str, center: np.ndarray, size: np.ndarray, texture: np.ndarray, uv_scale: float = 1.0,
        roughness: float = 1.0) -> TexturedMesh:
    """Axis-aligned box with outward faces, 4 own vertices per face so each face maps the whole texture."""
    half = np.asarray(size, np.float32) / 2
    vertices, faces, uvs = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            normal = np.zeros(3, np.float32)
            normal[axis] = sign
            u_axis = np.zeros(3, np.float32)
            u_axis[(axis + 1) % 3] = 1.0
            v_axis = np.cross(normal, u_axis)
            corners = [normal * half + (su * u_axis + sv * v_axis) * half
                       for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            base = len(vertices)
            vertices.extend(corners)
            faces.extend([[base, base + 1, base + 2], [base, base + 2, base + 3]])
            extent = (2 * np.abs(u_axis) @ half, 2 * np.abs(v_axis) @ half)
            uvs.extend(np.array([[0, 0], [1, 0], [1, 1], [0, 1]]) * np.array(extent) * uv_scale)
    return TexturedMesh(name, np.asarray(vertices, np.float32) + np.asarray(center, np.float32),
                        np.asarray(faces, np.int64), np.asarray(uvs, np.float32), texture, roughness)


def cylinder(name: str, base_center: np.ndarray, radius: float, height: float, texture: np.ndarray,
             segments: int = 32, roughness: float = 1.0) -> TexturedMesh:
    """Upright closed cylinder; the side wraps the texture once, the top shows a disc of it."""
    angles = np.linspace(0, 2 * np.pi, segments + 1, dtype=np.float32)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    bottom = np.concatenate([ring, np.zeros((segments + 1, 1), np.float32)], axis=1)
    top = bottom + np.array([0, 0, height], np.float32)
    side_uv = np.stack([angles / (2 * np.pi), np.zeros_like(angles)], axis=1)
    vertices = [bottom, top]
    uvs = [side_uv, side_uv + np.array([0, 1], np.float32)]
    idx = np.arange(segments)
    n = segments + 1
    faces = [np.stack([idx, idx + 1, n + idx + 1], 1), np.stack([idx, n + idx + 1, n + idx], 1)]
    cap = 2 * n  # top cap: centre vertex + ring
    vertices += [np.array([[0, 0, height]], np.float32), top]
    uvs += [np.array([[0.5, 0.5]], np.float32), 0.5 + 0.5 * np.stack([np.cos(angles), np.sin(angles)], 1)]
    faces.append(np.stack([np.full(segments, cap), cap + 1 + idx, cap + 2 + idx], 1))
    return TexturedMesh(name, np.concatenate(vertices) + np.asarray(base_center, np.float32),
                        np.concatenate(faces).astype(np.int64), np.concatenate(uvs).astype(np.float32),
                        texture, roughness)


def make_scene(rng: np.random.Generator) -> Scene:
    """A random room with a textured table (or counter) and 3-6 textured objects on it."""
    table_h = float(rng.uniform(0.72, 0.92))
    width, depth = float(rng.uniform(1.3, 1.9)), float(rng.uniform(0.75, 1.0))
    room_half = float(rng.uniform(1.6, 2.4))
    wall_h = 2.6
    back = depth + float(rng.uniform(0.0, 1.2))  # a counter against the wall or a table in the room
    front = -room_half
    meshes = [
        quad("floor", [[-room_half, front, 0], [room_half, front, 0], [room_half, back, 0],
                       [-room_half, back, 0]], textures.tiles(rng), repeats=(2 * room_half, back - front)),
        quad("ceiling", [[-room_half, front, wall_h], [-room_half, back, wall_h],
                         [room_half, back, wall_h], [room_half, front, wall_h]], textures.plaster(rng)),
    ]
    walls = [  # (corner a, corner b) along the floor, seen from inside the room
        ([-room_half, back, 0], [room_half, back, 0]),
        ([room_half, back, 0], [room_half, front, 0]),
        ([room_half, front, 0], [-room_half, front, 0]),
        ([-room_half, front, 0], [-room_half, back, 0]),
    ]
    for k, (a, b) in enumerate(walls):
        a, b = np.array(a, np.float32), np.array(b, np.float32)
        length = float(np.linalg.norm(b - a))
        up = np.array([0, 0, wall_h], np.float32)
        meshes.append(quad(f"wall{k}", [a, b, b + up, a + up], textures.plaster(rng), repeats=(length / 1.5, 1)))
    meshes.append(box("table", [0, depth / 2, table_h - 0.02], [width, depth, 0.04], textures.wood(rng),
                      uv_scale=1 / max(width, depth)))
    meshes.append(box("cabinet", [0, depth / 2 + 0.05, (table_h - 0.04) / 2],
                      [width - 0.1, depth - 0.1, table_h - 0.04], textures.printed(rng, 512)))
    objects = _place_objects(rng, meshes, table_h, width, depth)
    return Scene(meshes, table_h, (width, depth), objects)


def _place_objects(rng: np.random.Generator, meshes: list[TexturedMesh], table_h: float, width: float,
                   depth: float) -> list[SceneObject]:
    objects: list[SceneObject] = []
    for k in range(int(rng.integers(3, 7))):
        for _ in range(20):  # rejection-sample a free spot
            xy = np.array([rng.uniform(-0.24, 0.24), rng.uniform(0.1, min(0.45, depth - 0.12))])
            kind = ("box", "cup", "book")[int(rng.integers(0, 3))]
            radius = {"box": 0.06, "cup": 0.045, "book": 0.11}[kind]
            if all(np.linalg.norm(xy - o.top_center[:2]) > radius + o.radius + 0.03 for o in objects):
                break
        else:
            continue
        texture = textures.printed(rng)
        if kind == "box":
            size = rng.uniform([0.06, 0.06, 0.05], [0.14, 0.12, 0.16])
            meshes.append(box(f"object{k}", [xy[0], xy[1], table_h + size[2] / 2], size, texture, uv_scale=6))
            height = size[2]
        elif kind == "cup":
            height, r = float(rng.uniform(0.08, 0.13)), float(rng.uniform(0.035, 0.05))
            meshes.append(cylinder(f"object{k}", [xy[0], xy[1], table_h], r, height, texture))
        else:
            size = rng.uniform([0.15, 0.2, 0.015], [0.22, 0.28, 0.04])
            meshes.append(box(f"object{k}", [xy[0], xy[1], table_h + size[2] / 2], size, texture, uv_scale=4))
            height = size[2]
        objects.append(SceneObject(kind, np.array([xy[0], xy[1], table_h + height]), radius))
    return objects
