"""Pure-numpy z-buffer rasteriser: the fallback of :class:`hawor.render.OffscreenRenderer` when no
OpenGL context can be made.

Written by hand because no maintained pip package rasterises triangles on a CPU without OpenGL.
Perspective-correct depth and colour, back faces culled (as pyrender does), triangles crossing the near
plane clipped, Lambertian shading (per vertex for smooth meshes, per face for flat ones), no
anti-aliasing. Pixel (i, j) is sampled at image point (j + 0.5, i + 0.5), the OpenGL convention, so
both backends agree.
"""
from __future__ import annotations

import numpy as np

from hawor.render.scene import Lights, Mesh, to_linear, to_srgb_uint8, vertex_normals

ZNEAR = 0.01
_MAX_CANDIDATES = 2_000_000  # pixel-triangle pairs tested at once (bounds memory)


class NumpyBackend:
    name = "numpy"

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height

    def close(self) -> None:
        pass

    def render(self, meshes: list[Mesh], K: np.ndarray, T_world_cam: np.ndarray, lights: Lights,
               want_masks: bool):
        """-> (sRGB (H, W, 3) uint8, coverage (H, W) uint8 (0 or 255), depth (H, W) float32, masks | None)."""
        H, W = self.height, self.width
        R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
        tris, cols, ids = [], [], []
        for index, mesh in enumerate(meshes):
            v_cam = (mesh.vertices - t) @ R  # R^T (X - t) for every row
            tri, col = _shaded_triangles(mesh, v_cam, lights)
            tri, col = _clip_near(tri, col)
            tris.append(tri)
            cols.append(col)
            ids.append(np.full(len(tri), index))
        tri, col, mesh_id = np.concatenate(tris), np.concatenate(cols), np.concatenate(ids)
        pix, z, frag_col, frag_face = _rasterise(tri, col, K, H, W)

        depth = np.zeros(H * W, np.float32)
        rgb = np.zeros((H * W, 3), np.uint8)
        label = np.full(H * W, -1)
        if len(pix):
            order = np.lexsort((z, pix))
            first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]
            depth[pix[first]] = z[first]
            rgb[pix[first]] = to_srgb_uint8(frag_col[first])
            label[pix[first]] = mesh_id[frag_face[first]]
        depth, rgb, label = depth.reshape(H, W), rgb.reshape(H, W, 3), label.reshape(H, W)
        masks = np.stack([label == i for i in range(len(meshes))]) if want_masks else None
        return rgb, np.where(depth > 0, 255, 0).astype(np.uint8), depth, masks


def _shaded_triangles(mesh: Mesh, v_cam: np.ndarray, lights: Lights):
    """Front-facing triangles (T, 3, 3) in camera coordinates and their lit linear colours (T, 3, 3)."""
    faces = mesh.faces
    tri = v_cam[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    front = np.einsum("ij,ij->i", face_n, tri.mean(1)) < 0
    faces, tri, face_n = faces[front], tri[front], face_n[front]
    albedo = to_linear(mesh.vertex_colors())[faces]
    if mesh.smooth:
        normals = vertex_normals(v_cam, mesh.faces)[faces]
    else:
        unit = face_n / np.maximum(np.linalg.norm(face_n, axis=1, keepdims=True), 1e-12)
        normals = np.repeat(unit[:, None], 3, axis=1)
    light = np.full(normals.shape[:2], lights.ambient)
    for intensity, direction in lights.directions():
        light += intensity / np.pi * np.clip(normals @ -direction, 0.0, None)
    return tri, albedo * light[..., None]


def _clip_near(tri: np.ndarray, col: np.ndarray):
    """Clip triangles against the plane z = ZNEAR; a crossing triangle becomes one or two triangles."""
    behind = tri[:, :, 2] < ZNEAR
    count = behind.sum(1)
    keep_tri, keep_col = [tri[count == 0]], [col[count == 0]]
    for k in np.flatnonzero((count > 0) & (count < 3)):
        poly, pcol = [], []
        for a in range(3):
            b = (a + 1) % 3
            pa, pb, ca, cb = tri[k, a], tri[k, b], col[k, a], col[k, b]
            if not behind[k, a]:
                poly.append(pa)
                pcol.append(ca)
            if behind[k, a] != behind[k, b]:
                s = (ZNEAR - pa[2]) / (pb[2] - pa[2])
                poly.append(pa + s * (pb - pa))
                pcol.append(ca + s * (cb - ca))
        for j in range(1, len(poly) - 1):
            keep_tri.append(np.stack([poly[0], poly[j], poly[j + 1]])[None])
            keep_col.append(np.stack([pcol[0], pcol[j], pcol[j + 1]])[None])
    return np.concatenate(keep_tri), np.concatenate(keep_col)


def _rasterise(tri: np.ndarray, col: np.ndarray, K: np.ndarray, H: int, W: int):
    """All covered (pixel, depth, colour, triangle) fragments of triangles in camera coordinates."""
    z = tri[:, :, 2]
    u = K[0, 0] * tri[:, :, 0] / z + K[0, 1] * tri[:, :, 1] / z + K[0, 2]
    v = K[1, 1] * tri[:, :, 1] / z + K[1, 2]
    j0 = np.clip(np.ceil(u.min(1) - 0.5), 0, W).astype(np.int64)
    j1 = np.clip(np.floor(u.max(1) - 0.5), -1, W - 1).astype(np.int64)
    i0 = np.clip(np.ceil(v.min(1) - 0.5), 0, H).astype(np.int64)
    i1 = np.clip(np.floor(v.max(1) - 0.5), -1, H - 1).astype(np.int64)
    bw, bh = np.maximum(j1 - j0 + 1, 0), np.maximum(i1 - i0 + 1, 0)
    area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (u[:, 2] - u[:, 0]) * (v[:, 1] - v[:, 0])
    visible = np.flatnonzero((bw * bh > 0) & (np.abs(area) > 1e-12))
    out = []
    sizes = (bw * bh)[visible]
    bounds = np.searchsorted(np.cumsum(sizes), np.arange(1, sizes.sum() // _MAX_CANDIDATES + 1) * _MAX_CANDIDATES)
    for chunk in np.split(visible, bounds):
        if len(chunk) == 0:
            continue
        n = (bw * bh)[chunk]
        face = np.repeat(chunk, n)
        local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        pj = j0[face] + local % bw[face]
        pi = i0[face] + local // bw[face]
        px, py = pj + 0.5, pi + 0.5
        # barycentric weights from the signed areas of the sub-triangles
        uf, vf = u[face], v[face]
        w0 = ((uf[:, 1] - px) * (vf[:, 2] - py) - (uf[:, 2] - px) * (vf[:, 1] - py)) / area[face]
        w1 = ((uf[:, 2] - px) * (vf[:, 0] - py) - (uf[:, 0] - px) * (vf[:, 2] - py)) / area[face]
        w2 = 1.0 - w0 - w1
        bary = np.stack([w0, w1, w2], 1)
        inside = (bary >= -1e-9).all(1)
        face, bary, pi, pj = face[inside], bary[inside], pi[inside], pj[inside]
        persp = bary / z[face]
        inv_z = persp.sum(1)
        frag_col = np.einsum("nk,nkc->nc", persp, col[face]) / inv_z[:, None]
        out.append((pi * W + pj, 1.0 / inv_z, frag_col, face))
    if not out:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 3)), np.zeros(0, np.int64)
    return tuple(np.concatenate(parts) for parts in zip(*out))
