"""Headless batch conversion on real clips: two short clips become animated .blend files, a bad third
one is reported, and the exit status says a clip failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from posemoe.take import load_takes

pytestmark = pytest.mark.slow  # every test here builds, installs or converts for real

bpy = pytest.importorskip("bpy")


def _clip(path, start: int, stop: int) -> None:
    """Write frames start..stop of the sample at half size (a short, quick real clip)."""
    source = cv2.VideoCapture(str(ROOT / "samples" / "walk.mp4"))
    source.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (884, 497))
    for _ in range(stop - start):
        ok, frame = source.read()
        assert ok
        writer.write(cv2.resize(frame, (884, 497), interpolation=cv2.INTER_AREA))
    writer.release()


def test_batch_converts_good_clips_and_reports_the_bad_one(tmp_path):
    _clip(tmp_path / "first.mp4", 60, 100)
    _clip(tmp_path / "second.mp4", 120, 160)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    out = tmp_path / "out"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    run = subprocess.run([sys.executable, str(ROOT / "blender_addon" / "batch.py"),
                          *(str(tmp_path / n) for n in ("first.mp4", "second.mp4", "broken.mp4")),
                          "--out", str(out), "--bvh", "--no-preview"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 of 3 videos converted" in run.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["broken.json", "first.blend", "first.bvh", "first.json", "first.npz",
                     "second.blend", "second.bvh", "second.json", "second.npz"]
    broken = json.loads((out / "broken.json").read_text())
    assert broken["ok"] is False and "video" in broken["error"]
    report = json.loads((out / "first.json").read_text())
    assert report["ok"] and report["frames"] >= 30 and report["quality"]["cleaned"]["bone_length_spread"] < 1e-6

    bpy.ops.wm.open_mainfile(filepath=str(out / "first.blend"))
    armature = bpy.data.objects[report["armature"]]
    assert armature.animation_data.action.name == report["actions"][0]
    assert {a.name for a in bpy.data.actions} >= set(report["actions"])
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, report["frames"])
    scene.frame_set(1)
    start = armature.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones["pelvis"].head.copy()
    scene.frame_set(report["frames"])
    end = armature.evaluated_get(bpy.context.evaluated_depsgraph_get()).pose.bones["pelvis"].head.copy()
    assert (end - start).length > 0.5  # the walker walks in the .blend too
    bpy.ops.wm.read_factory_settings(use_empty=True)


def test_batch_retargets_onto_an_armature_of_a_rig_file(tmp_path):
    from test_retarget import mixamo_armature

    _clip(tmp_path / "clip.mp4", 60, 100)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mixamo_armature().name = "Hero"
    rig_file = tmp_path / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(rig_file))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rig_bytes = rig_file.read_bytes()
    out = tmp_path / "out"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    command = [sys.executable, str(ROOT / "blender_addon" / "batch.py"), str(tmp_path / "clip.mp4"), "--out",
               str(out), "--no-preview", "--rig", str(rig_file), "--camera", "static"]
    wrong = subprocess.run(command + ["--armature", "Villain"], env=env, capture_output=True, text=True, timeout=600)
    assert wrong.returncode == 1 and "no armature named 'Villain'" in wrong.stdout and "Hero" in wrong.stdout
    assert sorted(p.name for p in out.iterdir()) == ["clip.json"]
    run = subprocess.run(command + ["--armature", "Hero"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert rig_file.read_bytes() == rig_bytes, "the rig file itself is not changed"
    report = json.loads((out / "clip.json").read_text())
    assert report["armature"] == "Hero" and report["actions"] == ["clip"] and report["camera"] == "clip camera"
    (take,) = load_takes(out / "clip.npz")
    assert take.settings["camera"] == "static"  # --camera reached the capture
    assert (take.camera_rotation == np.eye(3)).all()

    bpy.ops.wm.open_mainfile(filepath=str(out / "clip.blend"))
    assert bpy.data.objects["clip camera"].animation_data is None  # a static camera has no keys
    hero = bpy.data.objects["Hero"]
    assert hero.animation_data.action.name == "clip"
    first, last = map(round, hero.animation_data.action.frame_range)
    scene = bpy.context.scene
    hips = []
    for frame in (first, last):
        scene.frame_set(frame)
        evaluated = hero.evaluated_get(bpy.context.evaluated_depsgraph_get())
        hips.append(hero.matrix_world @ evaluated.pose.bones["mixamorig:Hips"].head)
    assert (hips[1] - hips[0]).length > 0.3
    bpy.ops.wm.read_factory_settings(use_empty=True)
