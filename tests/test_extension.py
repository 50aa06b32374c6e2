"""The Blender extension as users get it: built and validated by Blender's own tool, installed into the
real bpy with ``extensions.package_install_files``, its operators and panel registered; the capture
operator on a short real clip, onto a new armature and onto a Mixamo rig; cancel mid-run and bad input
leave the scene as it was."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # every test here builds, installs or converts for real

bpy = pytest.importorskip("bpy")

SAMPLE = ROOT / "samples" / "walk.mp4"


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, str(ROOT / "blender_addon" / "build.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("*.zip")
    return path


@pytest.fixture(scope="module")
def addon(extension_zip):
    """The installed, enabled extension's module."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.extensions.package_install_files(filepath=str(extension_zip), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    module = sys.modules["bl_ext.user_default.posemoe_mocap"]
    yield module
    bpy.ops.preferences.addon_disable(module="bl_ext.user_default.posemoe_mocap")


def _empty_scene() -> None:
    """An empty file; unlike read_factory_settings it keeps the preferences, so the add-on stays enabled."""
    bpy.ops.wm.read_homefile(use_empty=True)


def _state() -> tuple:
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(c.name for c in bpy.data.cameras), sorted(m.name for m in bpy.data.movieclips),
            bpy.context.scene.render.fps, bpy.context.scene.frame_end, bpy.context.scene.camera)


def _travelled(armature, bone: str) -> float:
    """Metres ``bone`` moves over the ground (world XY) from the action's first key to its last."""
    heads = []
    for frame in map(round, armature.animation_data.action.frame_range):
        bpy.context.scene.frame_set(frame)
        evaluated = armature.evaluated_get(bpy.context.evaluated_depsgraph_get())
        heads.append(np.array(armature.matrix_world @ evaluated.pose.bones[bone].head))
    return float(np.linalg.norm(heads[1][:2] - heads[0][:2]))


def _settings(**values):
    settings = bpy.context.scene.posemoe
    defaults = dict(video=str(SAMPLE), start=70, stop=110, target="NEW", show_video=True, match_scene=True)
    for key, value in {**defaults, **values}.items():
        setattr(settings, key, value)
    return settings


def test_the_zip_holds_the_addon_and_its_wheels(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert {"blender_manifest.toml", "__init__.py", "capture.py", "panel.py", "LICENSE", "maps/mixamo.json"} <= set(names)
    wheels = {n.removeprefix("wheels/").split("-")[0].lower() for n in names if n.startswith("wheels/")}
    # What a capture needs inside Blender, and nothing else (MediaPipe is the tests' reference only).
    assert wheels == {"posemoe", "scipy", "onnxruntime", "opencv_python_headless"}, wheels
    assert "build.py" not in names and not any("__pycache__" in n for n in names)
    # The repository installs its training package beside posemoe; the extension's wheel leaves it out.
    (posemoe_wheel,) = [n for n in names if n.startswith("wheels/posemoe-")]
    with zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(extension_zip).read(posemoe_wheel))) as wheel:
        inside = wheel.namelist()
    assert any(n.startswith("posemoe/") for n in inside) and not any(n.startswith("training/") for n in inside)
    manifest = zipfile.ZipFile(extension_zip).read("blender_manifest.toml").decode()
    assert 'blender_version_min = "4.2.0"' in manifest and "GPL-3.0-or-later" in manifest


def test_installed_extension_registers_operators_and_panel(addon):
    assert hasattr(bpy.ops.posemoe, "capture") and hasattr(bpy.ops.posemoe, "check_setup")
    assert "VIEW3D_PT_posemoe_capture" in dir(bpy.types)
    assert bpy.types.VIEW3D_PT_posemoe_capture.bl_category == "Mocap"
    assert bpy.context.preferences.addons["bl_ext.user_default.posemoe_mocap"].preferences.device == "AUTO"
    assert bpy.ops.posemoe.check_setup() == {"FINISHED"}
    assert "Ready to capture" in addon.preferences.preferences().check_result


def test_capture_operator_animates_a_new_armature_with_the_video_camera(addon):
    _empty_scene()
    _settings()
    assert bpy.ops.posemoe.capture() == {"FINISHED"}
    (armature,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert armature.name == "walk" and armature.animation_data.action.name == "walk"
    assert {a.name for a in bpy.data.actions} == {"walk", "walk.raw"}
    scene = bpy.context.scene
    assert scene.render.fps == 30 and (scene.render.resolution_x, scene.render.resolution_y) == (1768, 994)
    first, last = map(round, armature.animation_data.action.frame_range)
    assert first == 1 and 30 <= last <= 40 and scene.frame_end >= last  # the range only ever grows
    assert _travelled(armature, "pelvis") > 0.3, "the walker must travel"
    camera = scene.camera
    assert camera is not None and camera.data.show_background_images
    clip = camera.data.background_images[0].clip
    # The clip starts so that the take's first video frame (70 or a little later) shows at frame 1.
    assert clip.filepath == str(SAMPLE) and -75 <= clip.frame_start <= 1 - 70
    # Seen through the capture camera, the pelvis lies where the detector saw it (the video's pixels).
    scene.frame_set(first)
    from bpy_extras.object_utils import world_to_camera_view

    evaluated = armature.evaluated_get(bpy.context.evaluated_depsgraph_get())
    pelvis = armature.matrix_world @ evaluated.pose.bones["pelvis"].head
    projected = world_to_camera_view(scene, camera, pelvis)
    assert 0 < projected.x < 1 and 0 < projected.y < 1 and projected.z > 0


def test_the_panels_camera_choice_reaches_the_capture(addon, monkeypatch):
    _empty_scene()
    settings = _settings()
    assert settings.camera == "AUTO"
    seen = []
    monkeypatch.setattr(addon.capture, "start_capture", lambda video, capture_settings, **_: seen.append(capture_settings))
    for choice in ("STATIC", "MOVING", "AUTO"):
        settings.camera = choice
        addon.capture.CaptureSession(bpy.context)
    assert [s.camera for s in seen] == ["static", "moving", "auto"]


def test_capture_operator_puts_everyone_on_an_armature_of_their_own(addon):
    # Frames 0-100: the man on the box from frame 3, the walker from frame 59.
    _empty_scene()
    _settings(start=0, stop=100, people="ALL")
    assert bpy.ops.posemoe.capture() == {"FINISHED"}
    armatures = {o.name: o for o in bpy.data.objects if o.type == "ARMATURE"}
    assert set(armatures) == {"walk Person 1", "walk Person 2"}
    assert [o.name for o in bpy.data.objects if o.type == "CAMERA"] == ["walk Person 1 camera"]
    starts = {}
    for name, armature in armatures.items():
        assert armature.animation_data.action.name == name
        starts[name] = round(armature.animation_data.action.frame_range[0])
    # One timeline: the man on the box's first video frame (3 or so) at the scene's first frame, the
    # walker's (59 or so) 56 frames later, as in the video.
    assert starts["walk Person 2"] == 1 and 50 <= starts["walk Person 1"] <= 60
    assert _travelled(armatures["walk Person 1"], "pelvis") > 0.3
    bpy.context.scene.posemoe.people = "LARGEST"


def test_capture_operator_keys_the_fingers_with_hands_on(addon):
    # A signer, from the extension zip alone (the hand models travel in the posemoe wheel).
    video = ROOT.parent / "shared" / "media" / "real" / "hands" / "asl_sign_yes.mkv"
    if not video.is_file():
        pytest.skip("../shared/media/real/hands is absent")
    _empty_scene()
    _settings(video=str(video), start=0, stop=30, hands=True)
    try:
        assert bpy.ops.posemoe.capture() == {"FINISHED"}
    finally:
        bpy.context.scene.posemoe.hands = False
    (armature,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    bones = set(armature.data.bones.keys())
    assert {"f_index.01.L", "f_index.03.R", "thumb.01.L", "f_pinky.02.R"} <= bones
    curves = {c.data_path for c in armature.animation_data.action.fcurves}
    assert 'pose.bones["f_index.02.R"].rotation_quaternion' in curves
    # The fingers move: a signer's index finger does not hold one angle for a second.
    turns = []
    for frame in (1, 15, 30):
        bpy.context.scene.frame_set(frame)
        turns.append(np.array(armature.pose.bones["f_index.02.R"].rotation_quaternion))
    assert max(abs(float(a @ b)) for a, b in ((turns[0], turns[1]), (turns[1], turns[2]))) < 0.9999


def test_capture_is_one_undo_step(addon):
    # Blender's undo needs a window, which the bpy module has not (ed.undo's poll fails headless): what
    # can be checked here is that the operator asks for an undo step, and that a capture only adds data
    # blocks and changes scene settings, both of which global undo restores.
    assert {"REGISTER", "UNDO"} <= set(bpy.types.POSEMOE_OT_capture.bl_options)


def test_cancel_mid_capture_leaves_the_scene_unchanged(addon):
    _empty_scene()
    _settings()
    before = _state()
    session = addon.capture.CaptureSession(bpy.context)
    deadline = time.monotonic() + 120
    while not (session.job.stage == "detect" and session.job.done >= 3):
        assert not session.job.poll() and time.monotonic() < deadline
        time.sleep(0.05)
    session.job.cancel()
    from posemoe import Cancelled

    with pytest.raises(Cancelled):
        session.apply(bpy.context)
    assert _state() == before


def test_bad_input_is_reported_before_any_work(addon, tmp_path):
    _empty_scene()
    before = _state()
    _settings(video=str(tmp_path / "missing.mp4"))
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.posemoe.capture()
    bpy.ops.object.armature_add()
    odd = bpy.context.object
    before = _state()
    _settings(target="EXISTING", armature=odd)
    with pytest.raises(RuntimeError, match="bone names PoseMoE knows"):
        bpy.ops.posemoe.capture()
    assert _state() == before


def test_capture_in_the_worker_python_onto_a_mixamo_rig(addon):
    """The path of a Blender whose Python lacks torch: the preferences name a worker interpreter."""
    from test_retarget import mixamo_armature

    _empty_scene()
    rig = mixamo_armature()
    before = {o.name for o in bpy.data.objects}
    prefs = addon.preferences.preferences()
    prefs.python = sys.executable
    try:
        _settings(target="EXISTING", armature=rig, bone_map="AUTO", stop=100)
        assert bpy.ops.posemoe.capture() == {"FINISHED"}
    finally:
        prefs.python = ""
    assert rig.animation_data.action.name == "walk"
    assert {o.name for o in bpy.data.objects} - before == {"walk camera"}, "no new armature for a retarget"
    assert _travelled(rig, "mixamorig:Hips") > 0.2


def test_a_failure_while_applying_takes_back_everything(addon, monkeypatch):
    _empty_scene()
    _settings(stop=90)
    before = _state()

    def broken(*args, **kwargs):
        raise addon.apply.PoseMoEError("the disk is full")

    monkeypatch.setattr(addon.apply.rig, "write_action", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        bpy.ops.posemoe.capture()
    assert _state() == before
    assert not bpy.data.armatures and not bpy.data.cameras


@pytest.mark.parametrize("blender", [None, "5.0.1"], ids=["this-bpy", "bpy-5.0.1"])
def test_the_zip_alone_captures_in_a_bare_blender_python(extension_zip, tmp_path, blender):
    """The common case: Blender's Python has none of OpenCV, ONNX Runtime or torch; the zip
    is installed the way Blender's Install from Disk does, and the capture runs inside Blender, from
    the operator's synchronous path with no Worker Python. Also in Blender 5.0 (pip's bpy 5.0.1,
    installed once into benchmarks/.cache; skipped without PyPI)."""
    from benchmarks.blender import blender_python, run_mode

    try:
        python = blender_python(tmp_path / "blender_python", blender)
    except RuntimeError as error:
        pytest.skip(str(error))
    result = run_mode(extension_zip, "", 1, tmp_path, python)
    assert result["found_before_install"] == []
    assert "inside Blender" in result["check"] and "ONNX Runtime" in result["check"], result["check"]
    assert result["loaded"] == dict.fromkeys(["cv2", "onnxruntime", "scipy", "posemoe"], True)
    assert not result["torch_or_mediapipe_imported"]
    assert result["take_frames"] > 100 and result["travelled"] > 0.5, "the walker must travel"
    if blender:
        assert result["blender"].split()[0] == blender


_WITHOUT_CAPTURE_PACKAGES = r'''
import sys


class NotInBlender:
    """Blender's own Python: no OpenCV, PyTorch or ONNX Runtime."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"cv2", "torch", "onnxruntime", "onnx"}:
            raise ModuleNotFoundError(f"No module named {name!r}")


sys.meta_path.insert(0, NotInBlender())
root, video = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
import bpy
import blender_addon
from blender_addon.apply import apply_takes
from posemoe.motion.clean import CleanupSettings
from posemoe.settings import Settings
from posemoe.worker import can_capture_here, check_setup, start_capture

blender_addon.register()
assert not can_capture_here() and not check_setup()["can_capture"]
settings = bpy.context.scene.posemoe
settings.video, settings.start, settings.stop = video, 70, 100
try:
    bpy.ops.posemoe.capture()
    raise SystemExit("the capture should have asked for a worker Python")
except RuntimeError as error:
    assert "worker interpreter" in str(error), error
job = start_capture(video, Settings(start=70, stop=100), python=sys.executable)  # the worker has them all
(applied,) = apply_takes(job.wait(timeout=300), CleanupSettings(), "walk")
assert applied.armature.animation_data.action.name == "walk"
blender_addon.unregister()
assert not {"cv2", "torch", "onnxruntime"} & set(sys.modules), sorted(sys.modules)
print("ok")
'''


def test_the_addon_works_in_a_blender_python_without_capture_packages(tmp_path):
    """Blender's Python lacks the capture packages: the add-on must still register, say what to set up,
    and capture through a worker Python, without ever importing those packages itself."""
    import os

    script = tmp_path / "blender_python.py"
    script.write_text(_WITHOUT_CAPTURE_PACKAGES)
    done = subprocess.run([sys.executable, str(script), str(ROOT), str(SAMPLE)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout[-2000:] + done.stderr[-3000:]


# ----------------------------------------------------------------------------------------------------
# Capturing a video already in the .blend: a Movie Clip or a sequencer strip, keyed where it plays.

def _render(scene, frame: int, path) -> np.ndarray:
    """The scene's sequencer output at ``frame``, small: (H, W, 3) float."""
    import cv2

    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = 1768, 994, 10
    render.use_sequencer, render.use_compositing = True, False
    render.image_settings.file_format = "PNG"
    scene.view_settings.view_transform = "Standard"
    scene.frame_set(frame)
    render.filepath = str(path)
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    return cv2.imread(str(path)).astype(np.float32)


def _shown_video_frame(scene, frame: int, candidates: range, folder) -> int:
    """Which of the sample's video frames ``candidates`` Blender's sequencer shows at scene ``frame``.

    The render is compared with Blender's own renders of each candidate (the sample as a plain strip
    from frame 0, which shows video frame v at frame v), so colour handling and scaling are the same.
    (The sample's camera pans and its colours come out of Blender a little changed: against frames
    decoded by OpenCV the right frame does not stand out.)"""
    shown = _render(scene, frame, folder / f"shown_{frame}.png")
    reference = bpy.data.scenes.new("reference")
    try:
        reference.sequence_editor_create().strips.new_movie("plain", str(SAMPLE), channel=1, frame_start=0)
        errors = {v: float(np.mean((_render(reference, v, folder / f"video_{v}.png") - shown) ** 2))
                  for v in candidates}
    finally:
        bpy.data.scenes.remove(reference)
    best = min(errors, key=errors.get)
    assert errors[best] < 1.0, errors  # the same picture, not merely the closest
    return best


def _capture_session(addon):
    """Capture the scene's settings: (person 1's take, what was applied for them)."""
    session = addon.capture.CaptureSession(bpy.context)
    (take,) = session.job.wait(timeout=600)
    (applied,) = session.apply(bpy.context)
    return take, applied


def _key_frames(addon, action) -> np.ndarray:
    fcurve = addon.actions.channelbag_fcurves(action)[0]
    return np.array([k.co[0] for k in fcurve.keyframe_points])


def test_capture_from_a_trimmed_offset_strip_keys_where_it_plays(addon, tmp_path):
    _empty_scene()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0  # the edit's own rate: kept
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_movie("walk", str(SAMPLE), channel=1, frame_start=101)
    strip.frame_offset_start = 79  # shows video frame 79 at scene frame 180 ...
    strip.frame_offset_end = 90  # ... to video frame 139 at scene frame 240
    editor.active_strip = strip
    _settings(source="STRIP", strip="")
    take, applied = _capture_session(addon)
    assert take.first_frame == 79 and take.first_frame + len(take) == 140
    keys = _key_frames(addon, applied.action)
    np.testing.assert_allclose(keys, 101 + take.first_frame + np.arange(len(take)))
    assert scene.render.fps == 24 and scene.frame_end >= 239 and strip.frame_final_start == 180
    # Blender's own answer: the sequencer shows, at a key's frame, the video frame that key came from.
    frame = int(keys[30])
    assert _shown_video_frame(scene, frame, range(take.first_frame + 27, take.first_frame + 34), tmp_path) == \
        take.first_frame + 30


def test_capture_from_a_strip_playing_at_another_rate(addon, tmp_path):
    """A 30 frames/s video in a 24 frames/s edit, added with Adjust Playback Rate: keys 0.8 frames apart."""
    _empty_scene()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    editor = scene.sequence_editor_create()
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.type = "SEQUENCE_EDITOR"
    with bpy.context.temp_override(window=window, area=area, region=area.regions[-1]):
        assert bpy.ops.sequencer.movie_strip_add(filepath=str(SAMPLE), frame_start=1, channel=1, sound=False,
                                                 adjust_playback_rate=True, use_framerate=False,
                                                 fit_method="ORIGINAL") == {"FINISHED"}
    (strip,) = list(editor.strips_all)
    assert strip.frame_duration == 184 and scene.render.fps == 24
    strip.frame_offset_start, strip.frame_offset_end = 64, 71  # video frames 80 to 140
    editor.active_strip = strip
    _settings(source="STRIP", strip=strip.name)
    take, applied = _capture_session(addon)
    assert take.first_frame == 80
    keys = _key_frames(addon, applied.action)
    np.testing.assert_allclose(keys, 1 + (take.first_frame + np.arange(len(take))) * 24 / 30, atol=1e-4)
    assert any("no video background" in w for w in applied.warnings)
    assert not applied.camera.data.background_images
    frame = int(keys[20])  # 1 + 100 * 0.8 = 81, a whole frame
    assert frame == keys[20]
    shown = _shown_video_frame(scene, frame, range(97, 104), tmp_path)
    assert shown == take.first_frame + 20, (strip.frame_start, strip.frame_final_start, strip.animation_offset_start)


def test_capture_from_a_movie_clip_with_a_relative_path(addon, tmp_path):
    import shutil

    _empty_scene()
    (tmp_path / "media").mkdir()
    shutil.copy(SAMPLE, tmp_path / "media" / "walk.mp4")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    clip = bpy.data.movieclips.load("//media/walk.mp4")
    assert clip.filepath.startswith("//")
    clip.frame_start, clip.frame_offset = 11, 60  # file frame F - 11 + 60 at scene frame F
    _settings(source="CLIP", clip=clip)
    assert bpy.ops.posemoe.capture() == {"FINISHED"}
    (armature,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    keys = _key_frames(addon, armature.animation_data.action)
    # The capture starts at the clip's first shown file frame (60), at scene frame 11 if the walker is
    # already in view there (he is, from about frame 56); keys one per scene frame.
    assert keys[0] == 11 and np.all(np.diff(keys) == 1)
    camera = bpy.context.scene.camera
    assert camera.data.background_images[0].clip == clip and len(bpy.data.movieclips) == 1
    assert (clip.frame_start, clip.frame_offset) == (11, 60)


def test_bad_sources_are_reported_before_any_work(addon, tmp_path):
    _empty_scene()
    before = _state()
    _settings(source="STRIP")
    with pytest.raises(RuntimeError, match="no Video Sequencer strips"):
        bpy.ops.posemoe.capture()
    clip = bpy.data.movieclips.load(str(SAMPLE))
    clip.filepath = str(tmp_path / "gone.mp4")
    _settings(source="CLIP", clip=clip)
    with pytest.raises(RuntimeError, match="does not exist; relink it"):
        bpy.ops.posemoe.capture()
    clip.filepath = "//walk.mp4"  # this .blend was never saved
    with pytest.raises(RuntimeError, match="has not been saved"):
        bpy.ops.posemoe.capture()
    bpy.data.movieclips.remove(clip)
    editor = bpy.context.scene.sequence_editor_create()
    strip = editor.strips.new_movie("walk", str(SAMPLE), channel=1, frame_start=1)
    strip.use_reverse_frames = True
    _settings(source="STRIP", strip="walk")
    with pytest.raises(RuntimeError, match="plays backwards"):
        bpy.ops.posemoe.capture()
    _settings(source="STRIP", strip="other")
    with pytest.raises(RuntimeError, match="no strip named 'other'"):
        bpy.ops.posemoe.capture()
    editor.strips.remove(strip)
    bpy.context.scene.sequence_editor_clear()
    assert _state() == before
