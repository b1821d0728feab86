"""Metric depth for single frames with a loaded Metric3D model (HaWoR's per-keyframe call)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from hawor.models.metric3d import Metric3D
from hawor.depth.preprocess import postprocess_depth, preprocess_image
from hawor.depth.loading import load_metric3d


class Metric3DPredictor:
    """Frame -> metric depth, as HaWoR's `Metric3D.__call__` (batch 1, no autocast).

    model: a Metric3D (see `hawor.depth.loading.load_metric3d`); it is run in its own dtype
    and device, at `model.cfg.input_size`.
    """

    def __init__(self, model: Metric3D):
        self.model = model.eval()
        self.param = next(model.parameters())

    @classmethod
    def from_weights(cls, path=None, device: str | torch.device = "cpu") -> "Metric3DPredictor":
        """ViT-Large with the official weights (`hawor.depth.loading.load_metric3d`)."""
        return cls(load_metric3d(path, device=device))

    @torch.no_grad()
    def predict(self, frame_rgb: np.ndarray, fx: float) -> np.ndarray:
        """RGB uint8 (H0, W0, 3), focal fx px -> (h, w) float32 metres at the resized size."""
        prepared = preprocess_image(frame_rgb, self.model.cfg.input_size)
        image = prepared.image.to(device=self.param.device, dtype=self.param.dtype)
        canonical = self.model(image).prediction
        depth = postprocess_depth(canonical, prepared, fx, self.model.cfg.canonical_focal)
        return depth.float().cpu().numpy()

    def predict_resized(self, frame_rgb: np.ndarray, fx: float, size_hw: tuple[int, int]) -> np.ndarray:
        """Metric depth resized (OpenCV bilinear, as HaWoR) to size_hw = (H, W): (H, W) float32 metres."""
        depth = self.predict(frame_rgb, fx)
        return cv2.resize(depth, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)
