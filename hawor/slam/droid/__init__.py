"""Masked DROID-SLAM in pure PyTorch (CPU and CUDA, no compiled extension).

net (encoders, ConvGRU update operator, graph aggregation, convex upsampling) -> corr (correlation
pyramid) -> factor_graph (edges, masked confidences) + ba (dense Schur-complement BA) -> motion_filter,
frontend, backend, filler -> slam.run_droid_slam (the whole loop, a CameraTrajectory up to scale).
"""
from hawor.models.droid import DroidNet, DroidNetConfig
from .slam import DroidSlam, DroidSlamConfig, run_droid_slam, working_size
from .loading import convert_droid_state_dict, load_droid_net, load_droid_state_dict

__all__ = ["DroidNet", "DroidNetConfig", "DroidSlam", "DroidSlamConfig", "run_droid_slam", "working_size",
           "convert_droid_state_dict", "load_droid_net", "load_droid_state_dict"]
