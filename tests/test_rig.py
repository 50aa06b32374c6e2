"""The Blender layer (blender_addon/rig.py) against real Blender: the armature, the keys, the exports.

Runs in the pytest process next to torch and ONNX Runtime (bpy from PyPI coexists with both; the suite is
also run with this file first and last). Blender's user resources point to a throw-away folder so the
tests neither read nor write the user's Blender configuration.
"""

from __future__ import annotations


# conftest.py points BLENDER_USER_RESOURCES at a temporary folder before bpy is imported.

import numpy as np  # noqa: E402
import pytest  # noqa: E402

bpy = pytest.importorskip("bpy")

from posemoe import PoseMoEError  # noqa: E402
from posemoe.motion.solve import SkeletonMotion, solve_skeleton  # noqa: E402
from posemoe.skeleton import ANKLE_HEIGHT, ANKLES, NUM_JOINTS, PARENTS  # noqa: E402

from blender_addon import actions, rig  # noqa: E402
from conftest import ROOT, synthetic_motion  # noqa: E402

FPS = 50.0


def walking(frames: int = 90, seed: int = 3) -> SkeletonMotion:
    """A synthetic person swinging arms and legs, turning, and walking 1.5 m towards -Y (world metres)."""
    joints = synthetic_motion(frames, seed) / 1000.0
    joints[..., 1] -= np.linspace(0.0, 1.5, frames)[:, None]
    return solve_skeleton(joints, FPS)


@pytest.fixture(autouse=True)
def empty_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)


def max_round_trip_error(obj, motion: SkeletonMotion, frames, frame_start: int = 1) -> float:
    """Largest distance (metres) between the evaluated armature's joints and the motion's FK."""
    expected = motion.joint_positions()
    scene = bpy.context.scene
    worst = 0.0
    for f in frames:
        scene.frame_set(frame_start + f)
        worst = max(worst, np.linalg.norm(rig.evaluated_joint_positions(obj) - expected[f], axis=-1).max())
    return worst


def test_armature_has_a_bone_for_every_joint():
    motion = walking(10)
    obj = rig.build_armature(motion, "walk")
    bones = obj.data.bones
    assert obj.type == "ARMATURE" and bpy.context.view_layer.objects.active == obj
    assert sorted(b.name for b in bones) == sorted(spec.name for spec in rig.BONES) and len(bones) == 16
    assert {b.name for b in bones if b.name.endswith(".L")} == {"thigh.L", "shin.L", "foot.L", "upper_arm.L",
                                                                 "forearm.L", "hand.L"}
    assert bones["thigh.R"].parent.name == "pelvis" and not bones["thigh.R"].use_connect
    assert bones["upper_arm.L"].parent.name == "neck" and not bones["upper_arm.L"].use_connect
    assert bones["shin.R"].parent.name == "thigh.R" and bones["shin.R"].use_connect
    # The rest pose is the skeleton's T-pose: every joint a bone's head or tail, each bone as long as ours.
    rest = rig.armature_rest_joints(obj)
    np.testing.assert_allclose(rest, rig.rest_joint_positions(motion.offsets), atol=1e-5)
    for j in range(1, NUM_JOINTS):
        np.testing.assert_allclose(rest[j] - rest[PARENTS[j]], motion.offsets[j], atol=1e-5)
    assert rest[list(ANKLES), 2].min() == pytest.approx(ANKLE_HEIGHT, abs=1e-6)
    # Rolls: local Z forward (-Y) on every bone but the feet, whose Z is up.
    for bone in bones:
        z_axis = np.array(bone.matrix_local.col[2][:3])
        if bone.name.startswith("foot"):
            assert z_axis[2] > 0.9, bone.name
        else:
            np.testing.assert_allclose(z_axis, (0.0, -1.0, 0.0), atol=1e-6, err_msg=bone.name)


def test_keys_reproduce_the_joint_positions():
    motion = walking(90)
    obj = rig.build_armature(motion, "walk")
    rig.write_action(obj, motion, "walk", frame_start=11)
    error = max_round_trip_error(obj, motion, range(0, 90, 4), frame_start=11)
    print(f"synthetic take: largest joint error after keying {error * 1000:.4f} mm")
    assert error < 1e-3  # float32 keys: about a micrometre; a wrong roll or parent shows up as centimetres


@pytest.mark.slow
def test_a_captured_take_round_trips():
    """The real chain: BlazePose and the shipped lifter on the sample clip, the solve, then Blender."""
    from posemoe.pipeline import Settings, capture

    take = capture(ROOT / "samples" / "walk.mp4", Settings(start=60, stop=100))
    motion = solve_skeleton(take.joints_world, take.fps)
    obj = rig.build_armature(motion, "walk")
    rig.write_action(obj, motion, "walk")
    error = max_round_trip_error(obj, motion, range(len(take)))
    print(f"captured take ({len(take)} frames): largest joint error after keying {error * 1000:.4f} mm")
    assert error < 1e-3


def test_keys_are_written_once_per_frame_into_the_slot():
    motion = walking(60)
    obj = rig.build_armature(motion, "walk")
    action = rig.write_action(obj, motion, "walk")
    assert action.name == "walk" and obj.animation_data.action == action
    assert action["posemoe_fps"] == FPS
    if actions.LAYERED_ACTIONS:  # 4.4 and later: the curves live in the channelbag of the slot the armature uses
        slot = obj.animation_data.action_slot
        assert slot is not None and slot.target_id_type == "OBJECT" and list(action.slots) == [slot]
        assert len(action.layers) == 1 and len(action.layers[0].strips) == 1
        fcurves = list(action.layers[0].strips[0].channelbag(slot).fcurves)
    else:
        fcurves = list(action.fcurves)
    assert fcurves == actions.channelbag_fcurves(action, obj)
    assert len(fcurves) == 16 * 4 + 3
    expected_paths = {f'pose.bones["{spec.name}"].rotation_quaternion' for spec in rig.BONES}
    expected_paths.add('pose.bones["pelvis"].location')
    assert {fc.data_path for fc in fcurves} == expected_paths
    for fc in fcurves:
        assert len(fc.keyframe_points) == 60, fc.data_path
        assert fc.group is not None and fc.group.name in fc.data_path
    curve = next(fc for fc in fcurves if fc.data_path.endswith('"shin.L"].rotation_quaternion') and fc.array_index == 0)
    frames = np.empty(120, dtype=np.float32)
    curve.keyframe_points.foreach_get("co", frames)
    np.testing.assert_array_equal(frames[0::2], np.arange(1, 61))
    assert {k.interpolation for k in curve.keyframe_points} == {"LINEAR"}
    # Sign continuity survives the conversion: neighbouring keys of each bone in one hemisphere.
    for spec in rig.BONES:
        quats = np.stack([_key_values(fcurves, spec.name, i) for i in range(4)], axis=1)
        assert (np.einsum("tc,tc->t", quats[1:], quats[:-1]) > 0).all(), spec.name


def _key_values(fcurves, bone: str, index: int) -> np.ndarray:
    curve = next(fc for fc in fcurves if fc.data_path == f'pose.bones["{bone}"].rotation_quaternion'
                 and fc.array_index == index)
    co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
    curve.keyframe_points.foreach_get("co", co)
    return co[1::2]


def test_each_take_gets_its_own_action_and_no_action_is_overwritten():
    users = bpy.data.actions.new("walk")  # the user's own action, already called like the take
    users["mine"] = True
    first_motion, second_motion = walking(30, seed=1), walking(40, seed=2)
    obj = rig.build_armature(first_motion, "walk")
    first = rig.write_action(obj, first_motion, "walk")
    keys_before = _key_values(actions.channelbag_fcurves(first, obj), "thigh.L", 1)
    second = rig.write_action(obj, second_motion, "walk")
    assert (users.name, first.name, second.name) == ("walk", "walk.001", "walk.002")
    assert users.get("mine") and actions.channelbag_fcurves(users) == []
    assert obj.animation_data.action == second
    assert first.use_fake_user  # no longer assigned, but kept when the file is saved
    fcurves = actions.channelbag_fcurves(first)
    assert len(fcurves) == 67 and all(len(fc.keyframe_points) == 30 for fc in fcurves)
    np.testing.assert_array_equal(_key_values(fcurves, "thigh.L", 1), keys_before)
    # The armature keeps the first take's proportions and moves by the second take's rotations.
    on_first_bones = SkeletonMotion(first_motion.offsets, second_motion.root_positions, second_motion.quaternions, FPS)
    assert max_round_trip_error(obj, on_first_bones, range(0, 40, 5)) < 1e-3


def _import(kind: str, path):
    before = set(bpy.data.objects)
    if kind == "bvh":
        # Blender's BVH exporter writes its own Z-up axes; read them back as they are.
        bpy.ops.import_anim.bvh(filepath=str(path), axis_forward="Y", axis_up="Z")
    else:
        bpy.ops.import_scene.fbx(filepath=str(path))
    return next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")


def _root_world(obj, frame: int) -> np.ndarray:
    bpy.context.scene.frame_set(frame)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    return np.array(evaluated.matrix_world @ evaluated.pose.bones[rig.ROOT_BONE].head)


def test_bvh_and_fbx_exports_read_back(tmp_path):
    motion = walking(45)
    obj = rig.build_armature(motion, "walk")
    rig.write_action(obj, motion, "walk")
    other = bpy.data.objects.new("marker", None)
    bpy.context.scene.collection.objects.link(other)
    other.select_set(True)
    scene = bpy.context.scene
    scene.frame_set(7)
    state = (scene.frame_start, scene.frame_end, scene.render.fps)

    rig.export_bvh(obj, tmp_path / "walk.bvh")
    rig.export_fbx(obj, tmp_path / "walk.fbx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.bvh", "walk.fbx"]  # no temporary files left
    assert (scene.frame_start, scene.frame_end, scene.render.fps, scene.frame_current) == (*state, 7)
    assert other.select_get()  # the selection is put back
    assert f"Frame Time: {1 / FPS:.6f}" in (tmp_path / "walk.bvh").read_text()

    travel = np.linalg.norm(motion.root_positions[-1] - motion.root_positions[0])
    for kind in ("bvh", "fbx"):
        imported = _import(kind, tmp_path / f"walk.{kind}")
        action = imported.animation_data.action
        assert {b.name for b in imported.data.bones} == {spec.name for spec in rig.BONES}, kind
        root_x = next(fc for fc in actions.channelbag_fcurves(action, imported)
                      if fc.data_path.endswith('"pelvis"].location') and fc.array_index == 0)
        assert len(root_x.keyframe_points) == 45, kind
        first, last = (int(round(f)) for f in action.frame_range)
        assert last - first + 1 == 45, kind  # FBX's importer starts one frame later (its anim_offset)
        start, end = _root_world(imported, first), _root_world(imported, last)
        print(f"{kind}: root travel {np.linalg.norm(end - start):.5f} m, take {travel:.5f} m")
        # Both files keep full precision (6 decimals in BVH, doubles in FBX); what is lost is float32
        # maths and FBX's metre -> centimetre -> metre scaling, about a micrometre. 2 mm still catches
        # a wrong axis, scale or dropped frame.
        assert np.linalg.norm(end - start) == pytest.approx(travel, abs=2e-3), kind
        np.testing.assert_allclose(start, motion.root_positions[0], atol=2e-3, err_msg=kind)


def test_user_errors_raise_and_change_nothing(tmp_path):
    motion = walking(10)
    empty = SkeletonMotion(motion.offsets, np.zeros((0, 3)), np.zeros((0, NUM_JOINTS, 4)), FPS)
    mesh = bpy.data.objects.new("box", bpy.data.meshes.new("box"))
    bpy.context.scene.collection.objects.link(mesh)

    def snapshot():
        return (set(bpy.data.objects), set(bpy.data.actions), set(bpy.data.armatures))

    before = snapshot()
    with pytest.raises(PoseMoEError, match="no frames"):
        rig.build_armature(empty, "walk")
    with pytest.raises(PoseMoEError, match="not an armature"):
        rig.write_action(mesh, motion, "walk")
    with pytest.raises(PoseMoEError, match="not an armature"):
        rig.write_action(None, motion, "walk")
    assert snapshot() == before

    obj = rig.build_armature(motion, "walk")
    before = snapshot()
    with pytest.raises(PoseMoEError, match="no frames"):
        rig.write_action(obj, empty, "walk")
    with pytest.raises(PoseMoEError, match="no animation"):
        rig.export_bvh(obj, tmp_path / "walk.bvh")
    # Someone else's armature: bones we do not know.
    theirs = bpy.data.objects.new("rig", bpy.data.armatures.new("rig"))
    bpy.context.scene.collection.objects.link(theirs)
    before = snapshot()
    with pytest.raises(PoseMoEError, match="has no bones"):
        rig.write_action(theirs, motion, "walk")
    # Our bone names, another rest pose: the keys would not fit.
    lying = SkeletonMotion(motion.offsets[:, [0, 2, 1]], motion.root_positions, motion.quaternions, FPS)
    with pytest.raises(PoseMoEError, match="T-pose"):
        rig.write_action(obj, lying, "walk")
    assert snapshot() == before and obj.animation_data is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(bpy.app.version >= (5, 0, 0), reason="Action.fcurves, the pre-4.4 route, is gone in Blender 5")
def test_the_pre_slotted_route_keys_the_same(monkeypatch):
    """Blender 4.2 and 4.3 take F-curves straight from Action.fcurves; 4.4 and 4.5 still accept that
    route (they put the curves in a slot of their own, which write_action assigns), so it runs here too."""
    monkeypatch.setattr(actions, "LAYERED_ACTIONS", False)
    motion = walking(30)
    obj = rig.build_armature(motion, "walk")
    action = rig.write_action(obj, motion, "walk")
    fcurves = list(action.fcurves)
    assert len(fcurves) == 67 and all(len(fc.keyframe_points) == 30 for fc in fcurves)
    assert {fc.group.name for fc in fcurves} == {spec.name for spec in rig.BONES}
    assert max_round_trip_error(obj, motion, range(0, 30, 3)) < 1e-3


def test_a_failure_half_way_changes_nothing(monkeypatch):
    """A key write that fails (or is cancelled) half way takes back the new action and reassigns the old."""
    motion = walking(10)
    obj = rig.build_armature(motion, "walk")
    first = rig.write_action(obj, motion, "first")
    slot = getattr(obj.animation_data, "action_slot", None)
    fresh = rig.build_armature(motion, "fresh")
    calls = []
    original = actions.fill_fcurve

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(actions, "fill_fcurve", failing)
    before = sorted(a.name for a in bpy.data.actions)
    with pytest.raises(KeyboardInterrupt):
        rig.write_action(obj, motion, "second")
    assert sorted(a.name for a in bpy.data.actions) == before and obj.animation_data.action == first
    assert getattr(obj.animation_data, "action_slot", None) == slot
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        rig.write_action(fresh, motion, "second")
    assert sorted(a.name for a in bpy.data.actions) == before and fresh.animation_data is None
    # A failed build leaves no armature behind.
    monkeypatch.setattr(rig, "_add_hand_bones", lambda *args: (_ for _ in ()).throw(RuntimeError("disk full")))
    objects, armatures = set(bpy.data.objects), set(bpy.data.armatures)
    with pytest.raises(RuntimeError, match="disk full"):
        rig.build_armature(motion, "broken", hands=object())
    assert set(bpy.data.objects) == objects and set(bpy.data.armatures) == armatures
