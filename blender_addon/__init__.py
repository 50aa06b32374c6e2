"""PoseMoE for Blender: markerless motion capture from one video onto an armature.

Like Blender's own ``io_anim_bvh``, this package is thin: the work lives in :mod:`posemoe` (no bpy) and
in ``rig.py`` / ``retarget.py`` / ``apply.py`` (bpy, callable from scripts); ``preferences.py``,
``properties.py``, ``capture.py`` (operators) and ``panel.py`` are the user interface registered here.
``batch.py`` is the headless entry point; ``build.py`` makes the extension zip and is not part of it.
"""

from __future__ import annotations

import bpy

from . import capture, panel, preferences, properties

_CLASSES = (*preferences.CLASSES, *properties.CLASSES, *capture.CLASSES, *panel.CLASSES)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()


def unregister() -> None:
    if capture.POSEMOE_OT_capture.running is not None:
        capture.POSEMOE_OT_capture.running.job.cancel()
        capture.POSEMOE_OT_capture.running = None
    properties.unregister_properties()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
