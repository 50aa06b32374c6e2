"""PoseMoE markerless motion capture: video to 3D joints to animation, without Blender."""

__version__ = "0.1.0"


class PoseMoEError(Exception):
    """An error the user can fix; its message says what went wrong and what to do."""


class Cancelled(PoseMoEError):
    """The user cancelled a long operation; nothing was written."""
