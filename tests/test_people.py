"""Several people from one video: `posemoe capture --people`, one take file, one world, a BVH each, and
the batch conversion's .blend with an armature per person (real bpy). The bundled walk has a walker on
the grass and a man walking on the roof of a transformer box behind her; the handshake clip of the real
corpus (``../shared/media/real/``, skipped without it) has two men, both in every frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from posemoe.cli import main
from posemoe.take import Take, load_takes

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"
HANDSHAKE = ROOT.parent / "shared" / "media" / "real" / "two_people_handshake_portrait_12fps.mp4"
needs_handshake = pytest.mark.skipif(not HANDSHAKE.is_file(), reason="the real corpus (../shared/media/real) is not here")


@pytest.fixture(scope="module")
def everyone(tmp_path_factory):
    out = tmp_path_factory.mktemp("people")
    # Frames 0-130: the man on the box from frame 3, the walker from frame 59.
    code = main(["capture", str(SAMPLE), "-o", str(out / "walk.npz"), "--bvh", str(out / "walk.bvh"),
                 "--preview", str(out / "walk.mp4"), "--people", "all", "--stop", "130"])
    assert code == 0
    return out


@pytest.mark.slow
def test_everyone_is_captured_into_one_take_file(everyone):
    takes = load_takes(everyone / "walk.npz")
    assert [t.person for t in takes] == [1, 2]
    walker, boxed = sorted(takes, key=lambda t: -t.first_frame)
    assert walker.first_frame >= 55 and boxed.first_frame <= 10
    assert walker.person == 1  # the largest is person 1, whom a one-person capture takes
    for take in takes:
        assert np.isfinite(take.joints_world).all() and len(take) >= 60
        np.testing.assert_array_equal(take.world_rotation, takes[0].world_rotation)  # one world
        np.testing.assert_array_equal(take.world_origin, takes[0].world_origin)
    with pytest.raises(Exception, match="holds 2 people"):
        Take.load(everyone / "walk.npz")


@pytest.mark.slow
def test_the_man_on_the_box_stands_above_the_walkers_floor(everyone):
    walker, boxed = sorted(load_takes(everyone / "walk.npz"), key=lambda t: -t.first_frame)
    floor = np.median(walker.joints_world[:, [3, 6], 2].min(1))
    assert abs(floor - 0.08) < 0.1  # the walker's lower ankle on the floor
    assert np.median(boxed.joints_world[:, [3, 6], 2].min(1)) - floor > 1.2
    # Both upright: heads well above their own feet.
    for take in (walker, boxed):
        assert np.median(take.joints_world[:, 10, 2] - take.joints_world[:, [3, 6], 2].min(1)) > 1.2


@pytest.mark.slow
def test_a_bvh_each_and_one_preview_of_everyone(everyone):
    takes = load_takes(everyone / "walk.npz")
    assert sorted(p.name for p in everyone.iterdir()) == ["walk.mp4", "walk.npz", "walk_person1.bvh", "walk_person2.bvh"]
    video = cv2.VideoCapture(str(everyone / "walk.mp4"))
    span = max(t.first_frame + len(t) for t in takes) - min(t.first_frame for t in takes)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == span


@pytest.mark.slow
def test_picks_choose_people_in_the_order_given(tmp_path):
    # The man on the box at frame 20 (his box centre is near 660, 266), then the walker at frame 100.
    code = main(["capture", str(SAMPLE), "-o", str(tmp_path / "picked.npz"), "--stop", "130",
                 "--people", "660,266,20", "--people", "1000,700,100"])
    assert code == 0
    boxed, walker = load_takes(tmp_path / "picked.npz")
    assert (boxed.person, walker.person) == (1, 2)
    assert boxed.first_frame <= 10 and walker.first_frame >= 55


@pytest.mark.parametrize("value, message", [("0", "1 or more"), ("someone", "X,Y,FRAME"), ("1,2", "X,Y,FRAME")])
def test_a_bad_people_value_is_refused_before_any_work(tmp_path, capsys, value, message):
    code = main(["capture", str(SAMPLE), "-o", str(tmp_path / "t.npz"), "--people", value])
    assert code == 1 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@needs_handshake
def test_both_men_of_the_handshake_are_captured_in_every_frame(tmp_path):
    code = main(["capture", str(HANDSHAKE), "-o", str(tmp_path / "hands.npz"), "--people", "all"])
    assert code == 0
    takes = load_takes(tmp_path / "hands.npz")
    frames = int(cv2.VideoCapture(str(HANDSHAKE)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert len(takes) == 2
    for take in takes:  # MediaPipe's PoseLandmarker sees both men in all 40 frames
        assert (take.first_frame, len(take), int(take.filled.sum())) == (0, frames, 0)
    # Shaking hands: their pelvises are about an arm's reach apart, not metres.
    apart = np.linalg.norm(takes[0].joints_world[:, 0, :2] - takes[1].joints_world[:, 0, :2], axis=-1)
    assert 0.5 < np.median(apart) < 2.0


@pytest.mark.slow
@needs_handshake
def test_batch_conversion_gives_an_armature_per_person(tmp_path):
    bpy = pytest.importorskip("bpy")
    out = tmp_path / "out"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    run = subprocess.run([sys.executable, str(ROOT / "blender_addon" / "batch.py"), str(HANDSHAKE), "--out", str(out),
                          "--people", "all", "--bvh", "--fbx", "--no-preview"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    name = HANDSHAKE.stem
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.blend", f"{name}.json", f"{name}.npz", f"{name}_person1.bvh", f"{name}_person2.bvh",
         f"{name}_person1.fbx", f"{name}_person2.fbx"])
    report = json.loads((out / f"{name}.json").read_text())
    assert [p["armature"] for p in report["people"]] == [f"{name} Person 1", f"{name} Person 2"]

    bpy.ops.wm.open_mainfile(filepath=str(out / f"{name}.blend"))
    scene = bpy.context.scene
    pelvis = {}
    for person in report["people"]:
        armature = bpy.data.objects[person["armature"]]
        assert armature.animation_data.action.name == person["actions"][0]
        heads = []
        for frame in (1, person["frames"]):
            scene.frame_set(frame)
            heads.append(armature.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones["pelvis"].head.copy())
        assert (heads[1] - heads[0]).length > 0.01  # animated, not a rest pose
        pelvis[person["person"]] = heads[0]
    assert 0.5 < (pelvis[1] - pelvis[2]).length < 2.0  # two men, side by side, in one world
    assert len([o for o in bpy.data.objects if o.type == "CAMERA"]) == 1
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.mark.slow
@needs_handshake
def test_batch_retargets_each_person_onto_a_copy_of_the_rig(tmp_path):
    bpy = pytest.importorskip("bpy")
    from test_retarget import mixamo_armature

    bpy.ops.wm.read_factory_settings(use_empty=True)
    mixamo_armature().name = "Hero"
    rig_file = tmp_path / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_file))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    out = tmp_path / "out"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    run = subprocess.run([sys.executable, str(ROOT / "blender_addon" / "batch.py"), str(HANDSHAKE), "--out", str(out),
                          "--people", "all", "--no-preview", "--rig", str(rig_file), "--armature", "Hero"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / f"{HANDSHAKE.stem}.json").read_text())
    assert [p["armature"] for p in report["people"]] == ["Hero", "Hero Person 2"]
    bpy.ops.wm.open_mainfile(filepath=str(out / f"{HANDSHAKE.stem}.blend"))
    hips = []
    for person in report["people"]:
        rig = bpy.data.objects[person["armature"]]
        assert rig.animation_data.action.name == person["actions"][0]
        bpy.context.scene.frame_set(1)
        evaluated = rig.evaluated_get(bpy.context.evaluated_depsgraph_get())
        hips.append(rig.matrix_world @ evaluated.pose.bones["mixamorig:Hips"].head)
    assert (hips[0] - hips[1]).length > 0.3  # two people in two places, not one rig posed twice
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _take_of(world: np.ndarray, person: int, first_frame: int) -> Take:
    """A take holding ``world`` (N, 17, 3) metres, as a capture of a 30 frames/s video would."""
    n = len(world)
    return Take(keypoints_2d=np.zeros((n, 17, 2)), confidence=np.ones((n, 17)), filled=np.zeros(n, bool),
                long_gap=np.zeros(n, bool), repaired=np.zeros((n, 2), bool), joints_camera=world.copy(),
                joints_world=world, world_rotation=np.eye(3), world_origin=np.zeros(3), fps=30.0, width=640,
                height=480, focal_px=500.0, first_frame=first_frame, person=person)


def test_everyone_arrives_on_one_timeline_or_nobody_does():
    bpy = pytest.importorskip("bpy")
    from blender_addon.apply import apply_takes
    from conftest import synthetic_motion
    from posemoe.motion.clean import CleanupSettings

    bpy.ops.wm.read_factory_settings(use_empty=True)
    first = _take_of(synthetic_motion(60, 0) / 1000.0, 1, 20)
    second = _take_of(synthetic_motion(45, 1) / 1000.0, 2, 5)
    applied = apply_takes([first, second], CleanupSettings(), "duo", camera=False, frame_start=1)
    assert [a.armature.name for a in applied] == ["duo Person 1", "duo Person 2"]
    # Video frame 5 (person 2's first) at scene frame 1, video frame 20 (person 1's) at 16.
    assert [round(a.action.frame_range[0]) for a in applied] == [16, 1]
    before = {name: len(getattr(bpy.data, name)) for name in ("objects", "armatures", "actions")}
    broken = _take_of(np.full((30, 17, 3), np.nan), 2, 0)  # person 2 fails after person 1 was put in
    with pytest.raises(Exception):
        apply_takes([first, broken], CleanupSettings(), "again", camera=False)
    assert {name: len(getattr(bpy.data, name)) for name in before} == before
    bpy.ops.wm.read_factory_settings(use_empty=True)
