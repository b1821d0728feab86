"""hawor: world-space MANO hand motion from egocentric video.

Importing the package is cheap (no torch) and sets the offline defaults; the stages live in
sub-packages (see docs/architecture.md). For notebooks::

    import hawor
    result = hawor.run("example/video_0.mp4")        # the whole pipeline, embedded defaults
    result = hawor.load_result("example/video_0")    # a finished result folder
"""
from hawor import _offline

_offline.apply()

__version__ = "0.1.0"

_PIPELINE_API = ("run", "load_result", "RunOptions", "Result")


def __getattr__(name: str):
    # The pipeline imports torch and every stage; load it only when the API is used.
    if name in _PIPELINE_API:
        import hawor.pipeline

        return getattr(hawor.pipeline, name)
    raise AttributeError(f"module 'hawor' has no attribute {name!r}")
