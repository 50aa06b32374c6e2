"""The constant-length skeleton fit and BVH export without Blender."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posemoe.export.bvh import write_bvh
from posemoe.motion.bones import robust_bone_lengths
from posemoe.motion.solve import shortest_arc, solve_skeleton
from posemoe.skeleton import PARENTS

from conftest import REST_POSE_MM

POSE = REST_POSE_MM / 1000.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=3, max_size=3), st.integers(0, 2**31 - 1))
def test_shortest_arc_turns_a_onto_b(a, seed):
    a = np.array(a)
    if np.linalg.norm(a) < 1e-3:
        a = np.array([0.0, 0.0, 1.0])
    b = np.random.default_rng(seed).normal(size=(8, 3))
    b[0] = -a  # the opposite direction too
    turned = shortest_arc(a, b).apply(a / np.linalg.norm(a))
    np.testing.assert_allclose(turned, b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-9)


def _noisy_motion(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(n):
        spin = Rotation.from_euler("zx", [3 * t, 5 * np.sin(t / 5)], degrees=True)
        frames.append(spin.apply(POSE - POSE[0]) + (0.02 * t, 0.0, 0.95))
    return np.array(frames) + rng.normal(scale=0.01, size=(n, 17, 3))


def test_fit_keeps_bone_lengths_exact_and_follows_the_joints():
    joints = _noisy_motion()
    motion = solve_skeleton(joints, 30.0)
    fk = motion.joint_positions()
    lengths = np.linalg.norm(fk[:, 1:] - fk[:, list(PARENTS[1:])], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(robust_bone_lengths(joints)[1:], lengths.shape), atol=1e-9)
    assert np.linalg.norm(fk - joints, axis=-1).mean() < 0.03
    # Quaternions are sign-continuous.
    assert (np.einsum("tjc,tjc->tj", motion.quaternions[1:], motion.quaternions[:-1]) >= 0).all()


def _read_bvh(path):
    """A small BVH reader for the test: joint names, offsets, and the motion table."""
    text = path.read_text().split("MOTION")
    names = [line.split()[1] for line in text[0].splitlines() if line.strip().startswith(("ROOT", "JOINT"))]
    rows = text[1].strip().splitlines()
    frames = int(rows[0].split(":")[1])
    data = np.array([[float(v) for v in row.split()] for row in rows[2:]])
    return names, frames, float(rows[1].split(":")[1]), data


def test_bvh_has_every_joint_and_frame(tmp_path):
    joints = _noisy_motion()
    path = write_bvh(tmp_path / "out" / "take.bvh", solve_skeleton(joints, 25.0), scale=100.0)
    names, frames, frame_time, data = _read_bvh(path)
    assert len(names) == 17 and frames == 40 and abs(frame_time - 0.04) < 1e-9
    assert data.shape == (40, 6 + 3 * 16) and np.isfinite(data).all()
    # Root position: world (x, y, z) metres -> BVH (x, z, -y) centimetres.
    np.testing.assert_allclose(data[:, :3], joints[:, 0][:, [0, 2, 1]] * (100, 100, -100), atol=1e-3)
    assert [p.name for p in path.parent.iterdir()] == ["take.bvh"]
