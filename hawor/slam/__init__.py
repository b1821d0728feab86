"""Camera stage: an unscaled reconstruction (`camera`), its metric scale (`metric_scale`), hand masks
(`masks`), the hand-anchored scale (`scale_hand`), classical SfM (`classical`, `keyframes`, `sfm`),
masked DROID-SLAM (`droid`) and camera files (`trajectory`)."""
from hawor.slam.camera import Reconstruction, estimate_camera, hand_masks_for, keyframe_disparities, reconstruct
from hawor.slam.metric_scale import MetricScale, frame_reader, metric_scale
from hawor.slam.trajectory import CameraTrajectory, SparseDisparities

__all__ = ["CameraTrajectory", "MetricScale", "Reconstruction", "SparseDisparities", "estimate_camera",
           "frame_reader", "hand_masks_for", "keyframe_disparities", "metric_scale", "reconstruct"]
