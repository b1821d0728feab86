"""``python -m hawor doctor``: every component, where it is expected, whether it loads, and the
backend plan of a default run (what ``auto`` picks per stage, and why).

The weight files are checked by :mod:`hawor.pipeline.checks` (loaded as the run loads them, shapes
included, networks on the meta device) and the picks come from :func:`hawor.pipeline.plan.plan_backends`,
the function every run calls, so the prediction is the run's plan.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from hawor.pipeline import checks
from hawor.pipeline.plan import BackendPlan, PlanRequest, check_files, plan_backends
from hawor.weights import project_root, weight_path


@dataclass
class Component:
    name: str
    location: str
    present: bool
    loadable: bool
    detail: str


def _location(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(Path(path).relative_to(project_root()))
    except ValueError:
        return str(path)


def _component(check: checks.FileCheck) -> Component:
    return Component(check.label, _location(check.path), check.present, check.loadable, check.detail)


def _check_renderer() -> Component:
    from hawor.render import OffscreenRenderer

    try:
        renderer = OffscreenRenderer(16, 16)
        backend = renderer.backend
        renderer.close()
    except Exception as exc:  # any GL failure means the fallback will be used
        return Component("renderer", "pyrender (EGL)", True, False, f"{type(exc).__name__}: {exc}")
    return Component("renderer", "pyrender (EGL) / numpy fallback", True, True, f"backend: {backend}")


def _check_codec() -> Component:
    import av

    try:
        codec = av.codec.Codec("libx264", "w")
    except Exception as exc:  # PyAV raises its own error types when the encoder is absent
        return Component("video codec", "PyAV libx264", False, False, f"{type(exc).__name__}: {exc}")
    return Component("video codec", "PyAV libx264", True, True, f"{codec.long_name}, av {av.__version__}, "
                     f"ffmpeg binary {'on PATH' if shutil.which('ffmpeg') else 'not needed'}")


STAGE_LABELS = {"hand_model": "hand model", "detection": "detection", "hands": "camera-space hands",
                "camera": "camera trajectory", "scale": "metric scale", "infilling": "infilling"}


def predict(request: PlanRequest | None = None) -> tuple[dict[str, checks.FileCheck], BackendPlan]:
    """The files and the backend plan of a run with ``request`` (default: every stage auto)."""
    request = request or PlanRequest()
    files = check_files(request)
    return files, plan_backends(request, files)


def run_doctor(request: PlanRequest | None = None) -> tuple[list[Component], dict[str, str | None]]:
    """(components, picks): per stage of a default run its backend and why ("NOTHING CAN RUN" = None),
    plus the device, the renderer and the video encoder."""
    files, plan = predict(request)
    components = [_component(files[name]) for name in ("detector", "regressor", "infiller", "droid", "metric3d",
                                                       "mano_right", "mano_left")]
    open_hand = checks.check_open_hand([weight_path("open_hand_right"), weight_path("open_hand_left")])
    renderer, codec = _check_renderer(), _check_codec()
    components += [_component(open_hand), _component(files["landmarks"]), renderer, codec]
    picks = {STAGE_LABELS[name]: None if stage.backend is None else f"{stage.backend}  ({stage.reason})"
             for name, stage in plan.stages.items()}
    picks["device"] = plan.device
    picks["rendering"] = "pyrender EGL" if renderer.loadable else "numpy rasteriser"
    picks["video output"] = "H.264 (PyAV)" if codec.loadable else None
    picks.update({f"cannot run ({STAGE_LABELS[name]})": stage.reason for name, stage in plan.stages.items()
                  if stage.backend is None})
    return components, picks


def format_report(components: list[Component], picks: dict[str, str | None]) -> str:
    rows = [("component", "expected at", "present", "loadable", "detail")]
    rows += [(c.name, c.location, "yes" if c.present else "no", "yes" if c.loadable else "no", c.detail)
             for c in components]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * (sum(widths) + 8 + 6))
    lines += ["", "auto picks (a default run):"]
    lines += [f"  {stage:20s} {pick or 'NOTHING CAN RUN'}" for stage, pick in picks.items()]
    return "\n".join(lines)
