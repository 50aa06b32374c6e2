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

Where two people stand close together we depart from MediaPipe's association (``docs/decisions.md``,
"Two people close together"). Its regions are squares 1.25 x a body's height on the side, so those of
two people side by side overlap by more than 0.5, and MediaPipe lets every region remove all those it
overlaps, its own stream's included: one of the person detector's two finds removes the other and
both followed people, and MediaPipe itself (``num_poses`` 3 or 5) then follows one of two people in
most frames of a scene where, asked for 2 (so that it stops looking once it has them), it follows both.
Here a find takes the place of at most one followed region, the one it overlaps most
(:func:`pair_regions`); where its landmarks land on someone else than that person (nearer another
followed person's last landmarks, or more than :data:`STRAY` from theirs), the followed region is
looked at as well; and which regions hold one person is decided on their landmarks, after the landmark
model has run (:func:`distinct`: one pose per body, the one that goes on from the last frame's
first, and no skeleton drawn across two bodies). Where people stand apart little changes: each find
overlaps one person's region only, and is paired with it as MediaPipe pairs it; one body found twice
is reported once (MediaPipe reports both, and :func:`posemoe.track.build_tracks` dropped one).

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
#: A find of the person detector may take a followed region's place when their boxes overlap by more
#: than this (intersection over union), as MediaPipe's association (its ``min_tracking_confidence``).
SAME_REGION = 0.5
#: A pose is a body already found when its 33 landmarks are this close to the same landmarks of those
#: found (median distance, in body sizes: :meth:`Pose.size`; see :func:`explained`): one body found from
#: two regions is a few hundredths from itself, a skeleton drawn across two people standing close
#: together 0.08-0.14 from them; two people side by side are 0.18 and more apart (the multi-view scene).
SAME_BODY = 0.15
#: ... or when its landmarks lie this close to those of one found, or theirs to its, whatever they are
#: called (see :func:`covered`), and their boxes (:meth:`Pose.box`) overlap by at least ``SAME_BOX``:
#: a skeleton of the legs only, or with left and right the other way round, on a whole body's (a few
#: hundredths, overlap 0.5-0.95 on the sample); a person beside someone whose arms spread around them
#: lies 0.08-0.1 from them, but their boxes overlap by 0.35 at most (the multi-view scene).
SAME_PLACE = 0.1
SAME_BOX = 0.5
#: A find's landmarks this far from the last ones of the person whose region it took (median distance,
#: in body sizes) may belong to someone else: that person's own region is looked at too. A body moves a
#: few hundredths of its size from frame to frame.
STRAY = 0.25


def _box(region: Region) -> np.ndarray:
    """(4,) x0, y0, x1, y1 px: the region's square, unturned (as MediaPipe compares regions)."""
    half = region.side / 2
    return np.concatenate([region.centre - half, region.centre + half])


def associate(*streams: list[Region]) -> list[Region]:
    """Regions from several streams, oldest first -> one list without two regions of one person: each
    region, in turn, removes those before it that it overlaps (:data:`SAME_REGION`), so the later
    stream's region is kept (MediaPipe's ``AssociationCalculator``). MediaPipe's rule, which the
    detector no longer follows where people stand close together (:func:`pair_regions`, the module's
    docstring): two people's regions overlap by more than :data:`SAME_REGION` there."""
    kept: list[Region] = []
    for stream in streams:
        for region in stream:
            if kept:
                overlaps = box_iou(_box(region)[None], np.array([_box(other) for other in kept]))[0]
                kept = [other for other, overlap in zip(kept, overlaps) if overlap <= SAME_REGION]
            kept.append(region)
    return kept


def pair_regions(found: list[Region], followed: list[Region]) -> dict[int, int]:
    """The person detector's regions and the followed ones -> {followed index: found index}: each find
    paired with at most one followed region and each followed region with at most one find, the most
    overlapping pairs first, pairs overlapping by more than :data:`SAME_REGION` only."""
    if not found or not followed:
        return {}
    overlap = box_iou(np.array([_box(region) for region in found]), np.array([_box(region) for region in followed]))
    pairs: dict[int, int] = {}
    for flat in np.argsort(-overlap, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, overlap.shape)
        if overlap[i, j] <= SAME_REGION:
            break
        if j not in pairs and i not in pairs.values():
            pairs[int(j)] = int(i)
    return pairs


def pose_distance(a: Pose, b: Pose) -> float:
    """How far apart two poses are: the median distance of their 33 landmarks, in the larger body's
    size (:meth:`Pose.size`)."""
    distance = np.linalg.norm(a.points[:33] - b.points[:33], axis=-1)
    return float(np.median(distance) / max(a.size(), b.size(), 1.0))


def explained(pose: Pose, others: list[Pose]) -> float:
    """How far ``pose`` is from being made of the bodies ``others``: the median over its 33 landmarks
    of the distance to the same landmark of the nearest of them, in the largest body's size (inf with
    no others). With one other, :func:`pose_distance`; with two, small for a skeleton drawn across two
    people standing close together (its head on one, its legs on the other)."""
    if not others:
        return float(np.inf)
    nearest = np.min([np.linalg.norm(pose.points[:33] - other.points[:33], axis=-1) for other in others], axis=0)
    return float(np.median(nearest) / max(pose.size(), *(other.size() for other in others), 1.0))


def covered(pose: Pose, other: Pose) -> float:
    """How far ``pose`` lies from the body ``other``, whatever their landmarks are called: the median
    over its 33 landmarks of the distance to the nearest of the other's, in the larger body's size.
    Small for a skeleton of part of a body (the legs of someone cut by the frame's edge) or with left
    and right the other way round, lying on the whole body's; small too for a person standing where
    someone else's arms spread around them, whose boxes overlap little."""
    nearest = np.linalg.norm(pose.points[:33, None] - other.points[None, :33], axis=-1).min(axis=1)
    return float(np.median(nearest) / max(pose.size(), other.size(), 1.0))


def distinct(poses: list[Pose], last: list[Pose] = (), fresh: list[bool] | None = None) -> list[Pose]:
    """Poses -> one per body, in the order given. Kept first: those nearest a pose of the last frame
    ``last`` (:func:`pose_distance`, in hundredths: the skeleton that goes on from where the person
    was, not one the landmark model drew crumpled from a find's region), then those from this frame's
    look (``fresh``: MediaPipe prefers the person detector's region), then the most visible (mean
    visibility of the 33 landmarks, as :func:`posemoe.track.build_tracks` prefers). Dropped: each made
    of the bodies kept (:func:`explained` at most :data:`SAME_BODY`), or that lies on one of them or it
    on it (:func:`covered` at most :data:`SAME_PLACE`) with their boxes overlapping by :data:`SAME_BOX`
    or more."""
    if len(poses) < 2:
        return list(poses)
    fresh = fresh or [False] * len(poses)

    def order(i: int) -> tuple:
        going_on = min((pose_distance(poses[i], before) for before in last), default=np.inf)
        return round(going_on, 2), not fresh[i], -float(np.mean(poses[i].visibility[:33]))

    kept: list[int] = []
    for i in sorted(range(len(poses)), key=order):
        pose, others = poses[i], [poses[k] for k in kept]
        if explained(pose, others) <= SAME_BODY:
            continue
        if any(min(covered(pose, other), covered(other, pose)) <= SAME_PLACE
               and box_iou(pose.box()[None], other.box()[None])[0, 0] >= SAME_BOX for other in others):
            continue
        kept.append(i)
    return [poses[i] for i in sorted(kept)]


class BlazePoseDetector:
    """Up to ``max_people`` people per frame; frames must come in time order (it follows people).

    Everyone found is followed from frame to frame with BlazePose's landmark model: one model call per
    person per frame, and one more for a new find and for a person a find landed beside (people close
    together: see the module's docstring). The person detector looks at the frame every ``look_every`` frames while fewer
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
        self._last: list[Pose] = []  # their poses in the last frame, one per region
        self._frame = 0
        self._hands = None
        if hands:
            from .hands import HandDetector

            self._hands = HandDetector()

    def poses(self, image: np.ndarray) -> list[Pose]:
        """image (H, W, 3) uint8 BGR, the next frame -> everyone's :class:`Pose` in it."""
        regions = list(self._regions)
        following = len(regions)
        last: list[Pose | None] = list(self._last) if len(self._last) == len(regions) else [None] * len(regions)
        due = self._frame % self.look_every == 0 or not regions
        self._frame += 1
        replaced: list[Region | None] = [None] * len(regions)  # the followed region a find took the place of
        if self.looking and len(regions) < self.max_people and due:
            self.looks += 1
            finds = [person.region for person in find_people(image, self.min_detection)]
            pairs = pair_regions(finds, regions)
            for j, i in pairs.items():
                replaced[j], regions[j] = regions[j], finds[i]
            new = [region for i, region in enumerate(finds) if i not in pairs.values()]
            new = new[:max(self.max_people - len(regions), 0)]
            regions += new
            replaced += [None] * len(new)
            last += [None] * len(new)
        poses: list[Pose] = []
        fresh: list[bool] = []  # from this frame's look
        for j, region in enumerate(regions):
            pose = landmarks(image, region)
            poses.append(pose)
            fresh.append(replaced[j] is not None or j >= following)
            if replaced[j] is not None and last[j] is not None:
                # Did the find land on the person whose region it took? If not, look where they were.
                distances = [np.inf if other is None else pose_distance(pose, other) for other in last]
                if int(np.argmin(distances)) != j or distances[j] > STRAY:
                    poses.append(landmarks(image, replaced[j]))
                    fresh.append(False)
        present = [i for i, pose in enumerate(poses) if pose.presence >= self.min_presence]
        found = distinct([poses[i] for i in present], self._last, [fresh[i] for i in present])[:self.max_people]
        self._last = found
        self._regions = [pose.next_region() for pose in found]
        return found

    def keep(self, which: np.ndarray) -> None:
        """which (P,) bool, one per person of the last frame's result: follow on only those marked."""
        self._regions = [region for region, kept in zip(self._regions, which) if kept]
        self._last = [pose for pose, kept in zip(self._last, which) if kept]

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, ...]:
        """image (H, W, 3) uint8 BGR, the next frame -> keypoints (P, 17, 2) px, visibility (P, 17), with
        ``hands`` hands (P, 2, 21, 4): each person's left and right hand's 21 landmarks (x, y px, z the
        relative depth in px) with the hand's presence repeated as the fourth channel (NaN and 0 where
        not found), and last the landmark model's own 3D of the joints, (P, 17, 3) metres (see
        :mod:`posemoe.detect`)."""
        found = self.poses(image)
        if not found:
            hands = (np.zeros((0, 2, 21, 4)),) if self._hands is not None else ()
            return (np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS))) + hands + (np.zeros((0, NUM_JOINTS, 3)),)
        points = np.array([pose.points[:33] for pose in found])
        visibility = np.array([pose.visibility[:33] for pose in found])
        result = blazepose_to_h36m(points, np.clip(visibility, 0.0, 1.0))
        world = blazepose_to_h36m(np.array([np.full((33, 3), np.nan) if pose.world is None else pose.world
                                            for pose in found]), np.clip(visibility, 0.0, 1.0))[0]
        if self._hands is None:
            return result + (world,)
        hands, presence, _ = self._hands.detect(image, points, visibility)
        return result + (np.concatenate([hands, np.repeat(presence[..., None, None], 21, axis=2)], axis=-1), world)

    def close(self) -> None:
        """Nothing to release (the models' sessions are shared); kept for the Detector protocol."""
