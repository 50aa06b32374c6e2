"""Shared fixtures: a tiny synthetic dataset in the exact format of the shared Human3.6M files."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Blender reads its user folder once, when bpy is first imported: point it at a throw-away folder
# before any test module imports bpy, so tests never touch (or depend on) a real Blender set-up.
_BLENDER_USER = tempfile.mkdtemp(prefix="posemoe-blender-")
os.environ["BLENDER_USER_RESOURCES"] = _BLENDER_USER
atexit.register(shutil.rmtree, _BLENDER_USER, ignore_errors=True)

_EXIT_STATUS = 0


def pytest_sessionfinish(session, exitstatus):
    global _EXIT_STATUS
    _EXIT_STATUS = int(exitstatus)


def pytest_unconfigure(config):
    """bpy 4.5 can deadlock in its static destructors at interpreter exit (see test_retarget.py);
    once pytest has reported everything, leave without running them so a finished suite never hangs."""
    if "bpy" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS)


ROOT = Path(__file__).resolve().parent.parent

_RIGIFY_CHILD = r"""
import json, os, shutil, sys, tempfile
os.environ["BLENDER_USER_RESOURCES"] = user_resources = tempfile.mkdtemp(prefix="posemoe-blender-")
sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[1], "tests")]
import bpy, addon_utils
try:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)
    getattr(bpy.ops.object, sys.argv[2])()
    bpy.ops.pose.rigify_generate()
    rig = bpy.data.objects["rig"]
    exec(sys.argv[3])
except Exception as error:
    result = {"error": repr(error)}
print("RESULT " + json.dumps(result), flush=True)
shutil.rmtree(user_resources, ignore_errors=True)
os._exit(0)  # not sys.exit: bpy deadlocks at interpreter exit after rigify_generate
"""


def with_generated_rigify_rig(metarig: str, body: str) -> dict:
    """Run ``body`` (Python source) in a child process in which Rigify has generated ``rig`` from the
    meta-rig that ``bpy.ops.object.<metarig>`` adds; ``body`` sets ``result`` (JSON-able), which is
    returned. A child process: after ``pose.rigify_generate`` the bpy module (4.5) deadlocks at
    interpreter exit. Fails the test with the child's output if it printed no result, or with the
    exception ``body`` raised."""
    import subprocess

    child = subprocess.run([sys.executable, "-c", _RIGIFY_CHILD, str(ROOT), metarig, body], capture_output=True,
                           text=True, timeout=300, cwd=ROOT)
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, child.stdout[-3000:] + child.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert "error" not in result, result
    return result

SHARED_DATA = ROOT.parent / "shared" / "data"

# A standing pose, millimetres, Z up (x right, y forward); 17 joints in our order.
REST_POSE_MM = np.array([
    [0, 0, 950], [-130, 0, 950], [-130, 0, 500], [-130, 0, 80], [130, 0, 950], [130, 0, 500], [130, 0, 80],
    [0, 0, 1180], [0, 0, 1430], [0, -30, 1530], [0, 0, 1650], [170, 0, 1400], [420, 0, 1400], [650, 0, 1400],
    [-170, 0, 1400], [-420, 0, 1400], [-650, 0, 1400],
], dtype=np.float64)


def look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World->camera rotation of an OpenCV camera at ``centre`` looking at ``target`` (world Z up)."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def synthetic_camera(angle: float, cam_id: str) -> dict:
    centre = np.array([4500 * np.cos(angle), 4500 * np.sin(angle), 1500.0])
    return {
        "id": cam_id, "R": look_at(centre, np.array([0.0, 0.0, 1000.0])).tolist(), "T": centre.tolist(),
        "f": [1150.0, 1148.0], "c": [510.0, 505.0], "k": [-0.2, 0.24, -0.003], "p": [-0.0014, -0.001],
        "res_w": 1000, "res_h": 1000,
    }


def synthetic_motion(frames: int, seed: int) -> np.ndarray:
    """A person swinging arms and legs and turning slowly: (frames, 17, 3) int16 world millimetres."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 50.0
    pose = np.repeat(REST_POSE_MM[None], frames, axis=0)
    phase = rng.uniform(0, 2 * np.pi)
    swing = np.sin(2 * np.pi * 0.8 * t + phase)
    for j, sign in ((2, 1), (3, 1), (5, -1), (6, -1)):  # knees and feet forward and back
        pose[:, j, 1] += sign * swing * (200 if j in (3, 6) else 100)
    for j, sign in ((12, -1), (13, -1), (15, 1), (16, 1)):  # elbows and wrists
        pose[:, j, 1] += sign * swing * (250 if j in (13, 16) else 120)
        pose[:, j, 2] -= np.abs(swing) * 150
    yaw = 0.6 * np.sin(2 * np.pi * 0.1 * t + phase)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = pose[..., 0].copy(), pose[..., 1].copy()
    pose[..., 0] = c[:, None] * x - s[:, None] * y
    pose[..., 1] = s[:, None] * x + c[:, None] * y
    pose[..., :2] += rng.normal(scale=300, size=2)
    return np.round(pose).astype(np.int16)


def write_synthetic_dataset(folder: Path, frames: int = 120) -> tuple[Path, Path]:
    """Write a 3D file and a detections file shaped like the shared ones. Returns (3d path, 2d path)."""
    from posemoe.camera import Camera

    subjects = {"S1": ["Walking", "Eating 1"], "S5": ["Walking 1"], "S9": ["Walking", "Posing 1"], "S11": ["Eating"]}
    cameras = {s: [synthetic_camera(a, f"cam{i}") for i, a in enumerate((0.3, 2.0))] for s in subjects}
    arrays, detections = {}, {}
    for k, (subject, actions) in enumerate(subjects.items()):
        for a, action in enumerate(actions):
            motion = synthetic_motion(frames, seed=10 * k + a)
            arrays[f"{subject}/{action}"] = motion
            for entry in cameras[subject]:
                cam = Camera.from_h36m(entry)
                px = cam.project(cam.world_to_camera(motion / 1000.0))
                mpii = px[:, [3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13]]
                noisy = mpii + np.random.default_rng(k).normal(scale=3.0, size=mpii.shape)
                detections[f"{subject}/{action}/{entry['id']}"] = np.round(noisy * 10).astype(np.int16)
    path3d, path2d = folder / "h36m_3d_tiny.npz", folder / "h36m_2d_tiny.npz"
    np.savez_compressed(path3d, cameras_json=json.dumps(cameras), metadata_json=json.dumps({"fps": 50}), **arrays)
    np.savez_compressed(path2d, **detections)
    return path3d, path2d


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    return write_synthetic_dataset(tmp_path_factory.mktemp("h36m"))


@pytest.fixture
def tiny_config(monkeypatch):
    """Register a small, fast config named "tiny-t9" for both architectures."""
    from posemoe.model.config import CONFIGS, ModelConfig

    small = dict(frames=9, width=16, heads=2, mlp_ratio=2.0)
    monkeypatch.setitem(CONFIGS, "tiny-t9", ModelConfig("posemoe", encoder_depth=1, decoder_depth=1, **small))
    monkeypatch.setitem(CONFIGS, "tinybase-t9", ModelConfig("baseline", encoder_depth=4, decoder_depth=0, **small))
    return "tiny-t9"
