"""The default detector over a video in several threads, each on its own stretch of frames.

Detection is by far the slowest stage of a capture. A stretch's work (decoding with OpenCV, BlazePose's
two models on ONNX Runtime) runs in native code that lets go of Python's lock, so one thread per core,
each on one contiguous stretch, uses the cores nearly as well as processes would, without their start-up
(a process imports the libraries and loads the models: seconds, more than the whole detection of a short
clip), pickled messages, or the trouble of starting Python processes from inside Blender.

At a seam the later stretch's detector looks for people afresh, as at the start of any video, and its
person detector may not find at once someone the earlier stretch was following (on the bundled walk the
man on the box is followed by the landmark model for 50 frames after the detector last finds him). So
each stretch but the last carries on over its seam, following the people it has (landmark model only,
no looks for new people), for as long as one of them is missing from the later stretch's own results
at the same frame, and only those; its people there are added to that frame's. One stream and several
threads then see the same people (``tests/test_parallel_detect.py``), at the cost of following them on
(one landmark model call per carried person per frame).
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .. import PoseMoEError
from ..track import box_iou, person_boxes

#: Two people at one frame, from two stretches, are one person when their keypoints' boxes overlap by
#: more than this (intersection over union).
SAME_PERSON = 0.5

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


def _merge(primary: tuple[np.ndarray, ...], extra: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """One frame's people from its own stretch and those carried over a seam: (keypoints (P, 17, 2),
    confidence (P, 17)[, hands (P, 2, 21, 4)]) each -> the union, a carried person dropped where it is
    one already there."""
    if len(extra[0]) == 0:
        return primary
    if len(primary[0]):
        new = box_iou(person_boxes(*extra[:2]), person_boxes(*primary[:2])).max(1) <= SAME_PERSON
        extra = tuple(array[new] for array in extra)
    return tuple(np.concatenate([mine, carried]) for mine, carried in zip(primary, extra))


def detect_in_threads(path: str | Path, ranges: list[tuple[int, int | None]], max_people: int,
                      on_frame: Callable[..., None], check: Callable[[], None],
                      hands: bool = False,
                      observer_for: Callable[[int, int | None], Callable[..., None]] | None = None
                      ) -> tuple[float, float, float]:
    """Detect the frame ``ranges`` of ``path`` (see :func:`stretches`), one thread each, with the
    default detector, each carrying its people over its seam (see the module's docstring).

    on_frame(index, keypoints (P, 17, 2) px, confidence (P, 17)[, hands (P, 2, 21, 4) with ``hands``,
    see :mod:`posemoe.detect`]) is called in the calling thread as
    results arrive, in any order, at least once for every frame; a frame whose people grow (someone
    carried over a seam) is given again, whole. check() is called often and may raise (cancel): every
    thread then stops within a frame and the exception propagates. ``observer_for(start, end)``, when
    given, makes each stretch's ``observe`` (see :func:`posemoe.detect.detect_frames`), called in that
    stretch's thread. Returns the threads' summed (decode, detect, camera) seconds. A thread that fails raises its error here, as a PoseMoEError, after the
    others have stopped. Frames a truncated file lacks simply never arrive.
    """
    from . import default_detector, detect_frames

    inbox: queue.Queue = queue.Queue(maxsize=256)  # bounded: a slow consumer holds the threads back
    stop = threading.Event()
    totals = {"decode": 0.0, "detect": 0.0, "camera": 0.0}
    # Each stretch's people's boxes (P, 4) by frame, for the stretch before it to compare its own with;
    # dropped once that one is done (a few bytes a frame meanwhile: memory stays flat on long videos).
    published: dict[int, np.ndarray] = {}
    finished: set[int] = set()  # stretches that will publish no more
    news = threading.Condition()
    overall_end = ranges[-1][1] if ranges else None

    def put(message) -> None:
        while not stop.is_set():
            try:
                inbox.put(message, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def theirs(index: int, owner: int) -> np.ndarray | None:
        """The boxes of the people the stretch that owns the frame found there; None if it never will."""
        with news:
            while index not in published and owner not in finished:
                if stop.is_set():
                    raise _Stopped
                news.wait(0.1)
            return published.get(index)

    def owner_of(index: int) -> int:
        return next((i for i, (_, end) in enumerate(ranges) if end is None or index < end), len(ranges) - 1)

    observers = [None if observer_for is None else observer_for(start, end) for start, end in ranges]

    def work(number: int, start: int, end: int | None) -> None:
        seconds: dict[str, float] = {}
        try:
            detector = default_detector(max_people, hands=hands)
            try:
                # To the end of the whole range: past its own end a stretch only follows its people.
                for index, *result in detect_frames(detector, path, start, overall_end, seconds, observers[number]):
                    keypoints, confidence = result[:2]
                    if end is None or index < end:
                        if not set(range(number)) <= finished:  # a stretch before may still ask
                            with news:
                                published[index] = person_boxes(keypoints, confidence)
                                news.notify_all()
                        put(("frame", (index, *result)))
                        detector.looking = end is None or index + 1 < end  # past the seam: follow only
                        continue
                    if len(keypoints) == 0:
                        break
                    own = theirs(index, owner_of(index))
                    if own is None:
                        break
                    missing = (box_iou(person_boxes(keypoints, confidence), own).max(1) <= SAME_PERSON
                               if len(own) else np.ones(len(keypoints), dtype=bool))
                    if not missing.any():
                        break
                    put(("extra", (index, *(array[missing] for array in result))))
                    detector.keep(missing)  # those the later stretch has need not be followed here
            finally:
                detector.close()
                with news:
                    finished.add(number)
                    for index in [i for i in published if set(range(owner_of(i))) <= finished]:
                        del published[index]  # every stretch before its owner is done: nobody will ask
                    news.notify_all()
            put(("done", seconds))
        except _Stopped:
            return
        except Exception as error:  # raised in the caller's thread, which stops the others
            message = str(error) if isinstance(error, PoseMoEError) else f"{type(error).__name__}: {error}"
            try:
                put(("error", message))
            except _Stopped:
                return

    threads = [threading.Thread(target=work, args=(i, *stretch), name=f"posemoe-detect-{i}", daemon=True)
               for i, stretch in enumerate(ranges)]
    frames: dict[int, tuple[np.ndarray, ...]] = {}
    extras: dict[int, tuple[np.ndarray, ...]] = {}
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
                index, *result = payload
                frames[index] = tuple(result)
                on_frame(index, *(_merge(frames[index], extras[index]) if index in extras else frames[index]))
            elif kind == "extra":
                index, *result = payload
                extras[index] = _merge(extras[index], tuple(result)) if index in extras else tuple(result)
                if index in frames:
                    on_frame(index, *_merge(frames[index], extras[index]))
            elif kind == "done":
                for key in totals:
                    totals[key] += payload.get(key, 0.0)
                running -= 1
            else:
                raise PoseMoEError(f"Detection failed: {payload}")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return totals["decode"], totals["detect"], totals["camera"]
