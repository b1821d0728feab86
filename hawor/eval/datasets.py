"""Ground truth of evaluation datasets read into the result schema (docs/outputs.md).

Every reader returns a dict: ``{h}_joints`` (N, 21, 3) metres in the dataset's world frame, OpenPose
order, NaN where unknown; ``{h}_valid`` (N,) the truth exists; ``{h}_observed`` (N,) the hand is
visible in the image; ``T_world_cam`` (N, 4, 4) camera-to-world, metres; ``K`` (3, 3) pixels; ``fps``;
``num_frames``; ``dataset``. Only the hands the dataset holds are present. The layouts read are the
public ones, written out in docs/evaluation.md:

- ``synthetic``: this project's ground truth (hands_world.npz + camera.npz, or one npz with every key).
- ``hot3d``: one extracted HOT3D-Clips clip (per-frame ``*.hands.json`` / ``*.cameras.json``).
- ``dexycb``: one DexYCB camera folder (``labels_XXXXXX.npz`` per frame, ``meta.yml`` one level up).
- ``arctic``: one processed ARCTIC sequence (``processed/seqs/sNN/<name>.npy``), egocentric view 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hawor.errors import HaworInputError
from hawor.eval.metrics import camera_points
from hawor.hands import HAND_SIDES
from hawor.hands.joints import hand_visible

DATASETS = ("synthetic", "hot3d", "dexycb", "arctic")
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}
HOT3D_RGB_STREAM = "214-1"  # the Aria RGB camera of HOT3D-Clips
# Plausible wrist -> middle-finger-base distance, metres (adult hands 0.07-0.11 m).
HAND_SIZE_RANGE_M = (0.04, 0.2)


def read_ground_truth(path: str | Path, dataset: str = "synthetic", unit: str = "m", hand_model: str = "auto") -> dict:
    """Read ground truth at ``path`` in ``dataset``'s layout, convert ``unit`` to metres and check it.

    Raises HaworInputError naming the file when it is missing, has another layout, or its numbers
    look like another unit or frame (see :func:`check_ground_truth`).
    """
    if dataset not in DATASETS:
        raise HaworInputError(f"dataset '{dataset}': choose one of {', '.join(DATASETS)}.")
    if unit not in UNITS:
        raise HaworInputError(f"ground-truth unit '{unit}': choose one of {', '.join(UNITS)}.")
    path = Path(path)
    if not path.exists():
        raise HaworInputError(f"ground truth {path}: no such file or folder.")
    reader = {"synthetic": read_synthetic, "dexycb": read_dexycb, "arctic": read_arctic,
              "hot3d": lambda p: read_hot3d(p, hand_model=hand_model)}[dataset]
    gt = reader(path)
    gt["dataset"] = dataset
    if unit != "m":
        gt = _to_metres(gt, UNITS[unit])
    check_ground_truth(gt, path)
    return gt


def _to_metres(gt: dict, factor: float) -> dict:
    gt = dict(gt)
    for side in HAND_SIDES:
        if f"{side}_joints" in gt:
            gt[f"{side}_joints"] = gt[f"{side}_joints"] * factor
    if "T_world_cam" in gt:
        gt["T_world_cam"] = gt["T_world_cam"].copy()
        gt["T_world_cam"][:, :3, 3] *= factor
    return gt


def hand_size(joints: np.ndarray) -> float:
    """Median wrist-to-middle-finger-base distance of (N, 21, 3) joints (NaN frames ignored)."""
    d = np.linalg.norm(joints[:, 9] - joints[:, 0], axis=-1)
    return float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")


def check_ground_truth(gt: dict, path: Path) -> None:
    """Refuse ground truth whose hands are not hand-sized in metres, or whose visible hands are not in
    front of the camera (joints and camera poses in different frames, or world-to-camera poses)."""
    for side in HAND_SIDES:
        if f"{side}_joints" not in gt:
            continue
        size = hand_size(gt[f"{side}_joints"])
        lo, hi = HAND_SIZE_RANGE_M
        if np.isfinite(size) and not lo <= size <= hi:
            guess = next((u for u, f in UNITS.items() if lo <= size * f <= hi), None)
            hint = f"it looks like {guess}: pass --gt-unit {guess}" if guess else "check the file's unit"
            raise HaworInputError(f"ground truth {path}: the {side} hand measures {size:.4g} from wrist to middle "
                                  f"finger base, not a hand in metres (0.04-0.2); {hint}.")
        visible = np.asarray(gt[f"{side}_observed"], bool) & np.isfinite(gt[f"{side}_joints"]).all((1, 2))
        if "T_world_cam" not in gt or not visible.any():
            continue
        joints, T = gt[f"{side}_joints"][visible], gt["T_world_cam"][visible]
        if np.median(camera_points(joints, T)[..., 2]) > 0:
            continue
        if np.median(camera_points(joints, np.linalg.inv(T))[..., 2]) > 0:
            raise HaworInputError(f"ground truth {path}: the camera poses look like world-to-camera (extrinsics); "
                                  "T_world_cam must be camera-to-world: invert them.")
        raise HaworInputError(f"ground truth {path}: the {side} hand is behind the camera in the frames where it is "
                              "visible; its joints and the camera poses are in different frames (e.g. camera-frame "
                              "joints with world camera poses).")


# -- synthetic (this project's schema) ----------------------------------------------------------------------------

def read_synthetic(path: Path) -> dict:
    """A folder with hands_world.npz (+ camera.npz), a hands_world.npz, or one npz holding every key."""
    path = Path(path)
    hands = path / "hands_world.npz" if path.is_dir() else path
    if not hands.is_file():
        raise HaworInputError(f"ground truth {path}: no hands_world.npz in this folder; pass the folder the "
                              "generator wrote (scripts/make_synthetic.py) or the npz itself.")
    gt = _read_npz(hands)
    camera = hands.parent / "camera.npz"
    if "T_world_cam" not in gt and camera.is_file():
        cam = _read_npz(camera)
        gt.update({k: cam[k] for k in ("T_world_cam", "K") if k in cam})
    if not any(f"{s}_joints" in gt for s in HAND_SIDES):
        raise HaworInputError(f"ground truth {hands}: holds no left_joints or right_joints; it is not in the result "
                              "schema (docs/outputs.md).")
    for side in HAND_SIDES:
        if f"{side}_joints" in gt:
            gt.setdefault(f"{side}_valid", np.isfinite(gt[f"{side}_joints"]).all((1, 2)))
            gt.setdefault(f"{side}_observed", gt[f"{side}_valid"])
    gt["num_frames"] = int(gt["num_frames"]) if "num_frames" in gt else len(next(
        gt[f"{s}_joints"] for s in HAND_SIDES if f"{s}_joints" in gt))
    return gt


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise HaworInputError(f"ground truth {path}: cannot be read as npz ({exc}).") from exc


# -- HOT3D-Clips ----------------------------------------------------------------------------------------------------

def read_hot3d(folder: Path, hand_model: str = "auto") -> dict:
    """One extracted HOT3D-Clips clip: ``NNNNNN.hands.json`` ({side: {"mano_pose": {"thetas": 15 PCA
    coefficients, "wrist_xform": axis-angle (3) + translation (3)}}}, a side absent when not annotated),
    ``NNNNNN.cameras.json`` ({"214-1": {"T_world_from_camera": {"quaternion_wxyz", "translation_xyz"},
    "calibration": {"projection_params": [f, cx, cy, ...], "image_width", "image_height"}}}) and
    ``__hand_shapes.json__`` ({"mano": 10 betas}). Joints come from the hand model (MANO for real
    data): hand_pose = thetas @ hands_components[:15] + hands_mean. 30 fps.
    """
    import torch

    from hawor.hands import HandModel
    from hawor.hands.mano_io import read_mano_file
    from hawor.hands.model import model_file, resolve_backend

    folder = Path(folder)
    frames = sorted(p.name.split(".")[0] for p in folder.glob("*.hands.json"))
    if not folder.is_dir() or not frames:
        raise HaworInputError(f"ground truth {folder}: no NNNNNN.hands.json files; pass an extracted HOT3D-Clips clip.")
    shapes = _read_json(folder / "__hand_shapes.json__")
    betas = np.asarray(shapes.get("mano", np.zeros(10)), np.float64)[:10]
    n = len(frames)
    T = np.tile(np.eye(4), (n, 1, 1))
    K, size = None, None
    params = {s: {"orient": np.full((n, 3), np.nan), "transl": np.full((n, 3), np.nan),
                  "thetas": np.full((n, 15), np.nan)} for s in HAND_SIDES}
    for i, frame in enumerate(frames):
        cams = _read_json(folder / f"{frame}.cameras.json")
        if HOT3D_RGB_STREAM not in cams:
            raise HaworInputError(f"ground truth {folder / (frame + '.cameras.json')}: no '{HOT3D_RGB_STREAM}' "
                                  "(Aria RGB) camera.")
        cam = cams[HOT3D_RGB_STREAM]
        pose = cam["T_world_from_camera"]
        T[i] = _pose_matrix(pose["quaternion_wxyz"], pose["translation_xyz"])
        if K is None:
            calib = cam["calibration"]
            f, cx, cy = calib["projection_params"][:3]
            K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
            size = (int(calib["image_width"]), int(calib["image_height"]))
        hands = _read_json(folder / f"{frame}.hands.json")
        for side in HAND_SIDES:
            mano = (hands.get(side) or {}).get("mano_pose")
            if mano:
                wrist = np.asarray(mano["wrist_xform"], np.float64)
                params[side]["orient"][i], params[side]["transl"][i] = wrist[:3], wrist[3:6]
                params[side]["thetas"][i] = np.asarray(mano["thetas"], np.float64)[:15]
    gt = {"T_world_cam": T, "K": K, "fps": 30.0, "num_frames": n, "image_size": np.array(size)}
    backend = resolve_backend(hand_model)
    if backend != "mano" and hand_model == "auto":
        raise HaworInputError(f"ground truth {folder}: HOT3D hands are MANO parameters and the MANO files are not "
                              "installed (weights/README.md); the open hand would give other joints. Install MANO, "
                              "or pass --hand-model open knowingly.")
    for side in HAND_SIDES:
        valid = np.isfinite(params[side]["thetas"]).all(1)
        if not valid.any():
            continue
        basis = read_mano_file(model_file(side, backend))
        hand_pose = params[side]["thetas"][valid] @ basis["hands_components"][:15] + basis["hands_mean"]
        model = HandModel(side, backend).double()
        with torch.no_grad():
            out = model(torch.as_tensor(params[side]["orient"][valid]), torch.as_tensor(hand_pose),
                        torch.as_tensor(np.repeat(betas[None], valid.sum(), 0)),
                        torch.as_tensor(params[side]["transl"][valid]))
        joints = np.full((n, 21, 3), np.nan)
        joints[valid] = out.joints.numpy()
        gt[f"{side}_joints"], gt[f"{side}_valid"] = joints, valid
        gt[f"{side}_observed"] = valid & _visible(joints, T, K, size)
    return gt


def _pose_matrix(q_wxyz, t_xyz) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    w, x, y, z = q_wxyz
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat([x, y, z, w]).as_matrix()
    T[:3, 3] = t_xyz
    return T


def _visible(joints_world: np.ndarray, T_world_cam: np.ndarray, K: np.ndarray, size) -> np.ndarray:
    """(N,) the hand is visible (hawor.hands.joints.hand_visible) counting only joints in front of the camera."""
    return _inside(camera_points(joints_world, T_world_cam), K, size)


def _inside(joints_cam: np.ndarray, K: np.ndarray, size) -> np.ndarray:
    z = joints_cam[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        u = joints_cam[..., 0] / z * K[0, 0] + K[0, 2]
        v = joints_cam[..., 1] / z * K[1, 1] + K[1, 2]
    return hand_visible(np.stack([u, v], -1), size, counted=z > 0)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise HaworInputError(f"ground truth {path}: missing.")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HaworInputError(f"ground truth {path}: not valid JSON ({exc}).") from exc


# -- DexYCB ---------------------------------------------------------------------------------------------------------

def read_dexycb(folder: Path) -> dict:
    """One DexYCB camera folder ``<subject>/<sequence>/<serial>/`` with ``labels_XXXXXX.npz`` per frame
    (``joint_3d`` (1, 21, 3) metres in this camera's frame, all -1 when the hand is not annotated;
    ``joint_2d`` (1, 21, 2) pixels), ``../meta.yml`` (``mano_sides``: the one hand of the sequence)
    and, when found above, ``calibration/intrinsics/<serial>_640x480.yml`` (``color``: fx, fy, ppx, ppy;
    without it every annotated frame counts as visible and there is no K). The camera is static: the
    world frame is this camera's frame (T_world_cam = I). 30 fps, 640x480.
    """
    import yaml

    folder = Path(folder)
    labels = sorted(folder.glob("labels_*.npz"))
    if not labels:
        raise HaworInputError(f"ground truth {folder}: no labels_XXXXXX.npz files; pass one DexYCB camera folder "
                              "(<subject>/<sequence>/<serial>/).")
    meta_path = folder.parent / "meta.yml"
    if not meta_path.is_file():
        raise HaworInputError(f"ground truth {meta_path}: missing (DexYCB keeps the hand side in meta.yml).")
    meta = yaml.safe_load(meta_path.read_text()) or {}
    sides = meta.get("mano_sides") or []
    if len(sides) != 1 or sides[0] not in HAND_SIDES:
        raise HaworInputError(f"ground truth {meta_path}: mano_sides {sides}: expected one of [left] or [right].")
    n = len(labels)
    joints = np.full((n, 21, 3), np.nan)
    for i, path in enumerate(labels):
        j = _read_npz(path)["joint_3d"].reshape(-1, 21, 3)[0]
        if not np.all(j == -1):
            joints[i] = j
    valid = np.isfinite(joints).all((1, 2))
    size = (640, 480)
    side = sides[0]
    T = np.tile(np.eye(4), (n, 1, 1))
    gt = {f"{side}_joints": joints, f"{side}_valid": valid, f"{side}_observed": valid,
          "T_world_cam": T, "fps": 30.0, "num_frames": n, "image_size": np.array(size)}
    calibration = _dexycb_intrinsics_path(folder)
    if calibration is not None:  # without intrinsics every annotated frame counts as visible
        gt["K"] = _dexycb_intrinsics(calibration)
        gt[f"{side}_observed"] = valid & _visible(joints, T, gt["K"], size)
    return gt


def _dexycb_intrinsics_path(folder: Path) -> Path | None:
    for parent in folder.resolve().parents:
        candidate = parent / "calibration" / "intrinsics" / f"{folder.name}_640x480.yml"
        if candidate.is_file():
            return candidate
    return None


def _dexycb_intrinsics(path: Path) -> np.ndarray:
    import yaml

    color = yaml.safe_load(path.read_text())["color"]
    return np.array([[color["fx"], 0, color["ppx"]], [0, color["fy"], color["ppy"]], [0, 0, 1.0]])


# -- ARCTIC ---------------------------------------------------------------------------------------------------------

def read_arctic(path: Path, view: int = 0) -> dict:
    """One processed ARCTIC sequence ``processed/seqs/sNN/<name>.npy``: a pickled dict with
    ``world_coord`` {``joints.right``, ``joints.left``: (N, 21, 3) metres}, ``cam_coord`` {the same as
    (N, V, 21, 3) per view}, ``params`` {``K_ego``: (N, 3, 3)}; view 0 is the head-mounted (egocentric)
    camera. The camera pose of each frame is the rigid transform taking the world joints of both hands
    onto view 0's joints (exact for rigid data); the image size is twice the principal point. 30 fps.
    """
    from hawor.geometry import umeyama
    import torch

    path = Path(path)
    if not path.is_file() or path.suffix != ".npy":
        raise HaworInputError(f"ground truth {path}: pass a processed ARCTIC sequence file "
                              "(processed/seqs/sNN/NAME.npy).")
    data = _load_npy_dict(path)
    try:
        world = {s: np.asarray(data["world_coord"][f"joints.{s}"], np.float64) for s in HAND_SIDES}
        cam = {s: np.asarray(data["cam_coord"][f"joints.{s}"], np.float64)[:, view] for s in HAND_SIDES}
        K_all = np.asarray(data["params"]["K_ego"], np.float64)
    except (KeyError, TypeError, IndexError) as exc:
        raise HaworInputError(f"ground truth {path}: not a processed ARCTIC sequence (missing {exc}); expected "
                              "world_coord / cam_coord joints.left|right and params.K_ego.") from exc
    n = len(world["right"])
    src = np.concatenate([world["left"], world["right"]], axis=1)
    dst = np.concatenate([cam["left"], cam["right"]], axis=1)
    _, R, t = umeyama(torch.as_tensor(src), torch.as_tensor(dst), with_scale=False)
    T_cam_world = np.tile(np.eye(4), (n, 1, 1))
    T_cam_world[:, :3, :3], T_cam_world[:, :3, 3] = R.numpy(), t.numpy()
    T = np.linalg.inv(T_cam_world)
    K = K_all.reshape(-1, 3, 3)[0]
    size = (int(round(2 * K[0, 2])), int(round(2 * K[1, 2])))
    gt = {"T_world_cam": T, "K": K, "fps": 30.0, "num_frames": n, "image_size": np.array(size)}
    for side in HAND_SIDES:
        valid = np.isfinite(world[side]).all((1, 2))
        gt[f"{side}_joints"], gt[f"{side}_valid"] = world[side], valid
        gt[f"{side}_observed"] = valid & _inside(cam[side], K, size)
    return gt


def _load_npy_dict(path: Path) -> dict:
    """A pickled dict saved with np.save, read through the restricted unpickler (no code runs)."""
    import pickle

    from hawor.io.safe_pickle import read_npy

    try:
        with open(path, "rb") as f:
            array = read_npy(f, str(path))
        if array.dtype != object:
            raise ValueError("it holds a plain array, not a dict")
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise HaworInputError(f"ground truth {path}: cannot be read as a saved dict ({exc}).") from exc
    value = array.item() if isinstance(array, np.ndarray) and array.size == 1 else array
    if not isinstance(value, dict):
        raise HaworInputError(f"ground truth {path}: holds a {type(value).__name__}, expected a dict.")
    return value

