"""Metric depth (Metric3D v2) and the metric scale of a SLAM map.

- `preprocess`: HaWoR's fit/pad/normalise and the canonical-to-metric post-processing;
- `weights`: finding and strictly loading `metric_depth_vit_large_800k.pth` (the network itself is
  `hawor.models.metric3d`);
- `predictor`: `Metric3DPredictor`, frame -> metric depth;
- `scale`: HaWoR's estimator; the metric-scale stage (`hawor.slam.metric_scale`) calls
  `scale.estimate_scale_metric3d`.
"""
