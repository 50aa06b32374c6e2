"""benchmarks/camera.py's pure helpers: the synthetic turn, the window's homography, matching people
between captures, the world figures and the report, without ../shared or a capture."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from benchmarks import camera as bench


def test_the_synthetic_turn_is_smooth_seeded_and_starts_still():
    rotations = bench.turn_rotations(120, 12.0, np.random.default_rng(3))
    again = bench.turn_rotations(120, 12.0, np.random.default_rng(3))
    np.testing.assert_array_equal(rotations, again)
    np.testing.assert_allclose(rotations[0], np.eye(3), atol=1e-12)
    turn = np.degrees(Rotation.from_matrix(rotations).magnitude())
    assert 12.0 <= turn.max() <= 13.5
    steps = bench.degrees_between(rotations[1:], rotations[:-1])
    assert steps.max() < 0.5  # no jumps: 120 frames for about 12 degrees
    pan = Rotation.from_matrix(rotations[-1]).as_rotvec()
    assert abs(np.degrees(pan[1])) > 11.0  # mostly a pan, about the camera's vertical axis


def test_points_seen_through_the_turned_window_go_back_where_the_still_window_sees_them():
    focal, source, target, size = bench.window(640, 360)
    assert size == (544, 306) and np.isclose(focal, bench.focal_from_fov(640, 360))
    rotations = bench.turn_rotations(5, 8.0, np.random.default_rng(0))
    picture = np.array([[300.0, 200.0], [100.0, 50.0], [500.0, 300.0]])
    lifted = np.concatenate([picture, np.ones((3, 1))], axis=1)
    still = (target @ np.linalg.inv(source) @ lifted.T).T
    still = still[:, :2] / still[:, 2:]
    seen = np.stack([(target @ r @ np.linalg.inv(source) @ lifted.T).T for r in rotations])
    seen = seen[..., :2] / seen[..., 2:]
    np.testing.assert_allclose(bench.unturned_points(seen, rotations, target), np.broadcast_to(still, seen.shape), atol=1e-9)


def test_the_warped_picture_moves_as_the_homography_says():
    image = np.zeros((360, 640, 3), dtype=np.uint8)
    image[195:206, 395:406] = 255  # a square around (400, 200)
    focal, source, target, size = bench.window(640, 360)
    rotation = Rotation.from_rotvec([0.0, np.radians(4.0), 0.0]).as_matrix()
    seen = bench.turned(image, rotation, source, target, size)
    ys, xs = np.nonzero(seen[..., 0] > 127)
    expected = target @ rotation @ np.linalg.inv(source) @ np.array([400.0, 200.0, 1.0])
    np.testing.assert_allclose([xs.mean(), ys.mean()], expected[:2] / expected[2], atol=1.0)


def test_people_are_matched_by_their_boxes_over_common_frames():
    rng = np.random.default_rng(1)
    track = np.cumsum(rng.normal(0, 2, (30, 2)), axis=0) + [200, 150]
    box = lambda centre, half=(40, 90): np.hstack([centre - half, centre + half])  # noqa: E731
    reference = (10, box(track[10:]))
    other = (0, box(track + [400, 0]))  # someone else, far off
    same = (15, box(track[15:] + 3))  # the same person, seen from frame 15, a little off
    with_gaps = box(track[15:] + 3)
    with_gaps[::3] = np.nan  # frames the person was not seen
    assert bench.match_person(reference, [other, same]) == 1
    assert bench.match_person(reference, [other, (15, with_gaps)]) == 1
    assert bench.match_person(reference, [other]) is None
    assert bench.match_person(reference, [(40, box(track))]) is None  # no common frames


def test_boxes_come_from_confident_joints_of_seen_frames():
    keypoints = np.zeros((3, 17, 2))
    keypoints[:, :, 0] = np.arange(17) * 10.0
    keypoints[:, :, 1] = 5.0
    confidence = np.ones((3, 17))
    confidence[1, -1] = 0.0  # the last joint unseen in frame 1
    confidence[2] = 0.0  # nothing seen in frame 2
    out = bench.boxes(keypoints, confidence, np.array([True, True, True]))
    np.testing.assert_array_equal(out[0], [0, 5, 160, 5])
    np.testing.assert_array_equal(out[1], [0, 5, 150, 5])
    assert np.isnan(out[2]).all()
    assert np.isnan(bench.boxes(keypoints, confidence, np.array([False, True, True]))[0]).all()


def test_world_differences_read_turns_drift_and_offsets():
    rng = np.random.default_rng(2)
    joints = rng.normal(0, 0.3, (20, 17, 3)) + [0.0, 0.0, 1.0]
    joints[:, bench.PELVIS, :2] += np.linspace(0, 2, 20)[:, None]  # walks 2 m
    same = bench.world_difference(joints, joints + [5.0, -3.0, 0.0])  # the same motion elsewhere
    assert same["root_m"] < 1e-12 and same["heading_deg"] < 1e-9 and same["joints_mm"] < 1e-9
    turned = joints @ Rotation.from_euler("z", 10, degrees=True).as_matrix().T
    assert np.isclose(bench.world_difference(joints, turned)["heading_deg"], 10.0)
    drifted = joints.copy()
    drifted[:, :, 0] += np.linspace(0, 0.2, 20)[:, None]
    figures = bench.world_difference(joints, drifted)
    assert np.isclose(figures["root_m"], 0.1) and np.isclose(figures["joints_mm"], 100.0)


def test_the_report_is_written_from_figures_alone():
    world = {"person": 1, "frames": 40, "root_m": 0.05, "heading_deg": 1.0, "joints_mm": 60.0, "notes": []}
    row = {"clip": "a.mp4", "frames": 40, "window": [544, 306], "source_turns": False, "source_turn_deg": 0.02,
           "largest_true_turn_deg": 12.1, "error_median_deg": 0.02, "error_p95_deg": 0.05, "error_last_deg": 0.03,
           "held_frames": 0, "alone_error_median_deg": 0.02, "alone_error_p95_deg": 0.04, "alone_error_last_deg": 0.02,
           "alone_held_frames": 0, "solve_ms_per_frame": 5.0,
           "world": {"static": {**world, "root_m": 0.2}, "auto": world, "true rotations": world}}
    capture = {"wall_s": 2.0, "stages_s": {"detect": 1.5, "camera": 0.1}, "total_s": 1.6, "frames": 40, "notes": [],
               "travel_last_m": 0.0, "travel_max_m": 0.0, "travel_path_m": 0.0}
    filmed = {"clip": "a.mp4", "static": capture, "auto": capture, "largest_turn_deg": 0.02, "last_turn_deg": 0.01,
              "held_frames": 0, "alone_largest_turn_deg": 0.03, "alone_last_turn_deg": 0.01, "kept_by_auto": False,
              "edge_deg": 0.5, "path_deg": 0.4}
    text = bench.markdown({"machine": "test", "max_frames": bench.MAX_FRAMES, "skipped": None, "seconds": 1.0,
                           "synthetic": [row], "as_filmed": [filmed], "tracking_shot": None})
    assert text.startswith("# Moving camera") and "| a.mp4 | 544x306 | 40 | 12.1 |" in text
    assert "| met |" in text and "no (static) | 0.00 / 0.00 |" in text and "not among the clips measured" in text
