"""benchmarks/multiview.py's pieces with known answers: the calibration read and the triangulation
(needs the scene's calibration in ../shared, skipped without it), the floor and root-distance figures
on synthetic people, and the report without the scene."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmarks import multiview as bench
from posemoe.skeleton import ANKLE_HEIGHT, PELVIS

CALIBRATION = bench.SCENE / bench.CALIBRATION
needs_scene = pytest.mark.skipif(not CALIBRATION.is_file(), reason="the multi-view scene (../shared) is not here")


@needs_scene
def test_the_calibration_puts_the_cameras_above_the_floor_looking_at_the_middle():
    cameras = bench.read_calibration(CALIBRATION)
    assert sorted(cameras) == list(bench.VIEWS)
    for camera in cameras.values():
        np.testing.assert_allclose(camera.R @ camera.R.T, np.eye(3), atol=1e-6)
        centre = -camera.R.T @ camera.t
        assert 1.5 < centre[2] < 2.3  # tripods about head high, Z up, metres
        assert 1600 < camera.focal_px < 1750 and (camera.width, camera.height) == (1088, 1920)
        middle = camera.to_camera(np.array([0.0, 0.0, 1.0]))
        assert middle[2] > 2.0  # the scene's middle is in front of every lens
        x, y = camera.project(np.array([0.0, 0.0, 1.0]))
        assert 0 < x < camera.width and 0 < y < camera.height


@needs_scene
def test_points_projected_through_the_cameras_triangulate_back_even_with_one_view_wrong():
    cameras = [bench.read_calibration(CALIBRATION)[name] for name in bench.VIEWS]
    world = np.random.default_rng(0).normal([0.0, 0.0, 1.0], 0.4, (50, 3))
    pixels = np.stack([camera.project(world) for camera in cameras])  # (4, 50, 2)
    found, used = bench.robust_triangulate(cameras, pixels, np.ones((4, 50), dtype=bool))
    np.testing.assert_allclose(found, world, atol=1e-9)
    assert used.all()
    # One view's detection 100 px off for half the points: the other three still agree, it is dropped.
    pixels[2, :25] += 100.0
    found, used = bench.robust_triangulate(cameras, pixels, np.ones((4, 50), dtype=bool))
    np.testing.assert_allclose(found, world, atol=1e-9)
    assert not used[2, :25].any() and used[2, 25:].all() and used[[0, 1, 3]].all()
    # Two views only, one of them not seeing a point: nothing to triangulate it from.
    use = np.zeros((4, 50), dtype=bool)
    use[0] = True
    use[1, 1:] = True
    found, _ = bench.robust_triangulate(cameras, pixels, use)
    assert np.isnan(found[0]).all() and np.isfinite(found[1:]).all()


def _person(at: tuple[float, float], floor: float, frames: int = 30) -> np.ndarray:
    """(frames, 17, 3) world metres, Z up: a person standing still at ``at``, ankles ANKLE_HEIGHT above
    ``floor``, arms out (not symmetric, so a fit of several has one answer)."""
    pose = np.array([[0, 0, 0.9], [-0.1, 0, 0.9], [-0.1, 0, 0.5], [-0.1, 0, 0.0], [0.1, 0, 0.9], [0.1, 0.05, 0.5],
                     [0.1, 0, 0.0], [0, 0, 1.15], [0, 0, 1.4], [0, 0.05, 1.5], [0, 0, 1.65], [0.2, 0, 1.4],
                     [0.45, 0, 1.4], [0.7, 0, 1.4], [-0.2, 0, 1.4], [-0.3, 0.2, 1.2], [-0.3, 0.4, 1.1]])
    pose = pose + np.array([at[0], at[1], floor + ANKLE_HEIGHT])
    return np.repeat(pose[None], frames, axis=0)


def test_the_floor_is_under_the_lower_person_and_a_person_on_a_box_stays_up():
    woman, man = _person((0.0, 0.0), 0.0), _person((1.5, 0.5), 0.2)  # he stands on a 20 cm box
    assert bench.planted(woman, 60.0).all()
    assert bench.truth_floor([woman, man], 60.0) == pytest.approx(0.0)
    # The capture sees both in its camera (turned, moved, 0.8 times the size): the fit puts them back.
    turn = Rotation.from_euler("xyz", [100, 20, -30], degrees=True).as_matrix()
    captured = [0.8 * person @ turn.T + np.array([0.3, 1.2, 4.0]) for person in (woman, man)]
    feet = [np.ones(len(woman), dtype=bool)] * 2
    heights = bench.floor_heights(captured, [woman, man], 0.0, feet, turn)
    np.testing.assert_allclose(heights["captured_m"], [0.0, 0.2], atol=1e-9)
    np.testing.assert_allclose(heights["true_m"], [0.0, 0.2], atol=1e-9)
    assert heights["scale"] == pytest.approx(1.25)
    # The capture puts him 30 cm higher than he is: the one shift for both shares it out (she sinks,
    # he floats), no tilt hides it, and the gap between them stays about what the capture made it.
    raised = [captured[0], captured[1] + 0.8 * np.array([0, 0, 0.3]) @ turn.T]
    woman_sole, man_sole = bench.floor_heights(raised, [woman, man], 0.0, feet, turn)["captured_m"]
    assert woman_sole < -0.05 and man_sole > 0.2 + 0.1
    assert 0.25 < (man_sole - woman_sole) - 0.2 < 0.35


def test_the_root_distance_error_in_millimetres_and_percent():
    truth = (np.zeros((5, 3)), np.tile([2.0, 0.0, 0.0], (5, 1)))
    captured = (np.ones((5, 3)), np.ones((5, 3)) + [0.0, 2.2, 0.0])  # 2.2 m apart, another frame
    error = bench.root_distance_error(captured, truth)
    assert error["error_mm"] == pytest.approx(200.0) and error["error_pct"] == pytest.approx(10.0)
    assert error["true_m"] == pytest.approx(2.0) and error["captured_m"] == pytest.approx(2.2)


def test_a_person_scores_nothing_against_themselves_and_the_scored_joints_leave_out_the_root():
    person = _person((0.0, 0.0), 0.0, 3)
    scores = bench.score_person(person, person + [1.0, 2.0, 3.0])  # root-relative: a shift is no error
    assert scores["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and scores["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert len(bench.SCORED) == 14 and PELVIS not in bench.SCORED and len(scores["per_joint_mm"]) == 14


def test_without_the_scene_the_report_says_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "SCENE", tmp_path / "absent")
    markdown, figures = tmp_path / "m.md", tmp_path / "m.json"
    assert bench.main(["--markdown", str(markdown), "--json", str(figures)]) == 0
    assert markdown.read_text().startswith("# Real footage in 3D") and "Skipped:" in markdown.read_text()
    assert "skipped" in figures.read_text()


def test_an_earlier_run_is_shown_beside_this_one():
    person = {"frames": 10, "pa_mpjpe_mm": 80.0, "mpjpe_mm": 120.0}
    row = lambda pa, pct: {"view": "cam01", "source": "capture, default lens",  # noqa: E731
                           "people": {"man": {**person, "pa_mpjpe_mm": pa}, "woman": person},
                           "root_distance": {"error_pct": pct}, "feet": {"captured_m": [0.1, -0.2], "true_m": [0.09, 0.0]}}
    result = {"truth": {"names": ["man", "woman"]}, "rows": [row(90.0, 11.0), {"view": "cam01", "source": "MediaPipe world landmarks",
                                                                                  "people": {"man": person}}]}
    lines = bench._before_after(result, {"commit": "abc1234", "rows": [row(120.0, 20.0)]})
    assert "| cam01 | man | 120.0 -> 90.0 | 20 -> 11 | 10 -> 10 (9) |" in lines
    assert any(line.startswith("Mean PA-MPJPE over views and people: 100.0 -> 85.0 mm") for line in lines)
