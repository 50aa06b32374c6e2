"""BlazePose (Full) as a multi-person detector that follows people: the default, offline.

BlazePose has two models, and we run both ourselves on ONNX Runtime. Everyone found is followed from
frame to frame by the landmark model (:mod:`posemoe.detect.landmarks`): one call per person per frame.
New people are looked for now and then by the person detector (:mod:`posemoe.detect.people`); whoever
it finds is followed from then on and back through the frames since the last look. On the sample this
is faster than MediaPipe's PoseLandmarker on every frame and keeps the walker in more
frames (``benchmarks/detect.py``).

Both models come from the ``mediapipe==0.10.21`` wheel (Apache-2.0), converted once by
``tools/blazepose_onnx.py``; MediaPipe itself is not needed to capture (the tests and
``benchmarks/detect.py`` use it as the reference). Nothing is downloaded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .landmarks import Pose, Region, landmarks
from .layout import blazepose_to_h36m
from .people import find_people
from ..video import Frame

#: Most frames between looks for people not yet followed: someone found is followed back through the
#: frames since the last look, which are kept for that. benchmarks/detect.py measures the choice: on
#: the sample, looking every 20 or 30 frames keeps the walker in as many frames (140) at the same cost
#: (20 ms per frame in one thread); every 5 keeps two more for a tenth more time, every 10 nine fewer.
DISCOVER_EVERY = 20
#: The frames kept for following back may hold at most this many bytes (4K frames: 6 of them), so
#: memory does not grow with the picture size; fewer frames kept means more frequent looks.
LOOK_BACK_BYTES = 160 * 2**20
#: The person detector's score a new person needs. Lower than MediaPipe's default (0.5): everyone the
#: detector offers is checked by the landmark model (its presence score, ``min_tracking``) before being
#: followed, so a lower bar costs a model call per false find and finds people MediaPipe's bar misses.
#: ``benchmarks/detect.py`` measures it on the sample: at 0.5 the man on the box is lost for long
#: stretches and the chosen track jumps from him to the walker; at 0.2 the walker is kept from the
#: first frames she is partly in view, for a quarter more model calls than at 0.4.
MIN_DETECTION = 0.4
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
    (:mod:`posemoe.detect.landmarks`): the cost is one model call per person per frame. BlazePose's
    person detector (:mod:`posemoe.detect.people`) looks for people not yet followed every
    ``discover_every`` frames (None: :data:`DISCOVER_EVERY`, fewer for frames so large that they would
    not fit in :data:`LOOK_BACK_BYTES`), every :data:`LOOK_WHILE_ALONE` frames while nobody is
    followed, and at once, where they were, when someone followed is lost; the people it finds are
    followed from that frame on, and back through the frames since the last look (see :meth:`follow`).

    min_detection: the person detector's score a new person needs to be found; min_tracking: the
    landmark model's presence score needed to keep following one.
    """

    name = "blazepose-full"

    def __init__(self, max_people: int = 3, min_detection: float = MIN_DETECTION, min_tracking: float = 0.5,
                 discover_every: int | None = None):
        self.max_people, self.min_detection, self.min_tracking = max_people, min_detection, min_tracking
        self.discover_every = discover_every
        self._followed: list[_Person] = []
        self._since_discovery = 10**9  # look in the first frame

    def _discover(self, image: np.ndarray, followed: list[_Person], near: list[np.ndarray] | None = None) -> list[Region]:
        """Where the person detector finds someone not among ``followed``: regions for the landmark
        model, best first. near: boxes (4,) x0, y0, x1, y1 px; if given, only detections whose hip
        centre lies in one of them (grown by :data:`WIDER`) count.

        A detection whose hip centre lies in a followed body's box is that body (the detector often
        finds the people already followed; looking at them again with the landmark model would cost a
        model call each, for nothing)."""

        def inside(point: np.ndarray, box: np.ndarray, grow: float = 1.0) -> bool:
            centre, half = (box[:2] + box[2:]) / 2, grow * (box[2:] - box[:2]) / 2
            return bool(np.all(np.abs(point - centre) <= half))

        regions = []
        for person in find_people(image, self.min_detection):
            hips = person.region.centre
            if any(inside(hips, p.pose.box()) for p in followed):
                continue
            if near is None or any(inside(hips, box, WIDER) for box in near):
                regions.append(person.region)
        return regions

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

    def _step(self, image: np.ndarray) -> tuple[list[_Person], list[_Person]]:
        """Everyone in this frame: (everyone, those found in it for the first time)."""
        people: list[_Person] = []
        lost: list[_Person] = []
        for person in self._followed:
            found = self._follow(image, person)
            if found is None or not self._add(people, found):
                lost.append(person)
        new: list[_Person] = []
        self._since_discovery += 1
        # While nobody is followed, look more often: someone who appears is then found soon (in a short
        # clip, at all), and followed back to where they came into view.
        due = self._since_discovery >= (self.discover_every if people else LOOK_WHILE_ALONE)
        # Someone just lost (the landmark model drifted off them, or two regions merged where people
        # crossed) is looked for at once, only where they were: the detector often finds them again in
        # the same frame, and checking its finds elsewhere would cost a model call each.
        if due:
            self._since_discovery = 0
        if due or lost:
            for region in self._discover(image, people, None if due else [p.pose.box() for p in lost]):
                if len(people) >= self.max_people:
                    break
                first = landmarks(image, region)
                if first.presence < self.min_tracking or any(
                        _overlap(first.box(), p.pose.box()) > SAME_PERSON_OVERLAP for p in people):
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
            people, new = self._step(frame.image)
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
        """Nothing to release (the models' sessions are shared); kept for the Detector protocol."""
