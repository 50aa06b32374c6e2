"""BlazePose over a long video in several processes, each on its own stretch of frames.

MediaPipe runs its pose models on one CPU core (off mobile its XNNPACK back end defaults to one
thread), and detection is by far the slowest stage of a capture. Cut into one contiguous stretch per
core, a video is detected nearly that many times faster. The seams are invisible to our tracker,
which links people from frame to frame by their keypoints alone; at a seam the stretch's detector
finds people afresh instead of following them, as at the start of any video. MediaPipe's results
depend on what it has been following (people it tracks, real or not, steer where it looks next), so
they differ from one process's in a few frames: on the sample, cut in two, the chosen person's 2D
is identical in 138 of 144 frames and 5-13 px off in 6, a dozen or more frames after the seam, where
the one-process run was following more people than the other.

Each worker decodes its own stretch, detects, and streams its frames back; the caller reassembles
them in order, reports progress, and on cancel or failure stops every worker.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .. import PoseMoEError

#: Below this many frames per worker, starting the processes (each imports MediaPipe and OpenCV and
#: loads the models: a few seconds) costs more than it saves.
MIN_FRAMES_PER_WORKER = 600
MAX_WORKERS = 8
_BATCH = 16  # frames per message: fewer, larger pickles


def auto_workers(frames: int) -> int:
    """Processes worth starting for ``frames`` frames on this machine (1: detect in this process).

    Never inside Blender, whose ``sys.executable`` may be Blender itself (the add-on's worker Python,
    a process of its own, does split its work).
    """
    if "bpy" in sys.modules:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS, frames // MIN_FRAMES_PER_WORKER))


def stretches(start: int, stop: int, workers: int, open_end: bool = False) -> list[tuple[int, int | None]]:
    """``workers`` contiguous, nearly equal frame ranges covering ``start:stop``.

    open_end: the last range runs to the end of the file (stop None), for a frame count that is only
    the container's estimate.
    """
    edges = np.linspace(start, stop, workers + 1).round().astype(int)
    ranges: list[tuple[int, int | None]] = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    if open_end and ranges:
        ranges[-1] = (ranges[-1][0], None)
    return ranges


def _work(path: str, start: int, stop: int | None, max_people: int, parent: int, out) -> None:
    """One worker: detect frames ``start:stop`` and write pickled messages to ``out``:
    ("frames", [(index, keypoints, confidence)...]) as it goes, then ("done", (decode seconds, detect
    seconds)), or ("error", sentence). Stops by itself if its parent dies (a killed Blender worker must
    not leave detectors running)."""

    def send(message) -> None:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        from . import default_detector, detect_frames

        detector = default_detector(max_people)
        batch, seconds = [], {"decode": 0.0, "detect": 0.0}
        for index, keypoints, confidence in detect_frames(detector, path, start, stop, seconds):
            batch.append((index, np.asarray(keypoints), np.asarray(confidence)))
            if len(batch) == _BATCH:
                send(("frames", batch))
                batch = []
                if os.getppid() != parent:
                    return
        detector.close()
        send(("frames", batch))
        send(("done", (seconds["decode"], seconds["detect"])))
    except BrokenPipeError:  # the caller has gone
        return
    except Exception as error:  # sent to the caller, which raises it as a PoseMoEError
        send(("error", str(error) if isinstance(error, PoseMoEError) else f"{type(error).__name__}: {error}"))


def _read(process: subprocess.Popen, inbox: queue.Queue) -> None:
    """Forward one worker's messages to ``inbox``; ("exit", status) when its output ends."""
    try:
        while True:
            inbox.put(pickle.load(process.stdout))  # our own child's output: trusted
    except (EOFError, OSError, pickle.UnpicklingError):
        inbox.put(("exit", process.wait()))


def detect_in_processes(path: str | Path, ranges: list[tuple[int, int | None]], max_people: int,
                        on_frame: Callable[[int, np.ndarray, np.ndarray], None],
                        check: Callable[[], None]) -> tuple[float, float]:
    """Detect the frame ``ranges`` of ``path`` (see :func:`stretches`), one process each, with the
    default detector.

    on_frame(index, keypoints (P, 17, 2) px, confidence (P, 17)) is called for every frame, in any
    order, as results arrive; check() is called often and may raise (cancel) to stop every worker.
    Returns the workers' summed (decode, detect) seconds. A worker that fails or dies raises
    PoseMoEError. Frames a truncated file lacks simply never arrive.

    The workers are plain ``python -m posemoe.detect.parallel`` processes rather than
    multiprocessing's: those re-run the caller's main script, which breaks scripts without a
    ``__main__`` guard.
    """
    inbox: queue.Queue = queue.Queue()
    processes, readers = [], []
    # The workers import this very package, installed or not.
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    decode = detect = 0.0
    try:
        for start, stop in ranges:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(Path(path).resolve()), str(start), str(stop), str(max_people),
                 str(os.getpid())], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            processes.append(process)
            readers.append(threading.Thread(target=_read, args=(process, inbox), daemon=True))
            readers[-1].start()
        running = len(processes)
        while running:
            check()
            try:
                kind, payload = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "frames":
                for index, keypoints, confidence in payload:
                    on_frame(index, keypoints, confidence)
            elif kind == "done":
                decode, detect = decode + payload[0], detect + payload[1]
            elif kind == "exit":
                if payload != 0:
                    raise PoseMoEError(f"A detection process stopped unexpectedly (exit status {payload}); "
                                       "try again, or set workers to 1 to detect in one process.")
                running -= 1
            else:
                raise PoseMoEError(f"Detection failed: {payload}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for reader in readers:  # each ends at its worker's end of output
            reader.join()
        for process in processes:
            process.stdout.close()
    return decode, detect


if __name__ == "__main__":
    _path, _start, _stop, _people, _parent = sys.argv[1:6]
    _work(_path, int(_start), None if _stop == "None" else int(_stop), int(_people), int(_parent), sys.stdout.buffer)
