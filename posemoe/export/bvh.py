"""BVH export without Blender.

Axes: BVH files are Y-up by convention (Blender's importer assumes Y up and -Z forward by default), so
our world (X right, Y away from the camera, Z up) is written as BVH ``(x, z, -y)``: X stays, up becomes
Y, and the camera side becomes +Z. Units are metres unless ``scale`` says otherwise (100 for
centimetres). Rotation channels are ``Zrotation Xrotation Yrotation`` in degrees, intrinsic (the
matrix is Rz Rx Ry), the order most BVH readers expect. The character faces the camera's side in its
rest pose, a T-pose with the skeleton's median bone lengths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..files import atomic_output
from ..motion.solve import CHILDREN, SkeletonMotion
from ..skeleton import JOINT_NAMES, NUM_JOINTS

# World (X right, Y forward, Z up) to BVH (X, Y up, Z towards the camera); a proper rotation.
TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# End-site offsets of the leaf joints in the rest pose, world axes, metres: feet forward (-Y), head up,
# hands along the arm.
_END_SITES = {3: (0.0, -0.12, -0.05), 6: (0.0, -0.12, -0.05), 10: (0.0, 0.0, 0.1), 13: (0.08, 0.0, 0.0), 16: (-0.08, 0.0, 0.0)}


def _name(j: int) -> str:
    return JOINT_NAMES[j].replace("/", "_").replace(" ", "_")


def write_bvh(path: str | Path, motion: SkeletonMotion, scale: float = 1.0) -> Path:
    """Write ``motion`` as a BVH file, atomically (no partial file on failure). Returns the path."""
    path = Path(path)
    lines = ["HIERARCHY"]

    def block(j: int, depth: int) -> None:
        pad = "  " * depth
        offset = TO_BVH @ motion.offsets[j] * scale
        if j == 0:
            lines.append(f"ROOT {_name(j)}")
        else:
            lines.append(f"{pad}JOINT {_name(j)}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        if j == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for c in CHILDREN[j]:
            block(c, depth + 1)
        if not CHILDREN[j]:
            end = TO_BVH @ np.asarray(_END_SITES[j]) * scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    block(0, 0)
    order = []  # joints in the order their channels appear: depth first, as written above

    def visit(j: int) -> None:
        order.append(j)
        for c in CHILDREN[j]:
            visit(c)

    visit(0)
    n = len(motion.root_positions)
    local = Rotation.from_quat(motion.local_quaternions().reshape(-1, 4)).as_matrix().reshape(n, NUM_JOINTS, 3, 3)
    local = TO_BVH @ local @ TO_BVH.T  # the same rotations seen in BVH axes
    euler = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True).reshape(n, NUM_JOINTS, 3)
    root = motion.root_positions @ TO_BVH.T * scale
    channels = np.concatenate([root, euler[:, order].reshape(n, -1)], axis=1)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in channels]

    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
