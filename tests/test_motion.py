"""The motion clean-up without Blender: bone lengths, the twist-aware fit, foot contacts and locking,
filters, root modes, and the quality measures, on synthetic walks with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posemoe import PoseMoEError
from posemoe.motion import quality
from posemoe.motion.bones import height_scale, robust_bone_lengths, standing_height
from posemoe.motion.clean import CleanupSettings, clean
from posemoe.motion.contacts import detect_contacts, lock_feet, two_bone_ik
from posemoe.motion.filters import smooth
from posemoe.motion.solve import solve_skeleton

from conftest import REST_POSE_MM

FPS = 30.0
POSE = REST_POSE_MM / 1000.0  # (17, 3) metres standing, Z up, feet on the floor


def synthetic_walk(seconds: float = 4.0, speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A walk forwards (-Y, where the rest pose faces): joints (N, 17, 3) metres and the true contacts
    (N, 2) (right, left). Each foot is planted for one step and swings for the next."""
    n = int(seconds * FPS)
    t = np.arange(n) / FPS
    step = 0.5  # seconds
    pelvis = np.stack([np.zeros(n), -speed * t, 0.86 + 0.015 * np.cos(2 * np.pi * t / step)], axis=1)
    joints = POSE[None] - POSE[0] + pelvis[:, None]
    contacts = np.zeros((n, 2), bool)
    for f, (ankle, knee, hip) in enumerate(((3, 2, 1), (6, 5, 4))):
        phase = (t / step + f) % 2  # [0, 1): planted, [1, 2): swinging
        start = t - phase * step  # when this foot was last planted
        # Planted under where the pelvis is at mid-stance; the swing covers two steps.
        planted = -speed * (start + step / 2)
        swing = np.clip(phase - 1, 0, 1)
        y = np.where(phase < 1, planted, planted - 2 * speed * step * (0.5 - 0.5 * np.cos(np.pi * swing)))
        z = 0.08 + np.where(phase < 1, 0.0, 0.1 * np.sin(np.pi * swing))
        target = np.stack([np.full(n, POSE[ankle, 0]), y, z], axis=1)
        thigh, shin = np.linalg.norm(POSE[hip] - POSE[knee]), np.linalg.norm(POSE[knee] - POSE[ankle])
        knee_guess = (joints[:, hip] + target) / 2 + (0, -0.2, 0)
        joints[:, knee], joints[:, ankle] = two_bone_ik(joints[:, hip], knee_guess, target, thigh, shin)
        contacts[:, f] = phase < 1
    return joints, contacts


def skate(joints: np.ndarray, seed: int = 0) -> np.ndarray:
    """Add what monocular capture adds: per-frame noise and a slow drift of every joint."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(scale=0.004, size=(len(joints), 1, 3)), axis=0)
    return joints + drift + rng.normal(scale=0.008, size=joints.shape)


def test_robust_lengths_ignore_outlier_frames_and_are_symmetric():
    joints, _ = synthetic_walk()
    spoiled = joints.copy()
    spoiled[::10, 13] += 0.5  # the left wrist lost every tenth frame
    lengths = robust_bone_lengths(spoiled)
    truth = robust_bone_lengths(joints)
    assert abs(lengths[13] - truth[13]) < 0.005
    assert lengths[13] == lengths[16] and lengths[2] == lengths[5]


def test_height_scaling():
    joints, _ = synthetic_walk()
    lengths = robust_bone_lengths(joints)
    assert standing_height(lengths * height_scale(lengths, 1.85)) == pytest.approx(1.85)
    with pytest.raises(PoseMoEError, match="height"):
        height_scale(lengths, 18.0)


def test_a_straight_arm_twists_with_the_torso_and_never_spins():
    # The whole body turns about Z with the arms straight: every joint's rotation equals the body's.
    frames = np.stack([Rotation.from_euler("z", a, degrees=True).apply(POSE - POSE[0]) for a in range(0, 180, 5)])
    motion = solve_skeleton(frames, FPS)
    body = Rotation.from_quat(motion.quaternions[:, 0])
    for j in (11, 12, 14, 15, 1, 2):
        angle = (body.inv() * Rotation.from_quat(motion.quaternions[:, j])).magnitude()
        assert np.degrees(angle).max() < 25, j  # the collar and limb rest offsets, not a spin


def test_contacts_follow_the_gait():
    joints, truth = synthetic_walk()
    found = detect_contacts(joints, FPS)
    agreement = (found == truth).mean()
    print(f"contact agreement with the true gait: {agreement:.1%}")
    assert agreement > 0.85
    assert not detect_contacts(joints, FPS, "never").any()
    with pytest.raises(PoseMoEError, match="foot-locking"):
        detect_contacts(joints, FPS, "sometimes")


def test_foot_locking_stops_skating():
    truth, contacts = synthetic_walk()
    noisy = skate(truth)
    lengths = robust_bone_lengths(noisy)
    fitted = solve_skeleton(noisy, FPS, lengths).joint_positions()
    before = quality.foot_skating(fitted, contacts, FPS)
    locked = lock_feet(fitted, contacts, lengths, blend=0)
    after = quality.foot_skating(locked, contacts, FPS)
    print(f"foot skating {before:.3f} -> {after:.4f} m/s")
    assert after < 0.01 < before
    # The legs keep their lengths.
    for ankle, knee, hip in ((3, 2, 1), (6, 5, 4)):
        np.testing.assert_allclose(np.linalg.norm(locked[:, knee] - locked[:, hip], axis=-1), lengths[knee], atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(locked[:, ankle] - locked[:, knee], axis=-1), lengths[ankle], atol=1e-9)


@pytest.mark.parametrize("method, max_lag", [("one_euro", 2), ("savgol", 0)])
def test_filters_cut_jitter_without_lag(method, max_lag):
    t = np.arange(300) / FPS
    clean_signal = 0.3 * np.sin(2 * np.pi * 1.0 * t)  # a 1 Hz movement, metres
    rng = np.random.default_rng(3)
    joints = np.zeros((300, 17, 3))
    joints[..., 0] = clean_signal[:, None] + rng.normal(scale=0.01, size=(300, 17))
    filtered = smooth(joints, FPS, method, 0.5)
    # Jitter counts real acceleration too: measure the share of the noise's jitter that is left.
    truth = np.zeros_like(joints)
    truth[..., 0] = clean_signal[:, None]
    left = (quality.jitter(filtered, FPS) - quality.jitter(truth, FPS)) / (quality.jitter(joints, FPS) - quality.jitter(truth, FPS))
    print(f"{method}: {left:.0%} of the noise jitter left")
    assert left < 0.3
    x = filtered[:, 0, 0]
    lags = range(-5, 6)
    errors = [np.abs(np.roll(x, -lag)[10:-10] - clean_signal[10:-10]).mean() for lag in lags]
    lag = list(lags)[int(np.argmin(errors))]
    print(f"{method}: lag {lag} frames")
    assert 0 <= lag <= max_lag
    np.testing.assert_array_equal(joints[..., 1], 0.0)  # the input is untouched (a copy is returned)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["one_euro", "savgol", "none"]), st.sampled_from(["auto", "always", "never"]),
       st.sampled_from(["full", "ground", "in_place"]), st.integers(0, 1000))
def test_clean_keeps_lengths_exact_and_never_emits_nan(smoothing, lock, root, seed):
    truth, _ = synthetic_walk(2.0)
    noisy = skate(truth, seed)
    result = clean(noisy, FPS, CleanupSettings(smoothing=smoothing, foot_lock=lock, root=root))
    assert np.isfinite(result.joints).all()
    assert quality.bone_length_spread(result.joints) < 1e-9
    if root == "in_place":
        assert np.ptp(result.joints[:, 0, :2], axis=0).max() < 1e-9
    if root == "ground":
        assert np.ptp(result.joints[:, 0, 2]) < 1e-9


def test_clean_rejects_bad_settings_and_input():
    truth, _ = synthetic_walk(1.0)
    with pytest.raises(PoseMoEError, match="root mode"):
        clean(truth, FPS, CleanupSettings(root="floating"))
    with pytest.raises(PoseMoEError, match="strength"):
        clean(truth, FPS, CleanupSettings(strength=2.0))
    with pytest.raises(PoseMoEError, match="NaN"):
        clean(np.full((10, 17, 3), np.nan), FPS)
    with pytest.raises(PoseMoEError, match="shaped"):
        clean(np.zeros((0, 17, 3)), FPS)
