"""Bone maps and the retarget's solve without Blender (blender_addon/bone_map.py, retarget_solve.py).

The maps are read and matched to armatures by their bone names alone, and the solve is NumPy: both run
(and are tested) without bpy. The Blender side, against real armatures: test_retarget.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posemoe import PoseMoEError
from posemoe.motion.solve import solve_skeleton
from posemoe.skeleton import JOINT_NAMES, L_HIP, L_KNEE, PARENTS, PELVIS

from blender_addon import bone_map as maps
from blender_addon import retarget_solve as solve
from blender_addon.rig_layout import BONES, LEAF_TAILS, rest_joint_positions
from conftest import ROOT, synthetic_motion

METARIG_BONES = ["spine", "spine.001", "spine.002", "spine.003", "spine.004", "spine.005", "spine.006",
                 "shoulder.L", "upper_arm.L", "forearm.L", "hand.L", "thigh.L", "shin.L", "foot.L", "toe.L",
                 "shoulder.R", "upper_arm.R", "forearm.R", "hand.R", "thigh.R", "shin.R", "foot.R", "toe.R"]
MIXAMO_BONES = ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm",
                "LeftHand", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightShoulder", "RightArm", "RightForeArm",
                "RightHand", "RightUpLeg", "RightLeg", "RightFoot"]


def test_the_modules_import_without_blender():
    code = ("import sys; import blender_addon.bone_map, blender_addon.retarget_solve, blender_addon.fingers, "
            "blender_addon.checks, blender_addon.rig_layout; assert 'bpy' not in sys.modules, 'bpy imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", maps.MAP_NAMES)
def test_the_shipped_maps_load(name):
    bone_map = maps.load_map(name)
    assert bone_map.name == name and bone_map.root in bone_map.bones
    assert all(b in bone_map.bones for b in bone_map.essential)
    assert all(bone_map.bone_of_segment(seg) for seg in maps.LEGS.values())
    assert maps.load_map(maps.MAPS_DIR / f"{name}.json") == bone_map


def _map(**changes) -> dict:
    data = {"name": "mine", "root": "hips", "essential": ["hips"], "bones": {
        "hips": {"joint": "Hip"},
        "thigh.R": {"joint": "RHip", "segment": ["RHip", "RKnee"]}, "shin.R": {"joint": "RKnee", "segment": ["RKnee", "RFoot"]},
        "thigh.L": {"joint": "LHip", "segment": ["LHip", "LKnee"]}, "shin.L": {"joint": "LKnee", "segment": ["LKnee", "LFoot"]}}}
    data.update(changes)
    return data


def test_a_map_from_json():
    bone_map = maps.parse_map(_map(properties=[{"bone": "hips", "property": "ik", "value": 1}],
                                   fingers={"f_index.01.L": "f_index.01.L"}))
    assert bone_map.bones["thigh.L"] == maps.Driver(L_HIP, (L_HIP, L_KNEE))
    assert bone_map.properties == (("hips", "ik", 1.0),) and bone_map.fingers == {"f_index.01.L": "f_index.01.L"}
    prefixed = bone_map.with_prefix("rig:")
    assert prefixed.root == "rig:hips" and prefixed.essential == ("rig:hips",) and prefixed.prefix == "rig:"
    assert prefixed.properties == (("rig:hips", "ik", 1.0),) and "rig:f_index.01.L" in prefixed.fingers
    assert maps.as_map(_map()) == maps.parse_map(_map(), "The bone map") and maps.as_map(bone_map) is bone_map


@pytest.mark.parametrize("data, message", [
    ({"root": "a"}, "no 'bones' table"),
    (_map(bones={"hips": {}}), "needs a 'joint'"),
    (_map(bones={"hips": {"joint": "Tail"}}), "not one of our joints"),
    (_map(bones={**_map()["bones"], "x": {"joint": "LHip", "segment": ["LKnee", "LFoot"]}}), "a segment runs from"),
    (_map(bones={**_map()["bones"], "x": {"joint": "LHip", "segment": ["LHip"]}}), "must be two joint names"),
    (_map(root="nope"), "is not one of its bones"),
    (_map(essential="hips"), "must be a list"),
    (_map(essential=["arm"]), "essential bones arm are not in its 'bones'"),
    (_map(bones={"hips": {"joint": "Hip"}}), "drives no bone along our thigh.R, shin.R, thigh.L, shin.L"),
    (_map(properties=[{"bone": "hips"}]), "needs 'bone', 'property' and a number"),
    (_map(fingers=["a"]), "'fingers' must map"),
    (_map(fingers={"a": "toe.L"}), "toe.L in its 'fingers' are not our hand bones"),
])
def test_a_wrong_map_says_what_is_wrong(data, message):
    with pytest.raises(PoseMoEError, match=message.replace(".", r"\.").replace("(", r"\(")):
        maps.parse_map(data, "Bone map 'mine'")


def test_a_missing_or_broken_map_file(tmp_path):
    with pytest.raises(PoseMoEError, match="No bone map 'nope'; use one of rigify_fk"):
        maps.load_map("nope")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PoseMoEError, match="cannot be read"):
        maps.load_map(tmp_path / "bad.json")


@pytest.mark.parametrize("prefix", ["", "mixamorig:", "mixamorig1:", "Armature_", "rig|"])
def test_any_prefix_is_found(prefix):
    name, resolved, missing = maps.detect([prefix + b for b in MIXAMO_BONES], "mixamo")
    assert (name, resolved.prefix, resolved.root, missing) == ("mixamo", prefix, prefix + "Hips", [])


def test_the_shortest_prefix_wins_a_tie():
    names = METARIG_BONES + ["ORG-" + b for b in METARIG_BONES]
    resolved, missing = maps.match(maps.load_map("rigify_metarig"), names)
    assert resolved.prefix == "" and missing == []
    name, _, _ = maps.detect(names, "metarig")
    assert name == "rigify_metarig"


def test_detection_names_what_is_missing():
    name, resolved, missing = maps.detect([b for b in METARIG_BONES if b != "hand.L"], "metarig")
    assert (name, missing) == ("rigify_metarig", ["hand.L"])
    with pytest.raises(PoseMoEError, match=r"'metarig' looks like a 'rigify_metarig' rig but lacks thigh\.L, "
                                           r"thigh\.R\. .*Supported rigs: Rigify"):
        maps.detect([b for b in METARIG_BONES if not b.startswith("thigh")], "metarig")
    with pytest.raises(PoseMoEError, match=r"none of the bone names PoseMoE knows \(it has Bone\.000, Bone\.001"):
        maps.detect([f"Bone.{k:03d}" for k in range(9)], "odd")


def test_essential_and_root_motion_bones_are_checked():
    resolved, missing = maps.match(maps.load_map("rigify_metarig"), [b for b in METARIG_BONES if b != "thigh.L"])
    assert resolved.lacking_essential(missing) == ["thigh.L"]
    with pytest.raises(PoseMoEError, match=r"^Armature 'a' lacks thigh\.L, which the map needs; do this\.$"):
        maps.check_essential(resolved, missing, "a", "the map", "do this.")
    with pytest.raises(PoseMoEError, match=r"lacks thigh\.L, which the root motion needs"):
        maps.check_root_motion(resolved, missing, "a")
    maps.check_root_motion(resolved, ["hand.L"], "a")


# ----------------------------------------------------------------------------------------------------
# The solve, on a target whose bones are our own rig's with rolls of their own.

def _target(offsets: np.ndarray, seed: int = 0) -> tuple[maps.BoneMap, dict[str, solve.Bone]]:
    rest = rest_joint_positions(offsets)
    rng = np.random.default_rng(seed)
    table, bones = {}, {}
    for spec in BONES:
        head = rest[spec.joint]
        if spec.tail is not None:
            tail = rest[spec.tail]
        else:
            tail = head + np.linalg.norm(head - rest[PARENTS[spec.joint]]) * np.asarray(LEAF_TAILS[spec.joint])
        y = (tail - head) / np.linalg.norm(tail - head)
        x = np.cross(y, rng.normal(size=3))
        x /= np.linalg.norm(x)
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = np.stack([x, y, np.cross(x, y)], axis=1), head
        table[spec.name] = solve.Bone(spec.name, spec.parent, matrix, np.eye(4), float(np.linalg.norm(tail - head)),
                                      False)
        entry = {"joint": JOINT_NAMES[spec.joint]}
        if spec.tail is not None:
            entry["segment"] = [JOINT_NAMES[spec.joint], JOINT_NAMES[spec.tail]]
        bones[spec.name] = entry
    return maps.parse_map({"root": "pelvis", "bones": bones}), table


def test_the_solved_keys_point_every_bone_along_our_segment():
    motion = solve_skeleton(synthetic_motion(30, seed=2) / 1000.0, 30.0)
    bone_map, table = _target(np.asarray(motion.offsets))
    heads = {name: bone.rest[:3, 3] for name, bone in table.items()}
    facing = solve.facing_rotation(bone_map, heads)
    np.testing.assert_array_equal(facing, np.eye(3))
    plan = solve.plan(motion, bone_map, table, facing)
    assert plan.order[0] == "pelvis" and plan.scale == pytest.approx(1.0) and plan.frames == 30
    rotations, location, dependent, constrained = solve.solve_keys(plan, bone_map, table, {})
    assert dependent == set() and constrained == set()
    # Forward kinematics as Blender does it: pose = parent_pose @ parent_rest^-1 @ rest @ basis.
    joints = motion.joint_positions()
    poses = {}
    for name in plan.order:
        bone = table[name]
        q = rotations[name]
        assert (np.sum(q[1:] * q[:-1], axis=-1) >= 0).all() and q[0, 0] >= 0  # sign-continuous
        basis = np.tile(np.eye(4), (len(q), 1, 1))
        basis[:, :3, :3] = Rotation.from_quat(q, scalar_first=True).as_matrix()
        if name == bone_map.root:
            basis[:, :3, 3] = location
        parent = np.eye(4) if bone.parent is None else poses[bone.parent] @ np.linalg.inv(table[bone.parent].rest)
        poses[name] = parent @ bone.rest @ basis
        segment = bone_map.bones[name].segment
        if segment is not None:
            want = joints[:, segment[1]] - joints[:, segment[0]]
            got = poses[name][:, :3, 1]
            cos = np.sum(got * want, axis=-1) / np.linalg.norm(want, axis=-1)
            assert cos.min() > np.cos(np.radians(0.01)), name
    # The hips centre (the middle of the thigh heads) follows our root (the target is our size: scale 1).
    hips = (poses["thigh.R"][:, :3, 3] + poses["thigh.L"][:, :3, 3]) / 2
    np.testing.assert_allclose(hips - hips[0], joints[:, PELVIS] - joints[0, PELVIS], atol=1e-9)


def test_a_turned_rig_is_found_turned():
    bone_map, table = _target(np.asarray(solve_skeleton(synthetic_motion(5, 0) / 1000.0, 30.0).offsets))
    y_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    heads = {name: y_up @ bone.rest[:3, 3] for name, bone in table.items()}
    np.testing.assert_allclose(solve.facing_rotation(bone_map, heads), y_up, atol=1e-12)


def test_more_bones_join_the_plan_after_their_parents():
    motion = solve_skeleton(synthetic_motion(5, 0) / 1000.0, 30.0)
    bone_map, table = _target(np.asarray(motion.offsets))
    plan = solve.plan(motion, bone_map, table, np.eye(3))
    table["finger"] = solve.Bone("finger", "hand.L", np.eye(4), np.eye(4), 0.1, False)
    before = list(plan.order)
    plan.drive({"finger": np.tile(np.eye(3), (5, 1, 1)), "hand.L": np.tile(np.eye(3), (5, 1, 1))}, table)
    assert plan.order[:len(before)] == before and plan.order[-1] == "finger"
    np.testing.assert_array_equal(plan.wanted["hand.L"], np.tile(np.eye(3), (5, 1, 1)))
