"""The camera setting where a user captures (CLI, batch, panel, worker) and the capture camera in real
Blender: a take whose camera turned keys the camera object in every frame where the armature is keyed,
a static take places it once without keys."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posemoe.settings import CAMERA_CHOICES, Settings
from posemoe.skeleton import PELVIS
from posemoe.take import Take

from conftest import synthetic_motion

bpy = pytest.importorskip("bpy")

from blender_addon import actions, apply  # noqa: E402
from posemoe.motion.clean import CleanupSettings  # noqa: E402

#: Blender cameras look down their -Z with +Y up; OpenCV cameras down +Z with -Y up.
FLIP = np.diag([1.0, -1.0, -1.0])


@pytest.fixture(autouse=True)
def empty_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


def camera_take(frames: int = 40, turn: bool = True, travel: bool = False) -> Take:
    """A walker filmed by a camera 4 m away, 1.5 m up, looking along +Y tilted 10 degrees down; with
    ``turn`` it pans through 200 degrees (past a half turn: quaternion signs must stay continuous), tilts
    and rolls over the take; with ``travel`` it also moves sideways (metres, first camera's axes)."""
    world = synthetic_motion(frames, 2) / 1000.0
    # Camera axes (OpenCV) to world axes: x right -> +X, y down -> -Z, z forward -> +Y, then a tilt down.
    level = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    rotation = Rotation.from_euler("x", -10, degrees=True).as_matrix() @ level
    centre = np.array([0.3, -4.0, 1.5])
    origin = -rotation.T @ centre  # world = (camera - origin) @ rotation.T puts the camera centre at centre
    t = np.linspace(0.0, 1.0, frames)
    turns = np.tile(np.eye(3), (frames, 1, 1))
    if turn:  # first camera -> frame t's camera: pan about the camera's y, tilt about x, roll about z
        angles = np.stack([200 * t, 15 * np.sin(3 * t), 10 * t], axis=1)
        turns = Rotation.from_euler("yxz", angles, degrees=True).as_matrix()
    translations = np.zeros((frames, 3))
    if travel:
        translations[:, 0] = -0.8 * t
    return Take(keypoints_2d=np.zeros((frames, 17, 2)), confidence=np.ones((frames, 17)),
                filled=np.zeros(frames, bool), long_gap=np.zeros(frames, bool), repaired=np.zeros((frames, 2), bool),
                joints_camera=(world @ rotation) + origin, joints_world=world, world_rotation=rotation,
                world_origin=origin, fps=30.0, width=640, height=360, focal_px=500.0, first_frame=0,
                camera_rotation=turns, camera_translation=translations)


def expected_matrices(take: Take, scale: float = 1.0) -> np.ndarray:
    """(N, 4, 4) the camera object's world matrix in every frame, from ``take.camera_poses()`` directly."""
    rotations, centres = take.camera_poses()
    anchor = np.array([*take.joints_world[0, PELVIS, :2], 0.0])
    matrices = np.tile(np.eye(4), (len(take), 1, 1))
    matrices[:, :3, :3] = rotations @ FLIP
    matrices[:, :3, 3] = anchor + (centres - anchor) * scale
    return matrices


def evaluated_matrix(obj, frame: float) -> np.ndarray:
    bpy.context.scene.frame_set(int(frame), subframe=frame - int(frame))
    return np.array(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).matrix_world)


@pytest.mark.parametrize("travel", [False, True])
def test_a_turning_camera_is_keyed_where_the_armature_is(travel):
    take = camera_take(travel=travel)
    applied = apply.apply_take(take, CleanupSettings(height=1.9), "pan", frame_start=11, frame_step=2.0)
    camera = applied.camera
    assert camera is not None and camera.animation_data is not None and camera.rotation_mode == "QUATERNION"
    fcurves = actions.channelbag_fcurves(camera.animation_data.action, camera)
    assert sorted((fc.data_path, fc.array_index) for fc in fcurves) == [
        *(("location", i) for i in range(3)), *(("rotation_quaternion", i) for i in range(4))]
    frames = np.empty(2 * len(take), dtype=np.float32)
    fcurves[0].keyframe_points.foreach_get("co", frames)
    armature_frames = np.array([k.co[0] for k in actions.channelbag_fcurves(applied.action, applied.armature)[0].keyframe_points])
    np.testing.assert_array_equal(frames[0::2], armature_frames)
    np.testing.assert_array_equal(frames[0::2], 11 + 2 * np.arange(len(take)))
    # Quaternion keys stay in one hemisphere frame to frame, past the half turn.
    quats = np.stack([[k.co[1] for k in fc.keyframe_points] for fc in fcurves if fc.data_path == "rotation_quaternion"], 1)
    assert (np.einsum("tc,tc->t", quats[1:], quats[:-1]) > 0).all()

    expected = expected_matrices(take, applied.cleaned.scale)
    assert applied.cleaned.scale != pytest.approx(1.0)  # the height scaling is exercised
    for i in (0, 7, 20, len(take) - 1):
        np.testing.assert_allclose(evaluated_matrix(camera, 11 + 2 * i), expected[i], atol=1e-5, err_msg=f"frame {i}")
    # The camera looks at the walker at the start: the pelvis is in front of it (its -Z).
    pelvis = applied.cleaned.joints[0, PELVIS]
    assert (pelvis - expected[0, :3, 3]) @ -expected[0, :3, 2] > 2.0


def test_a_parent_matrix_carries_the_keyed_camera():
    from mathutils import Matrix

    take = camera_take()
    cleaned = apply.clean(take.joints_world, take.fps, CleanupSettings())
    parent = Matrix.Translation((1.0, 2.0, 0.5)) @ Matrix.Rotation(0.7, 4, "Z")
    camera = apply.capture_camera(take, "cam", cleaned, None, 1, parent_matrix=parent)
    expected = np.array(parent) @ expected_matrices(take, cleaned.scale)
    for i in (0, 13, len(take) - 1):
        np.testing.assert_allclose(evaluated_matrix(camera, 1 + i), expected[i], atol=1e-5)


def test_a_static_take_places_the_camera_once_without_keys():
    take = camera_take(turn=False)
    assert not take.camera_moved()
    applied = apply.apply_take(take, CleanupSettings(), "still")
    camera = applied.camera
    assert camera.animation_data is None
    assert {a.name for a in bpy.data.actions} == {"still", "still.raw"}
    # Where the capture has always put it: the centre -R origin, Blender's camera axes.
    rotation, origin = take.world_rotation, take.world_origin
    np.testing.assert_allclose(np.array(camera.matrix_world)[:3, 3], -rotation @ origin, atol=1e-6)
    np.testing.assert_allclose(np.array(camera.matrix_world)[:3, :3], rotation @ FLIP, atol=1e-6)
    assert camera_take(turn=False, travel=True).camera_moved()


def test_a_failure_after_the_camera_is_keyed_takes_it_back(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the armature failed")

    monkeypatch.setattr(apply.rig, "build_armature", broken)
    before = {name: len(getattr(bpy.data, name)) for name in ("objects", "cameras", "actions", "movieclips")}
    with pytest.raises(RuntimeError):
        apply.apply_take(camera_take(), CleanupSettings(), "pan")
    assert {name: len(getattr(bpy.data, name)) for name in before} == before
    assert bpy.context.scene.camera is None


def test_the_panel_offers_every_camera_choice():
    from blender_addon.properties import PoseMoESettings

    items = PoseMoESettings.__annotations__["camera"].keywords["items"]
    assert [identifier for identifier, _, _ in items] == [c.upper() for c in CAMERA_CHOICES]
    assert all(len(description) > 20 for _, _, description in items)


def test_the_camera_setting_crosses_the_worker_boundary():
    from posemoe.worker import _settings_from

    settings = Settings(camera="static", picks=((1.0, 2.0, 3),), hands=True)
    assert _settings_from(json.loads(json.dumps(asdict(settings)))) == settings


def test_cli_refuses_an_unknown_camera_choice(capsys):
    from posemoe.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["capture", "clip.mp4", "-o", "take.npz", "--camera", "bogus"])
    assert stopped.value.code != 0
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_batch_camera_choice_reaches_the_settings():
    from blender_addon import batch

    args = batch._arguments(["clip.mp4", "--out", "out", "--camera", "static"])
    assert batch.capture_settings(args).camera == "static"
    assert batch.capture_settings(batch._arguments(["clip.mp4", "--out", "out"])).camera == "auto"
