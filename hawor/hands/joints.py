"""Hand skeleton constants shared by every part of the project.

MANO's 16 skeleton joints are ordered 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring,
13-15 thumb. The project's 21 joints follow the OpenPose hand order: wrist, then thumb, index,
middle, ring, pinky, each from base to tip; the five tips are mesh vertices.
"""
import numpy as np

HAND_SIDES = ("left", "right")  # index 0 = left, 1 = right everywhere

NUM_VERTICES = 778

# Fingertip vertices (thumb, index, middle, ring, pinky), appended as joints 16..20.
FINGERTIP_VERTEX_IDS = (744, 320, 443, 554, 671)

# 16 MANO joints + 5 tips -> OpenPose order.
MANO_TO_OPENPOSE = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)

OPENPOSE_JOINT_NAMES = (
    "wrist",
    "thumb1", "thumb2", "thumb3", "thumb4",
    "index1", "index2", "index3", "index4",
    "middle1", "middle2", "middle3", "middle4",
    "ring1", "ring2", "ring3", "ring4",
    "pinky1", "pinky2", "pinky3", "pinky4",
)

# The palm in OpenPose order: the wrist and the four finger bases (index, middle, ring, pinky).
PALM_JOINTS = (0, 5, 9, 13, 17)

# MANO joint parents (kinematic tree), -1 for the wrist.
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

# Triangles that close MANO's wrist opening (right-hand winding); 1538 + 14 = 1552 faces.
WRIST_CLOSING_FACES = np.array([
    (92, 38, 234), (234, 38, 239), (38, 122, 239), (239, 122, 279), (122, 118, 279),
    (279, 118, 215), (118, 117, 215), (215, 117, 214), (117, 119, 214), (214, 119, 121),
    (119, 120, 121), (121, 120, 78), (120, 108, 78), (78, 108, 79),
], dtype=np.int64)


# A hand counts as visible in a frame when at least this many of its 21 joints project into the image
# (the generator's ground truth, the evaluation and the detection scores share this rule).
MIN_VISIBLE_JOINTS = 11


def hand_visible(joints_2d: np.ndarray, size, counted: np.ndarray | None = None) -> np.ndarray:
    """(...,) True where at least MIN_VISIBLE_JOINTS of the joints lie inside the image.

    Args:
        joints_2d: (..., 21, 2) joint positions, pixels.
        size: the image's (W, H).
        counted: optional (..., 21) bool, the joints that may count (e.g. in front of the camera, or
            not hidden behind something); the others never do.
    """
    joints_2d = np.asarray(joints_2d)
    inside = ((joints_2d[..., 0] >= 0) & (joints_2d[..., 0] < size[0])
              & (joints_2d[..., 1] >= 0) & (joints_2d[..., 1] < size[1]))
    if counted is not None:
        inside &= counted
    return inside.sum(-1) >= MIN_VISIBLE_JOINTS
