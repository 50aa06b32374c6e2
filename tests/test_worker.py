"""Captures beside the caller: the worker subprocess and its line protocol, the in-process thread, cancel
and broken interpreters. Real detector and lifter on a short stretch of the sample clip."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from posemoe import Cancelled, PoseMoEError
from posemoe.settings import Settings
from posemoe.worker import ThreadJob, WorkerJob, check_setup, start_capture

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"
SHORT = Settings(start=70, stop=110)


def _fake_python(tmp_path: Path, body: str) -> Path:
    """An executable standing in for a worker interpreter (it ignores its arguments)."""
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _left_behind(job) -> bool:
    """Whether the job's own temporary folder is still there (not a glob of /tmp: other test runs on
    the machine make folders of the same pattern)."""
    return job._folder.exists()


@pytest.mark.slow
def test_check_reports_what_works_in_plain_words():
    report = check_setup()
    assert report["can_capture"] and report["torch"] and report["onnxruntime"]
    assert any(line.startswith("Ready to capture") for line in report["summary"])
    out = subprocess.run([sys.executable, "-m", "posemoe.worker", "--check"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0
    assert json.loads(out.stdout.strip().splitlines()[-1])["posemoe"] == report["posemoe"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["worker", "thread"])
def test_capture_beside_the_caller_gives_the_takes(kind):
    job = start_capture(SAMPLE, SHORT, python=sys.executable if kind == "worker" else None)
    assert isinstance(job, WorkerJob if kind == "worker" else ThreadJob)
    seen = []
    takes = job.wait(progress=lambda j: seen.append((j.stage, j.fraction)), timeout=300)
    assert [t.person for t in takes] == [1]
    take = takes[0]
    assert 30 <= len(take) <= 40 and take.first_frame >= 70
    assert np.isfinite(take.joints_world).all()
    stages = [stage for stage, _ in seen]
    assert stages.index("detect") < stages.index("lift") < stages.index("trajectory")
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert not _left_behind(job), "the job's temporary folder must go"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["worker", "thread"])
def test_cancel_mid_capture_stops_it_and_leaves_nothing(kind):
    job = start_capture(SAMPLE, SHORT, python=sys.executable if kind == "worker" else None)
    deadline = time.monotonic() + 120
    while not (job.stage == "detect" and job.done >= 3):
        assert not job.poll() and time.monotonic() < deadline
        time.sleep(0.05)
    job.cancel()
    assert job.finished
    with pytest.raises(Cancelled):
        job.result()
    if kind == "worker":
        assert job._process.poll() is not None, "the worker process must be stopped"
    assert not _left_behind(job)


def test_a_missing_interpreter_is_a_clear_error(tmp_path):
    with pytest.raises(PoseMoEError, match="does not exist"):
        start_capture(SAMPLE, SHORT, python=tmp_path / "no" / "python")


def test_an_interpreter_without_posemoe_is_named(tmp_path):
    python = _fake_python(tmp_path, "echo \"/usr/bin/python3: Error while finding module specification for "
                                    "'posemoe.worker' (ModuleNotFoundError: No module named 'posemoe')\" >&2\nexit 1\n")
    job = start_capture(SAMPLE, SHORT, python=python)
    with pytest.raises(PoseMoEError, match="cannot import posemoe"):
        job.wait(timeout=30)


def test_a_worker_that_crashes_mid_run_is_reported(tmp_path):
    python = _fake_python(tmp_path, "cat > /dev/null\n"
                                    "echo '{\"hello\": {\"protocol\": 1, \"posemoe\": \"0.1.0\"}}'\n"
                                    "echo '{\"progress\": [\"detect\", 5, 40]}'\n"
                                    "echo 'Segmentation fault in libsomething' >&2\nkill -9 $$\n")
    job = start_capture(SAMPLE, SHORT, python=python)
    with pytest.raises(PoseMoEError, match=r"stopped unexpectedly \(exit status -9\): Segmentation fault"):
        job.wait(timeout=30)
    assert not _left_behind(job)


def test_a_worker_of_another_protocol_is_refused(tmp_path):
    python = _fake_python(tmp_path, "cat > /dev/null\necho '{\"hello\": {\"protocol\": 99, \"posemoe\": \"9.0\"}}'\n"
                                    "sleep 30\n")
    job = start_capture(SAMPLE, SHORT, python=python)
    with pytest.raises(PoseMoEError, match="protocol 99"):
        job.wait(timeout=30)
    assert job._process.poll() is not None


def test_worker_errors_arrive_as_sentences(tmp_path):
    job = start_capture(tmp_path / "missing.mp4", SHORT, python=sys.executable)
    with pytest.raises(PoseMoEError, match="missing.mp4"):
        job.wait(timeout=120)


def test_the_worker_refuses_an_unreadable_job():
    out = subprocess.run([sys.executable, "-m", "posemoe.worker"], input="not json\n", capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={**os.environ})
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1 and "hello" in lines[0] and "cannot read" in lines[-1]["error"]
