"""Joint positions to a skeleton with constant bone lengths and per-joint rotations (forward kinematics).

The rest pose is a T-pose in our world axes (Z up, the character facing -Y, so its left is +X, as
Blender's rigs stand), one length per bone (:mod:`posemoe.motion.bones`). Each joint's world rotation
maps a rest frame onto an observed frame built from two directions:
- the primary one, the bone to its child, which the rotation reproduces exactly;
- a secondary one that fixes the twist about the bone, taken from neighbouring joints: the lateral
  axis of the hips or shoulders for the torso and neck, and the bend plane of the knee or elbow for a
  limb (so thigh and shin, upper arm and forearm, twist together like a hinge). A limb held straight
  has no bend plane; there the twist comes from the torso, blended in as the bend vanishes, so limbs
  never spin.
Quaternions are made sign-continuous from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..rotations import continuous_quaternions
from ..skeleton import (
    ARMS, HEAD, L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, LEGS, NOSE, NUM_JOINTS, PARENTS, PELVIS,
    R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_SHOULDER, R_WRIST, ROOT, SPINE, THORAX,
)
from .bones import robust_bone_lengths

# Unit rest directions of the bone that ends at each joint (T-pose, Z up, facing -Y, left = +X).
# Human3.6M's thorax sits 5 cm above the line between the shoulders (see detect/layout.py), so the
# collar bones slope down by about 21 degrees.
_DOWN, _UP, _LEFT, _RIGHT = (0, 0, -1), (0, 0, 1), (1, 0, 0), (-1, 0, 0)
_LEFT_COLLAR, _RIGHT_COLLAR = (0.933, 0, -0.36), (-0.933, 0, -0.36)
REST_DIRECTIONS = np.array([
    (0, 0, 0),  # Hip (root)
    _RIGHT, _DOWN, _DOWN,  # RHip RKnee RFoot
    _LEFT, _DOWN, _DOWN,  # LHip LKnee LFoot
    _UP, _UP, _UP, _UP,  # Spine Thorax Neck/Nose Head
    _LEFT_COLLAR, _LEFT, _LEFT,  # LShoulder LElbow LWrist
    _RIGHT_COLLAR, _RIGHT, _RIGHT,  # RShoulder RElbow RWrist
], dtype=np.float64)
REST_DIRECTIONS /= np.maximum(np.linalg.norm(REST_DIRECTIONS, axis=1, keepdims=True), 1e-12)

CHILDREN = tuple(tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS))

# joint: (child that gives the primary direction, rest secondary direction). Limbs' secondary is the
# bend normal (bone x next bone) of a natural bend: knees bend backwards (+Y), elbows forwards (-Y).
_FRAMES = {
    PELVIS: (SPINE, (1, 0, 0)), SPINE: (THORAX, (1, 0, 0)), THORAX: (NOSE, (1, 0, 0)), NOSE: (HEAD, (1, 0, 0)),
    R_HIP: (R_KNEE, (1, 0, 0)), R_KNEE: (R_ANKLE, (1, 0, 0)),
    L_HIP: (L_KNEE, (1, 0, 0)), L_KNEE: (L_ANKLE, (1, 0, 0)),
    L_SHOULDER: (L_ELBOW, (0, 0, -1)), L_ELBOW: (L_WRIST, (0, 0, -1)),
    R_SHOULDER: (R_ELBOW, (0, 0, 1)), R_ELBOW: (R_WRIST, (0, 0, 1)),
}
# Limb joints: (upper joint, middle joint, end joint) of the limb whose bend plane they use.
(_R_LEG, _L_LEG), (_R_ARM, _L_ARM) = LEGS, ARMS
_LIMB_OF = {R_HIP: _R_LEG, R_KNEE: _R_LEG, L_HIP: _L_LEG, L_KNEE: _L_LEG,
            L_SHOULDER: _L_ARM, L_ELBOW: _L_ARM, R_SHOULDER: _R_ARM, R_ELBOW: _R_ARM}
_STRAIGHT = np.sin(np.radians(20.0))  # below this bend, the torso's twist takes over


@dataclass
class SkeletonMotion:
    """offsets (17, 3) metres: each joint's rest position relative to its parent (root: zeros);
    root_positions (N, 3) world metres; quaternions (N, 17, 4) each joint's world rotation from the
    rest pose, scalar last (scipy's order); fps."""

    offsets: np.ndarray
    root_positions: np.ndarray
    quaternions: np.ndarray
    fps: float

    def local_quaternions(self) -> np.ndarray:
        """(N, 17, 4) each joint's rotation relative to its parent (root: world), scalar last."""
        n = len(self.quaternions)
        world = Rotation.from_quat(self.quaternions.reshape(-1, 4))
        parent = np.array([max(p, 0) for p in PARENTS])
        parent_world = Rotation.from_quat(self.quaternions[:, parent].reshape(-1, 4))
        local = (parent_world.inv() * world).as_quat().reshape(n, NUM_JOINTS, 4)
        local[:, ROOT] = self.quaternions[:, ROOT]
        return local

    def joint_positions(self) -> np.ndarray:
        """Forward kinematics: (N, 17, 3) world metres of the constant-length skeleton."""
        n = len(self.quaternions)
        out = np.zeros((n, NUM_JOINTS, 3))
        out[:, ROOT] = self.root_positions
        for j in range(1, NUM_JOINTS):
            p = PARENTS[j]
            out[:, j] = out[:, p] + Rotation.from_quat(self.quaternions[:, p]).apply(self.offsets[j])
        return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(..., 3) primary and secondary directions -> (..., 3, 3) orthonormal frames, columns
    (primary, secondary made perpendicular, their cross product)."""
    p = _unit(primary)
    s = _unit(secondary - (secondary * p).sum(-1, keepdims=True) * p)
    return np.stack([p, s, np.cross(p, s)], axis=-1)


def shortest_arc(a: np.ndarray, b: np.ndarray) -> Rotation:
    """The smallest rotations turning direction a (3,) onto directions b (N, 3); any lengths."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = _unit(np.asarray(b, dtype=np.float64))
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    angle = np.arctan2(sin, b @ a)
    # Opposite directions: any axis perpendicular to a will do.
    fallback = np.cross(a, (1.0, 0.0, 0.0) if abs(a[0]) < 0.9 else (0.0, 1.0, 0.0))
    axis = np.where(sin[:, None] > 1e-9, axis / np.maximum(sin, 1e-12)[:, None], fallback / np.linalg.norm(fallback))
    return Rotation.from_rotvec(axis * angle[:, None])


def solve_skeleton(joints: np.ndarray, fps: float, lengths: np.ndarray | None = None) -> SkeletonMotion:
    """Fit the constant-length skeleton to joint positions.

    joints (N, 17, 3) world metres (Z up); lengths (17,) metres of the bone ending at each joint
    (default: :func:`~posemoe.motion.bones.robust_bone_lengths` of ``joints``). Returns a
    :class:`SkeletonMotion` with sign-continuous quaternions.
    """
    joints = np.asarray(joints, dtype=np.float64)
    n = len(joints)
    lengths = robust_bone_lengths(joints) if lengths is None else np.asarray(lengths, dtype=np.float64)
    offsets = REST_DIRECTIONS * lengths[:, None]
    hips = joints[:, L_HIP] - joints[:, R_HIP]
    shoulders = joints[:, L_SHOULDER] - joints[:, R_SHOULDER]
    matrices = np.tile(np.eye(3), (n, NUM_JOINTS, 1, 1))
    for j in range(NUM_JOINTS):  # parents come before children in our joint order
        if j not in _FRAMES:
            matrices[:, j] = matrices[:, PARENTS[j]]  # a leaf keeps its parent's orientation
            continue
        child, rest_secondary = _FRAMES[j]
        primary = joints[:, child] - joints[:, j]
        if j in (PELVIS, SPINE):
            secondary = hips if j == PELVIS else hips + shoulders
        elif j in (THORAX, NOSE):
            secondary = shoulders
        else:
            top, middle, end = _LIMB_OF[j]
            bend = np.cross(_unit(joints[:, middle] - joints[:, top]), _unit(joints[:, end] - joints[:, middle]))
            # The torso's matching axis, carried by the limb's parent: what a straight limb twists with.
            anchor = matrices[:, PARENTS[top]] @ np.asarray(rest_secondary, dtype=np.float64)
            weight = np.clip(np.linalg.norm(bend, axis=-1, keepdims=True) / _STRAIGHT, 0.0, 1.0)
            secondary = weight * _unit(bend) + (1.0 - weight) * anchor
        rest = _frame(REST_DIRECTIONS[child], np.asarray(rest_secondary, dtype=np.float64))
        matrices[:, j] = _frame(primary, secondary) @ rest.T
    quats = Rotation.from_matrix(matrices.reshape(-1, 3, 3)).as_quat().reshape(n, NUM_JOINTS, 4)
    return SkeletonMotion(offsets, joints[:, ROOT].copy(), continuous_quaternions(quats), fps)
