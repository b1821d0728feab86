"""Result videos and exports: the world view (hands, camera path and frustum, backdrop), the camera
view (hands over the frames), H.264 writing, rerun recordings and per-frame meshes."""
from hawor.vis.exports import export_meshes, export_rerun
from hawor.vis.views import CameraView, WorldView, write_video

__all__ = ["CameraView", "WorldView", "export_meshes", "export_rerun", "write_video"]
