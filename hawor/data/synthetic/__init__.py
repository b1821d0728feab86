"""Synthetic egocentric sequences (textured rooms, head-mounted cameras, two moving hands) with exact
ground truth in the result schema; see :mod:`hawor.data.synthetic.generate` for the formats."""
from hawor.data.synthetic.generate import OUTPUTS, generate_sequence, simulate

__all__ = ["OUTPUTS", "generate_sequence", "simulate"]
