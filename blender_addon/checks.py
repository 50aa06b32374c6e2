"""The checks before any keying: what a user can get wrong is found before anything is created.

No bpy: a Blender object is only read (its ``type``, ``name``, ``mode``, ``animation_data``), so the
checks of the motion run without Blender.
"""

from __future__ import annotations

import numpy as np

from posemoe import PoseMoEError
from posemoe.motion.solve import SkeletonMotion
from posemoe.skeleton import JOINT_NAMES, NUM_JOINTS


def check_motion(motion: SkeletonMotion) -> int:
    """Raise PoseMoEError unless ``motion`` is a usable, non-empty take; return its frame count."""
    if not isinstance(motion, SkeletonMotion):
        raise PoseMoEError(f"Expected a solved skeleton motion, got {type(motion).__name__}; "
                           "solve the take first (posemoe.motion.solve.solve_skeleton).")
    offsets = np.asarray(motion.offsets)
    quats = np.asarray(motion.quaternions)
    roots = np.asarray(motion.root_positions)
    n = len(quats)
    if n == 0:
        raise PoseMoEError("The take has no frames; capture a video in which the person is visible.")
    if offsets.shape != (NUM_JOINTS, 3) or quats.shape != (n, NUM_JOINTS, 4) or roots.shape != (n, 3):
        raise PoseMoEError(f"The motion's arrays have shapes {offsets.shape}, {quats.shape}, {roots.shape}, "
                           f"not (17, 3), (N, 17, 4), (N, 3); solve the take again with this version.")
    if not (np.isfinite(offsets).all() and np.isfinite(quats).all() and np.isfinite(roots).all()):
        raise PoseMoEError("The motion holds NaN or infinite values; capture the take again.")
    if not (np.isfinite(motion.fps) and motion.fps > 0):
        raise PoseMoEError(f"The take's frame rate is {motion.fps}; it must be positive. Capture the take again.")
    short = [JOINT_NAMES[j] for j in range(1, NUM_JOINTS) if np.linalg.norm(offsets[j]) < 1e-3]
    if short:
        raise PoseMoEError(f"Bones ending at {', '.join(short)} are shorter than 1 mm, so Blender cannot "
                           "build them; capture a take in which the whole body is visible.")
    return n


def check_hands(hands, frames: int) -> None:
    """Raise PoseMoEError unless ``hands`` (:class:`posemoe.motion.hands.BodyHands`) holds ``frames``."""
    if hands.rotations.shape[0] != frames:
        raise PoseMoEError(f"The hands hold {hands.rotations.shape[0]} frames and the body {frames}; solve both "
                           "from one take.")


def check_is_armature(obj, role: str, advice: str) -> None:
    """Raise PoseMoEError unless ``obj`` is an armature object: "``role`` is ..., not an armature; ``advice``"."""
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        kind = getattr(obj, "type", type(obj).__name__)
        what = "nothing" if obj is None else f"'{getattr(obj, 'name', obj)}' ({kind})"
        raise PoseMoEError(f"{role} is {what}, not an armature; {advice}")


def check_not_in_tweak_mode(obj) -> None:
    """Raise PoseMoEError when ``obj``'s NLA is in tweak mode (a new action cannot be assigned then)."""
    if obj.animation_data is not None and obj.animation_data.use_tweak_mode:
        raise PoseMoEError(f"Armature '{obj.name}' is in NLA tweak mode; leave it (Tab in the NLA editor) "
                           "and try again.")
