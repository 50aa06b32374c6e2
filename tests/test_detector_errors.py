"""The detector error model (training/detector_errors.py): it recovers what it is fitted on, its errors
turn and scale with the body, training applies it only where asked, and the shipped fit matches the
real detections of the held-out subjects."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import SHARED_DATA
from training import train
from training.data import TEST_SUBJECTS, TRAIN_SUBJECTS, Augment, Clip, corrupt, load_clips
from training.detector_errors import DEFAULT_MODEL, J, DetectorErrors, fit, measure, picture_scale, project_bias

H36M_3D = SHARED_DATA / "h36m_3d_17j_mm.npz"
H36M_2D = SHARED_DATA / "h36m_2d_sh_mpii16_px10.npz"


def quiet_model(**change) -> DetectorErrors:
    """A model with no errors at all; ``change`` sets some."""
    base = DetectorErrors(
        bias=np.zeros((J, 4)), cov=np.eye(2 * J) * 1e-12, slow_weight=np.full(J, 0.5), slow_phi=0.99, fast_phi=0.5,
        speed_gain=0.0, window_scale=np.ones(21), outlier_rate=np.zeros(J), outlier_run=np.ones(21),
        outlier_size=np.full(21, 0.3), swap_rate={"body": 0.0, "legs": 0.0, "arms": 0.0},
        swap_run={"body": 1.0, "legs": 1.0, "arms": 1.0})
    return replace(base, **change)


def t_pose(b: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """A T-pose facing the camera 3 m away, arms and legs well apart (the feet 0.3 m): target (b, t,
    17, 3) metres and its 2D (b, t, 17, 2)."""
    pose = np.zeros((J, 3))
    pose[[1, 2, 3], 0], pose[[4, 5, 6], 0] = -0.15, 0.15
    pose[[2, 5], 1], pose[[3, 6], 1] = 0.45, 0.9
    pose[[7, 8, 9, 10], 1] = [-0.25, -0.5, -0.6, -0.7]
    pose[[14, 15, 16], 0], pose[[11, 12, 13], 0] = [-0.2, -0.45, -0.7], [0.2, 0.45, 0.7]
    pose[[11, 12, 13, 14, 15, 16], 1] = -0.45
    target = np.broadcast_to(pose, (b, t, J, 3)).copy()
    return target, target[..., :2] / 3.0


def test_fit_recovers_the_model_that_made_the_errors(tiny_dataset):
    clips = load_clips(tiny_dataset[0], TRAIN_SUBJECTS + TEST_SUBJECTS)
    bias = np.zeros((J, 4))
    bias[7] = [0.0, 0.25, 0.0, 0.0]  # the detector's spine a quarter metre up the body
    bias[3] = [0.0, 0.0, 0.0, -0.06]  # its right foot 6 cm back up the shin
    truth = quiet_model(bias=bias, cov=np.eye(2 * J) * 0.02**2, outlier_rate=np.full(J, 0.02),
                        outlier_run=np.full(21, 4.0), outlier_size=np.full(21, 0.5),
                        swap_rate={"body": 0.0, "legs": 0.03, "arms": 0.0}, swap_run={"body": 1.0, "legs": 6.0, "arms": 1.0})
    rng = np.random.default_rng(0)
    made = []
    for c in clips:  # 120 frames: corrupted as 4 windows of 30
        det = truth.sample(c.pose2d.reshape(4, 30, J, 2), c.pose3d.reshape(4, 30, J, 3), rng).reshape(120, J, 2)
        made.append(replace(c, det2d=det))
    got = fit(made)
    np.testing.assert_allclose(got.bias[7, :3], bias[7, :3], atol=0.01)
    np.testing.assert_allclose(got.bias[3, 3], -0.06, atol=0.02)
    assert np.abs(got.bias[[0, 8, 10, 16]]).max() < 0.015
    noise_std = np.sqrt(np.diag(got.cov).reshape(J, 2).sum(-1) / 2)
    assert np.all((0.015 < noise_std) & (noise_std < 0.026))  # 0.02 m per axis, made
    assert 0.01 < got.outlier_rate.mean() < 0.035
    assert 0.01 < got.swap_rate["legs"] < 0.05 and got.swap_rate["arms"] < 0.005 and got.swap_rate["body"] < 0.005


def test_errors_scale_with_the_person_in_the_picture_and_turn_with_the_body(tiny_dataset):
    clip = load_clips(tiny_dataset[0], ("S1",))[0]
    xy, target = clip.pose2d[None, :27].astype(np.float64), clip.pose3d[None, :27].astype(np.float64)
    bias = np.zeros((J, 4))
    bias[:, 0] = 0.05  # every joint 5 cm towards the body's left
    model = quiet_model(bias=bias)
    small = model.sample(xy, target, np.random.default_rng(1)) - xy
    large = model.sample(2 * xy, target, np.random.default_rng(1)) - 2 * xy
    np.testing.assert_allclose(large, 2 * small, atol=1e-5)  # twice as big in the picture: twice the error
    # In metres at the person, the error is the bias's projection (and a noise of 1e-6 m).
    np.testing.assert_allclose(small / picture_scale(xy, target)[..., None, None], project_bias(bias, target), atol=1e-4)
    assert np.abs(project_bias(bias, target)).max() > 0.02
    # Seen from behind (the body turned half round about the camera's vertical axis), the left is the
    # other way in the picture.
    behind = target * [-1, 1, -1]
    np.testing.assert_allclose(project_bias(bias, behind)[..., 0], -project_bias(bias, target)[..., 0], atol=1e-9)


def test_swaps_and_outliers_come_in_runs_at_their_rates():
    rng = np.random.default_rng(2)
    target, xy = t_pose(1500, 27)
    model = quiet_model(outlier_rate=np.full(J, 0.05), outlier_run=np.full(21, 8.0),
                        swap_rate={"body": 0.02, "legs": 0.04, "arms": 0.0}, swap_run={"body": 5.0, "legs": 5.0, "arms": 1.0})
    det = model.sample(xy, target, rng)
    m = measure(Clip("S1", "x", "c", target.reshape(-1, J, 3), xy.reshape(-1, J, 2), det.reshape(-1, J, 2), 2.0, 1000, 1000))
    assert abs(m["body"].mean() - 0.02) < 0.005 and abs(m["legs"].mean() - 0.04) < 0.008 and m["arms"].mean() < 0.002
    off = np.linalg.norm(det - xy, axis=-1) > 0.05  # 0.3 m at 3 m: outliers (and swapped joints)
    head = off[..., 10]
    assert abs(head.mean() - 0.05) < 0.01
    starts = (head[:, 1:] & ~head[:, :-1]).sum()
    assert 6 < head[:, 1:].sum() / max(starts, 1) < 12  # runs of about 8 frames, cut by the window


def test_training_applies_the_model_only_where_asked(tiny_dataset):
    clips = load_clips(tiny_dataset[0], TRAIN_SUBJECTS)
    xy = np.stack([c.pose2d[:9] for c in clips])
    target = np.stack([c.pose3d[:9] for c in clips])
    model = DetectorErrors.load(DEFAULT_MODEL)
    plain = Augment(flip_prob=0.0, drop_max=0.0)
    before, _ = corrupt(xy, target, np.random.default_rng(3), plain)
    # Off (no model, or a share of 0): the same draws as before the model existed.
    np.testing.assert_array_equal(corrupt(xy, target, np.random.default_rng(3), replace(plain, detector=model))[0], before)
    # On for every window, but none is clean (all real detections): untouched.
    on = replace(plain, detector=model, detector_prob=1.0)
    np.testing.assert_array_equal(corrupt(xy, target, np.random.default_rng(3), on, clean=np.zeros(len(xy), bool))[0], before)
    after, _ = corrupt(xy, target, np.random.default_rng(3), on)
    spine = np.linalg.norm(after[..., 7, :2] - xy[..., 7, :], axis=-1)
    assert np.median(spine) > 3 * np.median(np.linalg.norm(before[..., 7, :2] - xy[..., 7, :], axis=-1))  # the spine's bias


def test_a_run_with_the_model_logs_detected_validation_and_resumes_with_it(tmp_path, tiny_dataset, tiny_config):
    path3d, path2d = tiny_dataset
    out = tmp_path / "run"
    args = ["--data", str(path3d), "--detections", str(path2d), "--out", str(out), "--batch", "4", "--eval-every", "2",
            "--val-stride", "1", "--threads", "1", "--quiet", "--config", tiny_config, "--steps", "4", "--until", "2",
            "--detector-errors", "0.8", "--val-detected"]
    assert train.main(args) == 0
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["detector_errors"] == 0.8 and saved["val_detected"]
    resumed = train.parse_args(["--out", str(out), "--resume"])
    assert resumed.detector_errors == 0.8 and resumed.detector_model == saved["detector_model"]
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert float(rows[-1]["val_detected_mm"]) > 0 and float(rows[-1]["val_mpjpe_mm"]) > 0


@pytest.mark.skipif(not H36M_2D.exists(), reason="needs ../shared/data (Human3.6M and its detections)")
def test_the_shipped_fit_matches_held_out_real_detections():
    # Two S9 sequences, every camera: the model's median error per joint group within 40 % of the real one.
    keep = ("S9/Walking", "S9/Sitting")
    clips = [c for c in load_clips(H36M_3D, ("S9",), H36M_2D) if f"{c.subject}/{c.action}" in keep and c.det2d is not None]
    assert len(clips) == 8
    model = DetectorErrors.load(DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    real, sim = [], []
    for c in clips:
        n = len(c.pose2d) // 27 * 27
        det = model.sample(c.pose2d[:n].reshape(-1, 27, J, 2), c.pose3d[:n].reshape(-1, 27, J, 3), rng).reshape(n, J, 2)
        real.append(np.linalg.norm(c.det2d[:n] - c.pose2d[:n], axis=-1) * c.width / 2)
        sim.append(np.linalg.norm(det - c.pose2d[:n], axis=-1) * c.width / 2)
    real, sim = np.concatenate(real), np.concatenate(sim)
    for joints in ((0, 1, 4, 7, 8), (2, 3, 5, 6), (9, 10), (11, 12, 13, 14, 15, 16)):  # torso, legs, head, arms
        r, s = np.median(real[:, joints]), np.median(sim[:, joints])
        assert 0.6 < s / r < 1.4, (joints, r, s)
    # The model's errors are not independent noise's: the spine's bias dominates its error.
    assert np.median(sim[:, 7]) > 3 * np.median(sim[:, 0])


def test_the_lifter_table_gives_each_kind_of_input_its_own_errors(tiny_dataset):
    # benchmarks/detector_errors.py's lifter table: with detections equal to the truth and a model that
    # only moves the spine, only the model's column may differ from the ground truth's, and not once
    # its bias is taken away.
    from benchmarks.detector_errors import lifter_errors

    from posemoe.lift import DEFAULT_WEIGHTS

    clips = [replace(c, det2d=c.pose2d.copy()) for c in load_clips(tiny_dataset[0], TEST_SUBJECTS)]
    bias = np.zeros((J, 4))
    bias[7] = [0.0, 0.2, 0.0, 0.0]  # the spine 20 cm up the body
    got = lifter_errors(DEFAULT_WEIGHTS, clips, quiet_model(bias=bias), seed=0)
    assert got["real"] == pytest.approx(got["ground truth"], abs=1e-3)
    assert got["model without bias"] == pytest.approx(got["ground truth"], abs=0.05)
    assert got["model"] > got["ground truth"] + 1.0


@pytest.mark.slow
def test_an_outlier_takes_the_joint_it_lands_on_within_reach_and_the_fit_finds_where_they_land():
    target, xy = t_pose(800, 27)
    onto = np.zeros((J, J + 1))
    onto[:, J] = 1.0
    onto[3] = 0.0
    onto[3, 6] = 1.0  # the right foot's outliers land on the left foot
    rate = np.zeros(J)
    rate[3] = 0.05
    model = quiet_model(outlier_rate=rate, outlier_run=np.full(21, 8.0), outlier_target=onto, outlier_reach=np.full(J, 1.0))
    det = model.sample(xy, target, np.random.default_rng(4))
    off = np.linalg.norm(det[..., 3, :] - xy[..., 3, :], axis=-1) > 0.05
    assert 0.03 < off.mean() < 0.07
    np.testing.assert_allclose(det[..., 3, :][off], xy[..., 6, :][off], atol=1e-4)
    got = fit([Clip("S1", "x", "c", target.reshape(-1, J, 3), xy.reshape(-1, J, 2), det.reshape(-1, J, 2), 2.0, 1000, 1000)])
    assert got.outlier_target[3, 6] > 0.95 and got.outlier_reach[3] == pytest.approx(0.3, abs=0.01)
    # Out of reach (the feet are 0.3 m apart), the outliers go elsewhere instead.
    det = replace(model, outlier_reach=np.full(J, 0.2)).sample(xy, target, np.random.default_rng(4))
    off = np.linalg.norm(det[..., 3, :] - xy[..., 3, :], axis=-1) > 0.05
    on_left_foot = np.linalg.norm(det[..., 3, :][off] - xy[..., 6, :][off], axis=-1) < 0.01
    assert off.mean() > 0.03 and on_left_foot.mean() < 0.1  # a random direction, 0.3 m away


@pytest.mark.slow
def test_outliers_come_in_bad_windows_as_fitted():
    target, xy = t_pose(2000, 27)
    even = quiet_model(outlier_rate=np.full(J, 0.01), outlier_run=np.full(21, 4.0))
    bad = np.where(np.arange(101) < 80, 0.0, 1.0)  # four windows in five without outliers
    bad /= np.interp((np.arange(1000) + 0.5) / 1000, np.linspace(0, 1, 101), bad).mean()
    for model, share in ((even, (0.6, 0.85)), (replace(even, outlier_window=bad), (0.1, 0.25))):
        det = model.sample(xy, target, np.random.default_rng(5))
        hit = (np.linalg.norm(det - xy, axis=-1) > 0.05).any(axis=(1, 2))
        assert share[0] < hit.mean() < share[1]
    got = fit([Clip("S1", "x", "c", target.reshape(-1, J, 3), xy.reshape(-1, J, 2), det.reshape(-1, J, 2), 2.0, 1000, 1000)])
    assert got.outlier_window[:75].max() == 0.0 and got.outlier_window[90] > 1.0
