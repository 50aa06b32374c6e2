import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from posemoe import skeleton
from posemoe.camera import Camera, denormalize_screen, normalize_screen, project_h36m
from conftest import SHARED_DATA, synthetic_camera

finite = st.floats(-5, 5, allow_nan=False, width=32)


def test_layout_is_a_tree_rooted_at_the_pelvis():
    assert len(skeleton.JOINT_NAMES) == len(skeleton.PARENTS) == 17
    assert skeleton.PARENTS[0] == -1 and all(0 <= p < j for j, p in enumerate(skeleton.PARENTS) if j)
    assert len(skeleton.BONES) == 16
    assert skeleton.joint_index("LWrist") == 13


def test_flip_permutation_swaps_left_and_right():
    perm = skeleton.FLIP_PERMUTATION
    assert np.array_equal(perm[perm], np.arange(17))
    for left, right in zip(skeleton.LEFT_JOINTS, skeleton.RIGHT_JOINTS):
        assert skeleton.JOINT_NAMES[left][1:] == skeleton.JOINT_NAMES[right][1:]
        assert perm[left] == right


@given(arrays(np.float64, (4, 17, 3), elements=finite))
def test_flip_is_an_involution_and_keeps_bone_lengths(pose):
    flipped = skeleton.flip_horizontal(pose)
    np.testing.assert_allclose(skeleton.flip_horizontal(flipped), pose)
    np.testing.assert_allclose(np.sort(skeleton.bone_lengths(flipped), -1), np.sort(skeleton.bone_lengths(pose), -1), atol=1e-9)


def test_pinhole_projection_without_distortion():
    zero = np.zeros(3)
    px = project_h36m(np.array([0.5, -0.25, 2.0]), np.array([1000.0, 900.0]), np.array([500.0, 400.0]), zero, zero[:2])
    np.testing.assert_allclose(px, [500 + 1000 * 0.25, 400 - 900 * 0.125])


def test_radial_distortion_matches_opencv():
    # With no tangential terms, Human3.6M's model is OpenCV's (k1, k2, p1=0, p2=0, k3).
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-1, 1, (50, 2)), rng.uniform(3, 6, 50)])
    f, c, k = np.array([1145.0, 1143.8]), np.array([512.5, 515.5]), np.array([-0.207, 0.248, -0.003])
    ours = project_h36m(points, f, c, k, np.zeros(2))
    matrix = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]])
    theirs, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), matrix, np.array([k[0], k[1], 0, 0, k[2]]))
    np.testing.assert_allclose(ours, theirs[:, 0], atol=1e-6)


def test_tangential_distortion_follows_the_dataset_formula():
    # Hand computed from ProjectPointRadial.m for x = (0.2, -0.1), k = 0, p = (0.01, 0.02):
    # r2 = 0.05, tan = 0.01*-0.1 + 0.02*0.2 = 0.003, x' = 0.2*1.003 + 0.02*0.05, y' = -0.1*1.003 + 0.01*0.05
    px = project_h36m(np.array([0.2, -0.1, 1.0]), np.ones(2), np.zeros(2), np.zeros(3), np.array([0.01, 0.02]))
    np.testing.assert_allclose(px, [0.2006 + 0.001, -0.1003 + 0.0005], atol=1e-12)


def test_world_camera_round_trip_and_centre():
    cam = Camera.from_h36m(synthetic_camera(0.7, "c"))
    assert cam.centre == pytest.approx(np.array(synthetic_camera(0.7, "c")["T"]) / 1000)
    np.testing.assert_allclose(cam.world_to_camera(cam.centre), 0, atol=1e-12)
    pts = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(pts)), pts, atol=1e-12)
    # The camera looks at (0, 0, 1 m): that point projects near the principal point.
    on_axis = cam.world_to_camera(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(cam.project(on_axis), cam.c, atol=1e-6)


@given(arrays(np.float64, (5, 2), elements=st.floats(0, 4000)), st.integers(16, 4000), st.integers(16, 4000))
def test_screen_normalisation_round_trip(pixels, width, height):
    screen = normalize_screen(pixels, width, height)
    np.testing.assert_allclose(denormalize_screen(screen, width, height), pixels, atol=1e-6)


def test_screen_normalisation_corners():
    corners = np.array([[0, 0], [1920, 1080], [960, 540]], dtype=float)
    np.testing.assert_allclose(normalize_screen(corners, 1920, 1080), [[-1, -0.5625], [1, 0.5625], [0, 0]])


@pytest.mark.skipif(not (SHARED_DATA / "h36m_3d_17j_mm.npz").exists(), reason="needs ../shared/data")
def test_projection_of_a_real_human36m_camera_lands_on_the_detections():
    """Our camera model puts projected ground truth within a few pixels of real detections."""
    import json

    from training.data import mpii16_to_h36m17

    d3 = np.load(SHARED_DATA / "h36m_3d_17j_mm.npz")
    d2 = np.load(SHARED_DATA / "h36m_2d_sh_mpii16_px10.npz")
    cam = Camera.from_h36m(json.loads(str(d3["cameras_json"]))["S1"][0])
    assert (cam.width, cam.height) == (1000, 1002)
    px = cam.project(cam.world_to_camera(d3["S1/Walking"][:500] / 1000.0))
    det = mpii16_to_h36m17(d2[f"S1/Walking/{cam.name}"][:500] / 10.0)
    body = [0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16]  # joints both skeletons define alike
    median = np.median(np.linalg.norm(px[:, body] - det[:, body], axis=-1))
    assert median < 15, f"median distance {median:.1f} px"


def test_named_joints_and_groups_follow_the_joint_order():
    assert [skeleton.joint_index(n) for n in ("Hip", "RFoot", "LFoot", "Thorax", "Neck/Nose", "Head")] == [
        skeleton.PELVIS, skeleton.R_ANKLE, skeleton.L_ANKLE, skeleton.THORAX, skeleton.NOSE, skeleton.HEAD]
    for (right, left) in (skeleton.LEGS, skeleton.ARMS):
        assert [skeleton.FLIP_PERMUTATION[j] for j in right] == list(left)
        assert [skeleton.PARENTS[j] for j in right[1:]] == list(right[:-1])  # each joint's parent is the one before
    assert skeleton.KNEES == (skeleton.LEGS[0][1], skeleton.LEGS[1][1])
    assert skeleton.ANKLES == (skeleton.LEGS[0][2], skeleton.LEGS[1][2])


@given(arrays(np.float64, (8, 3), elements=st.floats(-10, 10)), st.sampled_from([(0.0, 0.0, 1.0), (0.0, -1.0, 0.0)]))
def test_look_at_turns_forward_onto_z_with_x_level(forward, up):
    from posemoe.rotations import look_at

    up = np.asarray(up)
    along = forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-300)
    usable = (np.linalg.norm(forward, axis=-1) > 1e-3) & (np.linalg.norm(np.cross(along, up), axis=-1) > 1e-3)
    forward = forward[usable]
    rotation = look_at(forward, up)
    assert np.allclose(rotation @ np.swapaxes(rotation, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rotation), 1.0)
    turned = np.einsum("nij,nj->ni", rotation, forward)
    assert np.allclose(turned[:, :2], 0.0, atol=1e-9) and (turned[:, 2] > 0).all()
    assert np.allclose(rotation[:, 0] @ up, 0.0, atol=1e-9)  # no roll: the picture's x axis is level
    assert (rotation[:, 1] @ up <= 1e-9).all()  # and its y axis (down) points away from up
