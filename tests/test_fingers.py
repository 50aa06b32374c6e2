"""The finger solve without Blender (posemoe/motion/fingers.py): forward kinematics and the solve are
inverses, the hands mirror, limits hold, gaps hold or rest, and smoothing keeps quick moves on time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posemoe import PoseMoEError
from posemoe.motion import fingers as F
from posemoe.motion import hands as H

FPS = 30.0
LIMITS = np.radians(F.LIMITS_DEG)
MIRROR = np.diag([-1.0, 1.0, 1.0])


def random_take(seed: int, frames: int, side: str, shape: F.HandShape | None = None):
    """Angles (T, 5, 4) inside the limits, palms (T, 3, 3) all round, wrists (T, 3) and the points."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(LIMITS[..., 0], LIMITS[..., 1], size=(frames, 5, 4))
    palm = Rotation.random(frames, random_state=rng).as_matrix()
    wrist = rng.normal(scale=0.5, size=(frames, 3)) + (0, 0, 1.0)
    shape = shape or F.default_shape()
    return angles, palm, wrist, F.forward(angles, palm, wrist, shape, side)


def solve(points, side, smoothing=0.0, presence=None, **kw):
    presence = np.ones(len(points)) if presence is None else presence
    return F.solve_hand(points, presence, side, FPS, F.FingerSettings(smoothing=smoothing, **kw))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), side=st.sampled_from(F.SIDES), frames=st.integers(1, 12),
       size=st.floats(0.05, 200.0))
def test_forward_then_solve_recovers_angles_and_palm(seed, side, frames, size):
    # Any unit: metres or the hand model's pixels.
    angles, palm, wrist, points = random_take(seed, frames, side, F.default_shape(size))
    motion = solve(points, side)
    np.testing.assert_allclose(motion.angles, angles, atol=1e-6)
    np.testing.assert_allclose(motion.palm, palm, atol=1e-6)
    np.testing.assert_allclose(motion.wrist, wrist, atol=1e-6 * max(size, 1))
    np.testing.assert_allclose(motion.shape.palm_size, size, rtol=1e-6)
    np.testing.assert_allclose(motion.points(), points, atol=1e-6 * max(size, 1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_mirrored_right_hand_reads_as_the_same_left_hand_pose(seed):
    angles, palm, wrist, right = random_take(seed, 6, "right")
    left = right * (-1.0, 1.0, 1.0)
    as_right, as_left = solve(right, "right"), solve(left, "left")
    np.testing.assert_allclose(as_left.angles, as_right.angles, atol=1e-9)
    np.testing.assert_allclose(as_left.angles, angles, atol=1e-6)
    np.testing.assert_allclose(as_left.palm, MIRROR @ as_right.palm @ MIRROR, atol=1e-9)
    # The mirrored frames stay proper rotations, and forward kinematics mirrors back.
    assert np.allclose(np.linalg.det(as_left.palm), 1.0)
    np.testing.assert_allclose(F.forward(angles, as_left.palm, as_left.wrist, as_left.shape, "left"), left, atol=1e-9)


def test_palm_axes_follow_the_documented_convention():
    # A left hand, palm to the camera, fingers up: y up the image (-y camera), the back of the hand away
    # from the camera (+z), x to the thumb, which is on the image's left (the person's left hand, facing
    # the camera, is on the image's right with its thumb towards the person's middle).
    palm = np.array([[-1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])[None]
    flat = np.zeros((1, 5, 4))
    points = F.forward(flat, palm, np.zeros((1, 3)), F.default_shape(), "left")
    frame = F.palm_frames(points, "left")[0]
    np.testing.assert_allclose(frame[:, 1], F._unit(points[0, 9] - points[0, 0]), atol=1e-12)
    assert frame[2, 2] > 0.99 and points[0, 4, 0] < points[0, 20, 0]
    # Flexion curls towards the palm, here towards the camera.
    curled = F.forward(np.radians(np.tile([60.0, 0, 60, 30], (1, 5, 1))), palm, np.zeros((1, 3)), F.default_shape(), "left")
    assert (curled[0, [8, 12, 16, 20], 2] < points[0, [8, 12, 16, 20], 2] - 0.01).all()
    # Abduction is towards the thumb (image left here) on every finger, and so on the right hand too.
    spread = np.zeros((1, 5, 4))
    spread[:, 1:, 1] = np.radians(20)
    moved = F.forward(spread, palm, np.zeros((1, 3)), F.default_shape(), "left")
    assert (moved[0, [8, 12, 16, 20], 0] < points[0, [8, 12, 16, 20], 0] - 0.005).all()
    right = F.forward(spread, MIRROR @ palm @ MIRROR, np.zeros((1, 3)), F.default_shape(), "right")
    np.testing.assert_allclose(right * (-1, 1, 1), moved, atol=1e-12)


def test_frame_from_y_z_builds_the_palm_and_its_rest():
    rng = np.random.default_rng(4)
    y, z = rng.normal(size=(2, 50, 3))
    frame = F.frame_from_y_z(y, z)
    np.testing.assert_allclose(np.linalg.det(frame), 1.0, atol=1e-12)
    np.testing.assert_allclose(frame[..., 1], F._unit(y), atol=1e-12)
    assert (np.einsum("ti,ti->t", frame[..., 2], z) > 0).all()
    # A left arm in the T-pose (world +X, facing -Y, Z up), palm down: x, the thumb side, faces forward.
    np.testing.assert_allclose(H.rest_palm(np.array([0.26, 0.0, 0.0])), [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_segment_rotations_put_y_along_each_bone():
    angles, palm, wrist, points = random_take(3, 5, "left")
    motion = solve(points, "left")
    frames = motion.segment_rotations()  # (T, 5, 3, 3, 3)
    world_y = np.einsum("tij,tfsj->tfsi", motion.palm, frames[..., :, 1])
    bones = F._unit(np.diff(points[:, F.CHAINS], axis=2))
    np.testing.assert_allclose(world_y, bones, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(frames), 1.0, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), side=st.sampled_from(F.SIDES))
def test_limits_hold_on_any_input(seed, side):
    rng = np.random.default_rng(seed)
    base = random_take(seed, 20, side)[3]
    points = base + rng.normal(scale=0.05, size=base.shape)  # a detector having a very bad day
    for smoothing in (0.0, 0.5):
        angles = solve(points, side, smoothing).angles
        assert (angles >= LIMITS[..., 0] - 1e-12).all() and (angles <= LIMITS[..., 1] + 1e-12).all()


def test_short_gap_holds_and_long_gap_rests():
    rng = np.random.default_rng(0)
    n = 80
    angles = np.tile(np.radians([[20, 30, 40, 10], [30, 5, 60, 20], [50, -5, 70, 30], [20, 0, 90, 60], [10, 10, 20, 10]]), (n, 1, 1))
    angles[40:] = np.radians(F.REST_DEG) * 0.3  # a different pose after the gaps
    palm = np.tile(Rotation.random(random_state=rng).as_matrix(), (n, 1, 1))
    points = F.forward(angles, palm, np.zeros((n, 3)), F.default_shape(), "right")
    presence = np.ones(n)
    presence[10:16] = 0.1  # 6 frames, under the 15-frame hold at 30 fps
    presence[25:60] = 0.0  # 35 frames: rest in the middle
    points[presence < 0.5] = np.nan  # an unseen hand may come as NaN
    motion = solve(points, "right", hold_seconds=0.5, ease_seconds=0.1)  # 3 frames of easing
    assert not motion.seen[10:16].any() and motion.seen[:10].all()
    np.testing.assert_allclose(motion.angles[10:13], angles[9:10].repeat(3, 0), atol=1e-12)  # held
    np.testing.assert_allclose(motion.weight[10:16], 1.0)
    np.testing.assert_allclose(motion.angles[:25], angles[:25], atol=1e-9)  # same pose on both sides
    rest = np.radians(F.REST_DEG)
    np.testing.assert_allclose(motion.angles[30:55], np.broadcast_to(rest, (25, 5, 4)), atol=1e-12)
    np.testing.assert_allclose(motion.weight[30:55], 0.0)
    # Eased, not jumped: each step into and out of rest is a fraction of the whole change.
    steps = np.abs(np.diff(motion.angles[24:62], axis=0)).max(axis=(1, 2))
    assert steps.max() < 0.6 * np.abs(rest - angles[24]).max()
    np.testing.assert_allclose(motion.angles[60:], angles[60:], atol=1e-9)
    # The palm has no rest: it is held, never NaN.
    np.testing.assert_allclose(motion.palm, palm, atol=1e-9)


def test_no_hand_at_all_gives_the_rest_pose():
    points = np.full((10, 21, 3), np.nan)
    motion = F.solve_hand(points, np.zeros(10), "left", FPS)
    np.testing.assert_allclose(motion.angles, np.broadcast_to(np.radians(F.REST_DEG), (10, 5, 4)))
    assert not motion.seen.any() and (motion.weight == 0).all()


def test_smoothing_keeps_a_quick_flex_on_time_and_removes_jitter():
    n = 60
    t = np.arange(n)
    # A fist closing in 4 frames (90 degrees in 0.13 s) and opening again 10 frames later.
    curl = np.clip((t - 20) / 4, 0, 1) - np.clip((t - 34) / 4, 0, 1)
    curl = curl * curl * (3 - 2 * curl)
    truth = np.zeros((n, 5, 4))
    truth[..., 0] = truth[..., 2] = np.radians(85) * curl[:, None]
    smoothed = F.smooth_angles(truth, FPS, strength=0.5)
    for series, reference in ((smoothed[:, 2, 2], truth[:, 2, 2]),):
        half = 0.5 * reference.max()
        rise_truth = np.interp(half, reference[15:30], t[15:30])
        rise = np.interp(half, series[15:30], t[15:30])
        fall_truth = np.interp(-half, -reference[30:45], t[30:45])
        fall = np.interp(-half, -series[30:45], t[30:45])
        assert abs(rise - rise_truth) <= 1.0 and abs(fall - fall_truth) <= 1.0
        assert series.max() >= 0.9 * reference.max()
    rng = np.random.default_rng(1)
    still = np.radians(30) + rng.normal(scale=np.radians(3), size=(n, 5, 4))
    jitter = lambda a: np.abs(np.diff(a, axis=0)).mean()  # noqa: E731
    assert jitter(F.smooth_angles(still, FPS, 0.5)) < 0.35 * jitter(still)


def test_shape_scales_to_the_forearm():
    _, _, _, points = random_take(5, 8, "right", F.default_shape(120.0))  # pixels
    shape = F.hand_shape(points, "right", forearm_length=0.26)
    assert shape.palm_size == pytest.approx(F.PALM_PER_FOREARM * 0.26)
    np.testing.assert_allclose(shape.lengths / shape.palm_size, F.default_shape().lengths / F.default_shape().palm_size)
    assert solve(points, "right").shape.palm_size == pytest.approx(120.0)


def test_user_errors_say_what_to_do():
    points = random_take(0, 3, "right")[3]
    with pytest.raises(PoseMoEError, match="'left' or 'right'"):
        F.solve_hand(points, np.ones(3), "middle", FPS)
    with pytest.raises(PoseMoEError, match="21, 3"):
        F.solve_hand(points[:, :20], np.ones(3), "right", FPS)
    with pytest.raises(PoseMoEError, match="between 0 and 1"):
        F.solve_hand(points, np.ones(3), "right", FPS, F.FingerSettings(smoothing=2.0))


def test_camera_points_undo_the_perspective_of_pixels_and_relative_depth():
    angles, palm, _, _ = random_take(7, 10, "right")
    wrist = np.tile([0.1, -0.05, 0.35], (10, 1))  # close to the camera: strong perspective
    points = F.forward(angles, palm, wrist, F.default_shape(), "right")
    focal, centre = 1000.0, np.array([640.0, 360.0])
    pixels = focal * points[..., :2] / points[..., 2:] + centre
    relative = focal * (points[..., 2:] - points[:, :1, 2:]) / points[:, :1, 2:]
    landmarks = np.concatenate([pixels, relative], axis=-1)
    np.testing.assert_allclose(solve(F.camera_points(landmarks, focal, centre), "right").angles, angles, atol=1e-6)
    weak = solve(F.camera_points(landmarks), "right").angles  # what the model alone describes
    assert np.abs(weak - angles).max() > np.radians(1)


def test_a_real_right_fist_reads_as_flexion():
    # Frame 0 of the TensorFlow.js reference keypoints beside asl_hand_portrait.mp4: a right hand (palm to
    # the camera, fingers up, thumb on the image's right) in a fist (ASL "A"). Its fingers must read as
    # curled (positive flexion), which pins the hands' handedness to real anatomy, not just to forward().
    import json

    from conftest import ROOT

    path = ROOT.parent / "shared" / "media" / "real" / "hands" / "asl_hand_portrait.hands_tfjs.json"
    if not path.is_file():
        pytest.skip("../shared/media/real is absent")
    landmarks = np.array(json.loads(path.read_text())[:1], dtype=np.float64)
    points = F.camera_points(landmarks, focal=1000.0, principal=(310.0, 540.0))
    angles = np.degrees(F.joint_angles(points, "right", F.palm_frames(points, "right"), F.hand_shape(points, "right")))
    assert (angles[0, 1:, 2] > 90).all() and (angles[0, 1:, 0] > 20).all()


@pytest.mark.parametrize("side", F.SIDES)
def test_least_squares_fit_beats_the_direct_solve_when_depth_is_noisy(side):
    # A take of one hand seen as the hand model sees it: image-plane noise, more on the depth. The fit
    # (the take's segment lengths, hinges, depth weighted down) must read the angles better than the
    # per-segment direct solve, and both solves must stay exact on clean points.
    rng = np.random.default_rng(3)
    angles, palm, wrist, points = random_take(11, 200, side)
    angles = F.clip_to_limits(angles)
    size = np.linalg.norm(points[:, 12] - points[:, 0], axis=-1)[:, None, None]  # hand length
    noisy = points + rng.normal(size=points.shape) * size * np.array([1.0, 1.0, 2.0]) / 150.0
    direct = solve(noisy, side, fit_iterations=0).angles
    fitted = solve(noisy, side).angles
    err_direct, err_fit = np.median(np.abs(direct - angles)), np.median(np.abs(fitted - angles))
    assert err_fit < 0.9 * err_direct, (np.degrees(err_fit), np.degrees(err_direct))
    assert np.all(np.abs(fitted) <= np.radians(np.abs(F.LIMITS_DEG)).max(-1) + 1e-9)
    for iterations in (0, 3):
        np.testing.assert_allclose(solve(points, side, fit_iterations=iterations).angles, angles, atol=1e-6)


def test_fit_angles_keeps_a_degenerate_frame_finite():
    points = random_take(2, 3, "left")[3]
    points[1] = points[1, :1]  # every point at the wrist
    shape = F.hand_shape(points, "left", np.array([True, False, True]))
    angles = F.fit_angles(points, "left", F.palm_frames(points, "left"), shape)
    assert np.isfinite(angles).all()
