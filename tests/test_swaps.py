"""Left/right swap repair (posemoe.swaps) on the sample's real detections and on synthetic motion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posemoe.swaps import PAIRS, body_height, exchange, repair_swaps

from conftest import ROOT

# The chosen person's 2D keypoints on samples/walk.mp4 as the shipped detector finds them (NaN where
# unseen), written by `python benchmarks/swaps.py --save tests/data/walk_detections.npz`.
DETECTIONS = ROOT / "tests" / "data" / "walk_detections.npz"
KINDS = {"whole body": ("legs", "arms"), "legs": ("legs",), "arms": ("arms",)}


@pytest.fixture(scope="module")
def walk():
    with np.load(DETECTIONS) as data:
        keypoints, confidence, fps = data["keypoints"].astype(float), data["confidence"].astype(float), float(data["fps"])
    # BlazePose's own output already flickers the legs' labels for a frame or a few as they pass each
    # other in this side view; the clean clip is the one with those put back.
    clean, clean_confidence, relabelled = repair_swaps(keypoints, confidence, fps)
    assert 0 < relabelled[:, 0].sum() <= 30 and relabelled[:, 1].sum() <= 5
    return clean, clean_confidence, fps


def test_the_clean_clip_comes_through_untouched(walk):
    keypoints, confidence, fps = walk
    fixed, fixed_confidence, repaired = repair_swaps(keypoints, confidence, fps)
    assert not repaired.any()
    np.testing.assert_array_equal(fixed, keypoints)
    np.testing.assert_array_equal(fixed_confidence, confidence)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_injected_swaps_of_3_to_30_frames_are_put_back(walk, kind):
    keypoints, confidence, fps = walk
    seen = np.flatnonzero(np.isfinite(keypoints).all(axis=(1, 2)))
    rng = np.random.default_rng(1)
    swapped = repaired = others = 0
    for _ in range(60):
        length = int(rng.integers(3, 31))
        start = int(rng.integers(0, len(seen) - length + 1))
        frames = seen[start:start + length]
        broken, broken_confidence = exchange(keypoints, confidence, frames, KINDS[kind])
        fixed, _, flags = repair_swaps(broken, broken_confidence, fps)
        right = (np.nan_to_num(fixed - keypoints) == 0).all(axis=(1, 2))
        swapped += length
        repaired += int(right[frames].sum())
        outside = np.ones(len(keypoints), dtype=bool)
        outside[frames] = False
        others += int((~right & outside).sum())
        assert flags[frames].any(axis=1).mean() >= 0.5  # the take records the repair where it was made
    assert repaired / swapped >= 0.95
    assert others / swapped <= 0.02


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(3, 30), st.sampled_from(list(KINDS)))
def test_a_swap_in_smooth_motion_is_always_put_back(seed, length, kind):
    """Two arms and two legs swinging apart and together (never meeting) over 4 s at 30 frames/s."""
    rng = np.random.default_rng(seed)
    n = 120
    t = np.arange(n) / 30.0
    keypoints = np.zeros((n, 17, 2))
    keypoints[:, :, 1] = np.linspace(0, 400, 17)[None] + 5 * np.sin(2 * np.pi * 0.5 * t)[:, None]
    keypoints[:, :, 0] = 300 + 80 * t[:, None]  # walking right
    phase = rng.uniform(0, 2 * np.pi)
    for right, left in PAIRS.values():
        for depth, (r, l) in enumerate(zip(right, left)):
            swing = (20 + 30 * depth) * np.sin(2 * np.pi * 0.9 * t + phase)
            keypoints[:, r, 0] += 60 + swing  # right side always to the right of the left side
            keypoints[:, l, 0] -= 60 + swing
    keypoints += rng.normal(0, 1.0, keypoints.shape)  # a detector's jitter
    confidence = np.full((n, 17), 0.9)
    start = int(rng.integers(0, n - length))
    frames = np.arange(start, start + length)
    broken, broken_confidence = exchange(keypoints, confidence, frames, KINDS[kind])
    fixed, _, _ = repair_swaps(broken, broken_confidence, 30.0)
    np.testing.assert_array_equal(fixed, keypoints)


def test_missing_frames_stay_missing_and_short_clips_pass_through():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 400, (50, 17, 2))
    keypoints[10:20] = np.nan
    confidence = rng.uniform(0.5, 1, (50, 17))
    confidence[10:20] = 0
    fixed, _, repaired = repair_swaps(keypoints, confidence, 30.0)
    assert np.isnan(fixed[10:20]).all() and not repaired[10:20].any()
    one = repair_swaps(keypoints[:1], confidence[:1], 30.0)
    np.testing.assert_array_equal(one[0], keypoints[:1])
    empty = repair_swaps(np.full((5, 17, 2), np.nan), np.zeros((5, 17)), 30.0)
    assert not empty[2].any()


def test_body_height_ignores_missing_frames():
    keypoints = np.full((4, 17, 2), np.nan)
    keypoints[1, :, 1] = np.linspace(100, 500, 17)
    assert body_height(keypoints) == 400
