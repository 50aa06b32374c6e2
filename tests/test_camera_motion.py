"""The camera's turn from the background: known answers from synthetic turns of a static clip.

A pinhole turned about its centre sees an exact homography, ``K R K^-1``, of the original frame, so a
static clip warped that way is a turning camera whose every rotation is known.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from conftest import ROOT
from posemoe import PoseMoEError
from posemoe.camera import CameraPath, focal_from_fov
from posemoe.camera_motion import TurnSolver, fit_rotation, rays
from posemoe.video import probe, read_frames

SAMPLE = ROOT / "samples" / "walk.mp4"


def turned_sample(frames: int, degrees: float, crop: float = 0.75):
    """The sample's first ``frames`` frames seen by a virtual camera of the same focal length that pans,
    tilts and rolls by up to ``degrees`` over them, through a window ``crop`` of the picture's size.
    Returns (images, true rotations (T, 3, 3) first camera -> frame t, focal px, width, height)."""
    info = probe(SAMPLE)
    focal = focal_from_fov(info.width, info.height)
    width, height = int(info.width * crop), int(info.height * crop)
    source = np.array([[focal, 0, info.width / 2], [0, focal, info.height / 2], [0, 0, 1]])
    target = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    t = np.linspace(0.0, 1.0, frames)[:, None]
    rotvec = np.radians(degrees) * np.hstack([0.3 * np.sin(2 * np.pi * t), np.sin(np.pi * t), 0.2 * np.sin(3 * np.pi * t)])
    truth = Rotation.from_rotvec(rotvec).as_matrix()
    images = [cv2.warpPerspective(frame.image, target @ r @ np.linalg.inv(source), (width, height))
              for frame, r in zip(read_frames(SAMPLE, 0, frames), truth)]
    return images, truth, focal, width, height


def degrees_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3), (T, 3, 3) rotations -> (T,) the angle of a b^T, degrees."""
    return np.degrees((Rotation.from_matrix(a) * Rotation.from_matrix(b).inv()).magnitude())


def test_a_synthetic_turn_is_found_to_a_small_fraction_of_a_degree():
    images, truth, focal, width, height = turned_sample(60, degrees=8.0)
    solver = TurnSolver(focal, width, height)
    for image in images:
        solver.add(image)
    path = solver.result()
    error = degrees_between(path.rotations, truth)
    assert path.turn_degrees().max() > 7.0 and not path.held.any()
    assert np.median(error) < 0.05 and error.max() < 0.15 and error[-1] < 0.1, error


@pytest.mark.slow
def test_the_static_sample_comes_out_static():
    info = probe(SAMPLE)
    solver = TurnSolver(focal_from_fov(info.width, info.height), info.width, info.height)
    for frame in read_frames(SAMPLE):
        solver.add(frame.image)
    path = solver.result()
    assert len(path.rotations) == info.frame_count and path.turn_degrees().max() < 0.1
    np.testing.assert_array_equal(path.translations, 0.0)


def test_people_boxes_are_masked_out():
    """Boxes over the whole picture leave nothing to follow: every frame after the first is held."""
    images, _, focal, width, height = turned_sample(5, degrees=4.0)
    solver = TurnSolver(focal, width, height)
    for image in images:
        solver.add(image, np.array([[0.0, 0.0, width, height]]))
    path = solver.result()
    assert path.held[1:].all() and np.allclose(path.rotations, np.eye(3))


def test_a_blank_picture_holds_the_camera_where_it_was():
    solver = TurnSolver(800.0, 320, 240)
    for _ in range(4):
        solver.add(np.full((240, 320, 3), 90, dtype=np.uint8))
    path = solver.result()
    assert path.held[1:].all() and np.allclose(path.rotations, np.eye(3))


def test_no_frames_is_a_clear_error():
    with pytest.raises(PoseMoEError, match="without frames"):
        TurnSolver(800.0, 320, 240).result()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.3))
def test_the_rotation_most_rays_agree_on_survives_outliers(seed, outlier_share):
    rng = np.random.default_rng(seed)
    truth = Rotation.random(random_state=seed).as_matrix()
    before = rays(rng.uniform(-400, 400, (80, 2)), 500.0, (0.0, 0.0))
    after = before @ truth.T
    wrong = rng.random(80) < outlier_share
    after[wrong] = rays(rng.uniform(-400, 400, (int(wrong.sum()), 2)), 500.0, (0.0, 0.0))
    rotation, inliers = fit_rotation(before, after, np.radians(0.1), 64, rng)
    assert degrees_between(rotation[None], truth[None])[0] < 1e-6
    assert (inliers == ~wrong).mean() > 0.95


def test_a_camera_path_carries_joints_back_into_the_first_camera():
    rng = np.random.default_rng(0)
    rotations = Rotation.random(5, random_state=1).as_matrix()
    translations = rng.normal(size=(5, 3))
    first = rng.normal(size=(5, 17, 3)) + [0.0, 0.0, 4.0]
    seen = np.einsum("tij,tkj->tki", rotations, first) + translations[:, None]  # X_t = R_t X_0 + t_t
    path = CameraPath(rotations, translations, np.zeros(5, dtype=bool))
    np.testing.assert_allclose(path.to_first_camera(seen), first, atol=1e-12)
    static = CameraPath.static(5)
    np.testing.assert_array_equal(static.to_first_camera(first), first)
    assert static.turn_degrees().max() == 0.0


def write_video(path, images) -> None:
    """images (H, W, 3) BGR, even sizes -> an .mp4 at 30 frames/s."""
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for image in images:
        writer.write(image)
    writer.release()


@pytest.mark.slow
def test_a_turning_camera_is_taken_out_of_the_capture(tmp_path):
    """The sample through a camera that turns 8 degrees, against the same window of it unturned: with
    the turn solved, the walker's heading in the world follows the unturned capture's at least twice as
    closely as with the camera taken as static; a static camera is noted as nothing and keys no turn."""
    from posemoe.pipeline import Settings, capture_people

    images, truth, focal, width, height = turned_sample(150, degrees=8.0, crop=0.92)
    still, _, _, _, _ = turned_sample(150, degrees=0.0, crop=0.92)
    even = (slice(0, height // 2 * 2), slice(0, width // 2 * 2))
    write_video(tmp_path / "turned.mp4", [image[even] for image in images])
    write_video(tmp_path / "still.mp4", [image[even] for image in still])
    capture = lambda name, camera: capture_people(tmp_path / name, Settings(focal_px=focal, camera=camera))[0]  # noqa: E731
    reference, moving, fixed = capture("still.mp4", "static"), capture("turned.mp4", "auto"), capture("turned.mp4", "static")
    assert any("turned by up to 8." in note for note in moving.notes)
    assert not any("turned" in note for note in fixed.notes)
    np.testing.assert_array_equal(fixed.camera_rotation, np.eye(3)[None].repeat(len(fixed), 0))
    frames = slice(moving.first_frame, moving.first_frame + len(moving))
    assert degrees_between(moving.camera_rotation, truth[frames]).max() < 0.3

    def heading_error(take) -> float:
        """Mean difference, degrees, of the hips' direction on the floor from the unturned capture's."""
        first = max(take.first_frame, reference.first_frame)
        last = min(take.first_frame + len(take), reference.first_frame + len(reference))
        hips = [t.joints_world[first - t.first_frame:last - t.first_frame, 4, :2]
                - t.joints_world[first - t.first_frame:last - t.first_frame, 1, :2] for t in (take, reference)]
        angle = [np.arctan2(h[:, 1], h[:, 0]) for h in hips]
        return float(np.degrees(np.abs(np.angle(np.exp(1j * (angle[0] - angle[1]))))).mean())

    assert heading_error(moving) < 0.5 * heading_error(fixed), (heading_error(moving), heading_error(fixed))


def test_auto_refuses_a_turn_the_picture_edges_do_not_share():
    """Something textured sliding across a plain, fixed background pulls the fit like a turn; "auto"
    keeps the camera fixed and says so, "moving" keeps what was solved, a real turn is kept."""
    from posemoe.camera_motion import TurnGathering

    rng = np.random.default_rng(0)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (160, 160)).astype(np.uint8), (3, 3), 0)
    sliding = TurnGathering(400.0, 480, 360)
    observe = sliding.observer(0, None)
    for t in range(30):
        frame = np.full((360, 480), 128, dtype=np.uint8)
        frame[100:260, 110 + 3 * t:270 + 3 * t] = patch
        observe(t, frame, np.zeros((0, 17, 2)), np.zeros((0, 17)))
    assert sliding.result(0, 30).turn_degrees().max() > 5.0
    path, notes = sliding.judged(0, 30, "auto")
    assert path is None and "edges" in notes[0] and "Moving" in notes[0]
    assert sliding.judged(0, 30, "moving")[0] is not None and sliding.judged(0, 30, "static") == (None, [])

    images, truth, focal, width, height = turned_sample(40, degrees=6.0)
    turning = TurnGathering(focal, width, height)
    observe = turning.observer(0, None)
    for t, image in enumerate(images):
        observe(t, image, np.zeros((0, 17, 2)), np.zeros((0, 17)))
    path, notes = turning.judged(0, 40, "auto")
    assert path is not None and not notes and degrees_between(path.rotations, truth).max() < 0.2


def test_a_whip_pan_faster_than_the_features_can_follow_is_held_and_said():
    """A jump of 30 degrees between two frames: nothing can be followed across it, so that frame is held
    (not a made-up turn) and the take's notes say so."""
    from posemoe.pipeline import camera_for

    info = probe(SAMPLE)
    focal = focal_from_fov(info.width, info.height)
    width, height = int(info.width * 0.6), int(info.height * 0.6)
    source = np.array([[focal, 0, info.width / 2], [0, focal, info.height / 2], [0, 0, 1]])
    target = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    pans = np.r_[np.zeros(4), np.full(4, 30.0)]
    solver = TurnSolver(focal, width, height)
    for frame, pan in zip(read_frames(SAMPLE, 0, len(pans)), pans):
        turn = Rotation.from_euler("y", pan, degrees=True).as_matrix()
        solver.add(cv2.warpPerspective(frame.image, target @ turn @ np.linalg.inv(source), (width, height)))
    path = solver.result()
    assert path.held[4] and not path.held[:4].any()
    assert path.turn_degrees()[4] < 1.0  # held where it was, not a wrong turn
    _, notes = camera_for(path, len(pans))
    assert any("gave nothing to follow" in note for note in notes)
