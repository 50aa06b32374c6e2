"""A solved take in Blender: our own armature, one action of keyframes per take, BVH and FBX export.

A thin layer over :mod:`posemoe`: the maths that does not need Blender stays NumPy, and this module
only turns it into bones, F-curves and exporter calls.

The armature
------------
Armature space is our world: metres, Z up, the character facing -Y with its left at +X. The rest pose
is the skeleton's T-pose (``motion.offsets``) standing with its ankles :data:`posemoe.skeleton.ANKLE_HEIGHT` above
Z = 0. There is one bone per joint that has a child, from the joint (its head) to its child (its
tail), turned by that joint's world rotation. The pelvis and the thorax have three children each: their
bone ends at the spine child, and the bones of the other children hang from it unconnected (thighs from
``pelvis``, upper arms from ``neck``; the 17-joint skeleton gives the thorax one rotation for the neck
and both shoulders, so the arms follow the neck bone). The ankles and wrists, leaves of the skeleton,
get short ``foot`` and ``hand`` bones (their length a fixed fraction of the shin and forearm; their
rotation is the parent's, because the solve gives leaves their parent's rotation), so a retarget has a
bone to aim at; the top of the head is the tail of ``head``. 16 bones in all; every one of the 17 joints
is a bone's head or tail (:data:`JOINT_ON_BONE`).

===========  ============================  ===========  =========
bone         head -> tail (joints)         parent       connected
===========  ============================  ===========  =========
pelvis       Hip -> Spine                  (root)
spine        Spine -> Thorax               pelvis       yes
neck         Thorax -> Neck/Nose           spine        yes
head         Neck/Nose -> Head (top)       neck         yes
thigh.R      RHip -> RKnee                 pelvis       no
shin.R       RKnee -> RFoot (ankle)        thigh.R      yes
foot.R       RFoot -> toe (leaf bone)      shin.R       yes
upper_arm.R  RShoulder -> RElbow           neck         no
forearm.R    RElbow -> RWrist              upper_arm.R  yes
hand.R       RWrist -> hand (leaf bone)    forearm.R    yes
===========  ============================  ===========  =========

and the same with .L for the left side (LHip ... LWrist).

Hands and fingers (only when the take captured hands, :class:`posemoe.motion.hands.BodyHands`; a take
without hands builds exactly the 16 bones above): ``hand`` then spans the wrist to the middle finger's
knuckle (MCP) and follows the palm, and each hand gains 15 finger bones, three per finger, named as
Rigify names them, with the side suffix:

=============  ===============================================  ============  =========
bone           head -> tail (MediaPipe hand landmarks)          parent        connected
=============  ===============================================  ============  =========
hand.R         wrist -> middle MCP (the palm)                   forearm.R     yes
thumb.01.R     thumb CMC -> MCP (metacarpal)                    hand.R        no
thumb.02.R     thumb MCP -> IP                                  thumb.01.R    yes
thumb.03.R     thumb IP -> tip                                  thumb.02.R    yes
f_index.01.R   index MCP -> PIP (and f_middle, f_ring, f_pinky) hand.R        no
f_index.02.R   index PIP -> DIP                                 f_index.01.R  yes
f_index.03.R   index DIP -> tip                                 f_index.02.R  yes
=============  ===============================================  ============  =========

and the same with .L. Their rest pose is the take's hand (its measured shape, scaled to the forearm)
with straight fingers, palms down; the thumb's zero points 45 degrees off the middle finger in the
palm's plane, its nail to the side. Rolls of the hand bones: local Y along the bone, local Z out of
the back of the hand or finger (up in the rest pose, the nail side), local X the flexion axis: a
finger curls towards the palm by a *negative* rotation about its X (the solve's convention,
``posemoe.motion.fingers``); on the left hand X points the other way (a mirror image, as Blender's
X-mirror makes it), so the same curl is the same sign on both hands.

Rolls are set so each bone's axes are predictable: local Y runs along the bone (Blender's rule) and
local Z points forward (-Y) for every bone of the body but the feet, whose Z points up (+Z); so X is the
knee's and the spine's bending axis (the hands and fingers: see above).

The keys
--------
Every pose bone gets ``rotation_quaternion`` (w, x, y, z) keys, the root bone ``pelvis`` also
``location``, one key per take frame at frames ``frame_start, frame_start + 1, ...``, LINEAR
interpolation (the take is sampled once per frame; LINEAR plays back exactly those samples without
Bezier overshoot between them). The take's frame rate is stored on the action as ``posemoe_fps``; the
scene's frame rate is left alone (the exporters use the stored one). With hands, the hand bones take
the palm's rotation (relative to the forearm as solved) and the fingers the solve's per-segment
rotations, held or relaxed where a hand was not seen, in the same action. Keys are in armature space: with
the armature object at the origin, unrotated and unscaled, the evaluated bones reproduce
``motion.joint_positions()``.

Blender versions: the action API's differences (slots, layers, channelbags from 4.4) live in
:mod:`actions`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from posemoe import PoseMoEError
from posemoe.files import atomic_output
from posemoe.motion.fingers import SIDES
from posemoe.motion.hands import HAND_PARENTS, BodyHands
from posemoe.motion.solve import SkeletonMotion
from posemoe.rotations import continuous_quaternions
from posemoe.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, WRIST

from .actions import assign_action, fcurve_factory, key_pose_channels
from .checks import check_hands, check_is_armature, check_motion, check_not_in_tweak_mode
from .rig_layout import (BONE_OF_JOINT, BONES, FINGER_BONES, JOINT_ON_BONE, LEAF_TAILS, ROOT_BONE, SIDE_SUFFIX,
                         BoneSpec, hand_bone_names, rest_joint_positions)
from .transaction import transaction

__all__ = ["BONES", "BONE_OF_JOINT", "BoneSpec", "FINGER_BONES", "JOINT_ON_BONE", "RIG_VERSION", "ROOT_BONE",
           "SIDE_SUFFIX", "armature_has_fingers", "armature_rest_joints", "build_armature",
           "evaluated_joint_positions", "export_bvh", "export_fbx", "hand_bone_names", "hand_local_quaternions",
           "pose_keys", "rest_joint_positions", "write_action"]

#: Armatures built here carry ``armature_data["posemoe_rig"] = RIG_VERSION``.
RIG_VERSION = 1

# The rest pose must match the take's to within this angle per bone, or the keys would not fit.
_MAX_REST_ANGLE_DEG = 10.0


# ----------------------------------------------------------------------------------------------------
# Checks: everything a user can get wrong is found before anything is created.

def _check_armature(obj) -> None:
    """Raise PoseMoEError unless ``obj`` is an armature object with all our bones."""
    check_is_armature(obj, "The target", "select the armature built by PoseMoE (or build one) and try again.")
    missing = [b.name for b in BONES if b.name not in obj.data.bones]
    if missing:
        raise PoseMoEError(f"Armature '{obj.name}' has no bone{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)}; build a PoseMoE armature for the take (or retarget onto yours).")


def armature_rest_joints(obj) -> np.ndarray:
    """(17, 3) the joints of a PoseMoE armature's rest pose, armature space, metres."""
    bones = obj.data.bones
    return np.array([tuple(getattr(bones[name], f"{end}_local")) for name, end in JOINT_ON_BONE])


def _check_rest_pose(obj, motion: SkeletonMotion) -> None:
    """The keys turn the take's T-pose; raise PoseMoEError when the armature rests in another pose."""
    rest = armature_rest_joints(obj)
    worst, where = 0.0, ""
    for j in range(1, NUM_JOINTS):
        a, b = rest[j] - rest[PARENTS[j]], np.asarray(motion.offsets[j], dtype=np.float64)
        cos = a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
        angle = math.degrees(math.acos(min(1.0, max(-1.0, cos))))
        if angle > worst:
            worst, where = angle, JOINT_NAMES[j]
    if worst > _MAX_REST_ANGLE_DEG:
        raise PoseMoEError(f"Armature '{obj.name}' does not rest in PoseMoE's T-pose (the bone to {where} is "
                           f"{worst:.0f} degrees off); build a fresh PoseMoE armature or retarget the take onto yours.")


# ----------------------------------------------------------------------------------------------------
# The armature.

def _in_view_layer(obj, view_layer) -> bool:
    """Whether ``obj`` is in a collection of ``view_layer`` that is not excluded. (``view_layer.objects``
    only learns of a newly linked object at the next view layer update, so walk the collections.)"""

    def walk(layer_collection) -> bool:
        if layer_collection.exclude:
            return False
        if layer_collection.collection.objects.get(obj.name) == obj:
            return True
        return any(walk(child) for child in layer_collection.children)

    return walk(view_layer.layer_collection)


@contextmanager
def _edit_mode(obj) -> Iterator[None]:
    """Edit mode on ``obj`` alone (the only way to make bones); back to object mode afterwards with
    ``obj`` selected and active, as after Blender's own Add > Armature."""
    context = bpy.context
    if context.object is not None and context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    for other in context.view_layer.objects:  # edit mode takes in every selected armature
        other.select_set(False)
    context.view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        yield
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")


def build_armature(motion: SkeletonMotion, name: str, collection=None, hands: BodyHands | None = None):
    """Build PoseMoE's armature in the rest pose of ``motion`` (its ``offsets``, metres).

    ``hands`` (the take's hands on this motion, :func:`posemoe.motion.hands.body_hands`) adds the
    finger bones and lets ``hand`` span the palm; None (a take without hands) builds the body alone.

    ``collection`` (default: the scene's master collection) must be in the current view layer. Returns
    the new armature object, named ``name`` (Blender makes the name unique), selected and active, in
    object mode, at the origin. See the module docstring for the bones, their parents and rolls.
    """
    check_motion(motion)
    context = bpy.context
    collection = context.scene.collection if collection is None else collection
    rest = rest_joint_positions(np.asarray(motion.offsets, dtype=np.float64))
    with transaction():
        data = bpy.data.armatures.new(name)
        obj = bpy.data.objects.new(name, data)
        collection.objects.link(obj)
        if not _in_view_layer(obj, context.view_layer):
            raise PoseMoEError(f"Collection '{collection.name}' is not in the current view layer; "
                               "choose a collection of the scene you are working in.")
        with _edit_mode(obj):
            edit_bones = data.edit_bones
            for spec in BONES:
                bone = edit_bones.new(spec.name)
                bone.head = rest[spec.joint]
                if spec.tail is not None:
                    bone.tail = rest[spec.tail]
                else:
                    parent_length = np.linalg.norm(rest[spec.joint] - rest[PARENTS[spec.joint]])
                    bone.tail = rest[spec.joint] + parent_length * np.asarray(LEAF_TAILS[spec.joint])
                bone.align_roll(spec.roll_z)
                if spec.parent is not None:
                    bone.parent = edit_bones[spec.parent]
                    bone.use_connect = spec.connected
            if hands is not None:
                _add_hand_bones(edit_bones, hands, rest)
        for pose_bone in obj.pose.bones:
            pose_bone.rotation_mode = "QUATERNION"
        data["posemoe_rig"] = RIG_VERSION
    return obj


def _add_hand_bones(edit_bones, hands: BodyHands, rest: np.ndarray) -> None:
    """In edit mode: re-span each ``hand`` bone over the palm and add its fingers (module docstring)."""
    for k, side in enumerate(SIDES):
        names = hand_bone_names(side)
        wrist = rest[WRIST[side]]
        for b, name in enumerate(names):
            bone = edit_bones[name] if b == 0 else edit_bones.new(name)
            frame = hands.rest[k, b]
            bone.head = wrist + hands.heads[k, b]
            bone.tail = wrist + hands.heads[k, b] + hands.lengths[k, b] * frame[:, 1]
            bone.align_roll(frame[:, 2])
            if b > 0:
                parent = HAND_PARENTS[b]
                bone.parent = edit_bones[names[parent]]
                bone.use_connect = parent > 0


def armature_has_fingers(obj) -> bool:
    """Whether a PoseMoE armature carries finger bones (built from a take with hands)."""
    return all(name in obj.data.bones for name in FINGER_BONES)


# ----------------------------------------------------------------------------------------------------
# Keys.

def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions in (w, x, y, z) order. Linear in each argument, so it
    keeps a sign-continuous sequence sign-continuous."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def pose_keys(obj, motion: SkeletonMotion, hands: BodyHands | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The keys that make ``obj`` (a PoseMoE armature) follow ``motion`` (and ``hands``: the hand bones
    turn with the palm and the armature's finger bones, where it has them, with the fingers).

    Returns ({bone name: (N, 4) rotation_quaternion (w, x, y, z)}, (N, 3) location of the root bone,
    metres in the root bone's rest axes). A bone's pose rotation is relative to its rest orientation
    ``B`` (``bone.matrix_local``) and its parent's pose, so joint ``j``'s rotation relative to its
    parent joint, ``L`` (world axes), becomes ``B^-1 L B``; the root's location is its offset from the
    rest head, in ``B``'s axes.
    """
    world = np.asarray(motion.quaternions, dtype=np.float64)[..., [3, 0, 1, 2]]  # scipy's x, y, z, w -> w, x, y, z
    conjugate = np.array([1.0, -1.0, -1.0, -1.0])
    locals_ = {}
    for spec in BONES:
        # motion.local_quaternions() in NumPy: the same product, much faster than scipy's on long takes.
        parent = PARENTS[spec.joint]
        locals_[spec.name] = world[:, spec.joint] if parent < 0 else _qmul(world[:, parent] * conjugate,
                                                                             world[:, spec.joint])
    if hands is not None:
        locals_.update(hand_local_quaternions(obj, motion, hands))
    rotations = {}
    for bone, local in locals_.items():
        rest = np.array(obj.data.bones[bone].matrix_local.to_quaternion())  # (w, x, y, z)
        rotations[bone] = continuous_quaternions(_qmul(_qmul(rest * conjugate, local), rest))
    root = obj.data.bones[ROOT_BONE]
    rest_axes = np.array(root.matrix_local.to_3x3())  # columns: the bone's axes in armature space
    location = (np.asarray(motion.root_positions, dtype=np.float64) - np.array(root.head_local)) @ rest_axes
    return rotations, location


def hand_local_quaternions(obj, motion: SkeletonMotion, hands: BodyHands) -> dict[str, np.ndarray]:
    """{bone: (N, 4) (w, x, y, z) its rotation relative to its parent's, world axes} for the hand bones
    of ``obj`` and, where it has them, its finger bones."""
    from scipy.spatial.transform import Rotation

    n = len(motion.quaternions)
    body = Rotation.from_quat(np.asarray(motion.quaternions, dtype=np.float64).reshape(-1, 4)).as_matrix()
    local = hands.local_rotations(body.reshape(n, NUM_JOINTS, 3, 3))
    out = {}
    for k, side in enumerate(SIDES):
        for b, name in enumerate(hand_bone_names(side)):
            if name in obj.data.bones:
                out[name] = Rotation.from_matrix(local[:, k, b]).as_quat(scalar_first=True)
    return out


def write_action(armature_obj, motion: SkeletonMotion, action_name: str, frame_start: float = 1,
                 frame_step: float = 1.0, hands: BodyHands | None = None):
    """Key ``motion`` onto a PoseMoE armature as a new action, and make it the armature's action.

    One key per take frame, at frames ``frame_start + i * frame_step`` (a step other than 1: a video
    that plays at another rate than the scene, see ``sources.py``): ``rotation_quaternion`` (w, x, y, z) of every
    pose bone and ``location`` (metres) of the root bone, LINEAR. The action is named ``action_name``, or
    ``action_name.001`` and so on when that name is taken: no existing action is changed. The action
    the armature had before keeps a fake user, so Blender does not drop it on save. Other bones'
    location and every bone's scale are reset to rest, so nothing but the take moves the armature.
    ``hands`` (the take's hands on ``motion``): the hand bones follow the palms and the armature's finger
    bones the fingers; without, a finger bone the armature has is keyed at rest. Returns the action.
    """
    n = check_motion(motion)
    _check_armature(armature_obj)
    _check_rest_pose(armature_obj, motion)
    check_not_in_tweak_mode(armature_obj)
    if hands is not None:
        check_hands(hands, n)
    rotations, location = pose_keys(armature_obj, motion, hands)
    for bone in FINGER_BONES:  # a finger bone without keys would keep whatever pose it was left in
        if bone in armature_obj.data.bones and bone not in rotations:
            rotations[bone] = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))

    previous = armature_obj.animation_data.action if armature_obj.animation_data is not None else None
    with transaction(animation_of=armature_obj):
        action = bpy.data.actions.new(action_name)
        new_fcurve, slot = fcurve_factory(action, armature_obj)
        channels = [(ROOT_BONE, "location", location)]
        channels += [(bone, "rotation_quaternion", values) for bone, values in rotations.items()]
        key_pose_channels(new_fcurve, armature_obj.pose.bones, channels, frame_start + np.arange(n) * frame_step)
        action["posemoe_fps"] = float(motion.fps)
        assign_action(armature_obj, action, slot)
    if previous is not None:
        previous.use_fake_user = True  # no longer assigned: keep it when the file is saved
    for pose_bone in armature_obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
        if pose_bone.name != ROOT_BONE:
            pose_bone.location = (0.0, 0.0, 0.0)
        pose_bone.scale = (1.0, 1.0, 1.0)
    return action


def evaluated_joint_positions(obj, depsgraph=None) -> np.ndarray:
    """(17, 3) world metres of the joints of a PoseMoE armature as evaluated at the current frame."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    world = np.array(evaluated.matrix_world)
    bones = evaluated.pose.bones
    local = np.array([tuple(getattr(bones[name], end)) for name, end in JOINT_ON_BONE])
    return local @ world[:3, :3].T + world[:3, 3]


# ----------------------------------------------------------------------------------------------------
# Exports through Blender's own exporters.

def _action_of(obj):
    _check_armature(obj)
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        raise PoseMoEError(f"Armature '{obj.name}' has no animation; write a take onto it first.")
    return action


@contextmanager
def _export_context(obj, action) -> Iterator[tuple[int, int]]:
    """Only ``obj`` selected and active in object mode, the scene's frame range and rate set to the
    action's; all of it put back afterwards. Yields (first frame, last frame)."""
    context = bpy.context
    scene, view_layer = context.scene, context.view_layer
    if not _in_view_layer(obj, view_layer):
        raise PoseMoEError(f"Armature '{obj.name}' is not in the current view layer; link it to the scene "
                           "to export it.")
    if context.object is not None and context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    first, last = (int(round(f)) for f in action.frame_range)
    fps = float(action.get("posemoe_fps", scene.render.fps / scene.render.fps_base))
    saved = (view_layer.objects.active, [o for o in view_layer.objects if o.select_get()],
             scene.frame_start, scene.frame_end, scene.frame_current, scene.render.fps, scene.render.fps_base)
    try:
        for other in view_layer.objects:
            other.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
        scene.frame_start, scene.frame_end = first, last
        # Blender's frame rate is fps / fps_base with an integer fps (29.97 = 30 / 1.001).
        scene.render.fps = max(1, round(fps))
        scene.render.fps_base = scene.render.fps / fps
        yield first, last
    finally:
        active, selected, start, end, current, rate, base = saved
        for other in view_layer.objects:
            other.select_set(other in selected)
        view_layer.objects.active = active
        scene.frame_start, scene.frame_end = start, end
        scene.render.fps, scene.render.fps_base = rate, base
        scene.frame_set(current)


def _run_exporter(operator, path: Path, kind: str, **options) -> None:
    try:
        result = operator(filepath=str(path), check_existing=False, **options)
    except RuntimeError as error:
        raise PoseMoEError(f"Blender's {kind} exporter failed ({str(error).strip()}); check the armature and "
                           "the output folder.") from error
    if "FINISHED" not in result or not path.is_file() or path.stat().st_size == 0:
        raise PoseMoEError(f"Blender's {kind} exporter wrote nothing; check the armature and the output folder.")


def export_bvh(obj, path: str | Path) -> Path:
    """Write the armature's action as BVH with Blender's exporter, all or nothing. Returns the path.

    Blender's exporter writes armature space as it is (Z up, metres, one frame per scene frame, the
    frame time from the take's rate), unlike ``posemoe.export.bvh`` (Y up); read it back with
    ``bpy.ops.import_anim.bvh(axis_forward="Y", axis_up="Z")``.
    """
    path = Path(path)
    action = _action_of(obj)
    with _export_context(obj, action) as (first, last), atomic_output(path) as tmp:
        _run_exporter(bpy.ops.export_anim.bvh, tmp, "BVH", frame_start=first, frame_end=last,
                      rotate_mode="NATIVE", root_transform_only=False)
    return path


def export_fbx(obj, path: str | Path) -> Path:
    """Write the armature and its action as FBX with Blender's exporter, all or nothing. Returns the path.

    FBX's own axes (Y up, -Z forward, Blender's defaults for Unity, Unreal and Maya); every frame is
    baked and kept (no curve simplification), only this armature and only its current action; no leaf
    bones added, so the bone names and count stay ours.
    """
    path = Path(path)
    action = _action_of(obj)
    with _export_context(obj, action), atomic_output(path) as tmp:
        _run_exporter(bpy.ops.export_scene.fbx, tmp, "FBX", use_selection=True, object_types={"ARMATURE"},
                      add_leaf_bones=False, bake_anim=True, bake_anim_use_all_bones=True,
                      bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
                      bake_anim_force_startend_keying=True, bake_anim_step=1.0, bake_anim_simplify_factor=0.0,
                      use_armature_deform_only=False, armature_nodetype="NULL")
    return path
