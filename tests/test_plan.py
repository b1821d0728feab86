"""The backend plan: one decision per stage for doctor and the run, with the cross-stage rules,
checked on real weight files in the official layouts (tests/plan_weights.py) in every combination."""
import itertools
import json

import pytest
import torch

import plan_weights as pw
from hawor.errors import HaworInputError
from hawor.pipeline.plan import PlanRequest, plan_for_run, resolve_device
from hawor.doctor import STAGE_LABELS
from hawor.pipeline.run import RunOptions

EMBEDDED = {"hand_model": "open", "detection": "landmarks", "hands": "keypoint_fit", "camera": "classical",
            "scale": "hand_anchored", "infilling": "interpolation"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return pw.build_store(tmp_path_factory.mktemp("store"))


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("HAWOR_ROOT", str(tmp_path))
    return pw.embedded_root(tmp_path)


def expected_plan(present: set[str]) -> dict[str, str]:
    """The rules, written out: learned where its file loads, except that YOLO is used only with the
    regressor (the keypoint fit needs landmarks)."""
    return {"hand_model": "mano" if "mano" in present else "open",
            "detection": "yolo" if {"detector", "regressor"} <= present else "landmarks",
            "hands": "regressor" if "regressor" in present else "keypoint_fit",
            "camera": "droid" if "droid" in present else "classical",
            "scale": "metric3d" if "metric3d" in present else "hand_anchored",
            "infilling": "infiller" if "infiller" in present else "interpolation"}


def test_doctor_prediction_equals_the_run_plan_for_every_combination(store, root):
    from hawor.doctor import predict, run_doctor

    learned = ("detector", "regressor", "infiller", "droid", "metric3d")
    for i, flags in enumerate(itertools.product((False, True), repeat=len(learned))):
        present = {kind for kind, flag in zip(learned, flags) if flag} | ({"mano"} if i % 3 == 0 else set())
        for kind in pw.FILES:
            pw.place(root, kind, store[kind]) if kind in present else pw.remove(root, kind)
        _, predicted = predict()
        run_plan = plan_for_run(RunOptions())
        assert predicted.backends() == run_plan.backends() == expected_plan(present), present
        assert predicted.as_dict() == run_plan.as_dict()
    _, picks = run_doctor()  # the printed report says the same (last combination: everything present)
    assert picks["detection"].startswith("yolo") and picks["camera trajectory"].startswith("droid")


@pytest.mark.parametrize("kind", ["detector", "regressor", "infiller", "droid", "metric3d", "mano"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "wrong shapes"])
def test_a_file_that_does_not_load_is_reported_and_not_used(store, root, tmp_path, kind, damage):
    from hawor.doctor import run_doctor

    broken = []
    for source in store[kind][:1 if kind == "regressor" else 2]:
        data = source.read_bytes()
        path = tmp_path / f"broken-{source.name}"
        if damage == "empty":
            data = b""
        elif damage == "truncated":
            data = data[: len(data) // 3]
        else:  # another network's valid file: loadable bytes, wrong keys and shapes
            data = store["infiller" if kind != "infiller" else "droid"][0].read_bytes()
        path.write_bytes(data)
        broken.append(path)
    pw.place(root, kind, broken + store[kind][1:] if kind == "regressor" else broken)
    components, picks = run_doctor()
    label = {"detector": "detector", "regressor": "regressor", "infiller": "infiller", "droid": "DROID",
             "metric3d": "Metric3D",
             "mano": "MANO right"}[kind]
    component = next(c for c in components if c.name.startswith(label))
    assert component.present and not component.loadable, component
    option = {"detector": "detector", "regressor": "hands", "infiller": "infiller", "droid": "camera",
              "metric3d": "scale", "mano": "hand_model"}[kind]
    stage = {"detector": "detection", "regressor": "hands", "infiller": "infilling", "droid": "camera",
             "metric3d": "scale", "mano": "hand_model"}[kind]
    plan = plan_for_run(RunOptions())  # auto: an error naming the file, never a silent switch
    assert plan[stage].backend is None and str(broken[0].parent) in plan[stage].reason
    assert picks[f"cannot run ({STAGE_LABELS[stage]})"] == plan[stage].reason
    with pytest.raises(HaworInputError):
        plan.require_runnable()
    ask = {"hands": "learned"} if kind == "detector" else {}  # YOLO alone is refused for another reason
    with pytest.raises(HaworInputError):
        plan_for_run(RunOptions(**{**ask, option: "mano" if kind == "mano" else "learned"})).require_runnable()
    embedded = {option: "open" if kind == "mano" else "embedded"}
    assert plan_for_run(RunOptions(**embedded)).backends() == EMBEDDED  # the file is not read


def test_one_mano_file_without_the_other_is_an_error(store, root):
    pw.place(root, "mano", store["mano"])
    (root / pw.OFFICIAL_PATHS["mano_left"]).unlink()
    plan = plan_for_run(RunOptions())
    assert plan["hand_model"].backend is None and "MANO_LEFT.pkl is absent" in plan["hand_model"].reason
    assert plan_for_run(RunOptions(hand_model="open")).backends()["hand_model"] == "open"


def test_yolo_without_the_regressor_is_refused_up_front(store, root):
    pw.place(root, "detector", store["detector"])
    plan = plan_for_run(RunOptions(detector="learned"))
    with pytest.raises(HaworInputError, match="keypoint fit needs landmarks"):
        plan.require_runnable()
    assert plan_for_run(RunOptions()).backends()["detection"] == "landmarks"


def test_ready_objects_replace_their_files(root):
    plan = plan_for_run(RunOptions(), regressor=object(), infiller=object())
    assert plan["hands"].backend == "regressor" and plan["infilling"].backend == "infiller"
    assert plan["hands"].reason == "a regressor object was passed"


def test_device_is_validated():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) == resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("foo", "cuda:x", "gpu", "cuda:"):
        with pytest.raises(HaworInputError, match="--device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        for missing in ("cuda", "cuda:0"):
            with pytest.raises(HaworInputError, match="no CUDA GPU"):
                resolve_device(missing)
    with pytest.raises(HaworInputError, match="choose one of"):
        PlanRequest(camera="droid")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from hawor.data.synthetic import generate_sequence

    return generate_sequence(tmp_path_factory.mktemp("clip"), seed=5, num_frames=20, width=pw.CLIP_SIZE[0],
                             height=pw.CLIP_SIZE[1])["video"]


def test_run_follows_the_plan_detector_alone_metric3d_and_one_hand_model(store, root, clip, tmp_path, monkeypatch):
    """The three failures of issue 11: detector.pt alone broke an auto run (YOLO without keypoints);
    Metric3D never ran from the pipeline (one-shot frames); --hand_model open did not reach the
    camera stage (its masks and scale built the MANO model)."""
    from hawor.depth.predictor import Metric3DPredictor
    from hawor.doctor import predict
    from hawor.hands import HandModel
    from hawor.pipeline import run

    for kind in ("detector", "metric3d", "mano"):
        pw.place(root, kind, store[kind])
    built, read_frames = [], []
    original_init = HandModel.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        built.append(self.backend)

    original_predict = Metric3DPredictor.predict_resized

    def recording_predict(self, frame, fx, size_hw):
        read_frames.append(frame.shape)
        return original_predict(self, frame, fx, size_hw)

    monkeypatch.setattr(HandModel, "__init__", recording_init)
    monkeypatch.setattr(Metric3DPredictor, "predict_resized", recording_predict)
    result = run(clip, hand_model="open", output_dir=tmp_path / "out", vis_mode="none", img_focal=pw.CLIP_FOCAL,
                 img_center=(161.0, 118.0))
    summary = json.loads((result.folder / "summary.json").read_text())
    _, predicted = predict(PlanRequest(hand_model="open"))
    plan = summary["plan"]
    assert {k: v["backend"] for k, v in plan["stages"].items()} == predicted.backends() == {
        **EMBEDDED, "scale": "metric3d"}
    assert summary["stages"]["detection"]["backend"] == "landmarks"
    assert summary["stages"]["camera"]["reason"].endswith("scale: metric3d"), summary["stages"]["camera"]
    assert read_frames and all(shape == (240, 320, 3) for shape in read_frames)
    assert set(built) == {"open"}, built
    assert summary["device"] == "cpu" and summary["intrinsics"]["fx"] == 300
    # --img_center reaches the camera stage through the run's one Intrinsics
    assert (summary["intrinsics"]["cx"], summary["intrinsics"]["cy"]) == (161.0, 118.0)
    assert result.camera.K[:2, 2].tolist() == [161.0, 118.0]
    assert summary["hand_model"] == "open"


def test_bad_device_is_an_input_error_before_any_stage(clip, tmp_path):
    import demo

    assert demo.main(["--video_path", str(clip), "--device", "foo", "--output_dir", str(tmp_path), "--no_vis"]) == 2
    assert not (tmp_path / "video").exists()
