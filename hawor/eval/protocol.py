"""An evaluation protocol: which hands, chunk length and frames, checked inputs, and the metrics.

    from hawor.eval.protocol import Protocol, evaluate, prediction_arrays
    pred = prediction_arrays(hawor.load_result("out/video"))
    report = evaluate(pred, read_ground_truth("gt/", "synthetic"), Protocol(hands=("right",)))

The pipeline layer is not imported here: :func:`prediction_arrays` reads any object with the fields of
``hawor.pipeline.Result``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hawor.errors import HaworInputError
from hawor.eval.metrics import DEFAULT_CHUNK, evaluate_world
from hawor.eval.sources import error_sources
from hawor.geometry import DEFAULT_FOCAL
from hawor.hands import HAND_SIDES

BOXES = ("detector", "ground_truth")
FOCALS = ("default", "ground_truth", "estimated")


@dataclass(frozen=True)
class Protocol:
    """The choices behind a table; printed with every table.

    hands: which hands are scored ("right" only, as the HOT3D script, or both). chunk: frames per
    alignment chunk of W-/WA-MPJPE (100 as published). boxes / focal: what the run used (the
    detector's boxes or ground-truth boxes; the default 600 px focal, the ground truth's, or the run's
    own estimate) - recorded from the result and checked, not changed by the evaluation.
    """

    hands: tuple[str, ...] = HAND_SIDES
    chunk: int = DEFAULT_CHUNK
    boxes: str = "detector"
    focal: str = "default"

    def __post_init__(self):
        unknown = [h for h in self.hands if h not in HAND_SIDES]
        if unknown or not self.hands:
            raise HaworInputError(f"hands {list(self.hands)}: choose from {', '.join(HAND_SIDES)}.")
        if self.chunk < 2:
            raise HaworInputError(f"chunk {self.chunk}: W-MPJPE needs chunks of at least 2 frames.")
        if self.boxes not in BOXES:
            raise HaworInputError(f"boxes '{self.boxes}': choose one of {', '.join(BOXES)}.")
        if self.focal not in FOCALS:
            raise HaworInputError(f"focal '{self.focal}': choose one of {', '.join(FOCALS)}.")

    def describe(self) -> list[str]:
        """One line per choice, for the head of a table."""
        return [
            f"hands: {' and '.join(self.hands)}; boxes: {self.boxes}; focal: {self.focal}",
            f"W-MPJPE / WA-MPJPE: chunks of {self.chunk} compared frames (valid in the result and the ground "
            "truth), each similarity-aligned on its first two frames / on all its frames",
            "PA-MPJPE, AUC, camera MPJPE: frames observed in the result and visible in the ground truth, "
            "per hand; observed = detection recall over the visible frames",
            "camera ATE: RMSE of camera centres after Sim3 (scale-free, = ATE-S) or SE3 (metric) alignment; "
            "Sim3 scale s: the alignment's scale applied to the prediction; path length pred / true: metric scale",
        ]


def prediction_arrays(result) -> dict:
    """The arrays of a result (``hawor.pipeline.Result`` or alike) under the ground-truth keys."""
    pred = {"T_world_cam": np.asarray(result.camera.T_world_cam), "K": np.asarray(result.camera.K),
            "fps": float(result.fps), "num_frames": int(result.num_frames), "focal": float(result.focal)}
    for side in HAND_SIDES:
        pred.update(result.hands_world[side].to_arrays())
        pred[f"{side}_joints"] = np.asarray(result.joints_world[side])
    return pred


def match_frames(pred: dict, gt: dict, summary: dict | None = None) -> dict:
    """The ground truth cut to the result's frames (a run over ``--start/--max_frames`` of the video).

    Raises HaworInputError when the counts differ and the result's summary does not say how its
    frames map onto the video's (or the run resampled the video with ``--fps``).
    """
    n, total = int(pred["num_frames"]), int(gt["num_frames"])
    if n == total:
        return gt
    selection = (summary or {}).get("frame_selection") or {}
    resampled = selection.get("fps") not in (None, "source rate (not resampled)")
    start = int(selection.get("start") or 0)
    if not selection or resampled or start + n > total:
        why = ("the run resampled the video (--fps)" if resampled
               else "its summary.json does not say which frames it used")
        raise HaworInputError(f"the result has {n} frames and the ground truth {total}; {why}. Run the pipeline on "
                              "the whole video at its own frame rate, or evaluate the ground truth of those frames.")
    select = np.arange(start, start + n)
    return {k: (v[select] if np.ndim(v) >= 1 and len(v) == total else v) for k, v in gt.items()} | {"num_frames": n}


def check_hands(pred: dict, gt: dict, protocol: Protocol) -> None:
    """Every scored hand must be in both; a clear message otherwise."""
    for side in protocol.hands:
        other = [h for h in HAND_SIDES if h != side]
        if f"{side}_joints" not in gt:
            raise HaworInputError(f"the ground truth has no {side} hand ({gt.get('dataset', 'this')} data); score the "
                                  f"hands it holds with --hands {' '.join(h for h in other if f'{h}_joints' in gt)}.")
        if f"{side}_joints" not in pred:
            raise HaworInputError(f"the result has no {side} hand (no {side}_joints in hands_world.npz); rerun the "
                                  "pipeline or score the other hand with --hands.")


def evaluate(pred: dict, gt: dict, protocol: Protocol = Protocol(), summary: dict | None = None) -> dict:
    """Check the inputs and compute every metric; returns {"protocol", hands..., camera keys, "error_sources"
    (:func:`hawor.eval.sources.error_sources`), "notes"}."""
    gt = match_frames(pred, gt, summary)
    check_hands(pred, gt, protocol)
    report = evaluate_world(pred, gt, sides=protocol.hands, chunk=protocol.chunk, fps=gt.get("fps") or pred.get("fps"))
    report["error_sources"] = error_sources(pred, gt, sides=protocol.hands, chunk=protocol.chunk)
    notes = []
    if "K" in gt and "focal" in pred and protocol.focal == "estimated":
        true = float(gt["K"][0, 0])
        notes.append(f"the run estimated focal {pred['focal']:.1f} px; the ground truth's is {true:.1f} px "
                     f"({pred['focal'] / true - 1:+.1%})")
    elif "K" in gt and "focal" in pred:
        expected = float(gt["K"][0, 0]) if protocol.focal == "ground_truth" else DEFAULT_FOCAL
        if abs(pred["focal"] - expected) > 1e-3 * expected:
            notes.append(f"the run used focal {pred['focal']:.1f} px, but the protocol says focal: {protocol.focal} "
                         f"({expected:.1f} px; the ground truth's is {float(gt['K'][0, 0]):.1f} px)")
    report["protocol"] = asdict(protocol) | {"description": protocol.describe()}
    report["notes"] = notes
    return report
