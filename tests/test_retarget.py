"""Retargeting a solved take onto other armatures (blender_addon/retarget.py), against real Blender.

The check that matters: after keying, every target bone mapped along one of our segments points, in
world space, where that segment points (angle printed, under a degree), whatever the target's rest
pose (Rigify's meta-rig, the same in an A-pose, a Mixamo skeleton in centimetres on a moved, turned,
scaled object, a generated Rigify rig whose FK controls hang from constraint-driven bones).

Blender's user resources point to a throw-away folder, as in test_rig.py. The generated Rigify rig is
tested in a child process: after ``pose.rigify_generate`` the bpy module (4.5) deadlocks at interpreter
exit (a Blender thread, ``delayed_close_thread_run``, still waits on a condition variable being
destroyed), which would hang pytest; the child (conftest's ``with_generated_rigify_rig``) prints its
measurements and leaves with ``os._exit``.
"""

from __future__ import annotations

import atexit
import math

# conftest.py points BLENDER_USER_RESOURCES at a temporary folder before bpy is imported.

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402
from mathutils import Matrix  # noqa: E402

from posemoe import PoseMoEError  # noqa: E402
from posemoe.motion.clean import clean  # noqa: E402
from posemoe.motion.solve import SkeletonMotion, solve_skeleton  # noqa: E402
from posemoe.skeleton import L_ANKLE, L_KNEE, R_ANKLE, R_KNEE  # noqa: E402

from blender_addon import actions, bone_map, retarget  # noqa: E402
from blender_addon.actions import channelbag_fcurves  # noqa: E402
from conftest import REST_POSE_MM, synthetic_motion, with_generated_rigify_rig  # noqa: E402

FPS = 25.0
LIMB_PARTS = ("thigh", "shin", "upper_arm", "forearm")


def _turn(joints: np.ndarray, which: list[int], pivot: int, rotvec: np.ndarray) -> None:
    """Turn joints ``which`` of (N, 17, 3) ``joints`` about joint ``pivot`` by (N, 3) rotation vectors."""
    rotation = Rotation.from_rotvec(rotvec).as_matrix()
    joints[:, which] = np.einsum("nij,nkj->nki", rotation, joints[:, which] - joints[:, [pivot]]) + joints[:, [pivot]]


def moving(frames: int = 40) -> SkeletonMotion:
    """A synthetic take (world metres, Z up, facing -Y): the left arm raised overhead with a bent
    elbow, the right arm swung forward and down, legs stepping with bent knees, a forward lean, a
    90-degree turn and 1.2 m walked."""
    s = np.linspace(0.0, 1.0, frames)
    step = np.sin(2 * np.pi * s)
    joints = np.repeat(REST_POSE_MM[None] / 1000.0, frames, axis=0)

    def about(axis, angle):
        return np.asarray(axis, dtype=np.float64)[None] * angle[:, None]

    _turn(joints, [3], 2, about((1, 0, 0), -np.radians(50) * np.clip(step, 0, None)))  # knees bend
    _turn(joints, [6], 5, about((1, 0, 0), -np.radians(50) * np.clip(-step, 0, None)))
    _turn(joints, [2, 3], 1, about((1, 0, 0), np.radians(30) * step))  # thighs swing
    _turn(joints, [5, 6], 4, about((1, 0, 0), -np.radians(30) * step))
    _turn(joints, [13], 12, about((0, 0, 1), np.radians(60) * s))  # left elbow bends
    _turn(joints, [12, 13], 11, about((0, -1, 0), np.radians(80) * s))  # left arm up
    _turn(joints, [15, 16], 14, about((1, 0, 0), np.radians(40) * s) + about((0, -1, 0), np.radians(60) * s))
    _turn(joints, list(range(8, 17)), 7, about((1, 0, 0), np.radians(15) * s))  # lean forward
    _turn(joints, list(range(1, 17)), 0, about((0, 0, 1), np.radians(90) * s))  # turn left
    joints[..., 0] += 0.3 * s[:, None]
    joints[..., 1] -= 1.2 * s[:, None]
    joints[..., 2] += 0.03 * np.abs(step)[:, None]
    return solve_skeleton(joints, FPS)


@pytest.fixture(autouse=True)
def empty_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)  # Add > Armature > Human (Meta-Rig) is Rigify's
    yield
    addon_utils.disable("rigify", default_set=True)  # other test files expect factory add-ons


def _clear_typing_caches() -> None:
    """bpy 4.5 deadlocks at process exit when the bpy module outlives interpreter teardown (a static
    destructor destroys a condition variable its ``delayed_close_thread_run`` thread still waits on).
    Rigify's typing generics, cached in ``typing._tp_cache``, keep bpy alive that long once other
    libraries (ONNX Runtime and OpenCV, in test_rig.py's captured take) have run in the process: the suite
    would never end. Clearing the caches before teardown lets bpy shut its thread down."""
    import typing

    for clear in getattr(typing, "_cleanups", ()):
        clear()


atexit.register(_clear_typing_caches)


def metarig():
    bpy.ops.object.armature_human_metarig_add()
    return bpy.context.object


def segment_bones(map_name: str, prefix: str = "") -> dict[str, tuple[int, int]]:
    return {prefix + b: d.segment for b, d in bone_map.load_map(map_name).bones.items() if d.segment}


def worst_angles(obj, motion: SkeletonMotion, bones: dict[str, tuple[int, int]], frame_start: int = 1,
                 every: int = 3, axes: np.ndarray = np.eye(3)) -> dict[str, float]:
    """Largest angle (degrees) over the take between each bone's evaluated world direction (tail - head)
    and our segment's direction (the take plays in the armature's space, so turned with the object, and
    by ``axes`` for an armature that stands in other axes)."""
    positions = motion.joint_positions() @ axes.T
    world = np.array(obj.matrix_world)[:3, :3]
    worst = dict.fromkeys(bones, 0.0)
    for i in range(0, len(positions), every):
        bpy.context.scene.frame_set(frame_start + i)
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        for name, (joint, child) in bones.items():
            pose_bone = evaluated.pose.bones[name]
            got = world @ np.array(pose_bone.tail - pose_bone.head)
            want = world @ (positions[i, child] - positions[i, joint])
            worst[name] = max(worst[name], math.degrees(math.atan2(np.linalg.norm(np.cross(got, want)), got @ want)))
    return worst


def old_action(obj):
    """Give ``obj`` an action of its own (one key), as a user's armature would have."""
    action = bpy.data.actions.new("old")
    obj.animation_data_create().action = action
    obj.keyframe_insert("location", frame=1)
    return action


def scene_state(obj) -> tuple:
    animation = obj.animation_data
    return (sorted(a.name for a in bpy.data.actions), animation.action if animation else None,
            getattr(animation, "action_slot", None) if animation else None,
            {b.name: (b.rotation_mode, tuple(b.rotation_quaternion), tuple(b.rotation_euler)) for b in obj.pose.bones},
            bpy.context.scene.frame_current)


# ----------------------------------------------------------------------------------------------------

def test_metarig_bones_point_along_our_segments():
    motion = moving()
    obj = metarig()
    previous = old_action(obj)
    finger = obj.pose.bones["f_index.01.L"]
    finger.rotation_quaternion = (0.9, 0.1, 0.3, 0.0)
    name, resolved, missing = retarget.detect_map(obj)
    assert (name, resolved.prefix, missing) == ("rigify_metarig", "", [])

    action, report = retarget.retarget(motion, obj, action_name="old", frame_start=5)
    assert action.name == "old.001" and obj.animation_data.action == action and previous.use_fake_user
    assert len(channelbag_fcurves(previous)) == 3  # the old action is kept as it was
    assert report.map_name == "rigify_metarig" and report.missing == [] and report.rounds == 0
    assert report.mapped["thigh.L"] == "LHip" and report.mapped["spine"] == "Hip" and len(report.mapped) == 21
    assert "f_index.01.L" in report.unmapped and "toe.L" in report.unmapped and "thigh.L" not in report.unmapped
    assert set(report.rotation_mode_changed) == {"shoulder.L", "shoulder.R"}  # the meta-rig's are YXZ
    assert all(obj.pose.bones[b].rotation_mode == "QUATERNION" for b in report.mapped)
    # Unmapped bones keep their pose and get no keys.
    assert tuple(finger.rotation_quaternion) == pytest.approx((0.9, 0.1, 0.3, 0.0))
    paths = {fc.data_path for fc in channelbag_fcurves(action, obj)}
    assert not any("f_index" in p or "toe" in p for p in paths) and 'pose.bones["spine"].location' in paths

    worst = worst_angles(obj, motion, segment_bones("rigify_metarig"), frame_start=5)
    print(f"meta-rig: largest angle to our segments {max(worst.values()):.4f} deg ({max(worst, key=worst.get)})")
    assert max(worst.values()) < 1.0


def test_an_a_pose_rest_is_compensated():
    motion = moving()
    obj = metarig()
    bones = obj.data.bones

    def droop() -> float:  # degrees below horizontal of the left upper arm, rest pose
        arm = np.array(bones["upper_arm.L"].tail_local - bones["upper_arm.L"].head_local)
        return math.degrees(math.asin(-arm[2] / np.linalg.norm(arm)))

    before = droop()
    # Turn each arm (with forearm, hand and fingers) 45 degrees further down about its shoulder joint.
    arms = {side: [b.name for b in bones if b.name == f"upper_arm.{side}" or bones[f"upper_arm.{side}"] in b.parent_recursive]
            for side in "LR"}
    bpy.ops.object.mode_set(mode="EDIT")
    for side, sign in (("L", 1.0), ("R", -1.0)):
        pivot = np.array(obj.data.edit_bones[f"upper_arm.{side}"].head)
        turn = np.eye(4)
        turn[:3, :3] = Rotation.from_rotvec((0.0, sign * math.radians(45), 0.0)).as_matrix()
        to_pivot, back = np.eye(4), np.eye(4)
        to_pivot[:3, 3], back[:3, 3] = -pivot, pivot
        for name in arms[side]:
            obj.data.edit_bones[name].transform(Matrix((back @ turn @ to_pivot).tolist()))
    bpy.ops.object.mode_set(mode="OBJECT")
    assert before > 20 and droop() > before + 25  # the meta-rig's arms already hang 28 degrees; now 59

    _, report = retarget.retarget(motion, obj)
    worst = worst_angles(obj, motion, segment_bones("rigify_metarig"))
    print(f"A-pose meta-rig (arms {droop():.0f} deg down): largest angle {max(worst.values()):.4f} deg")
    assert max(worst.values()) < 1.0
    # Hands stay in line with their forearms, as in the rest pose.
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    for side in "LR":
        fore, hand = evaluated.pose.bones[f"forearm.{side}"], evaluated.pose.bones[f"hand.{side}"]
        rest = np.array(bones[f"forearm.{side}"].matrix_local)[:3, :3].T @ np.array(bones[f"hand.{side}"].matrix_local)[:3, :3]
        posed = np.array(fore.matrix)[:3, :3].T @ np.array(hand.matrix)[:3, :3]
        np.testing.assert_allclose(posed, rest, atol=1e-4)


# A Mixamo skeleton, metres (the builder scales it): head, tail, parent, connected. Left side at +X.
_MIXAMO = {
    "Hips": ((0, 0, 1.0), (0, 0, 1.1), None, False),
    "Spine": ((0, 0, 1.1), (0, 0.01, 1.22), "Hips", True),
    "Spine1": ((0, 0.01, 1.22), (0, 0.01, 1.34), "Spine", True),
    "Spine2": ((0, 0.01, 1.34), (0, 0, 1.46), "Spine1", True),
    "Neck": ((0, 0, 1.46), (0, -0.01, 1.56), "Spine2", True),
    "Head": ((0, -0.01, 1.56), (0, -0.01, 1.76), "Neck", True),
    "LeftShoulder": ((0.03, 0, 1.42), (0.16, 0.01, 1.42), "Spine2", False),
    "LeftArm": ((0.16, 0.01, 1.42), (0.44, 0.01, 1.42), "LeftShoulder", True),
    "LeftForeArm": ((0.44, 0.01, 1.42), (0.7, 0.01, 1.42), "LeftArm", True),
    "LeftHand": ((0.7, 0.01, 1.42), (0.79, 0.01, 1.42), "LeftForeArm", True),
    "LeftUpLeg": ((0.09, 0, 0.98), (0.09, 0, 0.55), "Hips", False),
    "LeftLeg": ((0.09, 0, 0.55), (0.09, 0.01, 0.1), "LeftUpLeg", True),
    "LeftFoot": ((0.09, 0.01, 0.1), (0.09, -0.12, 0.02), "LeftLeg", True),
    "LeftToeBase": ((0.09, -0.12, 0.02), (0.09, -0.2, 0.02), "LeftFoot", True),
}
_MIXAMO.update({
    name.replace("Left", "Right"): ((-h[0], h[1], h[2]), (-t[0], t[1], t[2]), p and p.replace("Left", "Right"), c)
    for name, (h, t, p, c) in list(_MIXAMO.items()) if name.startswith("Left")
})


def mixamo_armature(prefix: str = "mixamorig:", size: float = 1.0, units: float = 100.0, arms_down: float = 0.0,
                    axes: np.ndarray = np.eye(3)):
    """A Mixamo-named armature: T-pose (or arms ``arms_down`` degrees lower), the body ``size`` times
    the table's, in ``units`` per metre inside an object scaled by 1 / units (as Mixamo's FBX come in),
    standing in armature space turned by ``axes`` (default: Z up, facing -Y); rolls all different;
    Euler rotation modes (as FBX imports give)."""
    data = bpy.data.armatures.new("mixamo")
    obj = bpy.data.objects.new("mixamo", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.scale = (1.0 / units,) * 3
    bpy.ops.object.mode_set(mode="EDIT")
    for k, (name, (head, tail, parent, connected)) in enumerate(_MIXAMO.items()):
        head, tail = np.array(head, dtype=float), np.array(tail, dtype=float)
        side = 1.0 if "Left" in name else -1.0
        if arms_down and any(part in name for part in ("Arm", "Hand")):
            pivot = np.array(_MIXAMO[name[:4 if side > 0 else 5] + "Arm"][0], dtype=float)
            turn = Rotation.from_rotvec((0.0, side * math.radians(arms_down), 0.0))
            head, tail = pivot + turn.apply(head - pivot), pivot + turn.apply(tail - pivot)
        bone = data.edit_bones.new(prefix + name)
        bone.head, bone.tail = axes @ head * size * units, axes @ tail * size * units
        bone.roll = 0.4 * k - 2.0
        if parent:
            bone.parent = data.edit_bones[prefix + parent]
            bone.use_connect = connected
    bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "XYZ"
    return obj


def test_a_mixamo_armature_is_detected_and_follows():
    motion = moving()
    obj = mixamo_armature(arms_down=40.0)
    obj.location, obj.rotation_euler = (2.0, 1.0, 0.0), (0.0, 0.0, math.radians(30))
    name, resolved, missing = retarget.detect_map(obj)
    assert (name, resolved.prefix, resolved.root) == ("mixamo", "mixamorig:", "mixamorig:Hips") and missing == []

    _, report = retarget.retarget(motion, obj, action_name="walk")
    assert report.map_name == "mixamo" and len(report.mapped) == 20 and report.unmapped == [
        "mixamorig:LeftToeBase", "mixamorig:RightToeBase"]
    assert len(report.rotation_mode_changed) == 20 and report.warnings == []
    worst = worst_angles(obj, motion, segment_bones("mixamo", "mixamorig:"))
    print(f"Mixamo, A-pose, cm, moved and turned: largest angle {max(worst.values()):.4f} deg")
    assert max(worst.values()) < 1.0


def test_a_y_up_armature_as_fbx_imports_it():
    """FBX is Y up, facing +Z: Blender's importer leaves the armature's own space so and turns the object
    90 degrees about X. The take is turned into the rig's axes: in the world it stands up and walks."""
    motion = moving()
    y_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # our (x, y, z) -> (x, z, -y)
    obj = mixamo_armature(axes=y_up)
    obj.rotation_euler = (math.radians(90), 0.0, 0.0)
    _, report = retarget.retarget(motion, obj)
    assert any("turned to match" in w for w in report.warnings)
    worst = worst_angles(obj, motion, segment_bones("mixamo", "mixamorig:"), axes=y_up)
    print(f"Mixamo, Y up in armature space: largest angle {max(worst.values()):.4f} deg")
    assert max(worst.values()) < 1.0
    # In the world, the object's turn undoes the armature's axes: hips travel as ours, scaled.
    travel = motion.root_positions[-1] - motion.root_positions[0]
    np.testing.assert_allclose(hips_centre(obj, len(motion.root_positions)) - hips_centre(obj, 1),
                               travel * report.world_scale, atol=1e-4)


def test_a_cleaned_take_retargets():
    """The take as the add-on gets it: synthetic joints through the clean-up (smoothing, foot locking)."""
    cleaned = clean(synthetic_motion(60, seed=5) / 1000.0, 50.0)
    obj = metarig()
    _, report = retarget.retarget(cleaned.motion, obj)
    worst = worst_angles(obj, cleaned.motion, segment_bones("rigify_metarig"), every=5)
    print(f"cleaned take on the meta-rig: largest angle {max(worst.values()):.4f} deg")
    assert max(worst.values()) < 1.0 and report.scale > 0


@pytest.mark.parametrize("prefix", ["", "mixamorig1:", "Armature_"])
def test_mixamo_names_with_any_prefix_are_found(prefix):
    obj = mixamo_armature(prefix)
    name, resolved, missing = retarget.detect_map(obj)
    assert (name, resolved.prefix, missing) == ("mixamo", prefix, [])


def hips_centre(obj, frame: int) -> np.ndarray:
    """World position of the middle of the thigh heads at ``frame``."""
    bpy.context.scene.frame_set(frame)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    bones = evaluated.pose.bones
    local = (np.array(bones["mixamorig:LeftUpLeg"].head) + np.array(bones["mixamorig:RightUpLeg"].head)) / 2
    world = np.array(obj.matrix_world)
    return world[:3, :3] @ local + world[:3, 3]


def test_root_motion_is_scaled_by_leg_length():
    motion = moving()
    our_leg = np.mean([np.linalg.norm(motion.offsets[j]) for j in (R_KNEE, R_ANKLE, L_KNEE, L_ANKLE)]) * 2
    travel = motion.root_positions[-1] - motion.root_positions[0]
    for size in (1.0, 0.6):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        obj = mixamo_armature(size=size)
        obj.rotation_euler = (0.0, 0.0, math.radians(-50))
        _, report = retarget.retarget(motion, obj)
        heads = {b: size * np.array(_MIXAMO[b][0]) for b in ("LeftUpLeg", "LeftLeg", "LeftFoot")}
        target_leg = (np.linalg.norm(heads["LeftLeg"] - heads["LeftUpLeg"])
                      + np.linalg.norm(heads["LeftFoot"] - heads["LeftLeg"]))  # thigh + shin, metres
        assert report.world_scale == pytest.approx(target_leg / our_leg, rel=1e-6)
        assert report.scale == pytest.approx(100 * target_leg / our_leg, rel=1e-6)  # armature units: cm
        moved = hips_centre(obj, len(motion.root_positions)) - hips_centre(obj, 1)
        turn = Rotation.from_euler("z", -50, degrees=True)
        print(f"size {size}: hips moved {np.linalg.norm(moved):.4f} m for our {np.linalg.norm(travel):.4f} m, "
              f"scale {report.world_scale:.4f}")
        np.testing.assert_allclose(moved, turn.apply(travel) * report.world_scale, atol=1e-4)


def constrained_root(obj) -> None:
    """Put a bone ``root`` above the hips, turned by a Copy Rotation constraint from an empty."""
    bpy.ops.object.mode_set(mode="EDIT")
    root = obj.data.edit_bones.new("root")
    root.head, root.tail = (0.0, 0.0, 0.0), (0.0, 30.0, 0.0)
    obj.data.edit_bones["mixamorig:Hips"].parent = root
    bpy.ops.object.mode_set(mode="OBJECT")
    target = bpy.data.objects.new("turner", None)
    bpy.context.scene.collection.objects.link(target)
    target.rotation_euler = (0.2, 0.0, 0.7)
    obj.pose.bones["root"].constraints.new("COPY_ROTATION").target = target


def test_a_constrained_parent_is_read_back():
    """The hips hang from a bone turned by a constraint: its pose is read back, and the keys make up."""
    motion = moving(24)
    obj = mixamo_armature()
    constrained_root(obj)

    _, report = retarget.retarget(motion, obj)
    assert report.rounds >= 2 and report.warnings == []
    worst = worst_angles(obj, motion, segment_bones("mixamo", "mixamorig:"))
    print(f"Mixamo under a constrained root ({report.rounds} rounds): largest angle {max(worst.values()):.4f} deg")
    assert max(worst.values()) < 1.0


# ----------------------------------------------------------------------------------------------------
# Errors leave the scene as it was.

def test_missing_thighs_are_named_and_nothing_changes():
    motion = moving(10)
    obj = metarig()
    old_action(obj)
    bpy.ops.object.mode_set(mode="EDIT")
    for name in ("thigh.L", "thigh.R", "hand.L"):
        obj.data.edit_bones.remove(obj.data.edit_bones[name])
    bpy.ops.object.mode_set(mode="OBJECT")
    before = scene_state(obj)
    with pytest.raises(PoseMoEError, match=r"lacks thigh\.L, thigh\.R\b") as error:
        retarget.retarget(motion, obj)
    assert "Mixamo" in str(error.value) and "hand.L" not in str(error.value)
    with pytest.raises(PoseMoEError, match=r"thigh\.L, thigh\.R"):
        retarget.retarget(motion, obj, bone_map="rigify_metarig")
    assert scene_state(obj) == before


def test_a_missing_hand_is_reported_not_fatal():
    motion = moving(10)
    obj = metarig()
    bpy.ops.object.mode_set(mode="EDIT")
    obj.data.edit_bones.remove(obj.data.edit_bones["hand.L"])
    bpy.ops.object.mode_set(mode="OBJECT")
    _, report = retarget.retarget(motion, obj, bone_map="rigify_metarig")
    assert report.missing == ["hand.L"] and "hand.L" not in report.mapped


def test_oddly_named_bones_give_a_clear_error():
    obj = mixamo_armature(prefix="")
    for k, bone in enumerate(obj.data.bones):
        bone.name = f"Bone.{k:03d}"
    before = scene_state(obj)
    with pytest.raises(PoseMoEError, match="none of the bone names PoseMoE knows.*Supported rigs: Rigify"):
        retarget.retarget(moving(5), obj)
    with pytest.raises(PoseMoEError, match="not an armature"):
        retarget.retarget(moving(5), bpy.data.objects.new("empty", None))
    with pytest.raises(PoseMoEError, match="No bone map 'nope'"):
        retarget.retarget(moving(5), obj, bone_map="nope")
    with pytest.raises(PoseMoEError, match="not one of our joints"):
        retarget.retarget(moving(5), obj, bone_map={"root": "a", "bones": {"a": {"joint": "Tail"}}})
    assert scene_state(obj) == before


@pytest.mark.parametrize("module, where", [(actions, "fill_fcurve"), (retarget, "_read_back")])
def test_a_failure_half_way_changes_nothing(monkeypatch, module, where):
    obj = mixamo_armature()
    if where == "_read_back":  # a constrained parent, so that the keys are read back
        constrained_root(obj)
    old_action(obj)
    bpy.context.scene.frame_set(7)
    before = scene_state(obj)
    calls = []
    original = getattr(module, where)

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5 if where == "fill_fcurve" else True:
            raise RuntimeError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, where, failing)
    with pytest.raises(RuntimeError, match="disk full"):
        retarget.retarget(moving(10), obj, action_name="walk")
    assert calls and scene_state(obj) == before


# ----------------------------------------------------------------------------------------------------
# A rig Rigify generated, in a child process (see the module docstring).

_FK_ON_RIGIFY = """
from test_retarget import moving, segment_bones, worst_angles
from blender_addon import retarget
motion = moving(24)
detected = retarget.detect_map(rig)
_, report = retarget.retarget(motion, rig)
bones = segment_bones("rigify_fk")
# With IK_FK keyed to FK, the deforming bones follow the FK controls.
bones.update({f"DEF-{part}.{side}": bones[f"{part}_fk.{side}"]
              for part in ("thigh", "shin", "upper_arm", "forearm") for side in "LR"})
worst = worst_angles(rig, motion, bones)
hips = []
for frame in (1, len(motion.root_positions)):
    bpy.context.scene.frame_set(frame)
    b = rig.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones
    hips.append(((b["DEF-thigh.L"].head + b["DEF-thigh.R"].head) / 2)[:])
result = {"map": detected[0], "missing": detected[2], "rounds": report.rounds, "worst": worst,
          "properties": report.properties, "hips": hips, "scale": report.world_scale,
          "warnings": report.warnings, "changed": report.rotation_mode_changed}
"""


@pytest.mark.slow
def test_a_generated_rigify_rig_follows_through_its_fk_controls():
    result = with_generated_rigify_rig("armature_basic_human_metarig_add", _FK_ON_RIGIFY)
    assert result["map"] == "rigify_fk" and result["missing"] == [] and result["warnings"] == []
    assert result["rounds"] >= 2  # FK controls hang from constraint-driven MCH bones
    assert sorted(result["changed"]) == ["shoulder.L", "shoulder.R"]
    assert sorted(p[0] for p in result["properties"]) == sorted(
        f"{b}_parent.{s}" for b in ("upper_arm", "thigh") for s in "LR")
    worst = result["worst"]
    print(f"generated Rigify rig ({result['rounds']} rounds): largest angle {max(worst.values()):.4f} deg "
          f"({max(worst, key=worst.get)})")
    assert max(worst.values()) < 1.0
    motion = moving(24)
    travel = motion.root_positions[-1] - motion.root_positions[0]
    moved = np.subtract(result["hips"][1], result["hips"][0])
    np.testing.assert_allclose(moved, travel * result["scale"], atol=2e-3)
