"""File and video IO at the bottom of the stack (no torch)."""
