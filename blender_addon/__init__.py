"""PoseMoE for Blender: markerless motion capture from one video onto an armature.

Like Blender's own ``io_anim_bvh``, this package is thin: the work lives in :mod:`posemoe` (no bpy) and
in ``rig.py`` / ``retarget.py`` / ``apply.py`` (bpy, callable from scripts), with the maths they share
in modules without bpy (``rig_layout.py``, ``bone_map.py``, ``retarget_solve.py``, ``fingers.py``,
``checks.py``); ``preferences.py``, ``properties.py``, ``capture.py`` (operators) and ``panel.py`` are
the user interface registered here. ``batch.py`` is the headless entry point; ``build.py`` makes the
extension zip and is not part of it. The user interface is imported on registration only, so the
modules without bpy import without Blender.
"""

from __future__ import annotations


def _classes() -> tuple:
    from . import capture, panel, preferences, properties

    return (*preferences.CLASSES, *properties.CLASSES, *capture.CLASSES, *panel.CLASSES)


def register() -> None:
    import bpy

    from . import properties

    for cls in _classes():
        bpy.utils.register_class(cls)
    properties.register_properties()


def unregister() -> None:
    import bpy

    from . import capture, properties

    if capture.POSEMOE_OT_capture.running is not None:
        capture.POSEMOE_OT_capture.running.job.cancel()
        capture.POSEMOE_OT_capture.running = None
    properties.unregister_properties()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
