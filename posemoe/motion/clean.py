"""The clean-up that turns a take's joint positions into animation a rig can play.

Order, and why:
1. smooth the joint positions (jitter out first, so contacts and lengths are measured on clean data);
2. one length per bone, optionally scaled so the actor has a given height (the whole take scales with
   it: a taller actor at the same pixels stands farther away);
3. solve the constant-length skeleton (:func:`~posemoe.motion.solve.solve_skeleton`);
4. find foot contacts on that skeleton and pin the planted feet with leg IK;
5. solve again from the pinned positions, so rotations and lengths agree exactly;
6. apply the root mode: "full" (the root moves as captured), "ground" (it moves over the floor at its
   median height: no bobbing from depth noise, but no jumps either) or "in_place" (it stays over the
   first frame's spot: a walk cycle on the spot, for game loops).
The raw take is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import PoseMoEError
from ..skeleton import NUM_JOINTS, ROOT
from . import quality
from .bones import height_scale, robust_bone_lengths
from .contacts import ContactSettings, detect_contacts, lock_feet
from .filters import smooth
from .solve import SkeletonMotion, solve_skeleton

ROOT_MODES = ("full", "ground", "in_place")


@dataclass(frozen=True)
class CleanupSettings:
    """smoothing: "one_euro", "savgol" or "none", with strength in [0, 1]; foot_lock: "auto",
    "always" or "never"; blend_frames: fade in and out of each foot pin; root: one of
    :data:`ROOT_MODES`; height: the actor's standing height in metres (None: as captured)."""

    smoothing: str = "one_euro"
    strength: float = 0.5
    foot_lock: str = "auto"
    blend_frames: int = 4
    root: str = "full"
    height: float | None = None
    contacts: ContactSettings = field(default_factory=ContactSettings)


@dataclass
class Cleaned:
    """motion: the rig's animation; joints (N, 17, 3) its joint positions (forward kinematics);
    contacts (N, 2) bool, right and left foot; lengths (17,) metres; scale applied for the height."""

    motion: SkeletonMotion
    joints: np.ndarray
    contacts: np.ndarray
    lengths: np.ndarray
    scale: float


def clean(joints: np.ndarray, fps: float, settings: CleanupSettings = CleanupSettings()) -> Cleaned:
    """joints (N, 17, 3) world metres (Z up, floor at 0), e.g. ``take.joints_world`` -> :class:`Cleaned`."""
    if settings.root not in ROOT_MODES:
        raise PoseMoEError(f"Unknown root mode {settings.root!r}: choose one of {', '.join(ROOT_MODES)}.")
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) == 0:
        raise PoseMoEError(f"Joints must be shaped (frames, 17, 3) with at least one frame, not {joints.shape}.")
    smoothed = smooth(joints, fps, settings.smoothing, settings.strength)
    lengths = robust_bone_lengths(smoothed)
    scale = height_scale(lengths, settings.height)
    # Scaling about the floor point under the first root keeps the take where it was on the floor.
    anchor = np.array([smoothed[0, ROOT, 0], smoothed[0, ROOT, 1], 0.0])
    smoothed = anchor + (smoothed - anchor) * scale
    lengths = lengths * scale
    fitted = solve_skeleton(smoothed, fps, lengths).joint_positions()
    contacts = detect_contacts(fitted, fps, settings.foot_lock, settings.contacts)
    pinned = lock_feet(fitted, contacts, lengths, settings.blend_frames)
    motion = solve_skeleton(pinned, fps, lengths)
    root = motion.root_positions
    if settings.root == "ground":
        root[:, 2] = np.median(root[:, 2])
    elif settings.root == "in_place":
        root[:, :2] = root[0, :2]
    return Cleaned(motion, motion.joint_positions(), contacts, lengths, scale)


def quality_report(raw: np.ndarray, cleaned: Cleaned, fps: float) -> dict[str, dict[str, float]]:
    """Bone-length spread, foot skating (on the cleaned take's contacts) and jitter, before and after."""
    report = {}
    for name, joints in (("raw", np.asarray(raw, dtype=np.float64)), ("cleaned", cleaned.joints)):
        report[name] = {
            "bone_length_spread": quality.bone_length_spread(joints),
            "foot_skating_m_per_s": quality.foot_skating(joints, cleaned.contacts, fps),
            "jitter_m_per_s2": quality.jitter(joints, fps),
        }
    return report
