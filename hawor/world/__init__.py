"""World-space hands: camera -> world assembly (rotation about the wrist) and gap filling
(the learned motion infiller, or SLERP/linear interpolation)."""
from hawor.world.assemble import (camera_to_world, hand_joints, pose_blocks, posed_hands, rigid_transform_hand,
                                  world_to_camera)
from hawor.world.infill import fill_hands, infill_learned, load_infiller
from hawor.world.interpolate import interpolate_gaps
from hawor.world.sequence import HandSequence

__all__ = ["HandSequence", "camera_to_world", "fill_hands", "hand_joints", "infill_learned", "interpolate_gaps",
           "load_infiller", "pose_blocks", "posed_hands", "rigid_transform_hand", "world_to_camera"]
