"""BlazePose (Full) as a multi-person detector that follows people: the default, offline.

Two of BlazePose's parts do the work. Everyone found is followed from frame to frame by the landmark
model, which we run ourselves on ONNX Runtime (:mod:`posemoe.detect.landmarks`): one call per person
per frame. New people are looked for now and then by MediaPipe's multi-person PoseLandmarker (Tasks
API), whose person detector finds them; whoever it finds is followed from then on and back through the
frames since the last look. On the sample this is 1.7 times faster than MediaPipe on every frame and
keeps the walker in more frames (``benchmarks/detect.py``).

MediaPipe's models ship inside the ``mediapipe==0.10.21`` wheel (Apache-2.0) as bare ``.tflite`` files
for the legacy single-person ``solutions.pose``. The Tasks API wants a ``.task`` bundle whose models
carry input-normalisation metadata; we build it in memory from the wheel's files with MediaPipe's own
metadata writer: the detector takes pixels scaled to [-1, 1] and the landmark model pixels scaled to
[0, 1], as the legacy graphs do. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import threading
import types
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .. import PoseMoEError
from .landmarks import Pose, Region, landmarks, region_from_landmarks
from .layout import blazepose_to_h36m
from ..video import Frame



@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe's C++ start-up chatter (EGL probing, delegate and graph notices), which it
    writes straight to file descriptor 2 before its logging is configured. Python errors still raise."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_mediapipe() -> types.ModuleType:
    """``import mediapipe``, also where matplotlib is not installed (the Blender extension carries
    MediaPipe without it: 35 MB and eight more packages).

    MediaPipe's package ``__init__`` imports its drawing helpers, which import ``matplotlib.pyplot`` at
    the top to plot landmarks, which we never do. Without matplotlib a stand-in is put in place for
    that one import and taken away again, so anyone importing matplotlib later gets the real one or a
    plain ImportError; the drawing helpers' ``plt`` then says why if ever called. Thread-safe:
    detection threads start at once."""
    with _IMPORTING:
        if "mediapipe" in sys.modules or importlib.util.find_spec("matplotlib") is not None:
            import mediapipe

            return mediapipe

        def missing(name: str):
            raise ImportError(f"matplotlib is not installed, so MediaPipe's plotting (plt.{name}) is unavailable")

        stand_in = types.ModuleType("matplotlib")
        stand_in.pyplot = types.ModuleType("matplotlib.pyplot")
        stand_in.pyplot.__getattr__ = missing
        sys.modules.update({"matplotlib": stand_in, "matplotlib.pyplot": stand_in.pyplot})
        try:
            import mediapipe
        finally:
            del sys.modules["matplotlib"], sys.modules["matplotlib.pyplot"]
        return mediapipe


_IMPORTING = threading.Lock()


def _with_input_metadata(model: bytes, outputs: int, mean: float, std: float) -> bytes:
    import_mediapipe()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    writer.add_general_info("blazepose").add_image_input(norm_mean=[mean], norm_std=[std])
    for i in range(outputs):
        writer.add_feature_output(name=f"output_{i}")
    return bytes(writer.populate()[0])


@cache
def task_bundle() -> bytes:
    """The PoseLandmarker ``.task`` bundle (a zip of two models) built from the mediapipe wheel."""
    try:
        mediapipe = import_mediapipe()
    except ImportError as error:
        raise PoseMoEError("MediaPipe is not installed: run `pip install mediapipe==0.10.21` (the README's set-up does).") from error
    modules = Path(mediapipe.__file__).parent / "modules"
    detector = modules / "pose_detection" / "pose_detection.tflite"
    landmarks = modules / "pose_landmark" / "pose_landmark_full.tflite"
    if not detector.is_file() or not landmarks.is_file():
        raise PoseMoEError(f"The BlazePose models are missing from {modules}: reinstall `mediapipe==0.10.21`.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("pose_detector.tflite", _with_input_metadata(detector.read_bytes(), 2, 127.5, 127.5))
        bundle.writestr("pose_landmarks_detector.tflite", _with_input_metadata(landmarks.read_bytes(), 5, 0.0, 255.0))
    return buffer.getvalue()


#: Most frames between looks for people not yet followed: someone found is followed back through the
#: frames since the last look, which are kept for that. benchmarks/detect.py measures the choice: on
#: the sample, looking every 10 to 30 frames keeps the walker in about as many frames (145-150) at about
#: the same cost (28-30 ms per frame in one thread); every 5 costs a third more.
DISCOVER_EVERY = 20
#: The frames kept for following back may hold at most this many bytes (4K frames: 6 of them), so
#: memory does not grow with the picture size; fewer frames kept means more frequent looks.
LOOK_BACK_BYTES = 160 * 2**20
#: Frames between looks while nobody is followed.
LOOK_WHILE_ALONE = 4
#: Two bodies are one person seen twice when this much of the smaller one's landmark box lies inside
#: the other's. (Not intersection over union: when two people come close, a region can slide half onto
#: each and the model draws one tall body over both, with high presence, which that would miss.)
SAME_PERSON_OVERLAP = 0.6
#: A person the landmark model loses is looked for once more in a region this much wider.
WIDER = 1.4
#: Most a followed body's size may change from one frame to the next (either way).
MAX_GROWTH = 1.5


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """The share of the smaller of two boxes (4,) x0, y0, x1, y1 that lies inside the other."""
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    smaller = min(np.prod(np.clip(a[2:] - a[:2], 0, None)), np.prod(np.clip(b[2:] - b[:2], 0, None)))
    return float(inter / smaller) if smaller > 0 else 0.0


@dataclass
class _Person:
    """Someone being followed: their pose in the last frame they were found, and in the one before."""

    pose: Pose
    before: Pose | None = None

    def step(self) -> float:
        """How far the body moved since the frame before, as the median joint step over the body's size
        (0 for someone just found: they have nothing to be compared with)."""
        if self.before is None:
            return 0.0
        moved = np.hypot(*(self.pose.points[:33] - self.before.points[:33]).T)
        return float(np.median(moved)) / max(self.before.size(), 1.0)

    def plausible(self) -> bool:
        """False when the body's size jumped from one frame to the next: the model is drawing a body
        over something else (it can go on doing that with high presence while its region balloons)."""
        if self.before is None:
            return True
        return 1 / MAX_GROWTH <= self.pose.size() / max(self.before.size(), 1.0) <= MAX_GROWTH


class BlazePoseDetector:
    """Up to ``max_people`` people per frame; frames must come in time order (it follows people).

    Everyone found is followed from frame to frame with BlazePose's landmark model
    (:mod:`posemoe.detect.landmarks`): the cost is one model call per person per frame. MediaPipe's
    multi-person PoseLandmarker looks for people not yet followed every ``discover_every`` frames
    (None: :data:`DISCOVER_EVERY`, fewer for frames so large that they would not fit in
    :data:`LOOK_BACK_BYTES`), and every :data:`LOOK_WHILE_ALONE` frames while nobody is followed; the
    people it finds are followed from that frame on, and back through the frames since the last look
    (see :meth:`follow`).

    min_detection: score a new person needs to be found; min_tracking: the landmark model's presence
    score needed to keep following one.
    """

    name = "blazepose-full"

    def __init__(self, max_people: int = 3, min_detection: float = 0.5, min_tracking: float = 0.5,
                 discover_every: int | None = None):
        import_mediapipe()
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=task_bundle()),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=max_people,
            min_pose_detection_confidence=min_detection,
            min_pose_presence_confidence=min_detection,
            min_tracking_confidence=min_tracking,
        )
        with _quiet_native_stderr():
            self._finder = vision.PoseLandmarker.create_from_options(options)
        self._last_ms = -1
        self.max_people, self.min_tracking, self.discover_every = max_people, min_tracking, discover_every
        self._followed: list[_Person] = []
        self._since_discovery = 10**9  # look in the first frame

    def _discover(self, image: np.ndarray, time: float) -> list[np.ndarray]:
        """Everyone MediaPipe finds in the frame: a list of (33, 2) landmarks px."""
        import cv2

        mediapipe = import_mediapipe()
        height, width = image.shape[:2]
        # MediaPipe needs strictly increasing integer milliseconds.
        ms = max(int(round(time * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        frame = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        with _quiet_native_stderr():  # the first frames with a person log notices about their crop
            result = self._finder.detect_for_video(frame, ms)
        return [np.array([(p.x * width, p.y * height) for p in person]) for person in result.pose_landmarks]

    def _add(self, people: list[_Person], person: _Person) -> bool:
        """Add ``person`` unless they are someone already in ``people``: two followed regions can end up
        on one body when people cross; the one that moved least since the last frame is that body's.
        Returns whether ``person`` is now in ``people``."""
        for i, other in enumerate(people):
            if _overlap(person.pose.box(), other.pose.box()) > SAME_PERSON_OVERLAP:
                if person.step() < other.step():
                    people[i] = person
                    return True
                return False
        people.append(person)
        return True

    def _follow(self, image: np.ndarray, person: _Person) -> _Person | None:
        """``person`` in this frame, or None where the landmark model no longer finds them."""
        # The model's own framing from the last frame, as MediaPipe tracks. (Moving it on by the hips'
        # last step was tried: it added 10 % to the raw 2D jitter of benchmarks/detect.py.)
        region = person.pose.next_region()
        pose = landmarks(image, region)
        if pose.presence < self.min_tracking:  # moved further than the region allows: look wider, once
            pose = landmarks(image, Region(region.centre, region.side * WIDER, region.angle))
        found = _Person(pose, person.pose)
        return found if pose.presence >= self.min_tracking and found.plausible() else None

    def _step(self, image: np.ndarray, time: float) -> tuple[list[_Person], list[_Person]]:
        """Everyone in this frame: (everyone, those found in it for the first time)."""
        people: list[_Person] = []
        for person in self._followed:
            found = self._follow(image, person)
            if found is not None:
                self._add(people, found)
        new: list[_Person] = []
        self._since_discovery += 1
        # While nobody is followed, look more often: someone who appears is then found soon (in a short
        # clip, at all), and followed back to where they came into view.
        if self._since_discovery >= (self.discover_every if people else LOOK_WHILE_ALONE):
            self._since_discovery = 0
            for points in self._discover(image, time):
                box = np.concatenate([points.min(0), points.max(0)])
                if len(people) >= self.max_people or any(_overlap(box, p.pose.box()) > SAME_PERSON_OVERLAP for p in people):
                    continue
                first = landmarks(image, region_from_landmarks(points))
                if first.presence < self.min_tracking:
                    continue
                found = self._follow(image, _Person(first))  # once more, framed as the model frames its own
                if found is not None:
                    person = _Person(found.pose)
                    if self._add(people, person):
                        new.append(person)
        self._followed = people
        return people, new

    def _trace_back(self, person: _Person, pending: deque) -> None:
        """Follow someone just found back through the frames still ``pending`` (newest first), adding
        them where they were not yet seen; stops where the model loses them or finds someone else."""
        for _, image, people in reversed(pending):
            found = self._follow(image, person)
            if found is None or not self._add(people, found):
                return
            person = found

    def follow(self, frames: Iterable[Frame]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """frames: decoded frames in time order -> (index, keypoints (P, 17, 2) px, visibility (P, 17)) per
        frame, in order, ``discover_every`` frames behind the input: someone found in a look for new
        people is also followed back through the frames since the last look, so a person who walks in
        is in every frame from their first, however rarely we look."""
        pending: deque = deque()  # (index, image, people) of the frames not yet given out
        for frame in frames:
            if self.discover_every is None:
                self.discover_every = max(2, min(DISCOVER_EVERY, LOOK_BACK_BYTES // frame.image.nbytes))
            people, new = self._step(frame.image, frame.time)
            for person in new:
                self._trace_back(person, pending)
            pending.append((frame.index, frame.image, people))
            if len(pending) > self.discover_every:
                index, _, done = pending.popleft()
                yield self._output(index, done)
        while pending:
            index, _, done = pending.popleft()
            yield self._output(index, done)

    @staticmethod
    def _output(index: int, people: list[_Person]) -> tuple[int, np.ndarray, np.ndarray]:
        if not people:
            return index, np.zeros((0, 17, 2)), np.zeros((0, 17))
        points = np.array([person.pose.points[:33] for person in people])
        visibility = np.array([person.pose.visibility[:33] for person in people])
        return (index, *blazepose_to_h36m(points, np.clip(visibility, 0.0, 1.0)))

    def close(self) -> None:
        self._finder.close()
