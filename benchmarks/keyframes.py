"""Keyframes written per second into Blender: ``blender_addon.rig.write_action`` (bulk ``foreach_set``)
against one ``keyframe_insert`` call per bone and frame.

    python benchmarks/keyframes.py [--frames 1000 10000 100000] [--insert-frames 200] [--repeat 3]
                                   [--markdown FILE] [--json FILE]

Each take keys PoseMoE's 16-bone armature: 4 quaternion channels per bone plus the root bone's 3
location channels, 67 F-curves. ``write_action`` is timed whole: the rotation conversion in NumPy, the
F-curves, the keys, ``fcurve.update()`` and the action assignment. ``keyframe_insert`` is Blender's
usual scripting route (set the pose bone's value, insert its key: 4 keys per call for a quaternion,
3 for the location) and runs on fewer frames, because it is slow. Each figure is the best of the
repeats. The machine is printed with the table: the numbers only hold for the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # blender_addon is not an installed package
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="posemoe-blender-"))  # before bpy

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from blender_addon import rig  # noqa: E402
from posemoe.machine import describe_machine  # noqa: E402
from posemoe.files import atomic_output  # noqa: E402
from posemoe.motion.solve import REST_DIRECTIONS, SkeletonMotion  # noqa: E402
from posemoe.rotations import continuous_quaternions  # noqa: E402
from posemoe.skeleton import NUM_JOINTS  # noqa: E402

# Bone lengths (metres) of an adult, for the bone ending at each joint.
LENGTHS = np.array([0, 0.13, 0.45, 0.42, 0.13, 0.45, 0.42, 0.23, 0.25, 0.11, 0.12, 0.17, 0.28, 0.25, 0.17, 0.28, 0.25])
CHANNELS = len(rig.BONES) * 4 + 3


def synthetic_take(frames: int, fps: float = 30.0) -> SkeletonMotion:
    """Every joint swinging smoothly about all three axes and the root walking: (frames, 17, 4)."""
    rng = np.random.default_rng(0)
    t = np.arange(frames)[:, None, None] / fps
    frequency, phase = rng.uniform(0.3, 1.5, (1, NUM_JOINTS, 3)), rng.uniform(0, 2 * np.pi, (1, NUM_JOINTS, 3))
    rotvec = 0.6 * np.sin(2 * np.pi * frequency * t + phase)
    quats = continuous_quaternions(Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_quat().reshape(frames, NUM_JOINTS, 4))
    root = np.stack([np.zeros(frames), -1.4 * t[:, 0, 0], 0.95 + 0.02 * np.sin(10 * t[:, 0, 0])], axis=1)
    return SkeletonMotion(REST_DIRECTIONS * LENGTHS[:, None], root, quats, fps)


def time_write_action(frames: int, repeat: int) -> float:
    motion = synthetic_take(frames)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = rig.build_armature(motion, "bench")
    best = float("inf")
    for _ in range(repeat):
        clock = time.perf_counter()
        action = rig.write_action(obj, motion, "bench")
        best = min(best, time.perf_counter() - clock)
        obj.animation_data.action = None
        bpy.data.actions.remove(action)  # frees the keys before the next repeat
    return best


def time_keyframe_insert(frames: int, repeat: int) -> float:
    motion = synthetic_take(frames)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = rig.build_armature(motion, "bench")
    rotations, location = rig.pose_keys(obj, motion)
    pose_bones = obj.pose.bones
    best = float("inf")
    for _ in range(repeat):
        clock = time.perf_counter()
        for f in range(frames):
            root = pose_bones[rig.ROOT_BONE]
            root.location = location[f]
            root.keyframe_insert("location", frame=f + 1, group=rig.ROOT_BONE)
            for name, quats in rotations.items():
                bone = pose_bones[name]
                bone.rotation_quaternion = quats[f]
                bone.keyframe_insert("rotation_quaternion", frame=f + 1, group=name)
        best = min(best, time.perf_counter() - clock)
        action = obj.animation_data.action
        obj.animation_data.action = None
        bpy.data.actions.remove(action)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--insert-frames", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    rows = []
    for frames in args.frames:
        rows.append(("`write_action` (foreach_set)", frames, time_write_action(frames, args.repeat)))
        print(f"write_action      {frames:>7} frames: {rows[-1][2]:.3f} s", file=sys.stderr)
    rows.append(("`keyframe_insert` per bone and frame", args.insert_frames,
                 time_keyframe_insert(args.insert_frames, args.repeat)))
    print(f"keyframe_insert   {args.insert_frames:>7} frames: {rows[-1][2]:.3f} s", file=sys.stderr)

    lines = [f"Keys written into Blender {bpy.app.version_string} (bpy module, background) on PoseMoE's "
             f"{len(rig.BONES)}-bone armature: {CHANNELS} F-curves per take ({len(rig.BONES)} bones x 4 quaternion "
             f"channels + 3 root location channels), one key per frame. Machine: {describe_machine()}. "
             f"Best of {args.repeat}.", "",
             "| method | frames | keys | seconds | keys/s |", "|---|---:|---:|---:|---:|"]
    for method, frames, seconds in rows:
        keys = frames * CHANNELS
        lines.append(f"| {method} | {frames:,} | {keys:,} | {seconds:.3f} | {keys / seconds:,.0f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Keyframe writing speed\n\nGenerated by `python benchmarks/keyframes.py --markdown "
                           f"{args.markdown}`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "blender": bpy.app.version_string, "rows": [
                {"method": m, "frames": f, "keys": f * CHANNELS, "seconds": s, "keys_per_s": f * CHANNELS / s}
                for m, f, s in rows]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
