"""End to end on real footage: the real BlazePose detector and the shipped lifter on a short stretch of
the bundled walking clip, through the CLI, into a take, a BVH that Blender imports, and a preview."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from posemoe.cli import main
from posemoe.motion.clean import clean
from posemoe.skeleton import FLIP_PERMUTATION, bone_lengths
from posemoe.take import Take

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    out = tmp_path_factory.mktemp("capture")
    # Frames 60-130: the walker crosses the middle of the picture while a man moves on a box behind.
    code = main(["capture", str(SAMPLE), "-o", str(out / "walk.npz"), "--bvh", str(out / "walk.bvh"),
                 "--preview", str(out / "walk.mp4"), "--start", "60", "--stop", "130"])
    assert code == 0
    return out


@pytest.mark.slow
def test_take_is_sound_3d(captured):
    take = Take.load(captured / "walk.npz")
    assert len(take) >= 60 and take.first_frame >= 60
    for name in ("keypoints_2d", "joints_camera", "joints_world"):
        assert np.isfinite(getattr(take, name)).all(), name
    lengths = bone_lengths(take.joints_camera)
    spread = lengths.std(0) / np.median(lengths, 0)
    print("bone-length spread per bone:", np.round(spread, 3))
    assert spread.mean() < 0.10 and spread.max() < 0.25
    # Left and right are not swapped: the 3D projects onto its own side's 2D better than the mirror.
    cam = take.joints_camera
    pixels = take.focal_px * cam[..., :2] / cam[..., 2:] + (take.width / 2, take.height / 2)
    own = np.linalg.norm(pixels - take.keypoints_2d, axis=-1).mean()
    mirrored = np.linalg.norm(pixels[:, FLIP_PERMUTATION] - take.keypoints_2d, axis=-1).mean()
    print(f"reprojection {own:.1f} px, with left and right swapped {mirrored:.1f} px")
    assert own < 0.7 * mirrored
    # BlazePose flickers the legs' labels as they pass each other in this side view; the take says
    # where they were put back (some frames, not the walk).
    assert take.repaired.shape == (len(take), 2) and 0 < take.repaired.any(1).sum() < 0.5 * len(take)


@pytest.mark.slow
def test_the_walker_walks_on_the_floor(captured):
    take = Take.load(captured / "walk.npz")
    world = take.joints_world
    travel = np.linalg.norm(world[-1, 0, :2] - world[0, 0, :2])
    assert travel > 1.5  # metres in 2.3 s: walking, not walking in place
    lower_ankle = world[:, [3, 6], 2].min(1)
    assert np.percentile(np.abs(lower_ankle - 0.08), 90) < 0.15
    assert 1.3 < np.median(world[:, 10, 2]) < 2.0  # head height of a standing adult


@pytest.mark.slow
def test_preview_shows_every_take_frame(captured):
    take = Take.load(captured / "walk.npz")
    video = cv2.VideoCapture(str(captured / "walk.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(take)
    ok, frame = video.read()
    assert ok and frame.shape[0] == 540 and frame.shape[1] > 540


BLENDER_IMPORT = """
import json, sys
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=sys.argv[1])
armature = next(o for o in bpy.data.objects if o.type == "ARMATURE")
scene = bpy.context.scene
out = {"bones": len(armature.data.bones), "range": list(armature.animation_data.action.frame_range), "hip": []}
for frame in (1, 30):
    scene.frame_set(frame)
    evaluated = armature.evaluated_get(bpy.context.evaluated_depsgraph_get())
    out["hip"].append(list(evaluated.matrix_world @ evaluated.pose.bones["Hip"].head))
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_blender_imports_the_bvh(captured, tmp_path):
    pytest.importorskip("bpy")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", BLENDER_IMPORT, str(captured / "walk.bvh")], env=env,
                         capture_output=True, text=True, timeout=300)
    result = json.loads(run.stdout.split("RESULT")[-1])
    take = Take.load(captured / "walk.npz")
    assert result["bones"] == 17 and result["range"] == [1.0, float(len(take))]
    # Blender's importer turns the Y-up file back into our Z-up world: the root lands where the
    # cleaned-up motion (what the BVH holds, with the CLI's default clean-up) puts it.
    cleaned = clean(take.joints_world, take.fps)
    np.testing.assert_allclose(result["hip"], cleaned.joints[[0, 29], 0], atol=1e-3)


def test_bad_input_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    code = main(["capture", str(bad), "-o", str(tmp_path / "t.npz"), "--bvh", str(tmp_path / "t.bvh")])
    assert code == 1 and "error:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["detect", "lift"])
def test_cancel_stops_the_capture(stage):
    from posemoe import Cancelled
    from posemoe.pipeline import Settings, capture

    seen = []

    def progress(name, done, total):
        seen.append(name)

    # Cancel as soon as the chosen stage has reported once.
    with pytest.raises(Cancelled):
        capture(SAMPLE, Settings(start=60, stop=100), progress=progress, cancel=lambda: stage in seen)
    assert stage in seen
