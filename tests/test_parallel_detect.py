"""Detection shared out over threads (posemoe.detect.parallel) with the real BlazePose on the sample."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from posemoe import Cancelled, PoseMoEError
from posemoe.detect.blazepose import BlazePoseDetector
from posemoe.detect.parallel import auto_workers, detect_in_threads, stretches
from posemoe.pipeline import Settings, capture, detect_video, detect_video_in_threads
from posemoe.video import probe

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"
CLIP = Settings(start=70, stop=130)  # the walker is in view throughout


def detection_threads() -> list[threading.Thread]:
    """Detection threads still running, to prove none is left behind."""
    return [t for t in threading.enumerate() if t.name.startswith("posemoe-detect-")]


@given(st.integers(0, 10_000), st.integers(1, 50_000), st.integers(1, 8))
def test_stretches_cover_the_range_once_in_order(start, length, workers):
    ranges = stretches(start, start + length, workers)
    assert ranges[0][0] == start and ranges[-1][1] == start + length
    assert all(a < b for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert stretches(start, start + length, workers, open_end=True)[-1][1] is None


def test_one_thread_per_core_with_enough_frames_each(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert auto_workers(100) == 1  # a second detector's set-up would cost more than it saves
    assert auto_workers(230) == 3  # at least 60 frames each
    assert auto_workers(10**6) == 4  # one per core
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert auto_workers(10**6) == 8
    monkeypatch.setitem(sys.modules, "bpy", object())  # inside Blender too: threads need no new Python
    assert auto_workers(10**6) == 8


@pytest.mark.slow
def test_two_threads_give_the_one_thread_detections():
    info = probe(SAMPLE)
    shared = detect_video_in_threads(SAMPLE, Settings(start=70, stop=130, workers=2), 2)
    detector = BlazePoseDetector()
    try:
        alone = detect_video(SAMPLE, detector, CLIP)
    finally:
        detector.close()
    assert len(shared) == len(alone) == 60

    def walker(people: np.ndarray) -> np.ndarray:
        """The tallest person in a frame: the walker, who fills the lower half of the picture."""
        return people[np.argmax(np.nanmax(people[..., 1], 1) - np.nanmin(people[..., 1], 1))]

    # Before the seam at frame 100 both runs are the same computation on the same frames.
    for (a, *_), (b, *_) in zip(shared[:30], alone[:30]):
        assert len(a) == len(b)
        if len(a):
            np.testing.assert_array_equal(walker(a), walker(b))
    # After it the second thread found the walker afresh; the landmark model answers a region framed a
    # little differently a little differently (typically 5-10 px on this 400 px tall walker), and the
    # two runs follow them on without meeting again.
    apart = [np.nanmean(np.linalg.norm(walker(a) - walker(b), axis=-1)) for (a, *_), (b, *_) in zip(shared[30:], alone[30:])
             if len(a) and len(b)]
    assert len(apart) >= 28
    assert np.median(apart) < 0.01 * info.width and max(apart) < 0.03 * info.width


@pytest.mark.slow
def test_a_person_followed_over_the_seam_is_not_lost():
    # The man walking on the box's roof (feet above y = 460 px): the person detector finds him near
    # the start of the clip, then seldom; the landmark model follows him until frame 168. A thread
    # starting at the seam (frame 115) does not find him, so the thread before it carries him on.
    settings = Settings(start=0, stop=230, workers=2)
    shared = detect_video_in_threads(SAMPLE, settings, 2)
    detector = BlazePoseDetector()
    try:
        alone = detect_video(SAMPLE, detector, settings)
    finally:
        detector.close()

    def on_the_box(people: np.ndarray) -> bool:
        return bool(len(people)) and bool((np.nanmax(people[..., 1], 1) < 460).any())

    seen_alone = [i for i, (people, *_) in enumerate(alone) if on_the_box(people)]
    seen_shared = [i for i, (people, *_) in enumerate(shared) if on_the_box(people)]
    assert max(seen_alone) > 150  # followed well past the seam by one stream
    assert seen_shared == seen_alone


@pytest.mark.slow
def test_capture_with_workers_records_the_detector_and_covers_the_clip():
    take = capture(SAMPLE, Settings(start=70, stop=130, workers=2))
    assert take.settings["detector"] == BlazePoseDetector.name
    assert take.settings["workers"] == 2
    # The take runs from the walker's first to last detection inside the clip.
    assert 70 <= take.first_frame < 80 and 120 < take.first_frame + len(take.joints_world) <= 130
    assert np.isfinite(take.joints_world).all()


def test_cancel_stops_every_thread():
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 20  # after a few seconds of detection

    with pytest.raises(Cancelled):
        capture(SAMPLE, Settings(start=0, stop=230, workers=2), cancel=cancel)
    assert detection_threads() == []


def test_a_thread_error_arrives_as_a_sentence_and_stops_the_others(tmp_path):
    broken = tmp_path / "not_a_video.mp4"
    broken.write_bytes(b"this is not a video")
    with pytest.raises(PoseMoEError, match="OpenCV cannot open|no decodable frame"):
        detect_in_threads(broken, [(0, 10), (10, 20)], 3, lambda *frame: None, lambda: None)
    assert detection_threads() == []


def test_an_error_in_the_caller_stops_every_thread():
    def on_frame(index, keypoints, confidence, *_):
        raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError, match="the caller failed"):
        detect_in_threads(SAMPLE, stretches(0, 230, 2), 3, on_frame, lambda: None)
    assert detection_threads() == []


def test_workers_must_be_a_count():
    with pytest.raises(PoseMoEError, match="detection threads"):
        capture(SAMPLE, Settings(start=70, stop=80, workers=-1))
