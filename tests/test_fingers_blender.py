"""Fingers on armatures, against real Blender: a take with hands keys finger bones on our rig, Rigify's
meta-rig and a Mixamo-named rig, and a BVH with fingers reads back in Blender's importer.

The take is synthetic: a walking body (conftest's) filmed by a camera 3.5 m in front of it, and two
hands made by ``posemoe.motion.fingers.forward`` from known joint angles and palm turns, put at the
body's wrists in the world and projected into the camera as the hand model reports them (pixels and
the depth relative to the wrist in the same pixel scale). The check that matters: a keyed finger bone
points, in the world, where the synthetic finger segment points (a few degrees: the solve smooths).
"""

from __future__ import annotations

import math

# conftest.py points BLENDER_USER_RESOURCES at a temporary folder before bpy is imported.

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402

from posemoe.export.bvh import write_bvh  # noqa: E402
from posemoe.motion import fingers as F  # noqa: E402
from posemoe.motion import hands as H  # noqa: E402
from posemoe.skeleton import ELBOW, WRIST  # noqa: E402
from posemoe.motion.clean import CleanupSettings, clean  # noqa: E402
from posemoe.take import Take  # noqa: E402

from blender_addon import apply, retarget, rig  # noqa: E402
from conftest import synthetic_motion, with_generated_rigify_rig  # noqa: E402

FPS = 25.0
FRAMES = 30
# The solve smooths (zero-lag One-Euro: a few degrees on these moves, most at the take's ends) and clips to
# joint limits; the synthetic angles stay inside them.
TOLERANCE_DEG = 5.0
FINGER_WORDS = {"thumb": "Thumb", "f_index": "Index", "f_middle": "Middle", "f_ring": "Ring", "f_pinky": "Pinky"}


def hand_take(frames: int = FRAMES, seed: int = 0, hands: bool = True) -> tuple[Take, dict]:
    """A take of a walking body with two moving hands, and the truth: {side: (T, 21, 3) world points}."""
    rng = np.random.default_rng(seed)
    joints = synthetic_motion(frames, 3) / 1000.0
    width, height, focal = 1280, 720, 900.0
    camera_axes = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # columns: camera x, y, z in the world
    centre = np.array([0.3, -3.5, 1.3])
    t = np.arange(frames) / FPS
    limits = np.radians(F.LIMITS_DEG)
    low, high = 0.8 * limits[..., 0] + 0.2 * limits[..., 1], 0.2 * limits[..., 0] + 0.8 * limits[..., 1]
    landmarks = np.full((frames, 2, 21, 3), np.nan)
    truth = {}
    for k, side in enumerate(F.SIDES):
        angles = low + (high - low) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.4 * t[:, None, None]
                                                          + rng.uniform(0, 2 * np.pi, (5, 4))))
        wrist = joints[:, WRIST[side]]
        forearm = wrist - joints[:, ELBOW[side]]
        rest = np.stack([H.rest_palm(f) for f in forearm])
        twist = Rotation.from_rotvec(rest[:, :, 1] * (0.8 * np.sin(2 * np.pi * 0.4 * t))[:, None])
        tilt = Rotation.from_rotvec(rest[:, :, 0] * (0.3 * np.sin(2 * np.pi * 0.3 * t))[:, None])
        palm = (twist * tilt).as_matrix() @ rest
        shape = F.default_shape(F.PALM_PER_FOREARM * float(np.median(np.linalg.norm(forearm, axis=1))))
        points = F.forward(angles, palm, wrist, shape, side)
        camera = (points - centre) @ camera_axes
        depth = camera[:, :1, 2:3]
        pixels = focal * camera[..., :2] / camera[..., 2:3] + (width / 2, height / 2)
        landmarks[:, k] = np.concatenate([pixels, (camera[..., 2:3] - depth) * focal / depth], axis=-1)
        truth[side] = points
    take = Take(keypoints_2d=np.zeros((frames, 17, 2)), confidence=np.ones((frames, 17)),
                filled=np.zeros(frames, bool), long_gap=np.zeros(frames, bool), repaired=np.zeros((frames, 2), bool),
                joints_camera=(joints - centre) @ camera_axes, joints_world=joints, world_rotation=camera_axes,
                world_origin=-camera_axes.T @ centre, fps=FPS, width=width, height=height, focal_px=focal,
                hands_2d=landmarks.astype(np.float32) if hands else None,
                hand_presence=np.ones((frames, 2), np.float32) if hands else None)
    return take, truth


def segment_truth(truth: dict, side: str, finger: int, segment: int) -> np.ndarray:
    """(T, 3) the synthetic finger segment's world direction (finger in FINGERS order, segment 0-2)."""
    chain = F.CHAINS[finger]
    return truth[side][:, chain[segment + 1]] - truth[side][:, chain[segment]]


def worst_finger_angle(obj, truth: dict, names: dict[tuple[str, int, int], str], every: int = 4) -> float:
    """Largest angle (degrees) between keyed bones' evaluated world directions and the synthetic
    segments': ``names`` {(side, finger, segment): bone}."""
    world = np.array(obj.matrix_world)[:3, :3]
    worst = 0.0
    for i in range(0, FRAMES, every):
        bpy.context.scene.frame_set(1 + i)
        bones = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones
        for (side, finger, segment), name in names.items():
            got = world @ np.array(bones[name].tail - bones[name].head)
            want = segment_truth(truth, side, finger, segment)[i]
            worst = max(worst, math.degrees(math.atan2(np.linalg.norm(np.cross(got, want)), got @ want)))
    return worst


def our_names(template) -> dict[tuple[str, int, int], str]:
    return {(side, f, s): template(side, f, s) for side in F.SIDES for f in range(5) for s in range(3)}


@pytest.fixture(autouse=True)
def empty_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)
    yield


def test_a_take_with_hands_keys_finger_bones_on_our_rig():
    take, truth = hand_take()
    applied = apply.apply_take(take, CleanupSettings(), "hands", camera=False)
    obj = applied.armature
    assert len(obj.data.bones) == 16 + 30
    assert all(name in obj.data.bones for name in rig.FINGER_BONES)
    assert obj.data.bones["f_index.02.L"].parent.name == "f_index.01.L"
    assert obj.data.bones["thumb.01.R"].parent.name == "hand.R"
    # Local X is the flexion axis: in the rest pose (palms down) X lies flat, Z points up.
    assert np.array(obj.data.bones["f_middle.02.R"].matrix_local)[2, 2] > 0.99
    worst = worst_finger_angle(obj, truth, our_names(lambda side, f, s: rig.hand_bone_names(side)[1 + 3 * f + s]))
    print(f"our rig: largest finger angle {worst:.2f} deg")
    assert worst < TOLERANCE_DEG
    # The hand bone spans the palm: it points from the wrist to the middle finger's knuckle, its Z out of
    # the back of the hand.
    bpy.context.scene.frame_set(11)
    hand = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones["hand.L"]
    points = truth["left"][10]
    want_y = F._unit(points[9] - points[0])
    want_z = np.cross(points[5] - points[0], points[17] - points[0])  # out of the back of a left hand
    matrix = np.array(hand.matrix)[:3, :3]
    assert math.degrees(math.acos(np.clip(matrix[:, 1] @ want_y, -1, 1))) < TOLERANCE_DEG
    assert matrix[:, 2] @ F._unit(want_z) > math.cos(math.radians(10))
    assert applied.raw_action is not None  # the raw take is keyed with its hands too


def test_a_take_without_hands_builds_todays_bones():
    take, _ = hand_take(hands=False)
    assert H.body_hands(take, clean(take.joints_world, take.fps).motion) is None
    applied = apply.apply_take(take, CleanupSettings(), "body", camera=False)
    assert sorted(b.name for b in applied.armature.data.bones) == sorted(spec.name for spec in rig.BONES)
    assert len(applied.armature.data.bones) == 16 and not rig.armature_has_fingers(applied.armature)


def test_the_rigify_metarig_gets_fingers():
    take, truth = hand_take()
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    applied = apply.apply_take(take, CleanupSettings(), "hands", target=meta, camera=False)
    report = applied.report
    assert report.mapped["f_index.01.L"] == "f_index.01.L" and report.mapped["palm.01.R"] == "hand.R"
    assert not any("finger" in w for w in report.warnings)
    worst = worst_finger_angle(meta, truth, our_names(lambda side, f, s: rig.hand_bone_names(side)[1 + 3 * f + s]))
    print(f"Rigify meta-rig: largest finger angle {worst:.2f} deg")
    assert worst < TOLERANCE_DEG


def mixamo_with_fingers():
    """test_retarget's Mixamo armature (A-pose, centimetres, Euler) with fingers resting curled and rolled."""
    from test_retarget import mixamo_armature

    obj = mixamo_armature(arms_down=30.0)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = obj.data.edit_bones
    curl = np.radians(F.REST_DEG)[None]
    for side, word in (("left", "Left"), ("right", "Right")):
        hand = bones[f"mixamorig:{word}Hand"]
        head, direction = np.array(hand.head), F._unit(np.array(hand.tail - hand.head))
        palm = H.rest_palm(direction)
        points = F.forward(curl, palm[None], head[None], F.default_shape(8.5), side)[0]  # centimetres
        for f, finger in enumerate(FINGER_WORDS.values()):
            parent = hand
            for s in range(3):
                bone = bones.new(f"mixamorig:{word}Hand{finger}{s + 1}")
                bone.head, bone.tail = points[F.CHAINS[f, s]], points[F.CHAINS[f, s + 1]]
                bone.roll = 0.3 * (f + s) - 1.0
                bone.parent, bone.use_connect = parent, s > 0
                parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def test_a_mixamo_rig_gets_fingers():
    take, truth = hand_take()
    obj = mixamo_with_fingers()
    obj.location, obj.rotation_euler = (1.0, 0.5, 0.0), (0.0, 0.0, math.radians(20))
    cleaned = clean(take.joints_world, take.fps)
    hands = H.body_hands(take, cleaned.motion)
    _, report = retarget.retarget(cleaned.motion, obj, hands=hands)
    assert report.map_name == "mixamo" and report.mapped["mixamorig:LeftHandIndex1"] == "f_index.01.L"
    assert len(report.mapped) == 20 + 30
    # The take plays in the armature's space: turn the truth with the object.
    turn = np.array(obj.matrix_world)[:3, :3]
    turn = turn / np.cbrt(np.linalg.det(turn))
    turned = {side: points @ turn.T for side, points in truth.items()}
    names = our_names(lambda side, f, s: f"mixamorig:{'Left' if side == 'left' else 'Right'}Hand"
                                         f"{list(FINGER_WORDS.values())[f]}{s + 1}")
    worst = worst_finger_angle(obj, turned, names)
    print(f"Mixamo (A-pose, curled rest, cm, turned): largest finger angle {worst:.2f} deg")
    assert worst < TOLERANCE_DEG


def test_a_bvh_with_fingers_reads_back(tmp_path):
    take, truth = hand_take()
    motion = clean(take.joints_world, take.fps).motion
    hands = H.body_hands(take, motion)
    path = write_bvh(tmp_path / "hands.bvh", motion, hands=hands)
    result = bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=False, update_scene_duration=True)
    assert result == {"FINISHED"}
    obj = bpy.context.object
    names = our_names(lambda side, f, s: f"{side[0].upper()}{list(FINGER_WORDS.values())[f]}{s + 1}")
    assert all(name in obj.data.bones for name in names.values())
    assert obj.data.bones["LIndex1"].parent.name == "LWrist"
    worst = worst_finger_angle(obj, truth, names)
    print(f"BVH read back by Blender: largest finger angle {worst:.2f} deg")
    assert worst < TOLERANCE_DEG


# A rig Rigify generated from the human meta-rig (with fingers), in a child process (conftest's
# with_generated_rigify_rig). The deforming bones follow the finger controls (through Rigify's ORG and
# MCH bones).
_FINGERS_ON_RIGIFY = """
from test_fingers_blender import hand_take, our_names, worst_finger_angle
from blender_addon import apply, rig as our_rig
from posemoe.motion.clean import CleanupSettings
take, truth = hand_take()
report = apply.apply_take(take, CleanupSettings(), "hands", target=rig, camera=False).report
worst = worst_finger_angle(rig, truth, our_names(lambda side, f, s: "DEF-" + our_rig.hand_bone_names(side)[1 + 3 * f + s]))
result = {"map": report.map_name, "index": report.mapped.get("f_index.01.L"), "warnings": report.warnings,
          "worst": worst}
"""


@pytest.mark.slow
def test_a_generated_rigify_rig_gets_fingers():
    result = with_generated_rigify_rig("armature_human_metarig_add", _FINGERS_ON_RIGIFY)
    assert result["map"] == "rigify_fk" and result["index"] == "f_index.01.L"
    assert not any("finger" in warning for warning in result["warnings"]), result["warnings"]
    print(f"generated Rigify rig: largest finger angle {result['worst']:.2f} deg (deforming bones)")
    assert result["worst"] < TOLERANCE_DEG
