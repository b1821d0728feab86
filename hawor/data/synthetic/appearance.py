"""How the synthetic hands look: skin tone, per-vertex skin detail (palm, nails, blotches) and a
forearm stub, plus the scene lights. Colours are sRGB in [0, 1].

Measured with real palm/landmark detectors (issue 4): skin-tone albedo, soft key + fill + ambient
light, a forearm, per-vertex detail and mild noise/blur are what make rendered hands detectable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hawor.hands.joints import FINGERTIP_VERTEX_IDS

# sRGB skin tones from very light to very dark; a sequence draws a point between two neighbours.
SKIN_TONES = np.array([
    [241, 200, 175], [226, 176, 145], [205, 148, 112], [180, 126, 90],
    [148, 98, 66], [112, 72, 48], [80, 52, 36],
], np.float64) / 255.0


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    """(3,) sRGB skin colour; every tone of the ladder, dark included, is equally likely."""
    x = rng.uniform(0, len(SKIN_TONES) - 1)
    k = min(int(x), len(SKIN_TONES) - 2)
    color = SKIN_TONES[k] * (1 - (x - k)) + SKIN_TONES[k + 1] * (x - k)
    return np.clip(color * rng.uniform(0.95, 1.05, 3), 0, 1)


def skin_colors(rng: np.random.Generator, base: np.ndarray, rest_vertices: np.ndarray, rest_normals: np.ndarray,
                palm_normal: np.ndarray) -> np.ndarray:
    """Per-vertex sRGB colours (V, 3) of a hand: lighter palm, pale nails, soft blotches.

    rest_vertices / rest_normals (V, 3) of the hand at zero pose; palm_normal (3,) out of the palm.
    """
    detail = np.zeros(len(rest_vertices))
    for _ in range(6):  # random 3-D waves 1.5-5 cm long: freckle/vein-scale variation
        k = rng.normal(size=3)
        k *= 2 * np.pi / rng.uniform(0.015, 0.05) / np.linalg.norm(k)
        detail += np.sin(rest_vertices @ k + rng.uniform(0, 2 * np.pi))
    colors = base[None] * (1.0 + 0.035 * detail[:, None])
    palm = np.clip(rest_normals @ palm_normal, 0, 1)[:, None]
    palm_color = np.clip(base * 1.18 + np.array([0.06, 0.02, 0.02]), 0, 1)  # palms are lighter and pinker
    colors = colors * (1 - 0.6 * palm) + palm_color * 0.6 * palm
    tips = rest_vertices[list(FINGERTIP_VERTEX_IDS)]
    near_tip = np.min(np.linalg.norm(rest_vertices[:, None] - tips[None], axis=-1), axis=1) < 0.011
    back = rest_normals @ -palm_normal > 0.35
    nail = (near_tip & back)[:, None]
    nail_color = np.clip(base * 0.6 + np.array([0.35, 0.28, 0.27]), 0, 1)
    colors = np.where(nail, 0.4 * colors + 0.6 * nail_color, colors)
    return np.clip(colors, 0, 1)


@dataclass
class ForearmStub:
    """An elliptic truncated cone from just inside the wrist back towards the elbow, closed at the far end."""

    segments: int = 20
    rings: int = 4
    length: float = 0.42
    radius_wrist: tuple = (0.031, 0.022)   # (across the thumb side, across the palm), metres
    radius_elbow: tuple = (0.040, 0.034)

    def faces(self) -> np.ndarray:
        """(F, 3) counter-clockwise seen from outside."""
        s, r = self.segments, self.rings
        faces = []
        for i in range(r - 1):
            for j in range(s):
                a, b = i * s + j, i * s + (j + 1) % s
                faces += [[a, b, b + s], [a, b + s, a + s]]
        cap = r * s
        faces += [[cap, (r - 1) * s + j, (r - 1) * s + (j + 1) % s] for j in range(s)]
        return np.asarray(faces, np.int64)

    def vertices(self, wrist: np.ndarray, direction: np.ndarray, thumb_axis: np.ndarray) -> np.ndarray:
        """(N, rings * segments + 1, 3) vertices for wrists (N, 3), unit directions wrist -> elbow (N, 3)
        and the hand's thumb-side axes (N, 3) (made orthogonal to direction)."""
        side = thumb_axis - direction * np.sum(thumb_axis * direction, -1, keepdims=True)
        side /= np.linalg.norm(side, axis=-1, keepdims=True)
        up = np.cross(direction, side)
        angles = np.linspace(0, 2 * np.pi, self.segments, endpoint=False)
        u = np.linspace(0, 1, self.rings)
        radius = np.array(self.radius_wrist)[None] * (1 - u[:, None]) + np.array(self.radius_elbow)[None] * u[:, None]
        along = -0.012 + u * self.length  # start 1.2 cm inside the palm so no gap shows at the wrist
        ring = np.cos(angles)[None, None, :, None] * radius[None, :, None, 0, None] * side[:, None, None, :] \
            + np.sin(angles)[None, None, :, None] * radius[None, :, None, 1, None] * up[:, None, None, :]
        centers = wrist[:, None, :] + along[None, :, None] * direction[:, None, :]
        body = (centers[:, :, None, :] + ring).reshape(len(wrist), -1, 3)
        return np.concatenate([body, centers[:, -1:, :]], axis=1)
