"""Actions and F-curves across Blender versions: one place for the 4.2 / 4.4 / 5.0 differences.

From 4.4 an action holds slots, layers and strips; the F-curves live in the keyframe strip's
channelbag for a slot, and ``Action.fcurves`` is gone in 5.0. An action made here gets one ``OBJECT``
slot, one layer, one keyframe strip and that slot's channelbag, and both the action and the slot are
assigned; before 4.4 the F-curves come from ``Action.fcurves`` directly. Keys are written in bulk
(``foreach_set``), LINEAR, one F-curve at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import bpy
import numpy as np

#: Blender's action data model with slots, layers, strips and channelbags (4.4 and later).
LAYERED_ACTIONS = bpy.app.version >= (4, 4, 0)


def interpolation_value(name: str) -> int:
    """The raw value of a keyframe interpolation (e.g. ``"LINEAR"``), for ``foreach_set``."""
    return bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[name].value


def fill_fcurve(fcurve, co: np.ndarray, interpolation: np.ndarray) -> None:
    """Write all keys of one F-curve at once: ``co`` (2N,) float32 frame, value pairs."""
    points = fcurve.keyframe_points
    points.add(len(interpolation))
    points.foreach_set("co", co)
    points.foreach_set("interpolation", interpolation)
    fcurve.update()  # sorts keys and computes handles, as keyframe_insert would


def fcurve_factory(action, obj) -> tuple[Callable, object]:
    """A function ``new(data_path, index, group) -> FCurve`` for ``action``, and the slot they belong
    to (None before Blender 4.4)."""
    if not LAYERED_ACTIONS:
        action.id_root = "OBJECT"

        def new_legacy(data_path: str, index: int, group: str):
            return action.fcurves.new(data_path, index=index, action_group=group)

        return new_legacy, None
    slot = action.slots.new(id_type="OBJECT", name=obj.name)
    strip = action.layers.new("Layer").strips.new(type="KEYFRAME")
    channelbag = strip.channelbag(slot, ensure=True)
    # 5.0 takes the group name in fcurves.new; 4.4 and 4.5 make the group separately.
    try:
        takes_group = "group_name" in channelbag.fcurves.bl_rna.functions["new"].parameters
    except (AttributeError, KeyError):
        takes_group = False
    groups: dict[str, object] = {}

    def new_layered(data_path: str, index: int, group: str):
        if takes_group:
            return channelbag.fcurves.new(data_path, index=index, group_name=group)
        fcurve = channelbag.fcurves.new(data_path, index=index)
        if group not in groups:
            groups[group] = channelbag.groups.new(group)
        fcurve.group = groups[group]
        return fcurve

    return new_layered, slot


def key_channels(new_fcurve: Callable, channels: Iterable[tuple[str, str, np.ndarray]],
                 frames: np.ndarray) -> dict[tuple[str, int], object]:
    """LINEAR keys at ``frames`` (N,) for each (data path, group, (N, C) values) of ``channels``, one
    F-curve per component. Returns {(data path, component): F-curve}."""
    n = len(frames)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    linear = np.full(n, interpolation_value("LINEAR"), dtype=np.uint8)  # the enum's raw byte: fastest
    curves = {}
    for data_path, group, values in channels:
        for index in range(values.shape[1]):
            co[1::2] = values[:, index]
            curves[data_path, index] = new_fcurve(data_path, index, group)
            fill_fcurve(curves[data_path, index], co, linear)
    return curves


def key_pose_channels(new_fcurve: Callable, pose_bones, channels: Iterable[tuple[str, str, np.ndarray]],
                      frames: np.ndarray) -> dict[tuple[str, str, int], object]:
    """LINEAR keys at ``frames`` (N,) for each (bone, property, (N, C) values) of ``channels``, one
    F-curve per component, grouped by bone. Returns {(bone, property, component): F-curve}."""
    channels = [(bone, prop, pose_bones[bone].path_from_id(prop), values) for bone, prop, values in channels]
    curves = key_channels(new_fcurve, [(path, bone, values) for bone, _, path, values in channels], frames)
    return {(bone, prop, index): curves[path, index]
            for bone, prop, path, values in channels for index in range(values.shape[1])}


def key_custom_property(new_fcurve: Callable, pose_bone, prop: str, frame: float, value: float) -> None:
    """One LINEAR key of the custom property ``prop`` of ``pose_bone`` at ``frame``."""
    data_path = f'{pose_bone.path_from_id()}["{bpy.utils.escape_identifier(prop)}"]'
    fill_fcurve(new_fcurve(data_path, 0, pose_bone.name), np.array([frame, value], dtype=np.float32),
                np.full(1, interpolation_value("LINEAR"), dtype=np.uint8))


def rewrite_values(fcurve, values: np.ndarray) -> None:
    """Replace the values of an F-curve's keys (as many as it has), keeping their frames."""
    points = fcurve.keyframe_points
    co = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", co)
    co[1::2] = values
    points.foreach_set("co", co)
    fcurve.update()


def assign_action(obj, action, slot) -> None:
    """Make ``action`` (with ``slot``, from :func:`fcurve_factory`) ``obj``'s action."""
    animation = obj.animation_data or obj.animation_data_create()
    animation.action = action
    if hasattr(animation, "action_slot"):  # 4.4+; by Action.fcurves, Blender made the slot itself
        animation.action_slot = slot if slot is not None else action.slots[0]


def channelbag_fcurves(action, obj=None) -> list:
    """The F-curves of ``action``: from 4.4, those of the slot ``obj`` uses when ``action`` is its
    action, else of the action's first slot; before 4.4, all of them. Empty when there are none."""
    if not LAYERED_ACTIONS:
        return list(action.fcurves)
    slot = None
    if obj is not None and obj.animation_data is not None and obj.animation_data.action == action:
        slot = obj.animation_data.action_slot
    if slot is None and len(action.slots):
        slot = action.slots[0]
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot) if slot is not None else None
            if bag is not None:
                return list(bag.fcurves)
    return []
