"""Metric depth (Metric3D v2 ViT-Large) and the metric scale of a SLAM map.

- `metric3d`: the network (official key layout, sizes from `Metric3DConfig`);
- `preprocess`: HaWoR's fit/pad/normalise and the canonical-to-metric post-processing;
- `weights`: finding and strictly loading `metric_depth_vit_large_800k.pth`;
- `predictor`: `Metric3DPredictor`, frame -> metric depth;
- `scale`: HaWoR's estimator; the camera stage calls `scale.estimate_scale_metric3d`.
"""
