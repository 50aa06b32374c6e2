"""Joint positions to a skeleton with constant bone lengths and per-joint rotations (forward kinematics).

The rest pose is a T-pose in our world axes (Z up, the character facing -Y, so its left is +X, as
Blender's rigs stand), with one length per bone: the median over the take. Each joint's world
rotation turns the rest directions of its child bones onto the observed ones
(``scipy``'s ``Rotation.align_vectors``: exact for one child, a least-squares fit for the pelvis and
thorax, whose three children also fix the twist). A joint with one child turns by the smallest
rotation that aims its bone, so its twist follows its parent; the limb-twist solve from neighbouring
joints belongs to the clean-up stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..skeleton import NUM_JOINTS, PARENTS

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
        local[:, 0] = self.quaternions[:, 0]
        return local

    def joint_positions(self) -> np.ndarray:
        """Forward kinematics: (N, 17, 3) world metres of the constant-length skeleton."""
        n = len(self.quaternions)
        out = np.zeros((n, NUM_JOINTS, 3))
        out[:, 0] = self.root_positions
        for j in range(1, NUM_JOINTS):
            p = PARENTS[j]
            out[:, j] = out[:, p] + Rotation.from_quat(self.quaternions[:, p]).apply(self.offsets[j])
        return out


def median_bone_lengths(joints: np.ndarray) -> np.ndarray:
    """joints (N, 17, 3) metres -> (17,) length of the bone ending at each joint (root: 0)."""
    lengths = np.zeros(NUM_JOINTS)
    for j in range(1, NUM_JOINTS):
        lengths[j] = np.median(np.linalg.norm(joints[:, j] - joints[:, PARENTS[j]], axis=-1))
    return lengths


def shortest_arc(a: np.ndarray, b: np.ndarray) -> Rotation:
    """The smallest rotations turning direction a (3,) onto directions b (N, 3); any lengths."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    angle = np.arctan2(sin, b @ a)
    # Opposite directions: any axis perpendicular to a will do.
    fallback = np.cross(a, (1.0, 0.0, 0.0) if abs(a[0]) < 0.9 else (0.0, 1.0, 0.0))
    axis = np.where(sin[:, None] > 1e-9, axis / np.maximum(sin, 1e-12)[:, None], fallback / np.linalg.norm(fallback))
    return Rotation.from_rotvec(axis * angle[:, None])


def solve_skeleton(joints: np.ndarray, fps: float) -> SkeletonMotion:
    """Fit the constant-length skeleton to joint positions.

    joints (N, 17, 3) world metres (Z up). Returns a :class:`SkeletonMotion` whose quaternions are
    sign-continuous from frame to frame.
    """
    joints = np.asarray(joints, dtype=np.float64)
    n = len(joints)
    offsets = REST_DIRECTIONS * median_bone_lengths(joints)[:, None]
    quats = np.tile(np.array([0.0, 0.0, 0.0, 1.0]), (n, NUM_JOINTS, 1))
    for j in range(NUM_JOINTS):
        children = CHILDREN[j]
        if not children:
            quats[:, j] = quats[:, PARENTS[j]]  # a leaf keeps its parent's orientation
            continue
        observed = np.stack([joints[:, c] - joints[:, j] for c in children], axis=1)  # (N, k, 3)
        rest = np.stack([REST_DIRECTIONS[c] for c in children])  # (k, 3)
        if len(children) == 1:
            quats[:, j] = shortest_arc(rest[0], observed[:, 0]).as_quat()
        else:
            for t in range(n):
                quats[t, j] = Rotation.align_vectors(observed[t], rest)[0].as_quat()
    # q and -q are the same rotation; keep neighbours in one hemisphere so interpolation is short.
    flip = np.cumsum(np.einsum("tjc,tjc->tj", quats[1:], quats[:-1]) < 0, axis=0) % 2 == 1
    quats[1:][flip] *= -1
    return SkeletonMotion(offsets, joints[:, 0].copy(), quats, fps)
