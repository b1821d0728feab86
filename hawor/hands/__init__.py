"""Hand models: MANO (official files, read without chumpy) or the project's open MANO-format hand."""
from hawor.hands.joints import (
    FINGERTIP_VERTEX_IDS,
    HAND_SIDES,
    MANO_TO_OPENPOSE,
    OPENPOSE_JOINT_NAMES,
    WRIST_CLOSING_FACES,
)
from hawor.hands.model import HandModel, HandOutput, resolve_backend

__all__ = ["HandModel", "HandOutput", "resolve_backend", "FINGERTIP_VERTEX_IDS", "HAND_SIDES",
           "MANO_TO_OPENPOSE", "OPENPOSE_JOINT_NAMES", "WRIST_CLOSING_FACES"]
