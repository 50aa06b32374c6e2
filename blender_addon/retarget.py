"""A solved take on someone else's armature: Rigify, Mixamo or any rig a bone map describes.

:mod:`rig` keys our own armature, whose bones are our skeleton's. Here the target is an armature we did
not build, with its own bone names, proportions, rest pose (a T-pose, an A-pose, bones at any angle)
and rolls. A **bone map** (JSON, shipped in ``maps/``) says, for every target bone it drives:

- ``joint``: our joint whose world rotation turns the bone (``posemoe.skeleton.JOINT_NAMES``);
- ``segment`` (optional): the pair of our joints, ``[joint, child]``, whose direction the bone takes.
  Bones without one (feet, hands, clavicles, Rigify's torso controls) keep their rest angle to the
  nearest mapped bone above them;

plus the ``root`` bone (it also gets ``location``), the ``essential`` bones without which there is
nothing sensible to key, optional constant custom ``properties`` to key (Rigify's IK/FK switches), and
an optional ``fingers`` table, {target bone: our hand or finger bone}, which a take with hands keys
(the finger work lives in :mod:`fingers`).

Shipped maps: ``rigify_metarig`` (the human meta-rig, ``Add > Armature > Human (Meta-Rig)``),
``rigify_fk`` (the FK controls of a rig Rigify generated from it) and ``mixamo`` (``mixamorig:Hips``
and friends; any other prefix, or none, is accepted). :func:`detect_map` picks the one that fits.

The maths, per frame and in NumPy over all frames at once
---------------------------------------------------------
The take plays in the armature's own space: armature space stands for our world (Z up, facing -Y,
left = +X; a rig that faces another way in its armature space, e.g. Y up, is turned to match by the
axis-aligned rotation ``G`` found from its hips and shoulders). Moving, turning or scaling the
armature object moves, turns or scales the whole performance with it.

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
   from Blender at every frame, the keys are solved again, and this repeats until they stop changing
   (each round settles one more level of constraint dependencies; rigs without such parents need none).
4. The root: its hips centre (the middle of the two thigh heads) follows our root trajectory scaled by
   the ratio of the target's leg length (thigh + shin, rest pose, armature units) to ours, the
   vertical relative to standing height, so feet stay on the floor; the root bone's head rides
   rigidly with the hips centre.

Reading back costs one scene evaluation per frame per round: a rig Rigify generated from the full human
meta-rig (about 700 bones) settles in 4 rounds at about 4 ms a frame each: 6 s for 400 frames here;
the meta-rig and Mixamo rigs need no rounds (well under a second).

Limits: a mapped bone with constraints of its own, drivers or no inherited rotation may not follow its
keys (the report warns); NLA strips under the new action are not taken into account.

Keys: ``rotation_quaternion`` (w, x, y, z), sign-continuous, LINEAR, one per take frame from
``frame_start``, on every mapped bone, ``location`` on the root, into one new action (a slot, a layer,
a keyframe strip on 4.4+, as :func:`rig.write_action`). Unmapped bones are not keyed or changed. Any
error leaves the scene as it was: no new action, the old action and slot assigned, rotation modes and
values and the current frame as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import bpy
import numpy as np
from scipy.spatial.transform import Rotation

from posemoe import PoseMoEError
from posemoe.motion.solve import SkeletonMotion, shortest_arc
from posemoe.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS

from . import fingers
from .rig import fcurve_factory, fill_fcurve, interpolation_value, rest_joint_positions

#: The folder of the shipped bone maps (``<name>.json``).
MAPS_DIR = Path(__file__).resolve().parent / "maps"
#: The shipped maps, in the order :func:`detect_map` prefers them on a tie.
MAP_NAMES: tuple[str, ...] = ("rigify_fk", "rigify_metarig", "mixamo")
SUPPORTED_RIGS = ("Rigify's human meta-rig, a rig Rigify generated from it (its FK controls), "
                  "Mixamo (mixamorig: or any other prefix, or none)")

# Characters that end a name prefix: "mixamorig:Hips", "Armature_Hips", "ORG-spine", "rig|Hips".
_SEPARATORS = ":_-|. "
# Both thighs and both shins must be driven along their segments: they give the leg length and the
# hips centre, and with them the root's path.
_LEGS = {"thigh.R": (1, 2), "shin.R": (2, 3), "thigh.L": (4, 5), "shin.L": (5, 6)}
_ARMS = {"upper_arm.R": (14, 15), "upper_arm.L": (11, 12)}
# Rounds of reading constrained parents back from Blender, and the change (quaternion components) at
# which the keys count as settled: float32 keys read back carry about 1e-7.
_MAX_ROUNDS = 8
_SETTLED = 1e-5


# ----------------------------------------------------------------------------------------------------
# Bone maps.

@dataclass(frozen=True)
class Driver:
    """What drives one target bone: ``joint`` (index into JOINT_NAMES) whose world rotation turns it,
    and ``segment`` (joint, child joint) whose direction it takes, or None to keep its rest angle to
    the nearest mapped bone above it."""

    joint: int
    segment: tuple[int, int] | None = None


@dataclass(frozen=True)
class BoneMap:
    """A bone map: ``bones`` {target bone name: Driver}, ``root`` (gets location), ``essential`` (the
    bones a retarget cannot do without), ``properties`` ((bone, custom property, value) keyed once),
    ``prefix`` (what :func:`match_map` found in front of the names; already part of every name here),
    ``fingers`` {target bone: our hand or finger bone} (keyed when the take has hands)."""

    name: str
    description: str
    root: str
    bones: dict[str, Driver]
    essential: tuple[str, ...]
    properties: tuple[tuple[str, str, float], ...] = ()
    prefix: str = ""
    fingers: dict[str, str] = field(default_factory=dict)

    def with_prefix(self, prefix: str) -> BoneMap:
        """The same map with ``prefix`` put in front of every bone name."""
        return replace(self, prefix=self.prefix + prefix, root=prefix + self.root,
                       bones={prefix + k: v for k, v in self.bones.items()},
                       essential=tuple(prefix + b for b in self.essential),
                       properties=tuple((prefix + b, p, v) for b, p, v in self.properties),
                       fingers={prefix + k: v for k, v in self.fingers.items()})

    def bone_of_segment(self, segment: tuple[int, int]) -> str | None:
        """The first mapped bone that takes ``segment``'s direction, or None."""
        return next((b for b, d in self.bones.items() if d.segment == segment), None)


def _joint(name, where: str) -> int:
    if name not in JOINT_NAMES:
        raise PoseMoEError(f"Bone map {where}: '{name}' is not one of our joints ({', '.join(JOINT_NAMES)}); "
                           "fix the map.")
    return JOINT_NAMES.index(name)


def parse_map(data: Mapping, source: str = "bone map") -> BoneMap:
    """A bone map from its JSON form (see ``maps/*.json``); raises PoseMoEError saying what is wrong."""
    if not isinstance(data, Mapping) or not isinstance(data.get("bones"), Mapping) or not data["bones"]:
        raise PoseMoEError(f"{source} has no 'bones' table; write it like blender_addon/maps/mixamo.json.")
    bones = {}
    for bone, entry in data["bones"].items():
        if not isinstance(entry, Mapping) or "joint" not in entry:
            raise PoseMoEError(f"{source}: bone '{bone}' needs a 'joint'; write it like "
                               "blender_addon/maps/mixamo.json.")
        joint = _joint(entry["joint"], f"{source}, bone '{bone}'")
        segment = None
        if entry.get("segment") is not None:
            seg = entry["segment"]
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise PoseMoEError(f"{source}: the segment of bone '{bone}' must be two joint names.")
            segment = (_joint(seg[0], f"{source}, bone '{bone}'"), _joint(seg[1], f"{source}, bone '{bone}'"))
            # The joint's rotation turns exactly the segments from it to its children.
            if segment[0] != joint or PARENTS[segment[1]] != joint:
                raise PoseMoEError(f"{source}: bone '{bone}' has segment {seg} but joint '{entry['joint']}'; "
                                   "a segment runs from the bone's joint to one of that joint's children.")
        bones[str(bone)] = Driver(joint, segment)
    root = data.get("root")
    if root not in bones:
        raise PoseMoEError(f"{source}: its root '{root}' is not one of its bones; name the hips bone as root.")
    essential = data.get("essential", [])
    if not isinstance(essential, (list, tuple)):
        raise PoseMoEError(f"{source}: 'essential' must be a list of bone names.")
    essential = tuple(essential)
    unknown = [b for b in essential if b not in bones]
    if unknown:
        raise PoseMoEError(f"{source}: essential bones {', '.join(unknown)} are not in its 'bones'; fix the map.")
    drivers = {d.segment for d in bones.values()}
    lacking = [name for name, seg in _LEGS.items() if seg not in drivers]
    if lacking:
        raise PoseMoEError(f"{source} drives no bone along our {', '.join(lacking)}; both thighs and shins "
                           "need a 'segment' (they give the leg length for the root motion).")
    properties = []
    for item in data.get("properties", ()):
        try:
            properties.append((str(item["bone"]), str(item["property"]), float(item["value"])))
        except (KeyError, TypeError, ValueError):
            raise PoseMoEError(f"{source}: each of its 'properties' needs 'bone', 'property' and a number "
                               "'value'.") from None
    return BoneMap(str(data.get("name", source)), str(data.get("description", "")), root, bones,
                   essential, tuple(properties), fingers=fingers.parse_fingers(data, source))


def load_map(name_or_path: str | Path) -> BoneMap:
    """A shipped map by name (one of :data:`MAP_NAMES`) or a JSON file by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = MAPS_DIR / f"{name_or_path}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseMoEError(f"No bone map '{name_or_path}'; use one of {', '.join(MAP_NAMES)} or the path of a "
                           "JSON bone map.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PoseMoEError(f"Bone map {path} cannot be read ({error}); fix or replace the file.") from None
    return parse_map(data, f"Bone map '{path.stem}'")


def _prefixes(names: set[str], map_names) -> set[str]:
    """Every prefix that turns some map name into a bone name: "" or text ending in a separator."""
    found = {""}
    for name in names:
        for m in map_names:
            cut = len(name) - len(m)
            if cut > 0 and name.endswith(m) and name[cut - 1] in _SEPARATORS:
                found.add(name[:cut])
    return found


def match_map(bone_map: BoneMap, armature_obj) -> tuple[BoneMap, list[str]]:
    """``bone_map`` with the prefix that finds most of its bones in the armature (ties: the shortest,
    so "spine" beats "ORG-spine"), and the list of its (prefixed) bones the armature lacks."""
    names = set(armature_obj.data.bones.keys())
    best = max(_prefixes(names, bone_map.bones),
               key=lambda p: (sum(p + m in names for m in bone_map.bones), -len(p), p))
    resolved = bone_map.with_prefix(best)
    return resolved, [b for b in resolved.bones if b not in names]


def detect_map(armature_obj) -> tuple[str, BoneMap, list[str]]:
    """The shipped map that fits ``armature_obj`` best: (its name, the map with the armature's prefix,
    the mapped bones the armature lacks).

    Best: all essential bones found, then the largest share of the map's bones found, then no prefix
    (a generated Rigify rig also holds the meta-rig's names as ``ORG-...``; its FK controls win), then
    the order of :data:`MAP_NAMES`. Raises PoseMoEError, naming what is missing and the supported rigs,
    when no map finds its essential bones.
    """
    _check_armature(armature_obj)
    scored = []
    for order, name in enumerate(MAP_NAMES):
        resolved, missing = match_map(load_map(name), armature_obj)
        lacking = [b for b in resolved.essential if b in missing]
        share = 1.0 - len(missing) / len(resolved.bones)
        scored.append(((not lacking, share, resolved.prefix == "", -order), name, resolved, missing, lacking))
    _, name, resolved, missing, lacking = max(scored, key=lambda s: s[0])
    if lacking:
        if all(s[0][1] == 0.0 for s in scored):
            sample = ", ".join(list(armature_obj.data.bones.keys())[:4]) or "none"
            raise PoseMoEError(f"Armature '{armature_obj.name}' has none of the bone names PoseMoE knows (it has "
                               f"{sample}, ...). Supported rigs: {SUPPORTED_RIGS}. Rename its bones or give "
                               "a bone map (JSON, like blender_addon/maps/mixamo.json).")
        raise PoseMoEError(f"Armature '{armature_obj.name}' looks like a '{name}' rig but lacks "
                           f"{', '.join(lacking)}. Add those bones, or give a bone map that fits. "
                           f"Supported rigs: {SUPPORTED_RIGS}.")
    return name, resolved, missing


# ----------------------------------------------------------------------------------------------------
# Checks.

def _check_armature(obj) -> None:
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        what = "nothing" if obj is None else f"'{getattr(obj, 'name', obj)}' ({getattr(obj, 'type', type(obj).__name__)})"
        raise PoseMoEError(f"The retarget target is {what}, not an armature; select your character's armature "
                           "and try again.")
    if obj.mode == "EDIT":
        raise PoseMoEError(f"Armature '{obj.name}' is in edit mode; leave it (Tab) and try again.")
    if obj.animation_data is not None and obj.animation_data.use_tweak_mode:
        raise PoseMoEError(f"Armature '{obj.name}' is in NLA tweak mode; leave it (Tab in the NLA editor) "
                           "and try again.")


def _check_motion(motion) -> int:
    """Raise PoseMoEError unless ``motion`` is a usable take; return its frame count. (The checks of
    rig.py's private ``_check_motion`` that matter here.)"""
    if not isinstance(motion, SkeletonMotion):
        raise PoseMoEError(f"Expected a solved skeleton motion, got {type(motion).__name__}; solve the take "
                           "first (posemoe.motion.solve.solve_skeleton).")
    n = len(motion.quaternions)
    shapes = (np.shape(motion.offsets), np.shape(motion.quaternions), np.shape(motion.root_positions))
    if n == 0:
        raise PoseMoEError("The take has no frames; capture a video in which the person is visible.")
    if shapes != ((NUM_JOINTS, 3), (n, NUM_JOINTS, 4), (n, 3)):
        raise PoseMoEError(f"The motion's arrays have shapes {shapes}, not (17, 3), (N, 17, 4), (N, 3); "
                           "solve the take again with this version.")
    arrays = (motion.offsets, motion.quaternions, motion.root_positions)
    if not all(np.isfinite(a).all() for a in arrays) or not (np.isfinite(motion.fps) and motion.fps > 0):
        raise PoseMoEError("The motion holds NaN or infinite values or a bad frame rate; capture the take again.")
    if (np.linalg.norm(motion.offsets[1:], axis=1) < 1e-3).any():
        raise PoseMoEError("The take has bones shorter than 1 mm; capture a take in which the whole body is visible.")
    return n


# ----------------------------------------------------------------------------------------------------
# The maths (NumPy, all frames at once).

def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def facing_rotation(bone_map: BoneMap, armature_obj) -> np.ndarray:
    """(3, 3) the rotation from our world to the armature space the rig stands in, snapped to the
    nearest axis-aligned rotation (identity for a rig that stands Z up facing -Y, as Blender's do).
    Found from the rig's rest pose: its left is from the right to the left thigh head, its up from the
    hips centre to the middle of the upper arms' heads."""
    bones = armature_obj.data.bones
    head = {b: np.array(bones[b].head_local) for b in bone_map.bones if b in bones}
    right, left = bone_map.bone_of_segment(_LEGS["thigh.R"]), bone_map.bone_of_segment(_LEGS["thigh.L"])
    arms = [a for a in (bone_map.bone_of_segment(s) for s in _ARMS.values()) if a in head]
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


@dataclass
class _Bone:
    """One bone of the target, as the solve needs it."""

    name: str
    parent: str | None
    rest: np.ndarray  # (4, 4) bone.matrix_local, armature space
    basis: np.ndarray  # (4, 4) pose_bone.matrix_basis now (for unmapped bones carried along)
    length: float
    constrained: bool  # moved by constraints or drivers: its pose must be read back from Blender


def _bone_table(armature_obj) -> dict[str, _Bone]:
    driven = set()
    animation = armature_obj.animation_data
    if animation is not None:
        for fcurve in animation.drivers:
            if fcurve.data_path.startswith('pose.bones["'):
                driven.add(fcurve.data_path.split('"')[1])
    table = {}
    for pose_bone in armature_obj.pose.bones:
        bone = pose_bone.bone
        constrained = any(c.enabled if hasattr(c, "enabled") else not c.mute for c in pose_bone.constraints)
        table[bone.name] = _Bone(bone.name, bone.parent.name if bone.parent else None, np.array(bone.matrix_local),
                                 np.array(pose_bone.matrix_basis), bone.length,
                                 constrained or bone.name in driven or not bone.use_inherit_rotation)
    return table


def _depth(table: dict[str, _Bone], name: str) -> int:
    depth = 0
    while table[name].parent is not None:
        name, depth = table[name].parent, depth + 1
    return depth


@dataclass
class _Plan:
    """Everything fixed before the keys: the mapped bones present, parents first; their wanted
    orientations and the root's wanted head; the scale (armature units per take metre); ``G``."""

    order: list[str]
    wanted: dict[str, np.ndarray]  # (N, 3, 3) armature space
    root_head: np.ndarray  # (N, 3) armature space
    scale: float
    facing: np.ndarray


def _plan(motion: SkeletonMotion, bone_map: BoneMap, table: dict[str, _Bone], facing: np.ndarray) -> _Plan:
    """The wanted orientation of every mapped bone present, and the root's wanted head (see the module
    docstring, steps 1, 2 and 4)."""
    present = [b for b in bone_map.bones if b in table]
    order = sorted(present, key=lambda b: _depth(table, b))
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

    target_leg = (leg(_LEGS["thigh.R"], _LEGS["shin.R"], 3) + leg(_LEGS["thigh.L"], _LEGS["shin.L"], 6)) / 2
    our_leg = np.mean([np.linalg.norm(offsets[j]) for j in (2, 3, 5, 6)]) * 2
    scale = float(target_leg / our_leg)

    # The hips centre follows our root, scaled; standing height maps onto standing height.
    thighs = [bone_map.bone_of_segment(_LEGS[s]) for s in ("thigh.R", "thigh.L")]
    hips_rest = (table[thighs[0]].rest[:3, 3] + table[thighs[1]].rest[:3, 3]) / 2
    our_rest_root = facing @ np.array([0.0, 0.0, rest_joint_positions(offsets)[0, 2]])
    roots = np.asarray(motion.root_positions, dtype=np.float64) @ facing.T
    hips = hips_rest + scale * (roots - our_rest_root)
    root = bone_map.root
    turn = wanted[root] @ table[root].rest[:3, :3].T  # the root bone's rotation from its rest, per frame
    root_head = hips + turn @ (table[root].rest[:3, 3] - hips_rest)
    return _Plan(order, wanted, root_head, scale, facing)


def _solve_keys(plan: _Plan, bone_map: BoneMap, table: dict[str, _Bone],
                read_back: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray, set[str], set[str]]:
    """Local keys from the wanted orientations (module docstring, step 3).

    ``read_back`` {constrained bone: (N, 4, 4) or (4, 4) pose matrix read from Blender}; a constrained
    bone not in it counts as resting. Returns ({bone: (N, 4) quaternion w, x, y, z}, (N, 3) root
    location, the mapped bones whose parent chain passes a constrained bone, those constrained bones)."""
    n = len(plan.root_head)
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
        rotations[name] = _continuous(quat)
        if name == bone_map.root:
            location = basis[:, :3, 3].copy()
    return rotations, location, dependent, constrained


def _continuous(q: np.ndarray) -> np.ndarray:
    """(N, 4) -> the same rotations with each quaternion in the hemisphere of the previous one (the
    first in w >= 0)."""
    q = q * np.where(q[:1, :1] < 0, -1.0, 1.0)
    flip = np.cumsum(np.einsum("tc,tc->t", q[1:], q[:-1]) < 0) % 2 == 1
    q = q.copy()
    q[1:][flip] *= -1
    return q


@dataclass
class RetargetReport:
    """What a retarget did. ``mapped`` {target bone: our joint driving it}; ``unmapped`` the armature's
    other bones (not keyed, not changed); ``missing`` mapped bones the armature lacks; ``scale``
    armature units per metre of the take (the target's leg length over ours; ``world_scale`` with the
    object's scale); ``rotation_mode_changed`` mapped bones that were not in QUATERNION mode before;
    ``properties`` the (bone, property, value) keyed; ``rounds`` how often constrained parents were
    read back from Blender; ``warnings`` sentences about what may not follow the keys exactly."""

    map_name: str
    prefix: str
    mapped: dict[str, str]
    unmapped: list[str]
    missing: list[str]
    scale: float
    world_scale: float
    rotation_mode_changed: list[str] = field(default_factory=list)
    properties: list[tuple[str, str, float]] = field(default_factory=list)
    rounds: int = 0
    warnings: list[str] = field(default_factory=list)


def _read_back(obj, names: list[str], frames: np.ndarray) -> dict[str, np.ndarray]:
    """{bone: (N, 4, 4) its evaluated pose matrix (armature space) at each of ``frames``}."""
    scene = bpy.context.scene
    index = [obj.pose.bones.find(name) for name in names]
    flat = np.empty(len(obj.pose.bones) * 16, dtype=np.float32)
    out = np.empty((len(frames), len(names), 4, 4))
    for i, frame in enumerate(frames):
        whole = int(np.floor(frame))
        scene.frame_set(whole, subframe=float(frame - whole))
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        evaluated.pose.bones.foreach_get("matrix", flat)
        out[i] = flat.reshape(-1, 4, 4)[index].transpose(0, 2, 1)  # Blender's matrices come column by column
    return {name: out[:, k] for k, name in enumerate(names)}


def retarget(motion: SkeletonMotion, armature_obj, bone_map: BoneMap | Mapping | str | Path | None = None,
             action_name: str = "PoseMoE take", frame_start: float = 1, frame_step: float = 1.0,
             hands=None):
    """Key ``motion`` onto ``armature_obj`` through a bone map, as a new action; make it the armature's.

    ``bone_map``: None (:func:`detect_map`), a shipped map's name, a JSON file's path, its parsed JSON,
    or a :class:`BoneMap`; a map not yet matched to the armature gets the prefix that fits. One key
    per take frame at ``frame_start + i * frame_step`` (see the module docstring for the maths). The action is named
    ``action_name`` (Blender adds ``.001`` when the name is taken: no existing action is changed); the
    action the armature had keeps a fake user. Mapped pose bones are set to QUATERNION rotation.
    ``hands`` (:func:`posemoe.motion.hands.body_hands` of the take on ``motion``) also keys the map's
    finger bones and turns the hands with the palms (see :mod:`fingers`).
    Returns (the action, a :class:`RetargetReport`). Raises PoseMoEError, changing nothing, when the
    motion or the armature cannot be used.
    """
    n = _check_motion(motion)
    _check_armature(armature_obj)
    if bone_map is None:
        map_name, resolved, missing = detect_map(armature_obj)
    else:
        if not isinstance(bone_map, BoneMap):
            bone_map = parse_map(bone_map, "The bone map") if isinstance(bone_map, Mapping) else load_map(bone_map)
        map_name = bone_map.name
        resolved, missing = match_map(bone_map, armature_obj)
        lacking = [b for b in resolved.essential if b in missing]
        if lacking:
            raise PoseMoEError(f"Armature '{armature_obj.name}' lacks {', '.join(lacking)}, which bone map "
                               f"'{map_name}' needs; add those bones or use a map that fits "
                               f"(supported rigs: {SUPPORTED_RIGS}).")
    legs = [resolved.bone_of_segment(seg) for seg in _LEGS.values()]
    if resolved.root in missing or any(b in missing for b in legs):
        absent = [b for b in [resolved.root, *legs] if b in missing]
        raise PoseMoEError(f"Armature '{armature_obj.name}' lacks {', '.join(absent)}, which the root motion "
                           "needs (hips, thighs and shins); add them or give a bone map that names them.")

    table = _bone_table(armature_obj)
    plan = _plan(motion, resolved, table, facing_rotation(resolved, armature_obj))
    keyed_fingers, finger_warnings = ({}, []) if hands is None else fingers.extend_plan(
        plan, resolved, table, hands, lambda b: _depth(table, b))
    rotations, location, dependent, readable = _solve_keys(plan, resolved, table, {})
    if readable:
        bpy.context.view_layer.update()  # a freshly linked object joins view_layer.objects at the next update
        if bpy.context.view_layer.objects.get(armature_obj.name) != armature_obj:
            raise PoseMoEError(f"Armature '{armature_obj.name}' has constraint-driven bones, which Blender only "
                               "evaluates in the current view layer; link it to this scene and try again.")

    pose_bones = armature_obj.pose.bones
    properties = [(b, p, v) for b, p, v in resolved.properties if b in pose_bones and p in pose_bones[b].keys()]
    report = RetargetReport(
        map_name=map_name, prefix=resolved.prefix,
        mapped={b: keyed_fingers[b] if b in keyed_fingers else JOINT_NAMES[resolved.bones[b].joint]
                for b in plan.order},
        unmapped=[b.name for b in armature_obj.data.bones
                  if b.name not in resolved.bones and b.name not in keyed_fingers],
        missing=missing, scale=plan.scale,
        world_scale=plan.scale * float(np.cbrt(abs(np.linalg.det(np.array(armature_obj.matrix_world)[:3, :3])))),
        rotation_mode_changed=[b for b in plan.order if pose_bones[b].rotation_mode != "QUATERNION"],
        properties=properties, warnings=finger_warnings)
    for b in plan.order:
        if table[b].constrained:
            report.warnings.append(f"Bone '{b}' has constraints, drivers or no inherited rotation; it may not "
                                   "follow its keys exactly.")
    if not np.allclose(plan.facing, np.eye(3)):
        report.warnings.append("The armature does not stand Z up facing -Y in its own space; the take was "
                               "turned to match it.")

    scene = bpy.context.scene
    saved_frame = (scene.frame_current, scene.frame_subframe)
    animation = armature_obj.animation_data
    had_animation = animation is not None
    previous = animation.action if had_animation else None
    previous_slot = getattr(animation, "action_slot", None) if had_animation else None
    saved_rotations = {b: (pose_bones[b].rotation_mode, tuple(pose_bones[b].rotation_quaternion),
                           tuple(pose_bones[b].rotation_euler), tuple(pose_bones[b].rotation_axis_angle))
                       for b in plan.order}
    action = bpy.data.actions.new(action_name)
    frames = frame_start + np.arange(n) * frame_step
    try:
        new_fcurve, slot = fcurve_factory(action, armature_obj)
        co = np.empty(2 * n, dtype=np.float32)
        co[0::2] = frames
        linear = np.full(n, interpolation_value("LINEAR"), dtype=np.uint8)  # the enum's raw byte: fastest
        curves: dict[tuple[str, str, int], object] = {}
        channels = [(resolved.root, "location", location)]
        channels += [(b, "rotation_quaternion", rotations[b]) for b in plan.order]
        for bone, prop, values in channels:
            data_path = pose_bones[bone].path_from_id(prop)
            for index in range(values.shape[1]):
                co[1::2] = values[:, index]
                curves[bone, prop, index] = new_fcurve(data_path, index, bone)
                fill_fcurve(curves[bone, prop, index], co, linear)
        for bone, prop, value in properties:
            data_path = f'{pose_bones[bone].path_from_id()}["{bpy.utils.escape_identifier(prop)}"]'
            fill_fcurve(new_fcurve(data_path, 0, bone), np.array([frame_start, value], dtype=np.float32), linear[:1])
        action["posemoe_fps"] = float(motion.fps)
        animation = armature_obj.animation_data or armature_obj.animation_data_create()
        animation.action = action
        if hasattr(animation, "action_slot"):  # 4.4+; by Action.fcurves, Blender made the slot itself
            animation.action_slot = slot if slot is not None else action.slots[0]
        for b in plan.order:
            pose_bones[b].rotation_mode = "QUATERNION"

        # Constrained parents: read them back at every frame and solve again until the keys settle.
        names = sorted(readable)
        while names and report.rounds < _MAX_ROUNDS:
            report.rounds += 1
            again, location, _, _ = _solve_keys(plan, resolved, table, _read_back(armature_obj, names, frames))
            change = max(float(np.abs(again[b] - rotations[b]).max()) for b in dependent)
            rotations = again
            for bone, prop, index in curves:
                values = location if prop == "location" else rotations[bone]
                points = curves[bone, prop, index].keyframe_points
                co[1::2] = values[:, index]
                points.foreach_set("co", co)
                curves[bone, prop, index].update()
            if change < _SETTLED:
                break
        else:
            if names:
                report.warnings.append(f"The keys of {', '.join(sorted(dependent))} had not settled after "
                                       f"{_MAX_ROUNDS} rounds; check their constraints.")
        if names:
            scene.frame_set(saved_frame[0], subframe=saved_frame[1])
    except BaseException:
        bpy.data.actions.remove(action)  # also unassigns it
        if had_animation:
            armature_obj.animation_data.action = previous
            if previous_slot is not None:
                armature_obj.animation_data.action_slot = previous_slot
        elif armature_obj.animation_data is not None:
            armature_obj.animation_data_clear()
        for b, (mode, quaternion, euler, axis_angle) in saved_rotations.items():
            pose_bones[b].rotation_mode = mode
            pose_bones[b].rotation_quaternion, pose_bones[b].rotation_euler = quaternion, euler
            pose_bones[b].rotation_axis_angle = axis_angle
        if (scene.frame_current, scene.frame_subframe) != saved_frame:
            scene.frame_set(saved_frame[0], subframe=saved_frame[1])
        raise
    if previous is not None:
        previous.use_fake_user = True  # no longer assigned: keep it when the file is saved
    return action, report

