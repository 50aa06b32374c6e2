import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from posemoe import metrics

pose_values = st.floats(-2, 2, allow_nan=False, width=32)
poses = arrays(np.float64, (3, 17, 3), elements=pose_values)


def spread(p):
    return np.min(np.linalg.norm(p - p.mean(-2, keepdims=True), axis=(-2, -1))) > 0.1


def test_mpjpe_by_hand():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert metrics.mpjpe(pred, gt) == 3.0  # (5 + 1) / 2


def test_velocity_and_acceleration_by_hand():
    gt = np.zeros((4, 1, 3))
    pred = np.zeros((4, 1, 3))
    pred[:, 0, 0] = [0.0, 1.0, 2.0, 4.0]
    assert metrics.mpjve(pred, gt) == (1 + 1 + 2) / 3
    assert metrics.acceleration_error(pred, gt) == (0 + 1) / 2
    # A constant offset changes neither.
    assert metrics.mpjve(gt + 5.0, gt) == 0.0 and metrics.acceleration_error(gt + 5.0, gt) == 0.0


def test_pck_and_auc_by_hand():
    gt = np.zeros((1, 4, 3))
    pred = np.zeros((1, 4, 3))
    pred[0, :, 0] = [0.0, 0.1, 0.2, 0.3]
    assert metrics.pck(pred, gt, 0.15) == 0.5
    # Distances 0 and 0.1 m against thresholds 0, 5, ..., 150 mm: the first counts from 5 mm (30 of 31),
    # the second from 105 mm (10 of 31); the other two never.
    assert np.isclose(metrics.auc(pred, gt), (30 + 10) / (4 * 31))


@settings(max_examples=50, deadline=None)
@given(poses, st.floats(0.2, 5), arrays(np.float64, 3, elements=pose_values), arrays(np.float64, 3, elements=st.floats(-3, 3)))
def test_p_mpjpe_ignores_similarity_transforms_of_the_prediction(pose, scale, shift, rotvec):
    if not spread(pose):
        return
    gt = pose + np.random.default_rng(0).normal(scale=0.05, size=pose.shape)
    moved = scale * Rotation.from_rotvec(rotvec).apply(pose.reshape(-1, 3)).reshape(pose.shape) + shift
    assert np.isclose(metrics.p_mpjpe(moved, gt), metrics.p_mpjpe(pose, gt), atol=1e-6)
    assert metrics.p_mpjpe(pose, gt) <= metrics.mpjpe(pose, gt) + 1e-9


@settings(max_examples=50, deadline=None)
@given(poses, st.floats(0.2, 5))
def test_n_mpjpe_ignores_scale_and_procrustes_recovers_exact_copies(pose, scale):
    if not spread(pose):
        return
    gt = pose + np.random.default_rng(1).normal(scale=0.05, size=pose.shape)
    assert np.isclose(metrics.n_mpjpe(scale * pose, gt), metrics.n_mpjpe(pose, gt), atol=1e-7)
    rotated = Rotation.from_euler("xyz", [0.3, -1.0, 2.0]).apply(pose.reshape(-1, 3)).reshape(pose.shape)
    assert metrics.p_mpjpe(2.0 * rotated + 1.0, pose) < 1e-7


def test_procrustes_never_reflects():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(17, 3))
    mirror = gt * np.array([-1.0, 1.0, 1.0])
    aligned = metrics.procrustes_align(mirror, gt)
    # A reflection would fit perfectly; a rotation cannot.
    assert metrics.mpjpe(aligned, gt) > 0.1


walks = arrays(np.float64, (230, 4, 3), elements=st.floats(-0.25, 0.25, allow_nan=False, width=32))


@settings(max_examples=25, deadline=None)
@given(walks, st.floats(0.5, 2), arrays(np.float64, 3, elements=st.floats(-3, 3)), arrays(np.float64, 3, elements=st.floats(-5, 5)))
def test_world_metrics_ignore_where_the_world_frame_is(body, scale, rotvec, shift):
    # A walk: a body (joints spread out, moving) that travels 2 m along x, seen in another world frame
    # (turned, moved, scaled).
    body = body + np.array([[0, 0, 0], [0.6, 0, 0.5], [-0.6, 0.3, 1.0], [0, -0.3, 1.5]])
    truth = body + np.linspace(0, 2, len(body))[:, None, None] * np.array([1.0, 0.0, 0.0])
    moved = scale * truth @ Rotation.from_rotvec(rotvec).as_matrix() + shift
    assert metrics.wa_mpjpe(moved, truth) < 1e-6
    assert metrics.w_mpjpe(moved, truth) < 1e-6
    rigid = truth @ Rotation.from_rotvec(rotvec).as_matrix() + shift
    assert metrics.root_translation_error(rigid[:, 0], truth[:, 0]) < 1e-6


def test_world_metrics_by_hand():
    # The truth walks 3 m along x in 300 frames with its four joints spread; the prediction is right in
    # each 100-frame segment's first two frames and 50 mm off sideways in its other 98.
    frames = np.arange(300)
    body = np.array([[0, 0, 0], [0.2, 0, 0.5], [-0.2, 0.1, 1.0], [0, -0.1, 1.5]])
    truth = body[None] + (frames * 0.01)[:, None, None] * np.array([1.0, 0.0, 0.0])
    pred = truth.copy()
    pred[(frames % 100) >= 2] += np.array([0.0, 0.05, 0.0])
    # Aligned on the first two frames the transform is the identity: 98 % of frames 50 mm off.
    assert abs(metrics.w_mpjpe(pred, truth) - 0.98 * 0.05) < 1e-9
    # Aligned on the whole segment, the best similarity shifts by nearly 49 mm, leaving two frames
    # about 49 mm off and the rest about 1 mm.
    assert 0.0015 < metrics.wa_mpjpe(pred, truth) < 0.0025
    # RTE: the mean distance (at most the 50 mm) over the 3 m travelled.
    assert 0.0 < metrics.root_translation_error(pred[:, 0], truth[:, 0]) < 0.05 / 2.97
    assert np.isnan(metrics.root_translation_error(np.zeros((5, 3)), np.zeros((5, 3))))
