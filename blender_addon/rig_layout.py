"""The bones of PoseMoE's armature as plain data, and its rest pose: no bpy.

What :mod:`rig` builds (its module docstring has the table of bones, parents and rolls), written down
once so the retarget solve, the bone maps and tests can use it without Blender.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posemoe.motion.fingers import SIDES
from posemoe.motion.hands import HAND_BONES
from posemoe.skeleton import (ANKLE_HEIGHT, ANKLES, L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, NOSE,
                              NUM_JOINTS, PARENTS, PELVIS, R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_SHOULDER, R_WRIST,
                              SPINE, THORAX)

_FORWARD, _UP = (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)
#: Leaf bones: tail = head + this vector times the parent bone's length (T-pose, world axes): feet point
#: forward and a little down to the toes, hands continue the forearm.
LEAF_TAILS = {R_ANKLE: (0.0, -0.3, -0.12), L_ANKLE: (0.0, -0.3, -0.12),
              L_WRIST: (0.35, 0.0, 0.0), R_WRIST: (-0.35, 0.0, 0.0)}
# Of several children, the bone ends at the one on the spine.
_MAIN_CHILD = {PELVIS: SPINE, THORAX: NOSE}
_BONE_NAMES = {PELVIS: "pelvis", SPINE: "spine", THORAX: "neck", NOSE: "head",
               R_HIP: "thigh.R", R_KNEE: "shin.R", R_ANKLE: "foot.R", L_HIP: "thigh.L", L_KNEE: "shin.L",
               L_ANKLE: "foot.L", L_SHOULDER: "upper_arm.L", L_ELBOW: "forearm.L", L_WRIST: "hand.L",
               R_SHOULDER: "upper_arm.R", R_ELBOW: "forearm.R", R_WRIST: "hand.R"}
# Parents before children.
_BONE_ORDER = (PELVIS, SPINE, THORAX, NOSE, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE,
               L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST)


@dataclass(frozen=True)
class BoneSpec:
    """One bone: ``joint`` is its head and the joint whose rotation turns it; ``tail`` the child joint at
    its tail, or None for a leaf bone (foot, hand) whose tail is :data:`LEAF_TAILS`; ``roll_z`` the world
    direction its local Z axis is aligned to."""

    name: str
    joint: int
    tail: int | None
    parent: str | None
    connected: bool
    roll_z: tuple[float, float, float]


def _bone_table() -> tuple[BoneSpec, ...]:
    children = {j: [c for c in range(NUM_JOINTS) if PARENTS[c] == j] for j in range(NUM_JOINTS)}
    tails = {j: _MAIN_CHILD.get(j, kids[0]) if kids else None for j, kids in children.items()}
    specs = []
    for j in _BONE_ORDER:
        parent = PARENTS[j]
        specs.append(BoneSpec(
            name=_BONE_NAMES[j], joint=j, tail=tails[j],
            parent=_BONE_NAMES[parent] if parent >= 0 else None,
            connected=parent >= 0 and tails[parent] == j,
            roll_z=_UP if j in ANKLES else _FORWARD,
        ))
    return tuple(specs)


#: The bones of :func:`rig.build_armature`, parents first.
BONES: tuple[BoneSpec, ...] = _bone_table()
BONE_OF_JOINT: dict[int, str] = {b.joint: b.name for b in BONES}
#: For each of the 17 joints, in joint order: (bone name, "head" or "tail") where it sits.
JOINT_ON_BONE: tuple[tuple[str, str], ...] = tuple(
    (BONE_OF_JOINT[j], "head") if j in BONE_OF_JOINT
    else (next(b.name for b in BONES if b.tail == j), "tail")
    for j in range(NUM_JOINTS)
)
ROOT_BONE = BONE_OF_JOINT[PELVIS]
#: Our rig's side suffix per hand (:data:`posemoe.motion.fingers.SIDES` order: left, right).
SIDE_SUFFIX = {"left": ".L", "right": ".R"}


def hand_bone_names(side: str) -> tuple[str, ...]:
    """The 16 bones of one hand on our rig (``hand.L``, ``thumb.01.L``, ... ``f_pinky.03.L``), in
    :data:`posemoe.motion.hands.HAND_BONES` order; the first is the body's hand bone."""
    return tuple(name + SIDE_SUFFIX[side] for name in HAND_BONES)


#: Every finger bone of both hands (not the hand bones themselves), parents first.
FINGER_BONES: tuple[str, ...] = tuple(name for side in SIDES for name in hand_bone_names(side)[1:])


def rest_joint_positions(offsets: np.ndarray) -> np.ndarray:
    """offsets (17, 3) metres -> (17, 3) rest (T-pose) joint positions in armature space, metres, the
    ankles :data:`posemoe.skeleton.ANKLE_HEIGHT` above Z = 0."""
    rest = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        rest[j] = rest[PARENTS[j]] + offsets[j]
    rest[:, 2] += ANKLE_HEIGHT - rest[list(ANKLES), 2].min()
    return rest
