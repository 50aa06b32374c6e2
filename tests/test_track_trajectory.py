"""Person tracking, gap filling, keypoint layouts, root trajectory and the floor: synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posemoe import PoseMoEError
from posemoe.detect.layout import blazepose_to_h36m, coco_to_h36m
from posemoe.camera import focal_from_fov
from posemoe.motion.trajectory import root_translation, to_world, world_frame
from posemoe.track import build_tracks, fill_gaps, select_person, stitch

from conftest import REST_POSE_MM

POSE = REST_POSE_MM / 1000.0 - REST_POSE_MM[0] / 1000.0  # (17, 3) metres, pelvis at 0, Z up


def _person(x: float, y: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """A standing person's 2D keypoints (17, 2) px whose box is ``height`` px tall, feet at y."""
    points = POSE[:, [0, 2]] * np.array([1.0, -1.0])
    points = (points - points[:, 1].max() * np.array([0, 1])) * height / np.ptp(points[:, 1]) + (x, y)
    return points, np.full(17, 0.9)


def _frames(people_per_frame):
    out = []
    for people in people_per_frame:
        if people:
            k, c = zip(*[_person(*p) for p in people])
            out.append((np.array(k), np.array(c)))
        else:
            out.append((np.zeros((0, 17, 2)), np.zeros((0, 17))))
    return out


def test_the_largest_person_is_chosen_and_followed():
    # A small person standing still and a large one walking right, listed in random order per frame.
    rng = np.random.default_rng(0)
    frames = []
    for t in range(90):
        people = [(200.0, 300.0, 150.0), (100.0 + 8 * t, 600.0, 400.0)]
        frames.append([people[i] for i in rng.permutation(2)])
    keypoints, confidence = select_person(build_tracks(_frames(frames)), 90, 30.0)
    assert np.isfinite(keypoints).all()
    np.testing.assert_allclose(keypoints[:, 0, 0] - keypoints[0, 0, 0], 8 * np.arange(90), atol=1e-6)
    # A point on the small person picks them instead.
    keypoints, _ = select_person(build_tracks(_frames(frames)), 90, 30.0, point=(200.0, 250.0, 10))
    assert np.ptp(keypoints[:, 0, 0]) < 1e-6


def test_a_person_who_leaves_and_comes_back_is_one_take():
    frames = [[(500.0 + 5 * t, 600.0, 400.0)] if not 40 <= t < 70 else [] for t in range(120)]
    keypoints, confidence = select_person(build_tracks(_frames(frames)), 120, 30.0)
    seen = confidence.max(1) > 0
    assert seen[:40].all() and not seen[40:70].any() and seen[70:].all()
    filled, was_filled, long_gap = fill_gaps(keypoints, confidence, max_gap=15)
    assert np.isfinite(filled).all() and was_filled[40:70].all() and long_gap[40:70].all() and not long_gap[:40].any()
    # Interpolation is linear across the gap.
    np.testing.assert_allclose(np.diff(filled[39:71, 0, 0]), np.diff(filled[39:71, 0, 0]).mean(), atol=1e-6)


def test_someone_else_far_away_is_not_joined():
    frames = [[(300.0 + 5 * t, 600.0, 400.0)] if t < 50 else [(1500.0, 600.0, 400.0)] if t > 55 else [] for t in range(100)]
    _, confidence = select_person(build_tracks(_frames(frames)), 100, 30.0)
    seen = confidence.max(1) > 0
    assert seen.sum() == 50 or seen.sum() == 44  # one of the two, never both


@pytest.mark.slow
def test_hundreds_of_pieces_are_stitched_into_one_person_and_a_stranger_stays_apart():
    # A walker lost for 6 frames every 24 over ten minutes at 30 frames/s (800 pieces), with a
    # smaller stranger standing across the picture the whole time: the walker's pieces become one
    # take, the stranger's never join it.
    frames = [[(100.0 + 0.05 * t, 600.0, 400.0)] * (t % 24 < 18) + [(1700.0, 500.0, 250.0)] for t in range(800 * 24)]
    tracks = build_tracks(_frames(frames))
    assert len(tracks) == 801
    stitched = stitch(tracks, 30.0)
    assert sorted(len(t.frames) for t in stitched) == [800 * 18, 800 * 24]
    keypoints, confidence = select_person(tracks, len(frames), 30.0)
    assert (confidence.max(1) > 0).sum() == 800 * 18 and np.nanmax(keypoints[..., 0]) < 1500


def test_no_person_is_a_clear_error():
    with pytest.raises(PoseMoEError, match="No person"):
        select_person(build_tracks(_frames([[]] * 10)), 10, 30.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 60), st.integers(0, 2**31 - 1))
def test_fill_gaps_never_leaves_nan(n, seed):
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0, 100, (n, 17, 2))
    confidence = rng.uniform(0, 1, (n, 17))
    missing = rng.random(n) < 0.5
    missing[rng.integers(n)] = False
    keypoints[missing] = np.nan
    confidence[missing] = 0
    filled, was_filled, _ = fill_gaps(keypoints, confidence, 3)
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(was_filled, missing)
    np.testing.assert_array_equal(filled[~missing], keypoints[~missing])


def test_layouts_derive_the_same_skeleton():
    rng = np.random.default_rng(1)
    blaze, coco = rng.normal(size=(4, 33, 3)), rng.normal(size=(4, 17, 3))
    blaze_conf, coco_conf = rng.uniform(size=(4, 33)), rng.uniform(size=(4, 17))
    # Put the same limbs in both layouts: the results must agree.
    pairs = {0: 0, 2: 7, 3: 8}  # BlazePose nose/ears = COCO nose/ears
    pairs.update({11 + k: 5 + k for k in range(6)})
    pairs.update({23 + k: 11 + k for k in range(6)})
    for b, c in pairs.items():
        blaze[:, b], blaze_conf[:, b] = coco[:, c], coco_conf[:, c]
    blaze[:, 7], blaze[:, 8] = coco[:, 3], coco[:, 4]
    blaze_conf[:, 7], blaze_conf[:, 8] = coco_conf[:, 3], coco_conf[:, 4]
    (a, ca), (b, cb) = blazepose_to_h36m(blaze, blaze_conf), coco_to_h36m(coco, coco_conf)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(ca, cb)
    # Derived joints: pelvis between the hips, confidence the weakest part.
    np.testing.assert_allclose(a[:, 0], (a[:, 1] + a[:, 4]) / 2)
    np.testing.assert_allclose(ca[:, 0], np.minimum(ca[:, 1], ca[:, 4]))


def _walk(n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """A person walking sideways and away in camera space: relative pose (n, 17, 3), root (n, 3)."""
    to_camera = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world Z up -> camera y down
    t = np.arange(n) / 30.0
    relative = np.stack([Rotation.from_euler("z", 20 * np.sin(2 * s), degrees=True).apply(POSE) @ to_camera.T for s in t])
    root = np.stack([-1.5 + 1.2 * t, 0.6 + 0.02 * np.sin(6 * t), 4.0 + 0.3 * t], axis=1)
    return relative, root


def test_root_translation_recovers_the_path():
    relative, root = _walk()
    focal, centre = focal_from_fov(1920, 1080), (960.0, 540.0)
    camera = relative + root[:, None]
    pixels = focal * camera[..., :2] / camera[..., 2:] + centre
    confidence = np.full(pixels.shape[:2], 0.9)
    found = root_translation(pixels, confidence, relative, focal, centre)
    assert np.abs(found - root).max() < 0.01  # metres
    # Unseen joints and frames do not break it.
    confidence[3::7] = 0.0  # (edge frames are held, not extrapolated)
    confidence[:, 10:] = 0.0
    found = root_translation(pixels, confidence, relative, focal, centre)
    assert np.isfinite(found).all() and np.abs(found - root).max() < 0.02


@pytest.mark.parametrize("pitch, roll", [(0.0, 0.0), (12.0, 0.0), (-8.0, 5.0)])
def test_world_frame_puts_the_walk_on_a_level_floor(pitch, roll):
    # A walker turning and moving sideways and away on a floor at Z = 0, filmed by a camera 1.5 m up
    # that is pitched and rolled.
    n = 120
    t = np.arange(n) / 30.0
    world = np.stack([Rotation.from_euler("z", 20 * np.sin(2 * s), degrees=True).apply(POSE) for s in t])
    world += np.stack([-1.5 + 1.2 * t, 4.0 + 1.5 * np.sin(t), np.full(n, 0.95)], axis=1)[:, None]
    level = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world -> camera looking along +Y
    tilt = Rotation.from_euler("xz", [pitch, roll], degrees=True).as_matrix()
    camera = (world - (0.0, 0.0, 1.5)) @ (tilt @ level).T
    rotation, origin = world_frame([camera])
    found = to_world(camera, rotation, origin)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    ankles = found[:, [3, 6], 2]
    assert np.abs(ankles - 0.08).max() < 0.01  # level floor at the ankle height, whatever the tilt
    assert found[:, 10, 2].min() > 1.6  # head up
    # Distances along the floor are kept: the walk's sideways-and-away path has its true length.
    path = np.linalg.norm(np.diff(found[:, 0, :2], axis=0), axis=1).sum()
    assert path == pytest.approx(np.linalg.norm(np.diff(world[:, 0, :2], axis=0), axis=1).sum(), rel=1e-3)


@pytest.mark.parametrize("pitch, roll", [(0.0, 0.0), (10.0, -4.0)])
def test_one_world_for_two_people_keeps_the_one_on_a_box_above_the_floor(pitch, roll):
    # A walker on the floor and someone standing on a 1.3 m box, filmed by one pitched, rolled camera.
    n = 90
    t = np.arange(n) / 30.0
    walker = POSE + np.stack([-1.0 + 1.0 * t, 4.0 + 1.0 * t, np.full(n, 0.95)], axis=1)[:, None]  # diagonally away
    boxed = np.stack([Rotation.from_euler("z", 10 * np.sin(s), degrees=True).apply(POSE) for s in t])
    boxed = boxed + np.array([1.5, 7.0, 0.95 + 1.3])
    level = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    tilt = Rotation.from_euler("xz", [pitch, roll], degrees=True).as_matrix()
    cameras = [(world - (0.0, 0.0, 1.5)) @ (tilt @ level).T for world in (walker, boxed)]
    rotation, origin = world_frame(cameras)
    found = [to_world(camera, rotation, origin) for camera in cameras]
    assert np.abs(found[0][:, [3, 6], 2] - 0.08).max() < 0.015  # the walker on the floor (POSE stands 1 cm uneven)
    # The other on the box, 1.3 m up (within 5 cm: the slope prior leaves a little of a 10 degree pitch).
    assert np.abs(found[1][:, [3, 6], 2] - 1.38).max() < 0.05
    np.testing.assert_allclose(found[0][0, 0, :2], 0.0, atol=1e-9)  # origin under the first person
    # Swapping who is first changes the origin only, not the heights.
    rotation, origin = world_frame(cameras[::-1])
    assert np.abs(to_world(cameras[1], rotation, origin)[:, [3, 6], 2] - 1.38).max() < 0.05
