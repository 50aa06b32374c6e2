"""The 17-joint Human3.6M skeleton: names, parents, bones and left/right pairs.

Every array in the project that has a joint axis uses this order.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "Hip",  # pelvis, the root
    "RHip",
    "RKnee",
    "RFoot",
    "LHip",
    "LKnee",
    "LFoot",
    "Spine",
    "Thorax",
    "Neck/Nose",
    "Head",
    "LShoulder",
    "LElbow",
    "LWrist",
    "RShoulder",
    "RElbow",
    "RWrist",
)
NUM_JOINTS = len(JOINT_NAMES)

# Each joint by name, so code reads ``joints[:, L_ANKLE]`` rather than ``joints[:, 6]``. Human3.6M's
# "Foot" is the ankle joint and "Neck/Nose" the nose.
PELVIS, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, SPINE, THORAX, NOSE, HEAD = range(11)
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = range(11, 17)
ROOT = PELVIS

#: Left/right pairs, right first (the joint order's own: the right leg comes before the left); and
#: per side by name, for code that walks both hands.
HIPS: tuple[int, int] = (R_HIP, L_HIP)
KNEES: tuple[int, int] = (R_KNEE, L_KNEE)
ANKLES: tuple[int, int] = (R_ANKLE, L_ANKLE)
SHOULDERS: tuple[int, int] = (R_SHOULDER, L_SHOULDER)
#: The limbs' joints from the body outwards, (right, left): hip, knee, ankle; shoulder, elbow, wrist.
LEGS: tuple[tuple[int, int, int], tuple[int, int, int]] = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))
ARMS: tuple[tuple[int, int, int], tuple[int, int, int]] = (
    (R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST))
WRIST: dict[str, int] = {"left": L_WRIST, "right": R_WRIST}
ELBOW: dict[str, int] = {"left": L_ELBOW, "right": R_ELBOW}

#: Metres from the sole to the ankle joint: where the floor lies under a planted foot.
ANKLE_HEIGHT = 0.08
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

LEFT_JOINTS: tuple[int, ...] = (L_HIP, L_KNEE, L_ANKLE, L_SHOULDER, L_ELBOW, L_WRIST)
RIGHT_JOINTS: tuple[int, ...] = (R_HIP, R_KNEE, R_ANKLE, R_SHOULDER, R_ELBOW, R_WRIST)

#: Index permutation that swaps every left joint with its right twin (an involution).
FLIP_PERMUTATION: np.ndarray = np.arange(NUM_JOINTS)
FLIP_PERMUTATION[list(LEFT_JOINTS)] = RIGHT_JOINTS
FLIP_PERMUTATION[list(RIGHT_JOINTS)] = LEFT_JOINTS

#: (parent, child) for every bone, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)


def joint_index(name: str) -> int:
    """Index of a joint by its name in :data:`JOINT_NAMES`."""
    return JOINT_NAMES.index(name)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of every bone.

    joints: (..., 17, 3) positions in any unit. Returns (..., 16) lengths in that unit,
    in the order of :data:`BONES`.
    """
    parents = [p for p, _ in BONES]
    children = [c for _, c in BONES]
    return np.linalg.norm(joints[..., children, :] - joints[..., parents, :], axis=-1)


def flip_horizontal(pose: np.ndarray) -> np.ndarray:
    """Mirror a pose left-right: negate x and swap left and right joints.

    pose: (..., 17, C) with x in channel 0, either camera-space metres (C=3) or centred
    normalised screen coordinates (C>=2, x in [-1, 1] around the image centre). Returns a new array.
    """
    out = pose[..., FLIP_PERMUTATION, :].copy()
    out[..., 0] *= -1
    return out
