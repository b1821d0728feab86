"""The end-to-end pipeline: video -> hand tracks -> camera-space hands -> camera -> world hands ->
result files and videos. ``run(video, ...)`` runs it, ``load_result(folder)`` reads a result back."""
from hawor.pipeline.run import Result, RunOptions, load_result, run

__all__ = ["Result", "RunOptions", "load_result", "run"]
