"""The capture settings the sidebar panel shows, stored on the scene as ``scene.posemoe``.

No ``from __future__ import annotations`` here: Blender reads the property definitions from the class
annotations, which must stay values, not strings.
"""

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)
from bpy.types import PropertyGroup

from posemoe.camera import DEFAULT_FOV_DEGREES
from posemoe.settings import CAMERA_CHOICES

from .bone_map import MAP_NAMES

_MAP_LABELS = {"rigify_fk": "Rigify (generated, FK)", "rigify_metarig": "Rigify meta-rig", "mixamo": "Mixamo"}
_MAP_ITEMS = [("AUTO", "Auto-detect", "The shipped map whose bone names the armature has")] + [
    (name.upper(), _MAP_LABELS.get(name, name), f"The shipped '{name}' map") for name in MAP_NAMES]


_CAMERA_TEXT = {
    "auto": ("Auto", "Solve the camera's turn and travel; keep the turn if it is more than a degree and the "
                     "picture's edges moved with it, the travel if it is half a metre or more"),
    "static": ("Static", "The camera stood still (a tripod): nothing is solved"),
    "moving": ("Moving", "The camera turned or travelled with the action: solve its turn (from the background) "
                         "and its travel along the floor (from the floor's motion) in every frame, take them out "
                         "of the motion and key the capture camera with them")}
_CAMERA_ITEMS = [(choice.upper(), *_CAMERA_TEXT[choice]) for choice in CAMERA_CHOICES]


def _is_armature(_self, obj) -> bool:
    return obj.type == "ARMATURE"


class PoseMoESettings(PropertyGroup):
    source: EnumProperty(
        name="Source", default="FILE",
        items=[("FILE", "Video File", "A video file, from Start to End; keys from the scene's start frame"),
               ("CLIP", "Movie Clip", "A Movie Clip of this file; keys on the scene frames where it shows each frame"),
               ("STRIP", "Sequencer Strip", "A movie strip of the Video Sequencer; keys on the scene frames where it "
                                            "shows each frame")])
    video: StringProperty(name="Video", subtype="FILE_PATH", description="The video of people moving")
    clip: PointerProperty(name="Clip", type=bpy.types.MovieClip, description="The Movie Clip to capture")
    strip: StringProperty(name="Strip", description="The movie strip to capture (empty: the active strip)")
    start: IntProperty(name="Start", min=0, default=0, description="First video frame to capture (0: the first)")
    stop: IntProperty(name="End", min=0, default=0,
                      description="Video frame to stop before (0: to the end of the video)")

    people: EnumProperty(
        name="People", default="LARGEST",
        items=[("LARGEST", "Largest", "The largest person in the picture (seen for long enough)"),
               ("ALL", "All", "Everyone seen for long enough, each on an armature of their own (Person 1, 2, ...; "
                              "1 is the largest), all in one world"),
               ("PICK", "Pick", "The person at a point of one video frame")])
    pick: FloatVectorProperty(name="Point", size=2, min=0.0, default=(0.0, 0.0), precision=0,
                              description="The point on the person to capture: x and y in video pixels from the "
                                          "top left")
    pick_frame: IntProperty(name="At Frame", min=0, default=0, description="The video frame the point is on")
    hands: BoolProperty(name="Hands", default=False,
                        description="Also capture the fingers (slower: about 1.4 to 2.3 times the capture time "
                                    "on a 2-core machine, docs/benchmarks.md \"Hands\")")

    flip: BoolProperty(name="Flip Averaging", default=True,
                       description="Also lift the mirrored video and average: steadier, twice the lifting time")
    stride: IntProperty(name="Window Step", min=0, default=0,
                        description="Frames between lifting windows, at the lifter's 50 frames/s; smaller overlaps "
                                    "them more and blends (0: the default, a third of a window)")
    fov: FloatProperty(name="Field of View", min=10.0, max=170.0, default=DEFAULT_FOV_DEGREES,
                       description="The camera's field of view across the longer side of the picture, in degrees "
                                   f"({DEFAULT_FOV_DEGREES}: a phone's main camera)")
    camera: EnumProperty(name="Camera", default="AUTO", items=_CAMERA_ITEMS,
                         description="How the camera moved while filming")

    smoothing: EnumProperty(
        name="Smoothing", default="ONE_EURO",
        items=[("ONE_EURO", "One-Euro", "Adaptive: smooth when slow, quick when fast"),
               ("SAVGOL", "Savitzky-Golay", "Fixed window polynomial: smoothest, keeps peaks"),
               ("NONE", "None", "The joints as lifted")])
    strength: FloatProperty(name="Strength", min=0.0, max=1.0, default=0.5, subtype="FACTOR",
                            description="How much to smooth")
    foot_lock: EnumProperty(
        name="Foot Locking", default="AUTO",
        items=[("AUTO", "Auto", "Pin feet that stand still on the floor"),
               ("ALWAYS", "Always", "Pin the slower foot whenever it is low"), ("NEVER", "Never", "No pinning")])
    root: EnumProperty(
        name="Root Motion", default="FULL",
        items=[("FULL", "Full", "The body moves through space as captured"),
               ("GROUND", "Ground", "Moves over the floor at a steady height"),
               ("IN_PLACE", "In Place", "Stays over its first position (for game loops)")])
    height: FloatProperty(name="Body Height", min=0.0, max=3.0, default=0.0, subtype="DISTANCE", unit="LENGTH",
                          description="The actor's standing height; the take is scaled to it (0: as captured)")

    target: EnumProperty(
        name="Target", default="NEW",
        items=[("NEW", "New Armature", "Build PoseMoE's 16-bone armature (46 with Hands: three bones a finger)"),
               ("EXISTING", "Existing Armature", "Retarget onto an armature of the scene through a bone map")])
    armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                              description="The armature to animate")
    bone_map: EnumProperty(
        name="Bone Map", default="AUTO", items=_MAP_ITEMS)

    show_video: BoolProperty(name="Video in Camera", default=True,
                             description="Add the capture camera with the video as its background, to compare")
    match_scene: BoolProperty(name="Match Scene to Video", default=True,
                              description="Set the frame rate and render size to the video's (a file only: a clip or "
                                          "strip keeps the scene's); grow the frame range to hold the take")


CLASSES = (PoseMoESettings,)


def register_properties() -> None:
    bpy.types.Scene.posemoe = PointerProperty(type=PoseMoESettings)


def unregister_properties() -> None:
    del bpy.types.Scene.posemoe
