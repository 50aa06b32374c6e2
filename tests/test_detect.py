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
from posemoe.detect.blazepose import BlazePoseDetector
from posemoe.detect.landmarks import SIZE, Region, crop, region_from_axis
from posemoe.detect import people
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
    assert np.isclose(region.side, 3.0 * radius)


def test_the_crop_samples_the_image_where_the_region_says():
    # An image whose pixel (row, column) holds (column, row, 0) in its first two channels, so every
    # sampled pixel says where it came from.
    height, width = 300, 400
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([cols % 256, rows % 256, np.zeros_like(rows)], axis=-1).astype(np.uint8)[..., ::-1]  # BGR
    region = Region(np.array([120.0, 130.0]), 128.0, 0.0)  # half a pixel per crop pixel, upright
    patch = crop(np.ascontiguousarray(image), region)[0] * 255.0  # RGB in [0, 255]
    # Crop pixel (a, b) has its centre at crop units ((a + 0.5) / SIZE, ...), i.e. at image point
    # centre + ((a + 0.5) / SIZE - 0.5) * side, whose pixel index is that minus a half.
    a = np.arange(SIZE)
    offset = ((a + 0.5) / SIZE - 0.5) * 128.0 - 0.5
    np.testing.assert_allclose(patch[10, :, 0], 120.0 + offset, atol=0.6)  # red: the column (uint8, rounded)
    np.testing.assert_allclose(patch[:, 10, 1], 130.0 + offset, atol=0.6)  # green: the row


def test_the_anchors_are_mediapipes_grids_row_by_row():
    anchors = people._anchors()
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
    np.testing.assert_allclose(rgb[middle_row, cols_in, 0], x[cols_in] * 255 / (width - 1), atol=1.5)
    np.testing.assert_allclose(rgb[rows_in, middle_col, 1], y[rows_in] * 255 / (height - 1), atol=1.5)
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
    alone = [i for i in range(len(score)) if np.sum(people._iou(values[i, :4], values[:, :4]) > 0) == 1]
    for i in alone:
        assert any(np.array_equal(v, values[i]) for _, v in merged)


def test_two_copies_of_a_detection_are_one_and_far_ones_stay_apart():
    values = np.array([[0, 0, 10, 10, 1], [0, 0, 10, 10, 3], [100, 100, 110, 110, 7.0]])
    merged = people.suppress(np.array([0.9, 0.3, 0.5]), values)
    assert [round(s, 3) for s, _ in merged] == [0.9, 0.5]
    np.testing.assert_allclose(merged[0][1], [0, 0, 10, 10, (0.9 * 1 + 0.3 * 3) / 1.2])
    np.testing.assert_allclose(merged[1][1], values[2])


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


def test_a_person_who_walks_in_is_kept_from_their_first_frames():
    """The walker enters the sample from the right at about frame 50. Looking for new people only
    every 40 frames here (at frames 30 and 70), they are found at frame 70 at the latest; the frames
    before that look must not be lost: the walker is followed back through them."""
    detector = BlazePoseDetector(discover_every=40)
    try:
        found = {index: keypoints for index, keypoints, _ in detect_frames(detector, SAMPLE, 30, 110, {})}
    finally:
        detector.close()
    assert sorted(found) == list(range(30, 110))

    def walker_seen(keypoints: np.ndarray) -> bool:
        """Someone standing on the grass (feet in the lower third of the 994-px picture)."""
        return len(keypoints) > 0 and bool((np.nanmax(keypoints[..., 1], axis=1) > 700).any())

    first = min(i for i, people in found.items() if walker_seen(people))
    assert first <= 60, first  # MediaPipe on every frame first finds them at 59
    assert all(walker_seen(found[i]) for i in range(first + 5, 110))
