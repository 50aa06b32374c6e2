"""Render a frame of a captured animation for the docs: ``python docs/render_capture.py [--take T.npz]``.

Captures ``samples/walk.mp4`` (or loads a take), applies it as the add-on does (clean-up, our armature,
the capture camera), gives the armature a simple skinned body so it renders, and renders one frame
twice with Cycles on the CPU: through the capture camera over the video frame (does the body lie on the
walker?) and from the side over a floor grid (the walk in 3D). Writes ``docs/images/capture_frame.jpg``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import bpy  # first: bmesh and mathutils come with it
import bmesh
import cv2
import numpy as np
from mathutils import Matrix, Vector

from posemoe.motion.clean import CleanupSettings
from posemoe.pipeline import capture
from posemoe.take import Take
from posemoe.video import read_frames

ROOT = Path(__file__).resolve().parent.parent
# The add-on is not an installed package (Blender installs it as an extension): import it from the checkout.
sys.path.insert(0, str(ROOT))
from blender_addon.apply import apply_take  # noqa: E402

SAMPLE = ROOT / "samples" / "walk.mp4"
OUT = ROOT / "docs" / "images" / "capture_frame.jpg"


def body_mesh(armature, radius: float = 0.045):
    """One mesh of capsules, a capsule per bone, skinned rigidly to its bone (vertex group, Armature
    modifier): enough to see the pose in a render, where bones themselves are invisible."""
    mesh = bpy.data.meshes.new(f"{armature.name} body")
    work = bmesh.new()
    groups = {}
    for bone in armature.data.bones:
        head, tail = bone.head_local, bone.tail_local
        length = (tail - head).length
        r = radius * (1.6 if bone.name in ("pelvis", "spine") else 1.3 if bone.name == "head" else 1.0)
        made = bmesh.ops.create_cone(work, cap_ends=True, segments=12, radius1=r, radius2=r * 0.8, depth=length)
        along = (tail - head).normalized().to_track_quat("Z", "Y").to_matrix().to_4x4()
        bmesh.ops.transform(work, matrix=Matrix.Translation((head + tail) / 2) @ along, verts=made["verts"])
        sphere = bmesh.ops.create_uvsphere(work, u_segments=12, v_segments=8, radius=r * 1.15)
        bmesh.ops.translate(work, vec=head, verts=sphere["verts"])
        groups[bone.name] = made["verts"] + sphere["verts"]
    work.verts.index_update()
    groups = {name: [v.index for v in verts] for name, verts in groups.items()}
    work.to_mesh(mesh)
    work.free()
    body = bpy.data.objects.new(mesh.name, mesh)
    bpy.context.scene.collection.objects.link(body)
    for name, verts in groups.items():
        body.vertex_groups.new(name=name).add(verts, 1.0, "REPLACE")
    body.modifiers.new("Armature", "ARMATURE").object = armature
    body.data.materials.append(_material("body", (0.9, 0.45, 0.1, 1.0)))
    return body


def _material(name: str, colour) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = colour
    return material


def floor_grid(centre, size: float = 8.0):
    """A wire grid of 1/3 m squares on the floor (Z = 0) around ``centre`` (x, y metres)."""
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=24, y_subdivisions=24, size=size,
                                    location=(float(centre[0]), float(centre[1]), 0.0))
    grid = bpy.context.object
    grid.modifiers.new("lines", "WIREFRAME").thickness = 0.012
    grid.data.materials.append(_material("grid", (0.15, 0.15, 0.18, 1.0)))


def render(camera, path: Path, transparent: bool) -> np.ndarray:
    scene = bpy.context.scene
    scene.camera = camera
    scene.render.film_transparent = transparent
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--take", type=Path, help="a take of samples/walk.mp4 (default: capture it now)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    take = Take.load(args.take) if args.take else capture(SAMPLE)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    applied = apply_take(take, CleanupSettings(), "walk", camera=True, match="video", video=SAMPLE)
    body_mesh(applied.armature)
    index = len(take) * 2 // 3
    scene.frame_set(scene.frame_start + index)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.render.resolution_percentage = 50
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    world = bpy.data.worlds.new("grey")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.55, 0.57, 0.6, 1.0)
    scene.world = world
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.rotation_euler = (math.radians(40), 0.0, math.radians(30))
    scene.collection.objects.link(sun)

    with tempfile.TemporaryDirectory() as tmp:
        overlay = render(applied.camera, Path(tmp) / "camera.png", transparent=True)
        frame = next(read_frames(SAMPLE, take.first_frame + index, take.first_frame + index + 1)).image
        frame = cv2.resize(frame, (overlay.shape[1], overlay.shape[0]), interpolation=cv2.INTER_AREA)
        alpha = overlay[..., 3:4].astype(np.float32) / 255 * 0.8
        left = (frame * (1 - alpha) + overlay[..., :3] * alpha).astype(np.uint8)

        floor_grid(applied.cleaned.joints[:, 0, :2].mean(0))
        pelvis = applied.cleaned.joints[index, 0]
        side = bpy.data.objects.new("side view", bpy.data.cameras.new("side view"))
        scene.collection.objects.link(side)
        side.data.lens = 35
        side.location = Vector(pelvis) + Vector((5.5, -3.5, 1.6))
        side.rotation_euler = (Vector(pelvis) + Vector((0, 0, -0.2)) - side.location).to_track_quat("-Z", "Y").to_euler()
        right = np.ascontiguousarray(render(side, Path(tmp) / "side.png", transparent=False)[..., :3])

    for image, text in ((left, "through the capture camera"), (right, "in 3D, from the side")):
        for colour, thickness in (((0, 0, 0), 5), ((255, 255, 255), 2)):  # outlined, readable on any picture
            cv2.putText(image, text, (16, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.9, colour, thickness, cv2.LINE_AA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.hstack([left, right]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out} (video frame {take.first_frame + index}, take frame {index} of {len(take)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
