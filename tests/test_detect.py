"""The default detector: BlazePose's landmark model run by us (posemoe.detect.landmarks) and the
following detector on the sample (posemoe.detect.blazepose)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from posemoe.detect import detect_frames
from posemoe.detect.blazepose import BlazePoseDetector
from posemoe.detect.landmarks import SIZE, Region, crop, region_from_axis

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
