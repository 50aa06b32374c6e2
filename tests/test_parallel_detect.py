"""Detection shared out over processes (posemoe.detect.parallel) with the real BlazePose on the sample."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from posemoe import Cancelled, PoseMoEError
from posemoe.detect.blazepose import BlazePoseDetector
from posemoe.detect.parallel import auto_workers, detect_in_processes, stretches
from posemoe.pipeline import Settings, capture, detect_video, detect_video_in_processes
from posemoe.video import probe

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"
CLIP = Settings(start=70, stop=130)  # the walker is in view throughout


def detection_workers() -> list[int]:
    """Process ids of running detection workers (Linux /proc), to prove none is left behind."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"posemoe.detect.parallel" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@given(st.integers(0, 10_000), st.integers(1, 50_000), st.integers(1, 8))
def test_stretches_cover_the_range_once_in_order(start, length, workers):
    ranges = stretches(start, start + length, workers)
    assert ranges[0][0] == start and ranges[-1][1] == start + length
    assert all(a < b for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert stretches(start, start + length, workers, open_end=True)[-1][1] is None


def test_one_worker_per_core_for_long_videos_only(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.delitem(sys.modules, "bpy", raising=False)  # other tests of this run may have loaded it
    assert auto_workers(230) == 1  # the sample: starting processes would cost more than it saves
    assert auto_workers(1_800) == 3  # at least 600 frames each
    assert auto_workers(10**6) == 4  # one per core
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert auto_workers(10**6) == 8
    monkeypatch.setitem(sys.modules, "bpy", object())  # inside Blender: always one process
    assert auto_workers(10**6) == 1


def test_two_processes_give_the_one_process_detections():
    info = probe(SAMPLE)
    shared = detect_video_in_processes(SAMPLE, Settings(start=70, stop=130, workers=2), 2)
    detector = BlazePoseDetector()
    try:
        alone = detect_video(SAMPLE, detector, CLIP)
    finally:
        detector.close()
    assert len(shared) == len(alone) == 60
    # Before the seam at frame 100 both ran the same detector on the same frames: identical.
    for (a, ca), (b, cb) in zip(shared[:30], alone[:30]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ca, cb)
    # After it, MediaPipe's history differs (see posemoe.detect.parallel): the walker, the tallest
    # person, is still found at nearly the same place wherever both runs found anyone.
    compared = 0
    for (a, _), (b, _) in zip(shared[30:], alone[30:]):
        if len(a) and len(b):
            walker_a = a[np.argmax(np.nanmax(a[..., 1], 1) - np.nanmin(a[..., 1], 1))]
            walker_b = b[np.argmax(np.nanmax(b[..., 1], 1) - np.nanmin(b[..., 1], 1))]
            assert np.nanmean(np.linalg.norm(walker_a - walker_b, axis=-1)) < 0.02 * info.width
            compared += 1
    assert compared >= 25


def test_capture_with_workers_records_the_detector_and_covers_the_clip():
    take = capture(SAMPLE, Settings(start=70, stop=130, workers=2))
    assert take.settings["detector"] == BlazePoseDetector.name
    assert take.settings["workers"] == 2
    # The take runs from the walker's first to last detection inside the clip.
    assert 70 <= take.first_frame < 80 and 120 < take.first_frame + len(take.joints_world) <= 130
    assert np.isfinite(take.joints_world).all()


def test_a_script_without_a_main_guard_can_detect_in_processes(tmp_path):
    # multiprocessing's spawn would re-run this script in every worker; our workers must not.
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from posemoe.pipeline import Settings, detect_video_in_processes\n"
        f"found = detect_video_in_processes({str(SAMPLE)!r}, Settings(start=100, stop=120), 2)\n"
        "print('frames', len(found))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("frames 20")


def test_cancel_stops_every_worker():
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 20  # after a few seconds of detection

    with pytest.raises(Cancelled):
        capture(SAMPLE, Settings(start=0, stop=230, workers=2), cancel=cancel)
    assert detection_workers() == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_a_worker_that_dies_is_reported_and_the_others_are_stopped():
    killed = []

    def on_frame(index, keypoints, confidence):
        if not killed:
            killed.append(detection_workers()[0])
            os.kill(killed[0], signal.SIGKILL)

    with pytest.raises(PoseMoEError, match="stopped unexpectedly"):
        detect_in_processes(SAMPLE, stretches(0, 230, 2), 3, on_frame, lambda: None)
    assert detection_workers() == []


def test_a_worker_error_arrives_as_a_sentence(tmp_path):
    broken = tmp_path / "not_a_video.mp4"
    broken.write_bytes(b"this is not a video")
    with pytest.raises(PoseMoEError, match="OpenCV cannot open|no decodable frame"):
        detect_in_processes(broken, [(0, 10), (10, 20)], 3, lambda *frame: None, lambda: None)
    assert detection_workers() == []


def test_workers_must_be_a_count():
    with pytest.raises(PoseMoEError, match="detection processes"):
        capture(SAMPLE, Settings(start=70, stop=80, workers=-1))
