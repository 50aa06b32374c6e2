"""BlazePose (Full) as a multi-person detector that follows people: the default, offline.

BlazePose has two models, and we run both ourselves on ONNX Runtime: the person detector
(:mod:`posemoe.detect.people`) finds where people are in a whole frame, the landmark model
(:mod:`posemoe.detect.landmarks`) finds one person's landmarks in a region of it and where to look for
them in the next frame. How the two are joined follows MediaPipe's PoseLandmarker in its video mode
(the Tasks graphs ``pose_landmarker_graph`` and ``pose_landmarks_detector_graph`` of the
``mediapipe==0.10.21`` wheel), which is the reference we are measured against:

- everyone found in a frame is looked for in the next one in the region their own landmarks give
  (the hip centre and scale point, 1.25 x, :meth:`Pose.next_region`);
- while fewer than ``max_people`` are followed, the person detector also looks at the frame, and where
  one of its regions overlaps a followed one (intersection over union above 0.5) its region is used
  instead (MediaPipe's ``AssociationNormRectCalculator``: the later, fresher stream wins);
- a region whose landmarks have presence below 0.5 is dropped.

MediaPipe looks with the person detector in every frame in which fewer than ``num_poses`` people are
followed; we look every :data:`LOOK_EVERY` frames (and in every frame while nobody is followed), which
is where speed is traded for fidelity: ``benchmarks/detect.py`` measures the trade clip by clip on the
real corpus. No schedule of looks gives the sample 2x real time on a 2-core machine: the landmark
model alone, with decoding, tracking and lifting, takes more than the 33.3 ms of one core a frame that
allows at 30 frames/s (docs/benchmarks.md, "Detection on real footage" and "Capture speed"). Both models
come from the ``mediapipe==0.10.21`` wheel (Apache-2.0), converted once by ``tools/blazepose_onnx.py``;
MediaPipe itself is not needed to capture. Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

from ..skeleton import NUM_JOINTS
from ..track import box_iou
from .landmarks import Pose, Region, landmarks
from .layout import blazepose_to_h36m
from .people import find_people

#: Frames between looks with the person detector while someone is followed (1: every frame, as
#: MediaPipe). Chosen on the whole real corpus (``benchmarks/detect.py``, docs/benchmarks.md "Detection
#: on real footage"): every frame is MediaPipe to a few hundredths of a percent of the body's height on
#: every body clip; every 2nd frame already lets a followed region slide onto another body where people
#: cross (the sample: p99 24 % of the height, 10 identity switches) or drift off a body leaving the
#: picture (asl_hand_portrait: 58 frames with spikes), for a quarter less time per frame.
LOOK_EVERY = 1
#: The person detector's score a new person needs, and the landmark model's presence score needed to
#: keep one: MediaPipe's defaults (``min_pose_detection_confidence``, ``min_pose_presence_confidence``).
MIN_DETECTION = 0.5
MIN_PRESENCE = 0.5
#: Two regions are one person's when their boxes overlap by more than this (intersection over union),
#: as MediaPipe's association (its ``min_tracking_confidence``, 0.5).
SAME_REGION = 0.5


def _box(region: Region) -> np.ndarray:
    """(4,) x0, y0, x1, y1 px: the region's square, unturned (as MediaPipe compares regions)."""
    half = region.side / 2
    return np.concatenate([region.centre - half, region.centre + half])


def associate(*streams: list[Region]) -> list[Region]:
    """Regions from several streams, oldest first -> one list without two regions of one person: each
    region, in turn, removes those before it that it overlaps (:data:`SAME_REGION`), so the later
    stream's region is kept (MediaPipe's ``AssociationCalculator``)."""
    kept: list[Region] = []
    for stream in streams:
        for region in stream:
            if kept:
                overlaps = box_iou(_box(region)[None], np.array([_box(other) for other in kept]))[0]
                kept = [other for other, overlap in zip(kept, overlaps) if overlap <= SAME_REGION]
            kept.append(region)
    return kept


class BlazePoseDetector:
    """Up to ``max_people`` people per frame; frames must come in time order (it follows people).

    Everyone found is followed from frame to frame with BlazePose's landmark model: one model call per
    person per frame. The person detector looks at the frame every ``look_every`` frames while fewer
    than ``max_people`` are followed, and in every frame while nobody is (see the module's docstring).

    min_detection: the person detector's score a new person needs; min_presence: the landmark model's
    presence score needed to keep following one; hands: also find everyone's hands
    (:class:`posemoe.detect.hands.HandDetector`), which :meth:`detect` then returns as a third array.
    """

    name = "blazepose-full"

    def __init__(self, max_people: int = 3, min_detection: float = MIN_DETECTION, min_presence: float = MIN_PRESENCE,
                 look_every: int = LOOK_EVERY, hands: bool = False):
        if look_every < 1:
            raise ValueError(f"look_every must be 1 or more, not {look_every}")
        self.max_people, self.min_detection, self.min_presence = max_people, min_detection, min_presence
        self.look_every = look_every
        self.looks = 0  # looks with the person detector so far (benchmarks/detect.py reports them)
        #: False: follow the people already followed, never look for others (a stretch of the video
        #: carried over its seam, see posemoe.detect.parallel).
        self.looking = True
        self._regions: list[Region] = []  # where to look for the people followed, in the next frame
        self._frame = 0
        self._hands = None
        if hands:
            from .hands import HandDetector

            self._hands = HandDetector()

    def poses(self, image: np.ndarray) -> list[Pose]:
        """image (H, W, 3) uint8 BGR, the next frame -> everyone's :class:`Pose` in it."""
        # Whether to look is decided on the people followed from the last frame, before their regions
        # are merged: MediaPipe gates its person detector on that count (three followed, of three
        # wanted: no look, even where two of the regions then merge into one).
        following = len(self._regions)
        regions = associate(self._regions)
        due = self._frame % self.look_every == 0 or not regions
        self._frame += 1
        if self.looking and following < self.max_people and due:
            self.looks += 1
            regions = associate(regions, [person.region for person in find_people(image, self.min_detection)])
        found = [landmarks(image, region) for region in regions[:self.max_people]]
        found = [pose for pose in found if pose.presence >= self.min_presence]
        self._regions = [pose.next_region() for pose in found]
        return found

    def keep(self, which: np.ndarray) -> None:
        """which (P,) bool, one per person of the last frame's result: follow on only those marked."""
        self._regions = [region for region, kept in zip(self._regions, which) if kept]

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, ...]:
        """image (H, W, 3) uint8 BGR, the next frame -> keypoints (P, 17, 2) px, visibility (P, 17), and
        with ``hands`` also hands (P, 2, 21, 4): each person's left and right hand's 21 landmarks (x, y
        px, z the relative depth in px) with the hand's presence repeated as the fourth channel (NaN
        and 0 where not found)."""
        found = self.poses(image)
        if not found:
            empty = (np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS)))
            return empty + (np.zeros((0, 2, 21, 4)),) if self._hands is not None else empty
        points = np.array([pose.points[:33] for pose in found])
        visibility = np.array([pose.visibility[:33] for pose in found])
        result = blazepose_to_h36m(points, np.clip(visibility, 0.0, 1.0))
        if self._hands is None:
            return result
        hands, presence, _ = self._hands.detect(image, points, visibility)
        return result + (np.concatenate([hands, np.repeat(presence[..., None, None], 21, axis=2)], axis=-1),)

    def close(self) -> None:
        """Nothing to release (the models' sessions are shared); kept for the Detector protocol."""
