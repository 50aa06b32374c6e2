"""The landmark model's 3D averaged into the lifted pose: properties that hold whatever the poses."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from conftest import synthetic_motion
from posemoe.rotations import similarity_transform
from posemoe.second_opinion import with_second_opinion
from posemoe.skeleton import PELVIS


def _poses(frames: int = 8) -> np.ndarray:
    joints = synthetic_motion(frames, 1) / 1000.0
    return joints - joints[:, PELVIS:PELVIS + 1]


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 2.0), st.integers(0, 10_000), st.floats(-1.0, 1.0))
def test_an_opinion_that_agrees_up_to_a_similarity_changes_nothing(scale, seed, shift):
    """The landmarks' own size, turn and origin do not matter: only their shape is averaged in."""
    lifted = _poses()
    turn = Rotation.random(random_state=seed).as_matrix()
    landmarks = scale * lifted @ turn.T + shift
    np.testing.assert_allclose(with_second_opinion(lifted, landmarks), lifted, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_the_average_lies_between_the_two_and_keeps_the_pelvis_at_the_origin(weight, seed):
    rng = np.random.default_rng(seed)
    lifted = _poses()
    other = lifted + rng.normal(0.0, 0.05, lifted.shape)
    fused = with_second_opinion(lifted, other, weight)
    np.testing.assert_allclose(fused[:, PELVIS], 0.0, atol=1e-12)
    # Joint by joint the fused pose is the straight mix of the lifted pose and the fitted opinion.
    whole = with_second_opinion(lifted, other, 1.0)
    np.testing.assert_allclose(fused, (1 - weight) * lifted + weight * whole, atol=1e-9)
    scale, turn, shift = similarity_transform(other, whole)
    np.testing.assert_allclose(scale[:, None, None] * other @ turn + shift, whole, atol=1e-9)  # only a similarity


def test_frames_without_landmarks_keep_the_lifted_pose_and_others_move_halfway():
    lifted = _poses(6)
    bent = lifted.copy()
    bent[:, 3] += np.array([0.0, 0.0, 0.2])  # the right ankle 20 cm further away
    landmarks = bent.copy()
    landmarks[[1, 4]] = np.nan
    fused = with_second_opinion(lifted, landmarks)
    np.testing.assert_array_equal(fused[[1, 4]], lifted[[1, 4]])
    moved = np.linalg.norm(fused[[0, 2, 3, 5], 3] - lifted[[0, 2, 3, 5], 3], axis=-1)
    assert np.all((moved > 0.06) & (moved < 0.12)), moved  # about half of 20 cm, less what the fit absorbs
