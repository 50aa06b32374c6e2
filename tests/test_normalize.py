"""The one input normalisation, the frame-rate resampling and the virtual cameras of training."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from conftest import REST_POSE_MM, synthetic_motion
from posemoe import lift as lift_module
from posemoe import camera, normalize
from posemoe.lift import lift_windows
from posemoe.model.config import ModelConfig
from posemoe.normalize import (NETWORK_FPS, normalize_windows, resample_inputs, resample_track, restore_poses,
                               turn_targets)
from posemoe.skeleton import flip_horizontal
from training import train
from training.data import FAULTS, Augment, WindowDataset, corrupt
from training.views import EVAL_STREAM, TRAIN_STREAM, VirtualViews, film, sample_cameras


def person_windows(rng, count=3, frames=9, depth=4.0):
    """Camera-space people (W, T, 17, 3) metres standing ``depth`` m ahead, turned at random."""
    rest = (REST_POSE_MM - REST_POSE_MM[0]) / 1000.0 * [1, 1, -1]  # z up -> y down
    rest = rest[:, [0, 2, 1]]
    poses = []
    for _ in range(count):
        turn = Rotation.from_euler("y", rng.uniform(0, 2 * np.pi)).as_matrix()
        sway = rng.normal(scale=0.02, size=(frames, 17, 3))
        poses.append(rest @ turn.T + sway + [rng.uniform(-1, 1), rng.uniform(-0.3, 0.3), depth])
    return np.stack(poses)


def screen_of(points, focal):
    """(..., 3) camera metres -> (..., 3) screen x, y (focal in screen units) and visibility 1."""
    xy = points[..., :2] / points[..., 2:3] * focal
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)


@settings(max_examples=30, deadline=None)
@given(zoom=st.floats(0.3, 3.0), pan=st.floats(-0.5, 0.5), seed=st.integers(0, 10_000))
def test_zoom_and_pan_give_the_network_the_same_input(zoom, pan, seed):
    """A longer lens or a camera panned sideways sees the same person: the network's input does not
    change, and the rotation that turns its answer back follows the pan."""
    rng = np.random.default_rng(seed)
    people = person_windows(rng)
    base, base_rotation = normalize_windows(screen_of(people, 2.0), 2.0)
    zoomed, _ = normalize_windows(screen_of(people, 2.0 * zoom), 2.0 * zoom)
    np.testing.assert_allclose(zoomed, base, atol=1e-5)
    turn = Rotation.from_euler("y", pan).as_matrix()
    panned_people = people @ turn.T
    if (panned_people[..., 2] < 0.5).any():
        return
    panned, panned_rotation = normalize_windows(screen_of(panned_people, 2.0), 2.0)
    np.testing.assert_allclose(panned, base, atol=1e-4)
    # An answer in the turned camera maps to the pan of the same answer, to float32's precision. The
    # rotations are float32, so the error of a joint scales with its vector's length, not with each
    # coordinate (element-wise bounds were missed twice by small coordinates of long vectors); the
    # worst seen over 1,200 draws was 3.8e-5 of the length.
    answer = rng.normal(size=(3, 9, 17, 3))
    error = restore_poses(answer, panned_rotation) - restore_poses(answer, base_rotation) @ turn.T
    assert (np.linalg.norm(error, axis=-1) <= 1e-4 * np.linalg.norm(answer, axis=-1)).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.floats(2.0, 10.0))
def test_an_oracle_network_gives_back_the_camera_space_truth(seed, depth):
    """Turning targets into the crop's camera and answers back out of it are inverses, so a network
    that answers the turned truth gives the Lifter the real camera's truth."""
    rng = np.random.default_rng(seed)
    people = person_windows(rng, depth=depth)
    relative = people - people[:, :, :1]
    inputs, rotation = normalize_windows(screen_of(people, 1.5), 1.5)
    np.testing.assert_allclose(restore_poses(turn_targets(relative, rotation), rotation), relative, atol=1e-5)
    # The crop looks at the pelvis: in the turned camera the window's mean pelvis is straight ahead.
    centre = turn_targets(people[:, :, :1].mean(1, keepdims=True), rotation)[:, 0, 0]
    np.testing.assert_allclose(centre[:, :2] / centre[:, 2:], 0.0, atol=0.02)
    # And the person is brought to Human3.6M's size: a 1.75 m body spans about 0.83 screen units there.
    height = np.ptp(inputs[..., 1], axis=2).mean()
    assert 0.6 < height < 1.1


def test_the_lifter_and_training_give_the_network_the_same_input():
    """The one normalisation: the product's path and the training step hand the network the same
    numbers for the same window, through the same function."""
    assert lift_module.normalize_windows is normalize.normalize_windows is train.normalize_windows
    rng = np.random.default_rng(0)
    window = screen_of(person_windows(rng, count=1)[0], 2.2).astype(np.float32)
    window[3, 5, 2] = 0.0  # a missing knee
    seen = []

    def record(x):
        seen.append(x.copy())
        return np.zeros(x.shape[:-1] + (3,), np.float32)

    # Training mirrors a window before normalising it (training/data.py, corrupt); so must the Lifter.
    both = np.stack([window, flip_horizontal(window)])
    for config, lens_known in ((ModelConfig(), None), (ModelConfig(lens_input=True), False)):
        lift_windows(record, window, 2.2, frames=9, stride=9, flip=True, lens_known=lens_known)
        trained, _ = train.network_batch(both, np.zeros((2, 9, 17, 3), np.float32), np.array([2.2, 2.2]),
                                         np.array([False, False]), config)
        np.testing.assert_array_equal(seen[-1], trained)
    assert seen[0][0, 3, 5].tolist() == [0.0, 0.0, 0.0]
    assert seen[1].shape[-1] == 4


def test_the_lens_channel_says_whose_lens_and_changes_nothing_else():
    screen = screen_of(person_windows(np.random.default_rng(4)), 2.0)
    plain, rotation = normalize_windows(screen, 2.0)
    told, told_rotation = normalize_windows(screen, 2.0, np.array([True, False, True]))
    assert plain.shape[-1] == 3 and told.shape[-1] == 4
    np.testing.assert_array_equal(told[..., :3], plain)
    np.testing.assert_array_equal(told[..., 3], np.array([1.0, 0.0, 1.0])[:, None, None] * np.ones(plain.shape[1:3]))
    np.testing.assert_array_equal(told_rotation, rotation)


def test_training_assumes_the_lens_the_lifter_assumes_when_none_is_given(tiny_dataset, monkeypatch):
    """A window whose lens the 'user' did not give is normalised with the focal length the Lifter
    uses without ``focal_px``, for Human3.6M's pictures and the virtual phones' alike."""
    from training.data import load_clips

    clips = load_clips(tiny_dataset[0], ("S1",))
    data = WindowDataset(clips, frames=9, stride=9)
    _, _, focal, known = data.batch(np.arange(4), np.random.default_rng(0), Augment(0, 0, 0, 0, 0, lens_known_prob=0.0))
    assumed = camera.screen_focal(clips[0].width, clips[0].height)
    np.testing.assert_allclose(focal, assumed, rtol=1e-6)
    assert not known.any()
    assert abs(assumed - clips[0].focal) > 0.1  # the test camera's lens is not the default one
    _, _, focal, known = data.batch(np.arange(4), np.random.default_rng(0), Augment(0, 0, 0, 0, 0))
    np.testing.assert_allclose(focal, clips[0].focal, rtol=1e-6)
    assert known.all()

    views = VirtualViews([synthetic_motion(200, seed=2).astype(np.float32) / 1000.0], frames=9)
    seen = views.batch(np.random.default_rng(3), 32)
    # A portrait picture's lens is over 1.93 screen units for every field of view drawn (55-85 degrees
    # across the height), a landscape one's under it.
    portrait = seen.focal > 1.93
    assert 0 < portrait.sum() < len(portrait)
    np.testing.assert_allclose(seen.default_focal, np.where(portrait, camera.screen_focal(1080, 1920),
                                                            camera.screen_focal(1920, 1080)), rtol=1e-6)

    given = []
    monkeypatch.setattr(lift_module, "lift_windows", lambda predict, inputs, focal, *a, **k: given.append(focal) or np.zeros(inputs.shape))
    for width, height in ((1080, 1920), (1920, 1080), (1000, 1002)):
        lift_module.Lifter().lift(np.full((20, 17, 2), 400.0), width, height)
        assert given[-1] == camera.screen_focal(width, height)


def test_checkpoints_trained_on_screen_coordinates_are_given_them():
    window = screen_of(person_windows(np.random.default_rng(1), count=1)[0], 2.2).astype(np.float32)
    x, y = train.network_batch(window[None], np.ones((1, 9, 17, 3)), np.array([2.2]), np.array([True]), ModelConfig(input="screen"))
    np.testing.assert_array_equal(x[0], window)


@settings(max_examples=40, deadline=None)
@given(fps=st.floats(15.0, 120.0), n=st.integers(2, 80), speed=st.floats(-0.05, 0.05))
def test_resampling_keeps_straight_motion_and_time(fps, n, speed):
    t = np.arange(n) / fps
    xy = np.stack([speed * t * fps, 0.1 + 0 * t], axis=-1)[:, None, :].repeat(17, axis=1)
    inputs = np.concatenate([xy, np.ones((n, 17, 1))], axis=-1)
    out = resample_inputs(inputs, fps, NETWORK_FPS)
    expected_t = np.arange(len(out)) / NETWORK_FPS
    assert expected_t[-1] <= t[-1] + 1e-9 and t[-1] - expected_t[-1] < 1 / NETWORK_FPS + 1e-9
    np.testing.assert_allclose(out[:, 0, 0], speed * expected_t * fps, atol=1e-9)
    back = resample_track(out[..., :2], NETWORK_FPS, fps, n)
    inside = t <= expected_t[-1] + 1e-9
    np.testing.assert_allclose(back[inside], xy[inside], atol=1e-9)
    same = resample_inputs(inputs, fps, fps)
    np.testing.assert_allclose(same, inputs)


def test_a_joint_missing_in_a_source_frame_is_missing_where_it_is_used():
    inputs = np.ones((5, 17, 3))
    inputs[2, 4, 2] = 0
    out = resample_inputs(inputs, 25.0, 50.0)  # 9 samples; 3, 4 and 5 touch source frame 2
    assert out[:, 4, 2].tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1]


def test_virtual_cameras_are_seeded_and_training_never_meets_an_evaluation_camera():
    world = synthetic_motion(300, seed=1).astype(np.float32) / 1000.0
    views = VirtualViews([world], frames=9)
    a = views.batch(np.random.default_rng([0, TRAIN_STREAM, 5, 0]), 16)
    b = views.batch(np.random.default_rng([0, TRAIN_STREAM, 5, 0]), 16)
    np.testing.assert_array_equal(a.screen, b.screen)
    # Every camera parameter drawn in 200 training steps differs from the evaluation stream's.
    def fingerprint(cams):
        return {tuple(np.round(x, 9)) for x in np.column_stack([cams["focal"], cams["centre"][:, 2]])}
    train_cams = set()
    for step in range(200):
        train_cams |= fingerprint(sample_cameras(np.random.default_rng([0, TRAIN_STREAM, step, 0]), np.zeros((4, 3)), views.ranges))
    eval_cams = set()
    for index in range(200):
        eval_cams |= fingerprint(sample_cameras(np.random.default_rng([0, EVAL_STREAM, index]), np.zeros((1, 3)), views.ranges))
    assert len(train_cams) == 800 and len(eval_cams) == 200 and not train_cams & eval_cams
    view = film(world, 30.0, np.random.default_rng([0, EVAL_STREAM, 0]))
    again = film(world, 30.0, np.random.default_rng([0, EVAL_STREAM, 0]))
    np.testing.assert_array_equal(view.pixels, again.pixels)


def test_virtual_views_are_what_the_camera_sees():
    """At the network's own rate a window is the pinhole projection of its truth; at other rates it
    is the camera's frames resampled, and it spans the ranges (portrait and landscape, both sides)."""
    world = synthetic_motion(400, seed=2).astype(np.float32) / 1000.0
    views = VirtualViews([world], frames=9)
    batch = views.batch(np.random.default_rng(0), 64, fps=NETWORK_FPS)
    assert batch.screen.shape == (64, 9, 17, 3) and batch.target.shape == (64, 9, 17, 3)
    # Root-relative truth + the pelvis's own projection reproduce every joint's projection: the
    # truth's pelvis ray is recovered from its screen position and the scale from its depth.
    rel = batch.target
    assert np.allclose(rel[:, :, 0], 0)
    pelvis_ray = np.concatenate([batch.screen[:, :, 0, :2] / batch.focal[:, None, None], np.ones((64, 9, 1))], -1)
    # The depth is not in the window: check that, frame by frame, some depth makes the whole body fit.
    errors = []
    for depth in np.linspace(1.5, 12, 3000):
        joints = rel + (pelvis_ray * depth)[:, :, None]
        xy = joints[..., :2] / joints[..., 2:3] * batch.focal[:, None, None, None]
        errors.append(np.abs(xy - batch.screen[..., :2]).max(axis=(2, 3)))
    # (the depth grid limits the fit to ~0.5 px; a frame off in time is off by ~5 px)
    assert np.min(errors, axis=0).max() < 1e-3
    slow = views.batch(np.random.default_rng(1), 64)
    assert 20 <= slow.fps.min() and slow.fps.max() <= 60
    ratio = np.abs(slow.screen[..., 1]).max() / np.abs(slow.screen[..., 0]).max()
    assert 0.3 < ratio < 3


def test_detector_faults_swap_left_and_right_for_a_stretch():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(400, 27, 17, 2)).astype(np.float32)
    target = rng.normal(size=(400, 27, 17, 3)).astype(np.float32)
    quiet = Augment(noise_max=0, outlier_prob=0, drop_max=0, flip_prob=0)
    faulty = Augment(noise_max=0, outlier_prob=0, drop_max=0, flip_prob=0, swap_prob=1.0)
    clean, _ = corrupt(xy, target, np.random.default_rng(1), quiet)
    swapped, same_target = corrupt(xy, target, np.random.default_rng(1), faulty)
    np.testing.assert_array_equal(same_target, target)  # the truth is not swapped: the network must undo it
    changed = (swapped != clean).any(axis=(2, 3))  # (windows, frames)
    runs = changed.sum(1)
    assert runs.max() <= 30 and (runs > 0).all() and (runs >= 20).any()
    from posemoe.skeleton import FLIP_PERMUTATION
    np.testing.assert_array_equal(swapped[changed], clean[changed][:, FLIP_PERMUTATION])
    inputs, _ = corrupt(xy, target, np.random.default_rng(2), Augment(**FAULTS))
    assert inputs.shape == (400, 27, 17, 3) and np.isfinite(inputs).all()


def test_detector_faults_lose_a_group_of_joints_for_a_while():
    from training.data import HIDDEN
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(400, 27, 17, 2)).astype(np.float32)
    target = rng.normal(size=(400, 27, 17, 3)).astype(np.float32)
    faulty = Augment(noise_max=0, outlier_prob=0, drop_max=0, flip_prob=0, hide_prob=1.0)
    inputs, _ = corrupt(xy, target, np.random.default_rng(1), faulty)
    lost = inputs[..., 2] == 0  # (windows, frames, joints)
    assert (inputs[..., :2][lost] == 0).all()  # lost joints carry the engine's encoding, (0, 0)
    groups = {tuple(np.flatnonzero(lost[w].any(0))) for w in range(len(lost))}
    assert groups == set(HIDDEN)  # every group, and nothing but one group per window
    frames = lost.any(2).sum(1)
    assert frames.min() >= 1 and frames.max() == 27 and (frames < 27).any()
    for w in range(len(lost)):  # one run: the group is lost on consecutive frames, all its joints together
        seen = np.flatnonzero(lost[w].any(1))
        assert seen[-1] - seen[0] + 1 == len(seen)
        assert (lost[w][seen][:, list(np.flatnonzero(lost[w].any(0)))]).all()
