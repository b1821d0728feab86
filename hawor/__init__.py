"""hawor: world-space MANO hand motion from egocentric video.

Importing the package is cheap (no torch) and sets the offline defaults; the stages live in
sub-packages (see docs/architecture.md).
"""
from hawor import _offline

_offline.apply()

__version__ = "0.1.0"
