"""The retarget's maths: a solved take's keys for someone else's armature, in NumPy. No bpy.

:mod:`retarget` reads the target's bones from Blender into :class:`Bone` records and writes the keys
this module solves; everything here runs over all frames at once.

The take plays in the armature's own space: armature space stands for our world (Z up, facing -Y,
left = +X; a rig that faces another way in its armature space, e.g. Y up, is turned to match by the
axis-aligned rotation ``G`` found from its hips and shoulders, :func:`facing_rotation`). Moving,
turning or scaling the armature object moves, turns or scales the whole performance with it.

1. Rest-pose compensation, once per bone: ``C`` is the smallest rotation that turns the target bone's
   rest direction (its local Y, ``bone.matrix_local``) onto our rest (T-pose) direction of its
   segment, so an A-pose arm is first lifted into our T-pose. A bone without a segment takes the ``C``
   of its nearest mapped ancestor, so a hand stays in line with its forearm.
2. The bone's wanted orientation in armature space: ``P(t) = Q_joint(t) @ C @ M_rest``, with
   ``Q_joint`` our joint's world rotation from the rest pose. Its Y axis is then exactly our segment's
   direction, and the twist about it is ours.
3. The pose bone's local rotation: ``basis = (parent_rest^-1 @ rest)^-1 @ parent_pose^-1 @ pose``
   (``bone.matrix_local`` of bone and parent). ``parent_pose`` is the wanted ``P`` of a mapped parent;
   an unmapped, unconstrained parent is carried along the chain with its current ``matrix_basis``.
   A parent moved by constraints (Rigify's ``MCH-`` bones) cannot be modelled: its pose is read back
   from Blender at every frame and the keys are solved again (:func:`solve_keys` takes what was read).
4. The root: its hips centre (the middle of the two thigh heads) follows our root trajectory scaled by
   the ratio of the target's leg length (thigh + shin, rest pose, armature units) to ours, the
   vertical relative to standing height, so feet stay on the floor; the root bone's head rides
   rigidly with the hips centre.

Steps 1, 2 and 4 make a :class:`Plan` (:func:`plan`); step 3 is :func:`solve_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from posemoe.motion.solve import SkeletonMotion, shortest_arc
from posemoe.rotations import continuous_quaternions
from posemoe.skeleton import L_ANKLE, L_KNEE, NUM_JOINTS, PELVIS, R_ANKLE, R_KNEE

from .bone_map import ARMS, LEGS, BoneMap
from .rig_layout import rest_joint_positions


@dataclass
class Bone:
    """One bone of the target, as the solve needs it."""

    name: str
    parent: str | None
    rest: np.ndarray  # (4, 4) bone.matrix_local, armature space
    basis: np.ndarray  # (4, 4) pose_bone.matrix_basis now (for unmapped bones carried along)
    length: float
    constrained: bool  # moved by constraints or drivers: its pose must be read back from Blender


def depth(table: dict[str, Bone], name: str) -> int:
    """How many bones lie above ``name`` in the armature."""
    level = 0
    while table[name].parent is not None:
        name, level = table[name].parent, level + 1
    return level


@dataclass
class Plan:
    """Everything fixed before the keys: the mapped bones present, parents first; their wanted
    orientations and the root's wanted head; the scale (armature units per take metre); ``G``."""

    order: list[str]
    wanted: dict[str, np.ndarray]  # (N, 3, 3) armature space
    root_head: np.ndarray  # (N, 3) armature space
    scale: float
    facing: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.root_head)

    def drive(self, wanted: dict[str, np.ndarray], table: dict[str, Bone]) -> None:
        """Drive more bones, or the same bones otherwise: {bone: (N, 3, 3) wanted orientation, armature
        space}, bones given parents first. The order stays parents first (stable: bones already
        planned keep their places, new ones come after their parents)."""
        for bone, orientation in wanted.items():
            self.wanted[bone] = orientation
            if bone not in self.order:
                self.order.append(bone)
        self.order.sort(key=lambda b: depth(table, b))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def facing_rotation(bone_map: BoneMap, heads: dict[str, np.ndarray]) -> np.ndarray:
    """(3, 3) the rotation from our world to the armature space the rig stands in, snapped to the
    nearest axis-aligned rotation (identity for a rig that stands Z up facing -Y, as Blender's do).
    Found from the rig's rest pose, ``heads`` {bone: (3,) rest head, armature space}: its left is from
    the right to the left thigh head, its up from the hips centre to the middle of the upper arms' heads."""
    head = {b: heads[b] for b in bone_map.bones if b in heads}
    right, left = bone_map.bone_of_segment(LEGS["thigh.R"]), bone_map.bone_of_segment(LEGS["thigh.L"])
    arms = [a for a in (bone_map.bone_of_segment(s) for s in ARMS.values()) if a in head]
    if right not in head or left not in head or not arms:
        return np.eye(3)
    hips = (head[right] + head[left]) / 2
    x = _unit(head[left] - head[right])
    z = np.mean([head[a] for a in arms], axis=0) - hips
    z = _unit(z - (z @ x) * x)
    frame = np.stack([x, np.cross(z, x), z], axis=1)  # columns: where our +X, +Y, +Z point
    snapped = np.zeros((3, 3))
    for col in range(3):
        row = int(np.argmax(np.abs(frame[:, col])))
        snapped[row, col] = np.sign(frame[row, col])
    ok = np.allclose(snapped @ snapped.T, np.eye(3)) and np.linalg.det(snapped) > 0
    return snapped if ok else frame


def plan(motion: SkeletonMotion, bone_map: BoneMap, table: dict[str, Bone], facing: np.ndarray) -> Plan:
    """The wanted orientation of every mapped bone present, and the root's wanted head (module
    docstring, steps 1, 2 and 4)."""
    present = [b for b in bone_map.bones if b in table]
    order = sorted(present, key=lambda b: depth(table, b))
    offsets = np.asarray(motion.offsets, dtype=np.float64)
    n = len(motion.quaternions)
    # Our world rotations turned into the rig's armature space: G Q G^T.
    q = Rotation.from_quat(np.asarray(motion.quaternions, dtype=np.float64).reshape(-1, 4)).as_matrix()
    q = facing @ q.reshape(n, NUM_JOINTS, 3, 3) @ facing.T
    align: dict[str, np.ndarray] = {}
    wanted = {}
    for b in order:
        driver, rest = bone_map.bones[b], table[b].rest[:3, :3]
        if driver.segment is not None:
            ours = facing @ offsets[driver.segment[1]]
            align[b] = shortest_arc(rest[:, 1], ours[None]).as_matrix()[0]
        else:  # keep the rest angle to the nearest mapped bone above
            up = table[b].parent
            while up is not None and up not in align:
                up = table[up].parent
            align[b] = align[up] if up is not None else np.eye(3)
        wanted[b] = q[:, driver.joint] @ (align[b] @ rest)

    # Legs: thigh = head of thigh to head of shin; shin = head of shin to head of foot (or its tail).
    def leg(thigh_seg, shin_seg, foot_joint) -> float:
        thigh, shin = table[bone_map.bone_of_segment(thigh_seg)], table[bone_map.bone_of_segment(shin_seg)]
        foot = next((table[x] for x in present if bone_map.bones[x].joint == foot_joint), None)
        end = foot.rest[:3, 3] if foot is not None else shin.rest[:3, 3] + shin.rest[:3, 1] * shin.length
        return float(np.linalg.norm(shin.rest[:3, 3] - thigh.rest[:3, 3]) + np.linalg.norm(end - shin.rest[:3, 3]))

    target_leg = (leg(LEGS["thigh.R"], LEGS["shin.R"], R_ANKLE) + leg(LEGS["thigh.L"], LEGS["shin.L"], L_ANKLE)) / 2
    our_leg = np.mean([np.linalg.norm(offsets[j]) for j in (R_KNEE, R_ANKLE, L_KNEE, L_ANKLE)]) * 2
    scale = float(target_leg / our_leg)

    # The hips centre follows our root, scaled; standing height maps onto standing height.
    thighs = [bone_map.bone_of_segment(LEGS[s]) for s in ("thigh.R", "thigh.L")]
    hips_rest = (table[thighs[0]].rest[:3, 3] + table[thighs[1]].rest[:3, 3]) / 2
    our_rest_root = facing @ np.array([0.0, 0.0, rest_joint_positions(offsets)[PELVIS, 2]])
    roots = np.asarray(motion.root_positions, dtype=np.float64) @ facing.T
    hips = hips_rest + scale * (roots - our_rest_root)
    root = bone_map.root
    turn = wanted[root] @ table[root].rest[:3, :3].T  # the root bone's rotation from its rest, per frame
    root_head = hips + turn @ (table[root].rest[:3, 3] - hips_rest)
    return Plan(order, wanted, root_head, scale, facing)


def solve_keys(plan: Plan, bone_map: BoneMap, table: dict[str, Bone],
               read_back: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray, set[str], set[str]]:
    """Local keys from the wanted orientations (module docstring, step 3).

    ``read_back`` {constrained bone: (N, 4, 4) or (4, 4) pose matrix read from Blender}; a constrained
    bone not in it counts as resting. Returns ({bone: (N, 4) quaternion w, x, y, z, sign-continuous},
    (N, 3) root location, the mapped bones whose parent chain passes a constrained bone, those
    constrained bones)."""
    n = plan.frames
    poses: dict[str, np.ndarray] = {}  # (N, 4, 4) or (4, 4) pose matrices, armature space
    through_constraint: dict[str, bool] = {}
    constrained: set[str] = set()

    def pose(name: str) -> np.ndarray:
        if name in poses:
            return poses[name]
        bone = table[name]
        if bone.constrained:
            poses[name], through_constraint[name] = read_back.get(name, bone.rest), True
            constrained.add(name)
            return poses[name]
        parent = bone.parent
        if parent is None:
            poses[name], through_constraint[name] = bone.rest @ bone.basis, False
        else:
            local = np.linalg.inv(table[parent].rest) @ bone.rest @ bone.basis
            poses[name], through_constraint[name] = pose(parent) @ local, through_constraint[parent]
        return poses[name]

    rotations, location, dependent = {}, np.zeros((n, 3)), set()
    for name in plan.order:
        bone = table[name]
        parent = bone.parent
        parent_pose = pose(parent) if parent is not None else np.eye(4)
        if parent is not None and through_constraint[parent]:
            dependent.add(name)
        rel = np.linalg.inv(table[parent].rest) @ bone.rest if parent is not None else bone.rest
        to_local = np.linalg.inv(rel) @ np.linalg.inv(parent_pose)  # (N, 4, 4) or (4, 4)
        to_local = np.broadcast_to(to_local, (n, 4, 4))
        wanted = np.zeros((n, 4, 4))
        wanted[:, :3, :3], wanted[:, 3, 3] = plan.wanted[name], 1.0
        if name == bone_map.root:
            wanted[:, :3, 3] = plan.root_head
        else:  # the head stays where the chain puts it, with the bone's current location
            head = np.broadcast_to(parent_pose, (n, 4, 4)) @ rel @ np.append(bone.basis[:3, 3], 1.0)
            wanted[:, :3, 3] = head[:, :3]
        poses[name], through_constraint[name] = wanted, name in dependent
        basis = to_local @ wanted
        # Scale in a parent's pose would leave the rotation part unnormalised: orthonormalise.
        quat = Rotation.from_matrix(basis[:, :3, :3]).as_quat()[:, [3, 0, 1, 2]]
        rotations[name] = continuous_quaternions(quat, first_w_positive=True)
        if name == bone_map.root:
            location = basis[:, :3, 3].copy()
    return rotations, location, dependent, constrained
