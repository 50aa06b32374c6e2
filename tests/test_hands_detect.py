"""Hand keypoints (posemoe.detect.hands): the converted models, the regions, and MediaPipe as the reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from posemoe.detect import hands
from posemoe.detect.landmarks import Region

ROOT = Path(__file__).resolve().parent.parent
HAND_CLIPS = ROOT.parent / "shared" / "media" / "real" / "hands"


def _frame(path: Path, index: int) -> np.ndarray:
    from posemoe.video import read_frames

    return next(read_frames(path, index)).image


def _clip(name: str) -> Path:
    if not (ROOT.parent / "shared").is_dir() or not (HAND_CLIPS / name).is_file():
        pytest.skip("../shared/media/real/hands is absent")
    return HAND_CLIPS / name


def test_the_models_load_with_mediapipes_shapes():
    image = np.full((480, 640, 3), 128, np.uint8)
    keypoints, presence, handedness = hands.hand_landmarks(image, Region(np.array([320.0, 240.0]), 200.0, 0.3))
    assert keypoints.shape == (21, 3) and np.isfinite(keypoints).all()
    assert 0.0 <= presence <= 1.0 and 0.0 <= handedness <= 1.0
    assert isinstance(hands.recrop(image, Region(np.array([320.0, 240.0]), 200.0, 0.0)), Region)
    assert hands.find_palms(image) == []  # a grey frame has no palm
    for name in ("hand_landmark_full.onnx", "palm_detection_full.onnx", "hand_recrop.onnx"):
        size = (hands.MODELS / name).stat().st_size
        assert size < 6e6, f"{name} is {size / 1e6:.1f} MB: float16 weights expected"


def test_the_regions_follow_mediapipes_rules():
    # A hand pointing straight up: wrist below, index and pinky bases above.
    wrist, pinky, index = np.array([100.0, 200.0]), np.array([80.0, 140.0]), np.array([110.0, 140.0])
    region = hands.region_from_pose(wrist, pinky, index)
    middle = (2 * index + pinky) / 3
    side = 2 * np.hypot(*(middle - wrist))
    assert region.side == pytest.approx(2.7 * side)
    assert region.angle == pytest.approx(math.atan2(middle[0] - wrist[0], wrist[1] - middle[1]))
    # Moved 0.1 of the side towards the fingers (up the turned crop).
    along = np.array([math.sin(region.angle), -math.cos(region.angle)])
    assert (region.centre - middle) @ along == pytest.approx(0.1 * side)
    # Turning the hand turns its region with it.
    turn = np.array([[0.0, -1.0], [1.0, 0.0]])  # 90 degrees clockwise on screen
    turned = hands.region_from_pose(*(p @ turn.T for p in (wrist, pinky, index)))
    assert (turned.angle - region.angle) % (2 * math.pi) == pytest.approx(math.pi / 2)


def test_missing_people_and_wrists_give_no_hands_and_no_error():
    detector = hands.HandDetector(palms=True)
    image = np.full((240, 320, 3), 90, np.uint8)
    found, presence, handedness = detector.detect(image, np.zeros((0, 33, 2)), np.zeros((0, 33)))
    assert found.shape == (0, 2, 21, 3) and presence.shape == (0, 2) and handedness.shape == (0, 2)
    points = np.full((2, 33, 2), 100.0)
    visibility = np.ones((2, 33))
    points[0, [15, 17, 19]] = [[-5000.0, -5000.0], [-5010.0, -5040.0], [-4990.0, -5040.0]]  # left wrist off the picture
    visibility[1, 16] = 0.0  # right wrist not seen
    points[1, 15] = np.nan  # a landmark missing altogether
    found, presence, handedness = detector.detect(image, points, visibility)
    assert found.shape == (2, 2, 21, 3)
    assert (presence == 0).all() and np.isnan(found).all() and np.isnan(handedness).all()
    assert detector.loose.shape == (0, 21, 3)


@pytest.mark.slow
def test_hands_on_a_signer_are_found_near_mediapipes():
    """Our body then hands against MediaPipe's HandLandmarker (Tasks API, video mode, two hands) on the
    first 40 frames of a signing clip: the reference's hands found, keypoints within a few % of the
    hand's size, and which hand is which as the reference labels it."""
    import cv2

    mediapipe = pytest.importorskip("mediapipe")
    clip = _clip("asl_sign_yes.mkv")
    from benchmarks.hands import hand_size, match, task_bundle

    from mediapipe.tasks.python import BaseOptions, vision
    from posemoe.detect.blazepose import BlazePoseDetector
    from posemoe.video import read_frames

    options = vision.HandLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=task_bundle()),
                                           running_mode=vision.RunningMode.VIDEO, num_hands=2)
    body, detector = BlazePoseDetector(), hands.HandDetector()
    ours, theirs, distances, agree = [], [], [], []
    with vision.HandLandmarker.create_from_options(options) as landmarker:
        for frame in read_frames(clip, 0, 40):
            height, width = frame.image.shape[:2]
            rgb = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
            result = landmarker.detect_for_video(rgb, int(round(frame.time * 1000)))
            theirs.append(np.array([[(p.x * width, p.y * height, p.z * width) for p in h] for h in result.hand_landmarks]).reshape(-1, 21, 3))
            sides = [1 if h[0].category_name == "Right" else 0 for h in result.handedness]
            poses = body.poses(frame.image)
            found, presence, _ = detector.detect(frame.image, np.array([p.points for p in poses]).reshape(-1, 39, 2),
                                                 np.array([p.visibility for p in poses]).reshape(-1, 39))
            seen = np.argwhere(presence > 0)
            ours.append(found[presence > 0])
            # Each frame's own hand size (the clip's is not known while streaming): a stricter test.
            for r, m in enumerate(match(ours[-1:], theirs[-1:], [[hand_size(h) for h in theirs[-1]]])[0]):
                if m >= 0:
                    distances.append(np.linalg.norm(ours[-1][m][:, :2] - theirs[-1][r][:, :2], axis=-1) / hand_size(theirs[-1][r]) * 100)
                    agree.append(seen[m][1] == sides[r])
    total = sum(len(t) for t in theirs)
    assert total >= 40, "the reference should see hands in most frames"
    assert len(distances) >= 0.9 * total
    assert np.median(np.concatenate(distances)) < 2.5  # the first frames find the hands: regions unlike the reference's
    assert np.mean(agree) > 0.9


def test_a_capture_with_hands_keeps_them_in_the_take(tmp_path):
    # The capture's own path, both detection threads: every captured frame's hands at the body's wrists,
    # the person's left hand at the left wrist (joint 13), and the hands survive the take file.
    from posemoe.pipeline import capture
    from posemoe.settings import Settings
    from posemoe.take import Take

    take = capture(_clip("asl_sign_yes.mkv"), Settings(hands=True, stop=40, workers=2))
    assert take.hands_2d.shape == (len(take), 2, 21, 3) and take.hand_presence.shape == (len(take), 2)
    seen = take.hand_presence > 0.5
    assert seen.mean(0).min() > 0.8
    body = np.nanmax(take.keypoints_2d[..., 1], 1) - np.nanmin(take.keypoints_2d[..., 1], 1)
    for side, wrist in ((0, 13), (1, 16)):
        gap = np.linalg.norm(take.hands_2d[seen[:, side], side, 0, :2] - take.keypoints_2d[seen[:, side], wrist], axis=-1)
        assert np.median(gap / body[seen[:, side]]) < 0.05
    assert np.isnan(take.hands_2d[~seen]).all() or (take.hand_presence[~seen] < 0.5).all()
    again = Take.load(take.save(tmp_path / "take.npz"))
    np.testing.assert_array_equal(again.hands_2d, take.hands_2d)
    np.testing.assert_array_equal(again.hand_presence, take.hand_presence)


def test_a_capture_without_hands_has_none():
    from posemoe.pipeline import take_from_detections
    from posemoe.video import VideoInfo

    with np.load(ROOT / "tests" / "data" / "walk_detections.npz") as data:
        keypoints, confidence, fps = data["keypoints"], data["confidence"], float(data["fps"])
    frames = [(k[None], c[None]) if np.isfinite(k).all() else (np.zeros((0, 17, 2)), np.zeros((0, 17)))
              for k, c in zip(keypoints, confidence)]
    take = take_from_detections(frames, VideoInfo("walk", fps, 1768, 994, len(frames)))
    assert np.isnan(take.hands_2d).all() and (take.hand_presence == 0).all()


def test_hands_follow_the_arms_where_their_swap_is_repaired():
    # The sample's real detections with a hand at each wrist (the 21 points fanned out from it); in a
    # stretch of frames the detector swaps the arms' labels, and so the hands, which it takes from the
    # body's wrists. The repair puts the arms back: the take's left hand must be at the left wrist again.
    from posemoe.pipeline import take_from_detections
    from posemoe.swaps import exchange
    from posemoe.video import VideoInfo

    with np.load(ROOT / "tests" / "data" / "walk_detections.npz") as data:
        keypoints, confidence, fps = data["keypoints"], data["confidence"], float(data["fps"])
    fan = np.linspace(0.0, 20.0, 21)[:, None] * np.array([1.0, -1.0])  # (21, 2) px from the wrist
    seen = np.flatnonzero(np.isfinite(keypoints).all(axis=(1, 2)))
    swapped = seen[40:52]
    broken, broken_confidence = exchange(keypoints, confidence, swapped, ("arms",))
    frames = []
    for i, (k, c) in enumerate(zip(broken, broken_confidence)):
        if not np.isfinite(k).all():
            frames.append((np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 2, 21, 4))))
            continue
        hands_found = np.zeros((1, 2, 21, 4))
        for side, wrist in enumerate((13, 16)):  # left, right: at the wrist the detector labelled so
            hands_found[0, side, :, :2] = k[wrist] + fan
            hands_found[0, side, :, 3] = 1.0
        frames.append((k[None], c[None], hands_found))
    take = take_from_detections(frames, VideoInfo("walk", fps, 1768, 994, len(frames)))
    rows = swapped - take.first_frame
    assert take.repaired[rows, 1].all(), "the repair should put these arms back"
    assert (take.hand_presence[rows] == 1).all()
    # The repair put the arms back in the swapped frames, and the hands with them.
    left_wrist = keypoints[swapped, 13]
    np.testing.assert_allclose(take.hands_2d[rows, 0, 0, :2], left_wrist, atol=1e-6)
    np.testing.assert_allclose(take.hands_2d[rows, 1, 0, :2], keypoints[swapped, 16], atol=1e-6)


def test_the_preview_draws_the_captured_hands():
    # A synthetic take: the body and a hand at each wrist; the 2D preview draws the hands only where
    # the hand model was sure of them.
    from posemoe.preview import _draw_2d
    from posemoe.take import Take

    n = 3
    keypoints = np.tile(np.linspace([200.0, 100.0], [300.0, 400.0], 17), (n, 1, 1))
    hands = np.zeros((n, 2, 21, 3))
    hands[..., :2] = np.array([[250.0, 250.0], [150.0, 250.0]])[None, :, None] + np.linspace(0, 40, 21)[:, None]
    presence = np.array([[0.9, 0.9], [0.9, 0.9], [0.1, 0.1]])
    zeros = np.zeros((n, 17, 3))
    take = Take(keypoints, np.ones((n, 17)), np.zeros(n, bool), np.zeros(n, bool), np.zeros((n, 2), bool), zeros, zeros,
                np.eye(3), np.zeros(3), 30.0, 640, 480, 500.0, hands_2d=hands, hand_presence=presence)
    image = np.zeros((480, 640, 3), np.uint8)
    without = Take(**{**vars(take), "hand_presence": np.zeros((n, 2))})
    assert (_draw_2d(image, [take], 0) != _draw_2d(image, [without], 0)).any()
    assert (_draw_2d(image, [take], 2) == _draw_2d(image, [without], 2)).all()
