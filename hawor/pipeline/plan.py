"""The backend plan: which implementation runs each stage of a run, and why, decided once.

Every stage's ``choice`` ("auto", "learned" or "embedded") is resolved here from the files present
(each checked by loading it as the run will, :mod:`hawor.pipeline.checks`), with the rules that
join stages:

- the keypoint fit needs landmarks, so with no regressor ``auto`` detection takes the landmark
  models even when detector.pt is present (YOLO gives boxes only);
- Metric3D needs frames it can read again (the pipeline's :class:`FrameSource`) and keyframe
  disparities (both camera backends give them; a reconstruction without any falls back to the
  hands, with a warning);
- one hand model for the whole run, passed to every stage that poses hands;
- one torch device for every stage that runs a network.

``auto`` takes the learned backend when its file loads, the embedded one when the file is absent;
a file that is there but does not load (or one MANO file without the other) is an input error, never
a silent switch. A stage that cannot run has ``backend`` None and its reason says how to fix it.

``pipeline.stages`` runs what the plan says, ``summary.json`` records it, and ``python -m hawor
doctor`` prints the plan of a default run, so the prediction and the run cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hawor.errors import HaworInputError
from hawor.pipeline import checks
from hawor.pipeline.checks import FileCheck
from hawor.weights import find_metric3d_weights, metric3d_candidates, weight_path

CHOICES = ("auto", "learned", "embedded")
HAND_MODEL_CHOICES = ("auto", "mano", "open")
# stage -> (learned backend, embedded backend); "hand_model" uses HAND_MODEL_CHOICES
BACKENDS = {
    "hand_model": ("mano", "open"),
    "detection": ("yolo", "landmarks"),
    "hands": ("regressor", "keypoint_fit"),
    "camera": ("droid", "classical"),
    "scale": ("metric3d", "hand_anchored"),
    "infilling": ("infiller", "interpolation"),
}


@dataclass(frozen=True)
class PlanRequest:
    """What the user asked for (the RunOptions fields that choose backends)."""

    detector: str = "auto"
    hands: str = "auto"
    camera: str = "auto"
    scale: str = "auto"
    infiller: str = "auto"
    hand_model: str = "auto"
    detector_weight: str | Path | None = None
    checkpoint: str | Path | None = None
    infiller_weight: str | Path | None = None
    device: str | None = None
    regressor_given: bool = False  # a ready network object replaces the file
    infiller_given: bool = False

    def __post_init__(self):
        for stage in ("detector", "hands", "camera", "scale", "infiller"):
            if getattr(self, stage) not in CHOICES:
                raise HaworInputError(f"--{stage} '{getattr(self, stage)}': choose one of {', '.join(CHOICES)}.")
        if self.hand_model not in HAND_MODEL_CHOICES:
            raise HaworInputError(f"--hand_model '{self.hand_model}': choose one of {', '.join(HAND_MODEL_CHOICES)}.")

    def paths(self) -> dict[str, Path | None]:
        """Every weight file the request may read."""
        from hawor.configs import find_model_config

        regressor = Path(self.checkpoint) if self.checkpoint is not None else weight_path("regressor")
        return {
            "detector": Path(self.detector_weight) if self.detector_weight is not None else weight_path("detector"),
            "regressor": regressor,
            "regressor_config": find_model_config(regressor),
            "infiller": Path(self.infiller_weight) if self.infiller_weight is not None else weight_path("infiller"),
            "droid": weight_path("droid"),
            "metric3d": find_metric3d_weights() or metric3d_candidates()[0],
            "mano_right": weight_path("mano_right"),
            "mano_left": weight_path("mano_left"),
        }


def check_files(request: PlanRequest) -> dict[str, FileCheck]:
    """Every file the plan decides from, loaded as the run will load it (files of a stage asked to
    run embedded, or replaced by a ready object, are not read)."""
    p = request.paths()

    def unless(skip: bool, label: str, path, check):
        return FileCheck(label, path, path is not None and Path(path).exists(), False, "not read: not used") \
            if skip else check()

    return {
        "detector": unless(request.detector == "embedded", "detector (YOLO)", p["detector"],
                           lambda: checks.check_detector(p["detector"])),
        "regressor": unless(request.hands == "embedded" or request.regressor_given, "regressor (HaWoR)",
                            p["regressor"], lambda: checks.check_regressor(p["regressor"], p["regressor_config"])),
        "infiller": unless(request.infiller == "embedded" or request.infiller_given, "infiller", p["infiller"],
                           lambda: checks.check_infiller(p["infiller"])),
        "droid": unless(request.camera == "embedded", "DROID-SLAM", p["droid"], lambda: checks.check_droid(p["droid"])),
        "metric3d": unless(request.scale == "embedded", "Metric3D v2 ViT", p["metric3d"],
                           lambda: checks.check_metric3d(p["metric3d"])),
        "mano_right": unless(request.hand_model == "open", "MANO right", p["mano_right"],
                             lambda: checks.check_mano("right", p["mano_right"])),
        "mano_left": unless(request.hand_model == "open", "MANO left", p["mano_left"],
                            lambda: checks.check_mano("left", p["mano_left"])),
        "landmarks": checks.check_landmarks(),
    }


@dataclass(frozen=True)
class StagePlan:
    """The backend a stage runs (None: it cannot run; ``reason`` says why and how to fix it)."""

    backend: str | None
    reason: str
    weights: Path | None = None


@dataclass
class BackendPlan:
    """Per stage what runs and why, the torch device, and the files it was decided from."""

    stages: dict[str, StagePlan]
    device: str
    files: dict[str, FileCheck]

    def __getitem__(self, stage: str) -> StagePlan:
        return self.stages[stage]

    def backends(self) -> dict[str, str | None]:
        return {name: stage.backend for name, stage in self.stages.items()}

    def require_runnable(self) -> None:
        """Raise HaworInputError for the first stage that cannot run (its reason says how to fix it)."""
        for stage in self.stages.values():
            if stage.backend is None:
                raise HaworInputError(stage.reason)

    def as_dict(self) -> dict:
        """For summary.json."""
        return {"device": self.device,
                "stages": {name: {"backend": s.backend, "reason": s.reason,
                                  "weights": None if s.weights is None else str(s.weights)}
                           for name, s in self.stages.items()}}


def resolve_device(device: str | None) -> str:
    """"auto"/None -> "cuda" when a GPU is visible, else "cpu"; "cpu", "cuda" and "cuda:N" are
    checked (asking for a GPU that is not there is an error, not a silent CPU run)."""
    import torch

    requested = "auto" if device is None else str(device).strip().lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    kind, _, index = requested.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise HaworInputError(f"--device '{device}': choose auto, cpu, cuda or cuda:N (N a GPU index).")
    if not torch.cuda.is_available():
        raise HaworInputError(f"--device '{device}': no CUDA GPU is visible to torch on this machine. "
                              "Use --device cpu (or auto).")
    if index and int(index) >= torch.cuda.device_count():
        raise HaworInputError(f"--device '{device}': this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}).")
    return requested


def plan_backends(request: PlanRequest, files: dict[str, FileCheck] | None = None) -> BackendPlan:
    """Resolve every stage (see the module docstring); ``files`` defaults to :func:`check_files`."""
    files = files if files is not None else check_files(request)
    hand_model = _hand_model(request.hand_model, files)
    hands = _learned_or_embedded(
        "hands", request.hands, files["regressor"], "--hands", "--checkpoint",
        given="a regressor object was passed" if request.regressor_given else None)
    # in run order; detection is resolved after the hands because the keypoint fit needs landmarks
    stages = {"hand_model": hand_model, "detection": _detection(request.detector, hands.backend, files),
              "hands": hands}
    stages["camera"] = _learned_or_embedded("camera", request.camera, files["droid"], "--camera", "weights/README.md")
    stages["scale"] = _learned_or_embedded("scale", request.scale, files["metric3d"], "--scale", "weights/README.md")
    stages["infilling"] = _learned_or_embedded(
        "infilling", request.infiller, files["infiller"], "--infiller", "--infiller_weight",
        given="an infiller object was passed" if request.infiller_given else None)
    return BackendPlan(stages, resolve_device(request.device), files)


def _learned_or_embedded(stage: str, choice: str, file: FileCheck, flag: str, fix: str,
                         given: str | None = None) -> StagePlan:
    learned, embedded = BACKENDS[stage]
    if given is not None:
        return StagePlan(learned, given)
    if choice == "embedded":
        return StagePlan(embedded, "asked for")
    if file.loadable:
        return StagePlan(learned, "asked for" if choice == "learned" else f"auto: {file.path} loads", file.path)
    if choice == "learned":
        return StagePlan(None, f"{flag} learned: the {file.label} weights {file.path} are {file.state}"
                               f"{'' if not file.present else ' (' + file.detail + ')'}; see {fix} or choose "
                               f"{flag} embedded.")
    if file.present:
        return StagePlan(None, _broken(file, flag))
    return StagePlan(embedded, f"auto: no {file.path}")


def _broken(file: FileCheck, flag: str) -> str:
    """A file that is there but does not load is an error, not a silent switch to the embedded backend."""
    return (f"{file.detail} (the {file.label} file at {file.path} is present but does not load: replace it, "
            f"remove it to use the embedded backend, or choose {flag} embedded)")


def _detection(choice: str, hands_backend: str | None, files: dict[str, FileCheck]) -> StagePlan:
    detector, landmarks = files["detector"], files["landmarks"]
    fit = hands_backend == "keypoint_fit"
    if choice == "learned":
        if fit:
            return StagePlan(None, "--detector learned: the YOLO detector gives boxes only, but the keypoint fit "
                                   "needs landmarks; give the HaWoR regressor (--checkpoint) or choose "
                                   "--detector embedded.")
        if not detector.loadable:
            return StagePlan(None, f"--detector learned: the hand detector {detector.path} is {detector.state}"
                                   f"{'' if not detector.present else ' (' + detector.detail + ')'}; see "
                                   "weights/README.md or choose --detector embedded.")
        return StagePlan("yolo", "asked for", detector.path)
    if choice == "auto" and detector.loadable and not fit:
        return StagePlan("yolo", f"auto: {detector.path} loads", detector.path)
    if not landmarks.loadable:
        return StagePlan(None, f"no hand detector: the embedded landmark models are {landmarks.state} "
                               f"({landmarks.detail}) and no usable detector.pt is at {detector.path}. Fix: run "
                               "`python -m hawor.assets` once (or scripts/setup.sh).")
    if choice == "embedded":
        return StagePlan("landmarks", "asked for")
    if detector.loadable:
        return StagePlan("landmarks", "auto: the keypoint fit needs landmarks (no regressor); detector.pt not used")
    if detector.present:
        return StagePlan(None, _broken(detector, "--detector"))
    return StagePlan("landmarks", f"auto: no {detector.path}")


def _hand_model(choice: str, files: dict[str, FileCheck]) -> StagePlan:
    right, left = files["mano_right"], files["mano_left"]
    loadable = right.loadable and left.loadable
    if choice == "open":
        return StagePlan("open", "asked for")
    if loadable:
        return StagePlan("mano", "asked for" if choice == "mano" else "auto: both MANO files load", right.path)
    if choice == "mano" or right.present or left.present:  # one file, or a broken one: never a silent switch
        return StagePlan(None, f"hand model: MANO's MANO_RIGHT.pkl is {right.state} and MANO_LEFT.pkl is "
                               f"{left.state} ({right.path}, {left.path})"
                               + "".join(f"; {f.detail}" for f in (right, left) if f.present and not f.loadable)
                               + ". Fix: put both MANO files there (weights/README.md), or choose the open hand "
                               "(--hand_model open).")
    return StagePlan("open", "auto: no MANO files")


def plan_for_run(options, regressor=None, infiller=None, files: dict[str, FileCheck] | None = None) -> BackendPlan:
    """The plan of a run with ``options`` (a :class:`hawor.pipeline.run.RunOptions`), and ready
    ``regressor`` / ``infiller`` objects that replace their files."""
    request = PlanRequest(
        detector=options.detector, hands=options.hands, camera=options.camera, scale=options.scale,
        infiller=options.infiller, hand_model=options.hand_model, detector_weight=options.detector_weight,
        checkpoint=options.checkpoint, infiller_weight=options.infiller_weight, device=options.device,
        regressor_given=regressor is not None, infiller_given=infiller is not None)
    return plan_backends(request, files)
