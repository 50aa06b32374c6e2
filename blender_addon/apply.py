"""Captured takes into the open scene: clean-up, an animated armature per person, the capture camera
with the video.

Used by the capture operator and by the batch conversion. Everything happens in one call inside
:func:`transaction.transaction`, so a failure half way removes what the call made and puts back the
scene settings it changed: the user's scene is either changed completely or not at all.

The camera
----------
The take's world (Z up, floor at Z = 0) is where the camera stood: its rotation and origin map camera
to world (``world = (camera - origin) @ rotation.T``, see :mod:`posemoe.motion.trajectory`). The
camera object sits there with the focal length the capture assumed, the video as its background,
each video frame shown at the scene frame that holds its keys; looking through it, the armature should
lie on the person. That holds for the root mode ``full`` on our own armature; a retargeted rig moves
in its own object's space and scale, and the camera follows the armature object's transform. A camera
that moved while filming (the take's ``camera_rotation`` or ``camera_translation`` away from the first
frame's pose) is keyed in every frame where the armature is, from :meth:`posemoe.take.Take.camera_poses`;
a static one is placed once, without keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from posemoe import PoseMoEError
from posemoe.motion.clean import Cleaned, CleanupSettings, clean
from posemoe.motion.hands import body_hands
from posemoe.rotations import continuous_quaternions
from posemoe.skeleton import PELVIS
from posemoe.take import Take

from . import retarget as retargeting
from . import rig
from .actions import assign_action, fcurve_factory, key_channels
from .transaction import transaction

SENSOR_WIDTH_MM = 36.0


@dataclass
class Applied:
    """What :func:`apply_take` made: the armature it animated, the action(s), the camera (or None),
    the clean-up result, and a retarget report (None for our own armature)."""

    armature: object
    action: object
    raw_action: object | None
    camera: object | None
    cleaned: Cleaned
    report: object | None = None
    warnings: list[str] = field(default_factory=list)


def match_scene(scene, take: Take) -> None:
    """Scene frame rate and render size as the video's (so the camera view frames the video exactly)."""
    scene.render.fps = max(1, round(take.fps))
    scene.render.fps_base = scene.render.fps / take.fps
    scene.render.resolution_x, scene.render.resolution_y = int(take.width), int(take.height)
    scene.render.resolution_percentage = 100


def camera_matrices(take: Take, scale: float = 1.0) -> np.ndarray:
    """The capture camera's object matrices in the take's world, one per take frame: (N, 4, 4), rotation
    from Blender's camera axes (looking down -Z, +Y up) to the world's, position in world metres.

    ``scale`` (the clean-up's height scaling) scales the positions about the floor under the first
    frame's pelvis, as the clean-up scales the body.
    """
    rotations, centres = take.camera_poses()
    anchor = np.array([take.joints_world[0, PELVIS, 0], take.joints_world[0, PELVIS, 1], 0.0])
    matrices = np.tile(np.eye(4), (len(rotations), 1, 1))
    # Blender cameras look down their -Z with +Y up; OpenCV cameras down +Z with -Y up.
    matrices[:, :3, :3] = rotations @ np.diag([1.0, -1.0, -1.0])
    matrices[:, :3, 3] = anchor + (centres - anchor) * scale
    return matrices


def capture_camera(take: Take, name: str, cleaned: Cleaned, video: str | Path | None, frame_start: float,
                   parent_matrix=None, collection=None, clip=None, frame_step: float = 1.0):
    """The camera the take was filmed with, in the take's world, with the video as its background.

    ``cleaned.scale`` (the height scaling) is applied about the same floor point as the clean-up's;
    ``parent_matrix`` (4x4, e.g. a retargeted armature's world matrix) places the take's world in the
    scene. A camera that moved (:meth:`Take.camera_moved`) gets an action of its own keying its location
    and rotation (quaternion) at scene frames ``frame_start + i * frame_step``, as the armature's keys;
    a static one is placed once. The background: ``clip`` (a Movie Clip whose timing the keys already
    follow, used as it is), else ``video`` loaded as a new clip shifted so the take's first video frame
    shows at ``frame_start``; neither: no background. Returns the new camera object.
    """
    from mathutils import Matrix

    parent = parent_matrix if parent_matrix is not None else Matrix.Identity(4)
    matrices = camera_matrices(take, cleaned.scale)
    moved = take.camera_moved()
    if not moved:
        matrices = matrices[:1]
    worlds = [parent @ Matrix(matrix.tolist()) for matrix in matrices]

    data = bpy.data.cameras.new(name)
    data.sensor_fit = "HORIZONTAL" if take.width >= take.height else "VERTICAL"
    data.sensor_width = data.sensor_height = SENSOR_WIDTH_MM
    data.lens = take.focal_px * SENSOR_WIDTH_MM / max(take.width, take.height)
    data.clip_start, data.clip_end = 0.05, 500.0
    camera = bpy.data.objects.new(name, data)
    (collection or bpy.context.scene.collection).objects.link(camera)
    camera.matrix_world = worlds[0]
    if moved:
        _key_camera(camera, worlds, frame_start + np.arange(len(worlds)) * frame_step)
    if clip is None and video is not None:
        clip = bpy.data.movieclips.load(str(video))  # its own clip: frame_start is per capture
        # A clip shows file frame F - frame_start at scene frame F: shift it so the take's first video
        # frame appears at frame_start, where its keys are.
        clip.frame_start = round(frame_start) - take.first_frame
    if clip is not None:
        data.show_background_images = True
        background = data.background_images.new()
        background.source = "MOVIE_CLIP"
        background.clip = clip
        background.alpha = 1.0
    return camera


def _key_camera(camera, worlds: list, frames: np.ndarray) -> None:
    """Key ``camera``'s location and rotation (quaternion, sign continuous) to the world matrices
    ``worlds`` (N mathutils 4x4) at scene frames ``frames`` (N,), in a new action named after it."""
    parts = [world.decompose() for world in worlds]  # (location, quaternion, scale) each
    locations = np.array([tuple(location) for location, _, _ in parts])
    quaternions = continuous_quaternions(np.array([tuple(rotation) for _, rotation, _ in parts]), first_w_positive=True)
    camera.rotation_mode = "QUATERNION"
    action = bpy.data.actions.new(camera.name)
    new_fcurve, slot = fcurve_factory(action, camera)
    key_channels(new_fcurve, [("location", "Object Transforms", locations),
                              ("rotation_quaternion", "Object Transforms", quaternions)], frames)
    assign_action(camera, action, slot)


def apply_take(take: Take, cleanup: CleanupSettings, name: str, *, target=None, bone_map: str | None = None,
               camera: bool = True, match: str = "video", keep_raw: bool = True, frame_start: float = 1,
               frame_step: float = 1.0, video: str | Path | None = None, clip=None) -> Applied:
    """Put ``take`` into the current scene; everything or nothing (see :func:`transaction.transaction`).

    cleanup: the clean-up settings. target: None builds our armature named ``name`` (with the raw
    take as a second action ``<name>.raw`` when ``keep_raw``); an armature object gets the take through
    :func:`retarget.retarget` with ``bone_map`` (None: auto-detected). camera: add the capture camera
    with ``clip`` or ``video`` (default: the take's source, when it exists) as its background (see
    :func:`capture_camera`), and make it the scene camera if the scene has none. Keys at
    ``frame_start + i * frame_step``. match: "video" sets the scene's frame rate and render size to
    the video's and grows its frame range to hold the keys; "range" only grows the range (a clip or a
    strip whose timing the keys follow, which the frame rate would change); "none" changes nothing.
    A take with hands (``take.hand_presence`` above 0 somewhere) also keys the fingers: our armature is
    built with finger bones, a target gets them through its bone map's ``fingers``.
    """
    scene = bpy.context.scene
    if target is not None and target.type != "ARMATURE":
        raise PoseMoEError(f"'{target.name}' is not an armature; choose an armature as the target or build a new one.")
    if match not in ("video", "range", "none"):
        raise ValueError(f"match must be 'video', 'range' or 'none', not {match!r}")
    cleaned = clean(take.joints_world, take.fps, cleanup)
    hands = body_hands(take, cleaned.motion)  # None without hands
    warnings = []
    with transaction(settings_of=scene):
        if match == "video":
            match_scene(scene, take)
        if match != "none":
            scene.frame_start = min(scene.frame_start, math.floor(frame_start))
            scene.frame_end = max(scene.frame_end, math.ceil(frame_start + (len(take) - 1) * frame_step - 1e-6))
        made_camera = None
        if camera:  # before the armature: a retarget is the last step, atomic in itself
            source = Path(video) if video is not None else Path(take.source)
            if clip is None and abs(frame_step - 1.0) > 1e-9:
                source = None  # a clip shows one video frame per scene frame: it would drift from the keys
                warnings.append("The capture camera has no video background: the video plays at another rate than "
                                "the scene; compare in the Sequencer's preview.")
            parent = None if target is None else target.matrix_world.copy()
            made_camera = capture_camera(take, f"{name} camera", cleaned,
                                         source if source is not None and source.is_file() else None,
                                         frame_start, parent, clip=clip, frame_step=frame_step)
            if scene.camera is None:
                scene.camera = made_camera
        raw_action = report = None
        if target is None:
            armature = rig.build_armature(cleaned.motion, name, hands=hands)
            if keep_raw:
                raw = clean(take.joints_world, take.fps, CleanupSettings(smoothing="none", foot_lock="never",
                                                                          height=cleanup.height))
                raw_hands = body_hands(take, raw.motion) if hands is not None else None
                raw_action = rig.write_action(armature, raw.motion, f"{name}.raw", frame_start, frame_step,
                                              hands=raw_hands)
                raw_action.use_fake_user = True
            action = rig.write_action(armature, cleaned.motion, name, frame_start, frame_step, hands=hands)
        else:
            armature = target
            action, report = retargeting.retarget(cleaned.motion, target, bone_map, action_name=name,
                                                  frame_start=frame_start, frame_step=frame_step, hands=hands)
    warnings += list(report.warnings) if report is not None else []
    if camera and target is not None and cleanup.root == "full":
        warnings.append("The capture camera shows the take's world; a retargeted rig moves in its own space, so "
                        "it may not lie exactly on the video.")
    return Applied(armature, action, raw_action, made_camera, cleaned, report, warnings)


def person_name(name: str, take: Take, people: int) -> str:
    """The name of one person's armature and action: ``name`` alone for a one-person capture,
    ``<name> Person <k>`` for one of several."""
    return name if people == 1 else f"{name} Person {take.person}"


def apply_takes(takes: list[Take], cleanup: CleanupSettings, name: str, *, target=None, frame_start: float = 1,
                frame_step: float = 1.0, camera: bool = True, **options) -> list[Applied]:
    """Put everyone captured from one video into the current scene, all or nothing (one capture, one
    undo step): each person as :func:`apply_take` puts one, on an armature of their own named by
    :func:`person_name`, with the keys of every video frame on one scene frame for everyone.

    frame_start: the scene frame of the earliest take's first video frame. target: the armature person
    1 is retargeted onto; each other person gets a copy of it (an object of its own sharing the
    armature's bones) next to it. One capture camera (with person 1). Other options as
    :func:`apply_take`'s.
    """
    if not takes:
        raise PoseMoEError("The capture found nobody to put into the scene.")
    first = min(take.first_frame for take in takes)
    applied = []
    with transaction(settings_of=bpy.context.scene):
        for k, take in enumerate(takes):
            armature = target
            if target is not None and k > 0:
                armature = target.copy()  # its own pose and action; the bones' data is shared
                armature.name = person_name(target.name, take, len(takes))
                for collection in target.users_collection:
                    collection.objects.link(armature)
            applied.append(apply_take(take, cleanup, person_name(name, take, len(takes)), target=armature,
                                      frame_start=frame_start + (take.first_frame - first) * frame_step,
                                      frame_step=frame_step, camera=camera and k == 0, **options))
    return applied
