"""The default detector: BlazePose's two models run by us (posemoe.detect.people finds people,
posemoe.detect.landmarks follows them) and the following detector on the sample
(posemoe.detect.blazepose). MediaPipe, installed for the tests, is the reference for the person detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from posemoe.detect import detect_frames
from posemoe.detect.blazepose import SAME_REGION, BlazePoseDetector, associate
from posemoe.detect.landmarks import SIZE, Region, crop, region_from_axis
from posemoe.detect import people
from posemoe.track import box_iou
from posemoe.video import read_frames

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"

coordinate = st.floats(-500, 500, allow_nan=False)


@given(coordinate, coordinate, st.floats(-1, 1, allow_nan=False), st.floats(-1, 1, allow_nan=False), st.floats(20, 400))
def test_a_region_stands_the_body_axis_upright_and_maps_back(x, y, dx, dy, radius):
    direction = np.array([dx, dy])
    if np.hypot(*direction) < 1e-3:
        direction = np.array([0.0, -1.0])
    hips = np.array([x, y])
    scale_point = hips + radius * direction / np.hypot(*direction)
    region = region_from_axis(hips, scale_point)
    # The crop's centre is the hips, and straight up in the crop leads to the scale point.
    np.testing.assert_allclose(region.to_image(np.array([0.5, 0.5])), hips, atol=1e-9)
    up = region.to_image(np.array([0.5, 0.5 - radius / region.side])) - hips
    np.testing.assert_allclose(up, scale_point - hips, atol=1e-6 * radius)
    assert np.isclose(region.side, 2.5 * radius)  # 1.25 x the circle's diameter, as MediaPipe's Tasks graph


def test_the_crop_samples_the_image_where_the_region_says():
    # An image whose pixel (row, column) holds (column, row, 0) in its first two channels, so every
    # sampled pixel says where it came from.
    height, width = 300, 400
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([cols % 256, rows % 256, np.zeros_like(rows)], axis=-1).astype(np.uint8)[..., ::-1]  # BGR
    region = Region(np.array([120.0, 130.0]), 128.0, 0.0)  # half a pixel per crop pixel, upright
    patch = crop(np.ascontiguousarray(image), region)[0] * 255.0  # RGB in [0, 255]
    # Crop pixel index a samples image index centre + (a / SIZE - 0.5) * side: the region's corner
    # onto the crop's corner, as MediaPipe's ImageToTensorCalculator maps them.
    a = np.arange(SIZE)
    offset = (a / SIZE - 0.5) * 128.0
    np.testing.assert_allclose(patch[10, :, 0], 120.0 + offset, atol=0.6)  # red: the column (uint8, rounded)
    np.testing.assert_allclose(patch[:, 10, 1], 130.0 + offset, atol=0.6)  # green: the row


def test_the_anchors_are_mediapipes_grids_row_by_row():
    anchors = people.anchors()
    assert anchors.shape == (2254, 2)
    np.testing.assert_allclose(anchors[:4], [[0.5 / 28, 0.5 / 28]] * 2 + [[1.5 / 28, 0.5 / 28]] * 2)
    np.testing.assert_allclose(anchors[2 * 28], [0.5 / 28, 1.5 / 28])  # the second row of the 28 x 28 grid
    np.testing.assert_allclose(anchors[2 * 28 * 28], [0.5 / 14, 0.5 / 14])  # the 14 x 14 grid follows
    np.testing.assert_allclose(anchors[-6:], [[6.5 / 7, 6.5 / 7]] * 6)


@given(st.integers(40, 900), st.integers(40, 900))
def test_the_letterbox_samples_the_frame_as_mediapipe_does(height, width):
    # Pixel (row, column) holds (column, row, 0) in its first two channels, scaled to stay in a byte.
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([cols * 255 // (width - 1), rows * 255 // (height - 1), np.zeros_like(rows)], axis=-1)
    tensor, scale, offset = people.letterbox(np.ascontiguousarray(image.astype(np.uint8)[..., ::-1]))
    rgb = (tensor[0] + 1.0) * 127.5
    assert scale == pytest.approx(people.SIZE / max(height, width))
    # Output index j samples input index (j - offset) / scale (MediaPipe's matrix: no half-pixel shift).
    inside = np.arange(people.SIZE)
    x = (inside - offset[0]) / scale
    y = (inside - offset[1]) / scale
    cols_in = (x >= 0) & (x <= width - 1)
    rows_in = (y >= 0) & (y <= height - 1)
    middle_row, middle_col = int(np.flatnonzero(rows_in)[rows_in.sum() // 2]), int(np.flatnonzero(cols_in)[cols_in.sum() // 2])
    # Within 2 levels: the pattern is floored to bytes (up to 1), the warped frame rounded (0.5), and
    # bilinear blending of a floored ramp adds a hair (1.506 seen at 53 x 151 with 1.5).
    np.testing.assert_allclose(rgb[middle_row, cols_in, 0], x[cols_in] * 255 / (width - 1), atol=2.0)
    np.testing.assert_allclose(rgb[rows_in, middle_col, 1], y[rows_in] * 255 / (height - 1), atol=2.0)
    # Black (-1) a pixel or more outside the frame (closer, bilinear sampling blends in the border).
    assert np.all(tensor[0][(y < -1) | (y > height)] == -1.0)


box_values = st.tuples(st.floats(0, 200), st.floats(0, 200), st.floats(5, 50), st.floats(0.05, 1.0))


@given(st.lists(box_values, min_size=1, max_size=12))
def test_suppression_merges_overlapping_detections_only(detections):
    x, y, size, score = (np.array(column) for column in zip(*detections))
    values = np.stack([x, y, x + size, y + size, x + size / 2, y + size / 2], axis=-1)
    merged = people.suppress(score, values)
    scores = [s for s, _ in merged]
    assert scores == sorted(scores, reverse=True) and set(scores) <= set(score.tolist())
    for s, v in merged:  # an average of boxes stays a box, and its point stays its centre
        assert v[2] - v[0] >= 5 - 1e-9 and v[3] - v[1] >= 5 - 1e-9
        np.testing.assert_allclose(v[4:], (v[:2] + v[2:4]) / 2, atol=1e-9)
    assert len(merged) <= len(detections) and merged[0][0] == score.max()
    # Detections that overlap nothing are kept exactly as they were.
    alone = [i for i in range(len(score)) if np.sum(box_iou(values[i:i + 1, :4], values[:, :4])[0] > 0) == 1]
    for i in alone:
        assert any(np.array_equal(v, values[i]) for _, v in merged)


def test_two_copies_of_a_detection_are_one_and_far_ones_stay_apart():
    values = np.array([[0, 0, 10, 10, 1], [0, 0, 10, 10, 3], [100, 100, 110, 110, 7.0]])
    merged = people.suppress(np.array([0.9, 0.3, 0.5]), values)
    assert [round(s, 3) for s, _ in merged] == [0.9, 0.5]
    np.testing.assert_allclose(merged[0][1], [0, 0, 10, 10, (0.9 * 1 + 0.3 * 3) / 1.2])
    np.testing.assert_allclose(merged[1][1], values[2])


@pytest.mark.slow
def test_the_person_detector_finds_what_mediapipes_finds(monkeypatch):
    """On frames of the sample, our letterbox, model, anchors and suppression give MediaPipe's own pose
    detection graph's best person: the same score and the same hip centre."""
    mediapipe = pytest.importorskip("mediapipe")
    import cv2

    frames = {f.index: f.image for f in read_frames(SAMPLE) if f.index % 25 == 5}
    # The graph names its model by a path relative to the folder that holds the mediapipe package.
    monkeypatch.chdir(Path(mediapipe.__file__).parent.parent)
    config = ('input_stream: "image" output_stream: "detections" node { calculator: "PoseDetectionCpu" '
              'input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }')
    graph = mediapipe.CalculatorGraph(graph_config=config)
    found: list = []
    graph.observe_output_stream("detections", lambda _, packet: found.append(mediapipe.packet_getter.get_proto_list(packet)))
    graph.start_run({})
    compared = 0
    try:
        for time, (index, image) in enumerate(frames.items()):
            found.clear()
            rgb = mediapipe.packet_creator.create_image_frame(image_format=mediapipe.ImageFormat.SRGB,
                                                              data=cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            graph.add_packet_to_input_stream("image", rgb.at(time))
            graph.wait_until_idle()
            theirs = found[0] if found else []
            ours = people.find_people(image, min_score=0.5)
            for detection in theirs:
                hips = detection.location_data.relative_keypoints[0]
                hips = np.array([hips.x * image.shape[1], hips.y * image.shape[0]])
                best = min(ours, key=lambda p: np.hypot(*(p.region.centre - hips)))
                assert best.score == pytest.approx(detection.score[0], abs=0.01), index
                assert np.hypot(*(best.region.centre - hips)) < 2.0, index
                compared += 1
    finally:
        graph.close()
    assert compared >= 5


region_values = st.builds(lambda x, y, side: Region(np.array([x, y]), side, 0.0),
                          st.floats(0, 300), st.floats(0, 300), st.floats(10, 200))


def _overlap(a: Region, b: Region) -> float:
    ha, hb = a.side / 2, b.side / 2
    inter = np.prod(np.clip(np.minimum(a.centre + ha, b.centre + hb) - np.maximum(a.centre - ha, b.centre - hb), 0, None))
    return float(inter / (a.side ** 2 + b.side ** 2 - inter))


@given(st.lists(region_values, max_size=6), st.lists(region_values, max_size=6))
def test_association_keeps_one_region_per_person_and_prefers_the_fresh_one(followed, found):
    """As MediaPipe's AssociationCalculator: no two kept regions overlap by more than SAME_REGION, the
    newest region always survives, and a fresh region that overlaps nothing fresher is kept."""
    kept = associate(followed, found)
    assert all(_overlap(a, b) <= SAME_REGION for i, a in enumerate(kept) for b in kept[i + 1:])
    everything = followed + found
    if everything:
        assert kept[-1] is everything[-1]
    for i, region in enumerate(found):
        if all(_overlap(region, later) <= SAME_REGION for later in found[i + 1:]):
            assert any(k is region for k in kept)
    # Regions only ever leave: nothing is kept that was not given.
    assert all(any(k is r for r in everything) for k in kept)


def _mediapipe_landmarker(mode: str, people: int = 3):
    """MediaPipe's own PoseLandmarker on the same two models (the reference of benchmarks/detect.py)."""
    pytest.importorskip("mediapipe")
    from mediapipe.tasks.python import BaseOptions, vision

    from benchmarks.detect import task_bundle

    options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=task_bundle()),
                                           running_mode=getattr(vision.RunningMode, mode), num_poses=people)
    return vision.PoseLandmarker.create_from_options(options)


def _their_landmarks(result, image: np.ndarray) -> list[np.ndarray]:
    height, width = image.shape[:2]
    return [np.array([(p.x * width, p.y * height) for p in person]) for person in result.pose_landmarks]


def test_a_fresh_look_gives_mediapipes_landmarks_to_a_tenth_of_a_pixel():
    """One frame, nobody followed yet: the person detector's region, the crop, the model and the
    heatmap refinement together give MediaPipe's PoseLandmarker's own 33 landmarks (image mode, which
    looks afresh in every frame) to within 0.1 px median, for everyone it finds (a landmark may move a
few pixels where a heatmap cell's confidence sits on the 0.5 that decides whether to refine it)."""
    import cv2
    import mediapipe

    landmarker = _mediapipe_landmarker("IMAGE")
    compared = 0
    try:
        for frame in read_frames(SAMPLE):
            if frame.index % 10 != 5:
                continue
            rgb = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
            theirs = _their_landmarks(landmarker.detect(rgb), frame.image)
            ours = [pose.points[:33] for pose in BlazePoseDetector().poses(frame.image)]
            assert len(ours) == len(theirs), frame.index
            for points in theirs:
                distance = min((np.linalg.norm(mine - points, axis=-1) for mine in ours), key=np.median)
                assert np.median(distance) < 0.1 and distance.max() < 5.0, (frame.index, distance)
                compared += 1
    finally:
        landmarker.close()
    assert compared >= 12


@pytest.mark.slow
def test_looking_every_frame_is_mediapipes_video_mode():
    """Followed through the sample with the person detector in every frame, as MediaPipe's
    PoseLandmarker does in video mode while it follows fewer than its 3 people, everyone is where
    MediaPipe has them, the walker entering at frame 59 and the man on the box: within a pixel (median over
    joints, then over person-frames; the walker is about 400 px tall)."""
    import cv2
    import mediapipe

    landmarker = _mediapipe_landmarker("VIDEO")
    ours_detector = BlazePoseDetector(look_every=1)
    distances, counts = [], []
    try:
        for frame in read_frames(SAMPLE, 40, 100):
            rgb = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
            theirs = _their_landmarks(landmarker.detect_for_video(rgb, int(frame.time * 1000)), frame.image)
            ours = [pose.points[:33] for pose in ours_detector.poses(frame.image)]
            counts.append((len(ours), len(theirs)))
            for points in theirs:
                if ours:
                    distances.append(min(np.median(np.linalg.norm(mine - points, axis=-1)) for mine in ours))
    finally:
        landmarker.close()
    assert sum(a == b for a, b in counts) >= 0.95 * len(counts), counts
    assert np.median(distances) < 1.0 and np.percentile(distances, 95) < 3.0, np.percentile(distances, [50, 95, 100])


@pytest.mark.slow
def test_a_person_who_walks_in_is_found_in_their_first_frames():
    """The walker enters the sample from the right; MediaPipe on every frame first has them at frame 59.
    The shipped detector, which looks for new people only every few frames while it follows the man on
    the box, must have them within two frames of that, and from then on."""
    detector = BlazePoseDetector()
    try:
        found = {index: keypoints for index, keypoints, *_ in detect_frames(detector, SAMPLE, 30, 110, {})}
    finally:
        detector.close()
    assert sorted(found) == list(range(30, 110))

    def walker_seen(keypoints: np.ndarray) -> bool:
        """Someone standing on the grass (feet in the lower third of the 994-px picture)."""
        return len(keypoints) > 0 and bool((np.nanmax(keypoints[..., 1], axis=1) > 700).any())

    first = min(i for i, people in found.items() if walker_seen(people))
    assert first <= 61, first
    assert all(walker_seen(found[i]) for i in range(first + 5, 110))


REAL = ROOT.parent / "shared" / "media" / "real"


def _follow(video: Path) -> list[np.ndarray]:
    """Everyone's 33 landmarks (P, 33, 2) px in each frame of ``video``, by the shipped detector."""
    detector = BlazePoseDetector()
    return [np.array([pose.points[:33] for pose in detector.poses(frame.image)]).reshape(-1, 33, 2)
            for frame in read_frames(video)]


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real corpus ({REAL}) is absent")
def test_both_men_of_the_handshake_are_found_where_mediapipe_finds_them():
    """Two men walk up to each other and shake hands (12 frames/s, portrait): where MediaPipe's
    PoseLandmarker has both, we have both, each within 1.5 % of his height of MediaPipe's (median)."""
    import cv2
    import mediapipe

    video = REAL / "two_people_handshake_portrait_12fps.mp4"
    ours = _follow(video)
    landmarker = _mediapipe_landmarker("VIDEO")
    found, distances = 0, []
    try:
        for frame, mine in zip(read_frames(video), ours):
            rgb = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
            for person in _their_landmarks(landmarker.detect_for_video(rgb, int(frame.time * 1000)), frame.image):
                height = np.ptp(person[:, 1])
                if len(mine):
                    distance = np.median(np.linalg.norm(mine - person[None], axis=-1), axis=-1).min() / height
                    found += distance < 0.2
                    distances.append(distance)
    finally:
        landmarker.close()
    assert len(ours) == 40 and found >= 78, found  # both men in at least 39 of the 40 frames
    assert np.median(distances) < 0.015


@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real corpus ({REAL}) is absent")
def test_the_squats_agree_with_tensorflow_js_blazepose():
    """An independent implementation of the same models (TensorFlow.js's BlazePose, its keypoints stored
    beside the clip): our landmarks lie within 1 % of the body's height of its (median over landmarks
    and frames; MediaPipe's own lie 0.7 % from it)."""
    import json

    video = REAL / "squats_portrait_5fps.mp4"
    theirs = np.array(json.loads(video.with_name(f"{video.stem}.blazepose_tfjs.json").read_text()))[..., :2]  # (65, 33, 2)
    ours = _follow(video)
    assert len(ours) == len(theirs) and all(len(people) == 1 for people in ours)
    ours = np.array([people[0] for people in ours])
    height = np.percentile(np.ptp(theirs[..., 1], axis=1), 95)
    assert np.median(np.linalg.norm(ours - theirs, axis=-1)) / height < 0.01
