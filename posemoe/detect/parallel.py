"""The default detector over a video in several threads, each on its own stretch of frames.

Detection is by far the slowest stage of a capture. A stretch's work (decoding with OpenCV, BlazePose's
two models on ONNX Runtime) runs in native code that lets go of Python's lock, so one thread per core,
each on one contiguous stretch, uses the cores nearly as well as processes would, without their start-up
(a process imports the libraries and loads the models: seconds, more than the whole detection of a short
clip), pickled messages, or the trouble of starting Python processes from inside Blender. At a seam the
stretch's detector looks for people afresh, as at the start of any video; the tracker links people
across it by their keypoints alone.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .. import PoseMoEError

#: Below this many frames per thread, a second stretch (a seek, which decodes from the key frame before
#: it, and a fresh look for people) costs more than it saves.
MIN_FRAMES_PER_WORKER = 60
MAX_WORKERS = 8


def auto_workers(frames: int) -> int:
    """Threads worth starting for ``frames`` frames on this machine (1: detect in the calling thread)."""
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


class _Stopped(Exception):
    """The caller asked the threads to stop."""


def detect_in_threads(path: str | Path, ranges: list[tuple[int, int | None]], max_people: int,
                      on_frame: Callable[[int, np.ndarray, np.ndarray], None],
                      check: Callable[[], None]) -> tuple[float, float]:
    """Detect the frame ``ranges`` of ``path`` (see :func:`stretches`), one thread each, with the
    default detector.

    on_frame(index, keypoints (P, 17, 2) px, confidence (P, 17)) is called in the calling thread for
    every frame, in any order, as results arrive; check() is called often and may raise (cancel): every
    thread then stops within a frame and the exception propagates. Returns the threads' summed
    (decode, detect) seconds. A thread that fails raises its error here, as a PoseMoEError, after the
    others have stopped. Frames a truncated file lacks simply never arrive.
    """
    from . import default_detector, detect_frames

    inbox: queue.Queue = queue.Queue(maxsize=256)  # bounded: a slow consumer holds the threads back
    stop = threading.Event()
    totals = {"decode": 0.0, "detect": 0.0}

    def put(message) -> None:
        while not stop.is_set():
            try:
                inbox.put(message, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def work(start: int, end: int | None) -> None:
        seconds: dict[str, float] = {}
        try:
            detector = default_detector(max_people)
            try:
                for frame in detect_frames(detector, path, start, end, seconds):
                    put(("frame", frame))
            finally:
                detector.close()
            put(("done", seconds))
        except _Stopped:
            return
        except Exception as error:  # raised in the caller's thread, which stops the others
            message = str(error) if isinstance(error, PoseMoEError) else f"{type(error).__name__}: {error}"
            try:
                put(("error", message))
            except _Stopped:
                return

    threads = [threading.Thread(target=work, args=stretch, name=f"posemoe-detect-{i}", daemon=True)
               for i, stretch in enumerate(ranges)]
    try:
        for thread in threads:
            thread.start()
        running = len(threads)
        while running:
            check()
            try:
                kind, payload = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "frame":
                on_frame(*payload)
            elif kind == "done":
                totals["decode"] += payload.get("decode", 0.0)
                totals["detect"] += payload.get("detect", 0.0)
                running -= 1
            else:
                raise PoseMoEError(f"Detection failed: {payload}")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return totals["decode"], totals["detect"]
