"""BVH export without Blender.

Axes: BVH files are Y-up by convention (Blender's importer assumes Y up and -Z forward by default), so
our world (X right, Y away from the camera, Z up) is written as BVH ``(x, z, -y)``: X stays, up becomes
Y, and the camera side becomes +Z. Units are metres unless ``scale`` says otherwise (100 for
centimetres). Rotation channels are ``Zrotation Xrotation Yrotation`` in degrees, intrinsic (the
matrix is Rz Rx Ry), the order most BVH readers expect. The character faces the camera's side in its
rest pose, a T-pose with the skeleton's median bone lengths.

Hands: given the take's hands (:func:`posemoe.motion.hands.body_hands`), each wrist joint turns with
its palm and carries three joints per finger instead of its End Site, ``LThumb1`` (the thumb's CMC),
``LThumb2``, ``LThumb3``, ``LIndex1`` (the index MCP) .. ``LPinky3`` and the same with R, each finger
ending in an End Site at its tip; their rest pose is the hand's with straight fingers, palms down.
Without hands, each wrist ends in an End Site.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..files import atomic_output
from ..motion.fingers import SIDES
from ..motion.hands import BodyHands
from ..motion.solve import CHILDREN, SkeletonMotion
from ..skeleton import HEAD, JOINT_NAMES, L_ANKLE, L_WRIST, NUM_JOINTS, R_ANKLE, R_WRIST, ROOT, WRIST

# World (X right, Y forward, Z up) to BVH (X, Y up, Z towards the camera); a proper rotation.
TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# End-site offsets of the leaf joints in the rest pose, world axes, metres: feet forward (-Y), head up,
# hands along the arm.
_END_SITES = {R_ANKLE: (0.0, -0.12, -0.05), L_ANKLE: (0.0, -0.12, -0.05), HEAD: (0.0, 0.0, 0.1),
              L_WRIST: (0.08, 0.0, 0.0), R_WRIST: (-0.08, 0.0, 0.0)}


_FINGER_NAMES = ("Thumb", "Index", "Middle", "Ring", "Pinky")


def _name(j: int) -> str:
    return JOINT_NAMES[j].replace("/", "_").replace(" ", "_")


def write_bvh(path: str | Path, motion: SkeletonMotion, scale: float = 1.0,
              hands: BodyHands | None = None) -> Path:
    """Write ``motion`` as a BVH file, atomically (no partial file on failure). Returns the path.
    ``hands``: the take's hands on ``motion``, written as finger joints under the wrists."""
    path = Path(path)
    lines = ["HIERARCHY"]
    hand_of = {WRIST[side]: k for k, side in enumerate(SIDES)} if hands is not None else {}
    order = []  # what each joint's channels hold, in the order they appear: depth first, as written

    def fingers(k: int, depth: int) -> None:
        prefix = _name(WRIST[SIDES[k]])[0]
        for f, finger in enumerate(_FINGER_NAMES):
            for s in range(3):
                b = 1 + 3 * f + s
                pad = "  " * (depth + s)
                offset = hands.heads[k, b] - (hands.heads[k, b - 1] if s else 0.0)
                offset = TO_BVH @ offset * scale
                lines.append(f"{pad}JOINT {prefix}{finger}{s + 1}")
                lines.append(f"{pad}{{")
                lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
                lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
                order.append(("hand", k, b))
            end = TO_BVH @ hands.rest[k, b][:, 1] * hands.lengths[k, b] * scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}")
            lines.append(f"{pad}  }}")
            for s in (2, 1, 0):
                lines.append(f"{'  ' * (depth + s)}}}")

    def block(j: int, depth: int) -> None:
        pad = "  " * depth
        offset = TO_BVH @ motion.offsets[j] * scale
        if j == ROOT:
            lines.append(f"ROOT {_name(j)}")
        else:
            lines.append(f"{pad}JOINT {_name(j)}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        if j == ROOT:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        order.append(("hand", hand_of[j], 0) if j in hand_of else ("body", j))
        for c in CHILDREN[j]:
            block(c, depth + 1)
        if j in hand_of:
            fingers(hand_of[j], depth + 1)
        elif not CHILDREN[j]:
            end = TO_BVH @ np.asarray(_END_SITES[j]) * scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    block(ROOT, 0)
    n = len(motion.root_positions)
    local = Rotation.from_quat(motion.local_quaternions().reshape(-1, 4)).as_matrix().reshape(n, NUM_JOINTS, 3, 3)
    local = TO_BVH @ local @ TO_BVH.T  # the same rotations seen in BVH axes
    euler = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True).reshape(n, NUM_JOINTS, 3)
    columns = [euler[:, entry[1]] for entry in order if entry[0] == "body"]
    if hands is not None:
        body = Rotation.from_quat(np.asarray(motion.quaternions).reshape(-1, 4)).as_matrix()
        body = body.reshape(n, NUM_JOINTS, 3, 3)
        hand_local = TO_BVH @ hands.local_rotations(body) @ TO_BVH.T
        hand_euler = Rotation.from_matrix(hand_local.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True)
        hand_euler = hand_euler.reshape(n, 2, 16, 3)
        columns = [euler[:, e[1]] if e[0] == "body" else hand_euler[:, e[1], e[2]] for e in order]
    root = motion.root_positions @ TO_BVH.T * scale
    channels = np.concatenate([root, np.stack(columns, axis=1).reshape(n, -1)], axis=1)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in channels]

    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
