"""All or nothing in the user's scene: one context manager that puts back what a failed or cancelled
block changed.

Every step that changes the scene (our armature's keys, a retarget, a whole capture) runs inside
:func:`transaction`; the transactions nest, so a capture that fails in its last retarget takes back its
armatures and camera too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import bpy

#: ID collections a block may add to; a failure removes what it added to each (objects first: their
#: data can only go once nothing uses it).
COLLECTIONS = ("objects", "armatures", "actions", "cameras", "images", "movieclips")
#: Scene settings a capture may change, (``"render"`` or None for the scene itself, attribute);
#: render.fps_base follows render.fps.
SCENE_SETTINGS = (("render", "fps"), ("render", "fps_base"), ("render", "resolution_x"),
                  ("render", "resolution_y"), ("render", "resolution_percentage"), (None, "frame_start"),
                  (None, "frame_end"), (None, "camera"))


def _rotation(pose_bone) -> tuple:
    return (pose_bone.rotation_mode, tuple(pose_bone.rotation_quaternion), tuple(pose_bone.rotation_euler),
            tuple(pose_bone.rotation_axis_angle))


@contextmanager
def transaction(*, settings_of=None, frame_of=None, animation_of=None, rotations_of: Iterable = ()) -> Iterator[None]:
    """Run the block; if it raises (an error or a cancel), undo what it did and raise again.

    Always: the ID blocks it added to ``bpy.data`` (:data:`COLLECTIONS`) are removed. ``settings_of``: a
    scene whose :data:`SCENE_SETTINGS` are put back; ``frame_of``: a scene whose current frame (and
    subframe) is put back; ``animation_of``: an object whose action and action slot are put back (its
    animation data cleared if it had none); ``rotations_of``: pose bones whose rotation mode and
    rotation values are put back.
    """
    before = {name: set(getattr(bpy.data, name)) for name in COLLECTIONS}
    settings = [] if settings_of is None else [
        (owner, attr, getattr(settings_of.render if owner else settings_of, attr)) for owner, attr in SCENE_SETTINGS]
    frame = None if frame_of is None else (frame_of.frame_current, frame_of.frame_subframe)
    animation = None if animation_of is None else animation_of.animation_data
    had_animation = animation is not None
    previous = animation.action if had_animation else None
    previous_slot = getattr(animation, "action_slot", None) if had_animation else None
    rotations = [(bone, _rotation(bone)) for bone in rotations_of]
    try:
        yield
    except BaseException:
        for name in COLLECTIONS:
            collection = getattr(bpy.data, name)
            for block in set(collection) - before[name]:
                collection.remove(block)  # an action removed is also unassigned
        if animation_of is not None:
            if had_animation:
                animation_of.animation_data.action = previous
                if previous_slot is not None:
                    animation_of.animation_data.action_slot = previous_slot
            elif animation_of.animation_data is not None:
                animation_of.animation_data_clear()
        for bone, (mode, quaternion, euler, axis_angle) in rotations:
            bone.rotation_mode = mode
            bone.rotation_quaternion, bone.rotation_euler = quaternion, euler
            bone.rotation_axis_angle = axis_angle
        for owner, attr, value in settings:
            if attr == "camera" and value is not None and value.name not in bpy.data.objects:
                value = None
            setattr(settings_of.render if owner else settings_of, attr, value)
        if frame is not None and (frame_of.frame_current, frame_of.frame_subframe) != frame:
            frame_of.frame_set(frame[0], subframe=frame[1])
        raise
