"""A solved take on someone else's armature: Rigify, Mixamo or any rig a bone map describes.

:mod:`rig` keys our own armature, whose bones are our skeleton's. Here the target is an armature we did
not build, with its own bone names, proportions, rest pose (a T-pose, an A-pose, bones at any angle)
and rolls. This module is the Blender side: it reads the target's bones, writes the keys and reads
constrained bones back. The bone maps (which target bone our joints drive, JSON in ``maps/``) are
:mod:`bone_map`; the maths, in NumPy over all frames at once, is :mod:`retarget_solve` (and
:mod:`fingers` for the hands).

Constrained parents: a parent moved by constraints (Rigify's ``MCH-`` bones) cannot be modelled, so
its pose is read back from Blender at every frame, the keys are solved again, and this repeats until
they stop changing (each round settles one more level of constraint dependencies; rigs without such
parents need none). Reading back costs one scene evaluation per frame per round: a rig Rigify
generated from the full human meta-rig (about 700 bones) takes a few rounds, the meta-rig and Mixamo
rigs none.

Limits: a mapped bone with constraints of its own, drivers or no inherited rotation may not follow its
keys (the report warns); NLA strips under the new action are not taken into account.

Keys: ``rotation_quaternion`` (w, x, y, z), sign-continuous, LINEAR, one per take frame from
``frame_start``, on every mapped bone, ``location`` on the root, into one new action (a slot, a layer,
a keyframe strip on 4.4+, :mod:`actions`). Unmapped bones are not keyed or changed. Any error leaves
the scene as it was (:func:`transaction.transaction`): no new action, the old action and slot
assigned, rotation modes and values and the current frame as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from posemoe import PoseMoEError
from posemoe.motion.solve import SkeletonMotion
from posemoe.skeleton import JOINT_NAMES

from . import fingers
from .actions import assign_action, fcurve_factory, key_custom_property, key_pose_channels, rewrite_values
from .bone_map import (SUPPORTED_RIGS, BoneMap, as_map, check_essential, check_root_motion, detect, load_map,
                       match, parse_map)
from .checks import check_is_armature, check_motion, check_not_in_tweak_mode
from .retarget_solve import Bone, Plan, facing_rotation, plan, solve_keys
from .transaction import transaction

__all__ = ["BoneMap", "RetargetReport", "detect_map", "load_map", "match_map", "parse_map", "resolve_map",
           "retarget"]

# Rounds of reading constrained parents back from Blender, and the change (quaternion components) at
# which the keys count as settled: float32 keys read back carry about 1e-7.
_MAX_ROUNDS = 8
_SETTLED = 1e-5


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


# ----------------------------------------------------------------------------------------------------
# The target and its map.

def _check_target(obj) -> None:
    """Raise PoseMoEError unless ``obj`` is an armature that can take a new action now."""
    check_is_armature(obj, "The retarget target", "select your character's armature and try again.")
    if obj.mode == "EDIT":
        raise PoseMoEError(f"Armature '{obj.name}' is in edit mode; leave it (Tab) and try again.")
    check_not_in_tweak_mode(obj)


def match_map(bone_map: BoneMap, armature_obj) -> tuple[BoneMap, list[str]]:
    """``bone_map`` with the prefix that fits ``armature_obj``'s bone names, and the mapped bones it
    lacks (:func:`bone_map.match`)."""
    return match(bone_map, armature_obj.data.bones.keys())


def detect_map(armature_obj) -> tuple[str, BoneMap, list[str]]:
    """The shipped map that fits ``armature_obj`` best: (its name, the map with the armature's prefix,
    the mapped bones the armature lacks); raises PoseMoEError when none fits (:func:`bone_map.detect`)."""
    _check_target(armature_obj)
    return detect(list(armature_obj.data.bones.keys()), armature_obj.name)


def resolve_map(bone_map: BoneMap | Mapping | str | Path | None, armature_obj, needed_by: str | None = None,
                advice: str = "add those bones or use a map that fits "
                              f"(supported rigs: {SUPPORTED_RIGS}).") -> tuple[str, BoneMap, list[str]]:
    """(map name, the map matched to ``armature_obj``, the mapped bones it lacks) for ``bone_map``: None
    (:func:`detect_map`), a shipped map's name, a JSON file's path, its parsed JSON or a
    :class:`BoneMap`. Raises PoseMoEError when the armature lacks the map's essential bones, saying
    which ``needed_by`` (default: the bone map by name) needs, and ``advice``."""
    if bone_map is None:
        return detect_map(armature_obj)
    bone_map = as_map(bone_map)
    resolved, missing = match_map(bone_map, armature_obj)
    check_essential(resolved, missing, armature_obj.name, needed_by or f"bone map '{bone_map.name}'", advice)
    return bone_map.name, resolved, missing


def _bone_table(armature_obj) -> dict[str, Bone]:
    """The target's bones as the solve needs them."""
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
        table[bone.name] = Bone(bone.name, bone.parent.name if bone.parent else None, np.array(bone.matrix_local),
                                np.array(pose_bone.matrix_basis), bone.length,
                                constrained or bone.name in driven or not bone.use_inherit_rotation)
    return table


def _plan(motion: SkeletonMotion, resolved: BoneMap, table: dict[str, Bone], armature_obj,
          hands) -> tuple[Plan, dict[str, str], list[str]]:
    """The solve's plan for the body and, with ``hands``, the fingers: (plan, {finger bone: our bone}
    keyed, warnings)."""
    heads = {bone.name: np.array(bone.head_local) for bone in armature_obj.data.bones}
    body = plan(motion, resolved, table, facing_rotation(resolved, heads))
    if hands is None:
        return body, {}, []
    wanted, keyed, warnings = fingers.finger_orientations(body, resolved, table, hands)
    body.drive(wanted, table)
    return body, keyed, warnings


def _check_evaluable(armature_obj) -> None:
    """Constrained bones are read back from the evaluated scene: the armature must be in the view layer."""
    bpy.context.view_layer.update()  # a freshly linked object joins view_layer.objects at the next update
    if bpy.context.view_layer.objects.get(armature_obj.name) != armature_obj:
        raise PoseMoEError(f"Armature '{armature_obj.name}' has constraint-driven bones, which Blender only "
                           "evaluates in the current view layer; link it to this scene and try again.")


def _report(map_name: str, resolved: BoneMap, missing: list[str], body: Plan, table: dict[str, Bone],
            keyed_fingers: dict[str, str], warnings: list[str], armature_obj) -> RetargetReport:
    """What the retarget is about to do, with the warnings known before keying."""
    pose_bones = armature_obj.pose.bones
    properties = [(b, p, v) for b, p, v in resolved.properties if b in pose_bones and p in pose_bones[b].keys()]
    object_scale = float(np.cbrt(abs(np.linalg.det(np.array(armature_obj.matrix_world)[:3, :3]))))
    report = RetargetReport(
        map_name=map_name, prefix=resolved.prefix,
        mapped={b: keyed_fingers[b] if b in keyed_fingers else JOINT_NAMES[resolved.bones[b].joint]
                for b in body.order},
        unmapped=[b.name for b in armature_obj.data.bones
                  if b.name not in resolved.bones and b.name not in keyed_fingers],
        missing=missing, scale=body.scale, world_scale=body.scale * object_scale,
        rotation_mode_changed=[b for b in body.order if pose_bones[b].rotation_mode != "QUATERNION"],
        properties=properties, warnings=list(warnings))
    for b in body.order:
        if table[b].constrained:
            report.warnings.append(f"Bone '{b}' has constraints, drivers or no inherited rotation; it may not "
                                   "follow its keys exactly.")
    if not np.allclose(body.facing, np.eye(3)):
        report.warnings.append("The armature does not stand Z up facing -Y in its own space; the take was "
                               "turned to match it.")
    return report


# ----------------------------------------------------------------------------------------------------
# Keys.

def _write_keys(action, armature_obj, resolved: BoneMap, body: Plan, rotations: dict[str, np.ndarray],
                location: np.ndarray, properties, frames: np.ndarray) -> dict[tuple[str, str, int], object]:
    """The keys into ``action``, assigned to the armature: {(bone, property, component): F-curve}."""
    new_fcurve, slot = fcurve_factory(action, armature_obj)
    pose_bones = armature_obj.pose.bones
    channels = [(resolved.root, "location", location)]
    channels += [(b, "rotation_quaternion", rotations[b]) for b in body.order]
    curves = key_pose_channels(new_fcurve, pose_bones, channels, frames)
    for bone, prop, value in properties:
        key_custom_property(new_fcurve, pose_bones[bone], prop, frames[0], value)
    assign_action(armature_obj, action, slot)
    return curves


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


def _settle(armature_obj, resolved: BoneMap, body: Plan, table: dict[str, Bone], curves, rotations,
            dependent: set[str], readable: set[str], frames: np.ndarray, report: RetargetReport) -> None:
    """Read the constrained parents back at every frame and solve again until the keys settle."""
    names = sorted(readable)
    if not names:
        return
    scene = bpy.context.scene
    saved_frame = (scene.frame_current, scene.frame_subframe)
    while report.rounds < _MAX_ROUNDS:
        report.rounds += 1
        again, location, _, _ = solve_keys(body, resolved, table, _read_back(armature_obj, names, frames))
        change = max(float(np.abs(again[b] - rotations[b]).max()) for b in dependent)
        rotations = again
        for (bone, prop, index), fcurve in curves.items():
            rewrite_values(fcurve, (location if prop == "location" else rotations[bone])[:, index])
        if change < _SETTLED:
            break
    else:
        report.warnings.append(f"The keys of {', '.join(sorted(dependent))} had not settled after "
                               f"{_MAX_ROUNDS} rounds; check their constraints.")
    scene.frame_set(saved_frame[0], subframe=saved_frame[1])


def retarget(motion: SkeletonMotion, armature_obj, bone_map: BoneMap | Mapping | str | Path | None = None,
             action_name: str = "PoseMoE take", frame_start: float = 1, frame_step: float = 1.0,
             hands=None):
    """Key ``motion`` onto ``armature_obj`` through a bone map, as a new action; make it the armature's.

    ``bone_map``: None (:func:`detect_map`), a shipped map's name, a JSON file's path, its parsed JSON,
    or a :class:`BoneMap`; a map not yet matched to the armature gets the prefix that fits. One key
    per take frame at ``frame_start + i * frame_step`` (the maths: :mod:`retarget_solve`). The action
    is named ``action_name`` (Blender adds ``.001`` when the name is taken: no existing action is
    changed); the action the armature had keeps a fake user. Mapped pose bones are set to QUATERNION
    rotation. ``hands`` (:func:`posemoe.motion.hands.body_hands` of the take on ``motion``) also keys
    the map's finger bones and turns the hands with the palms (see :mod:`fingers`).
    Returns (the action, a :class:`RetargetReport`). Raises PoseMoEError, changing nothing, when the
    motion or the armature cannot be used.
    """
    n = check_motion(motion)
    _check_target(armature_obj)
    map_name, resolved, missing = resolve_map(bone_map, armature_obj)
    check_root_motion(resolved, missing, armature_obj.name)

    table = _bone_table(armature_obj)
    body, keyed_fingers, finger_warnings = _plan(motion, resolved, table, armature_obj, hands)
    rotations, location, dependent, readable = solve_keys(body, resolved, table, {})
    if readable:
        _check_evaluable(armature_obj)
    report = _report(map_name, resolved, missing, body, table, keyed_fingers, finger_warnings, armature_obj)

    pose_bones = armature_obj.pose.bones
    previous = armature_obj.animation_data.action if armature_obj.animation_data is not None else None
    frames = frame_start + np.arange(n) * frame_step
    with transaction(frame_of=bpy.context.scene, animation_of=armature_obj,
                     rotations_of=[pose_bones[b] for b in body.order]):
        action = bpy.data.actions.new(action_name)
        curves = _write_keys(action, armature_obj, resolved, body, rotations, location, report.properties, frames)
        action["posemoe_fps"] = float(motion.fps)
        for b in body.order:
            pose_bones[b].rotation_mode = "QUATERNION"
        _settle(armature_obj, resolved, body, table, curves, rotations, dependent, readable, frames, report)
    if previous is not None:
        previous.use_fake_user = True  # no longer assigned: keep it when the file is saved
    return action, report
