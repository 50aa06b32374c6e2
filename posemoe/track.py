"""Following people through a video, and bridging the frames where the detector lost them.

Detectors return everyone in each frame, in no particular order. Tracks are built by matching each
frame's people to the tracks seen in the last ``max_lost`` frames (Hungarian assignment on box overlap),
pieces of one person are stitched together (a person who leaves the picture and comes back, or whom
the detector loses for a few frames, starts a new piece; pieces join when the gap, the distance and the
size between them are plausible for one person), then the people to capture are chosen: the largest,
several largest or everyone, or those at points the user gives.

Identity is kept by motion alone: box overlap from frame to frame, joint-by-joint pose similarity where
two boxes overlap about equally, and a plausible place, size and speed across a gap. No appearance
(clothes' colour) is used yet: the detector hands on keypoints only, and the corpus's crossings are
measured first (``benchmarks/people.py``).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from . import PoseMoEError
from .detect import EXTRAS
from .skeleton import (
    HEAD, L_ANKLE, L_HIP, L_KNEE, NOSE, NUM_JOINTS, PELVIS, R_ANKLE, R_HIP, R_KNEE, SPINE, THORAX,
)

MIN_CONFIDENCE = 0.3  # joints below this do not count for boxes (the lifter's own threshold)
MAX_REENTRY_SPEED = 2.0  # body heights per second a person may move while out of sight
#: Everyone (``count`` 0) is those seen for at least this long (or a quarter of the longest track, in
#: a short clip) and at least ``MIN_SIZE`` times as tall as the tallest of them: shorter or smaller
#: tracks are a skeleton the detector drew for a moment, or on a piece of furniture (the table of
#: people_one_by_one: 37 px tall beside people of 360), and are left out with a note.
MIN_SEEN_S = 1.0
MIN_SIZE = 0.2
#: Joints from the head down to each ankle: the length of the path through them in
#: the picture is a body's height whatever its pose, crouched or stretched, except where a segment
#: points at the camera.
_CHAINS = ((HEAD, NOSE, THORAX, SPINE, PELVIS, R_HIP, R_KNEE, R_ANKLE),
           (HEAD, NOSE, THORAX, SPINE, PELVIS, L_HIP, L_KNEE, L_ANKLE))
NO_PERSON = "No person was detected in the video: check that one person is fully in view and well lit."


def person_boxes(keypoints: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """keypoints (P, 17, 2) px, confidence (P, 17) -> boxes (P, 4) as x0, y0, x1, y1 px of the
    confident joints (all joints where none is confident)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    boxes = np.zeros((len(keypoints), 4))
    for i, (points, conf) in enumerate(zip(keypoints, confidence)):
        use = points[(conf >= MIN_CONFIDENCE) & np.isfinite(points).all(-1)]
        if len(use) == 0:
            use = points[np.isfinite(points).all(-1)]
        if len(use):
            boxes[i] = (*use.min(0), *use.max(0))
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (P, 4), b (Q, 4) boxes x0, y0, x1, y1 -> (P, Q) intersection over union (a box of negative
    extent counts as empty; 0 where both are). The project's one box overlap: tracking, the detectors'
    non-maximum suppression and BlazePose's region association all use it."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda boxes: np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def pose_similarity(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """a (P, 17, 2), b (Q, 17, 2) keypoints px, scale (Q,) px (b's box heights) -> (P, Q) in [0, 1]:
    1 for the same pose, falling as a Gaussian of the median joint distance with sigma 0.2 * scale
    (0 when no joint of the pair is finite)."""
    with np.errstate(invalid="ignore"):  # inf - inf: a joint that is not finite in both
        distance = np.linalg.norm(np.asarray(a, dtype=np.float64)[:, None] - np.asarray(b, dtype=np.float64)[None], axis=-1)
    median = np.median(np.where(np.isfinite(distance), distance, np.inf), axis=-1)
    return np.exp(-0.5 * (median / (0.2 * np.maximum(scale, 1.0))) ** 2)


def stature(keypoints: np.ndarray, confidence: np.ndarray, box: np.ndarray) -> float:
    """keypoints (17, 2) px, confidence (17,), box (4,) x0, y0, x1, y1 px -> the body's height in the
    picture whatever its pose, px: the longer head-to-ankle path through confident joints (see
    ``_CHAINS``), or the box's height where that is more (a body seen in part has no whole chain)."""
    longest = box[3] - box[1]
    for chain in _CHAINS:
        if (confidence[list(chain)] >= MIN_CONFIDENCE).all():
            longest = max(longest, np.linalg.norm(np.diff(keypoints[list(chain)], axis=0), axis=-1).sum())
    return float(longest)


@dataclass
class Track:
    """One person's detections: frame indices (into the list of frames given to :func:`build_tracks`),
    keypoints (n, 17, 2) px, confidence (n, 17), boxes (n, 4), statures (n,) px (see :func:`stature`),
    hands (n, 2, 21, 4), each None where the detector found no hands, and the detector's own 3D of the
    joints (n, 17, 3) metres, each None where it gave none (see :mod:`posemoe.detect`)."""

    frames: list[int] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    confidence: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    statures: list[float] = field(default_factory=list)
    hands: list[np.ndarray | None] = field(default_factory=list)
    world: list[np.ndarray | None] = field(default_factory=list)

    def add(self, frame: int, keypoints: np.ndarray, confidence: np.ndarray, box: np.ndarray,
            hands: np.ndarray | None = None, world: np.ndarray | None = None) -> None:
        self.frames.append(frame)
        self.keypoints.append(keypoints)
        self.confidence.append(confidence)
        self.boxes.append(box)
        self.statures.append(stature(keypoints, confidence, box))
        self.hands.append(hands)
        self.world.append(None if world is None else np.asarray(world, dtype=np.float32))  # memory: long videos

    @property
    def height(self) -> float:
        """Median box height in pixels."""
        return float(np.median([b[3] - b[1] for b in self.boxes]))

    @property
    def stature(self) -> float:
        """The body's height in pixels whatever its pose (crouching, jumping): the median over frames of
        :func:`stature`."""
        return float(np.median(self.statures))

    @property
    def size(self) -> float:
        """How much of the video this person fills: box heights summed over frames (pixel-frames)."""
        return float(sum(b[3] - b[1] for b in self.boxes))

    def centre(self, i: int) -> np.ndarray:
        box = self.boxes[i]
        return 0.5 * (box[:2] + box[2:])


def extras(extra: tuple[np.ndarray, ...], people: int) -> tuple[list, list]:
    """A frame's arrays after keypoints and confidence, known by their shape (see :mod:`posemoe.detect`)
    -> (hands: per person (2, 21, 4) or None, world: per person (17, 3) or None)."""
    hands = next((a for a in extra if np.shape(a)[1:] == EXTRAS["hands"]), None)
    world = next((a for a in extra if np.shape(a)[1:] == EXTRAS["3D joints"]), None)
    return ([None] * people if hands is None else list(hands)), ([None] * people if world is None else list(world))


def build_tracks(detections: list[tuple[np.ndarray, ...]], max_lost: int = 5,
                 min_iou: float = 0.1, duplicate_iou: float = 0.6) -> list[Track]:
    """detections: per frame, (keypoints (P, 17, 2) px, confidence (P, 17)[, hands (P, 2, 21, 4)][,
    3D joints (P, 17, 3)]). Returns the tracks.

    Two detections of one frame overlapping by more than ``duplicate_iou`` are one person seen twice
    (BlazePose sometimes does that); the less confident one is dropped.
    """
    tracks: list[Track] = []
    active: list[Track] = []
    for frame, (keypoints, confidence, *extra) in enumerate(detections):
        if len(keypoints) == 0:
            continue
        hands, world = extras(tuple(extra), len(keypoints))
        boxes = person_boxes(keypoints, confidence)
        order = np.argsort(-np.asarray(confidence).mean(1))
        keep: list[int] = []
        for i in order:
            if not keep or box_iou(boxes[i:i + 1], boxes[keep]).max() < duplicate_iou:
                keep.append(int(i))
        # Tracks lost for longer can never match again: drop them for good, so that a long video's
        # frames each cost the people in view, not everyone seen so far.
        live = active = [t for t in active if frame - t.frames[-1] <= max_lost]
        matched: set[int] = set()
        if live:
            last = np.array([t.boxes[-1] for t in live])
            iou = box_iou(boxes[keep], last)
            # Boxes alone cannot tell a person from a spurious skeleton drawn over them (BlazePose adds
            # one for a few frames when someone comes into view): when a detection overlaps two tracks
            # about equally, the one whose last pose matches joint by joint keeps it.
            similar = pose_similarity(keypoints[keep], np.array([t.keypoints[-1] for t in live]), last[:, 3] - last[:, 1])
            for r, c in zip(*linear_sum_assignment(-iou * (0.5 + 0.5 * similar))):
                if iou[r, c] >= min_iou:
                    i = keep[r]
                    live[c].add(frame, keypoints[i], confidence[i], boxes[i], hands[i], world[i])
                    matched.add(i)
        for i in keep:
            if i not in matched:
                tracks.append(Track())
                tracks[-1].add(frame, keypoints[i], confidence[i], boxes[i], hands[i], world[i])
                active.append(tracks[-1])  # after matching: live (the same list) is done with
    return tracks


def _plausible_join(first: Track, second: Track, fps: float, first_height: float, second_height: float) -> bool:
    """Could ``second`` (starting about when ``first`` ends) be the same person, back in view or
    re-detected? Heights: the tracks' statures (px, :attr:`Track.stature`: a man who jumps off a box
    and lands crouching keeps his), computed once by the caller."""
    gap_s = max(second.frames[0] - first.frames[-1], 1) / fps
    height = max(first_height, second_height)
    similar = 0.75 <= second_height / max(first_height, 1e-6) <= 1.33
    distance = np.linalg.norm(second.centre(0) - first.centre(-1)) / max(height, 1e-6)
    # Half a body height of slack: boxes jump when a person is cut by the frame edge or re-detected.
    return similar and distance <= 0.5 + MAX_REENTRY_SPEED * gap_s


def stitch(tracks: list[Track], fps: float, max_gap_s: float = 3.0) -> list[Track]:
    """Join track pieces of one person: a later piece starting at most ``max_gap_s`` after an earlier
    one ends (or overlapping it by up to two frames, when the detector briefly saw the person twice),
    at a plausible place and size. Shortest gaps are joined first. Returns the tracks by first frame.

    An hour of video leaves thousands of pieces, so candidate pairs wait in a heap and are found by
    binary search on first and last frames: every join costs the pieces near it in time, not a scan
    of every pair (which took minutes for ten minutes of video).
    """
    max_gap = max_gap_s * fps
    pieces: dict[int, Track] = {}
    heights: dict[int, float] = {}
    starts: list[tuple[int, int]] = []  # (first frame, id), sorted; ids of joined pieces stay until skipped
    ends: list[tuple[int, int]] = []  # (last frame, id), sorted
    candidates: list[tuple[int, int, int, int, int]] = []  # (gap, first frames of both, ids): a heap
    ids = itertools.count()

    def consider(a: int, b: int) -> None:
        first, second = pieces[a], pieces[b]
        gap = second.frames[0] - first.frames[-1]
        if (-2 <= gap <= max_gap and second.frames[-1] > first.frames[-1]
                and _plausible_join(first, second, fps, heights[a], heights[b])):
            heapq.heappush(candidates, (gap, first.frames[0], second.frames[0], a, b))

    def add(track: Track) -> None:
        new = next(ids)
        pieces[new], heights[new] = track, track.stature
        first, last = track.frames[0], track.frames[-1]
        for _, other in starts[bisect.bisect_left(starts, (last - 2, -1)):bisect.bisect_right(starts, (last + max_gap, math.inf))]:
            if other in pieces:
                consider(new, other)
        for _, other in ends[bisect.bisect_left(ends, (first - max_gap, -1)):bisect.bisect_right(ends, (first + 2, math.inf))]:
            if other in pieces:
                consider(other, new)
        bisect.insort(starts, (first, new))
        bisect.insort(ends, (last, new))

    for track in sorted(tracks, key=lambda t: t.frames[0]):
        add(track)
    while candidates:
        *_, i, j = heapq.heappop(candidates)
        if i not in pieces or j not in pieces:  # one of them was joined to another piece already
            continue
        a, b = pieces.pop(i), pieces.pop(j)
        keep = [k for k, f in enumerate(a.frames) if f < b.frames[0]]
        add(Track([a.frames[k] for k in keep] + b.frames, [a.keypoints[k] for k in keep] + b.keypoints,
                  [a.confidence[k] for k in keep] + b.confidence, [a.boxes[k] for k in keep] + b.boxes,
                  [a.statures[k] for k in keep] + b.statures, [a.hands[k] for k in keep] + b.hands,
                  [a.world[k] for k in keep] + b.world))
    return sorted(pieces.values(), key=lambda t: t.frames[0])


def _eligible(tracks: list[Track], fps: float, seconds: float) -> list[Track]:
    """The tracks seen for at least ``seconds`` or a quarter of the longest track's frames, and at
    least ``MIN_SIZE`` times as tall as the tallest of those."""
    longest = max(len(t.frames) for t in tracks)
    seen = [t for t in tracks if len(t.frames) >= min(0.25 * longest, seconds * fps)]
    tallest = max(t.height for t in seen)
    return [t for t in seen if t.height >= MIN_SIZE * tallest]


def on_grid(track: Track, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A track's detections on the frame grid: keypoints (num_frames, 17, 2) px, NaN where the person
    was not detected, and confidence (num_frames, 17), 0 there."""
    keypoints = np.full((num_frames, NUM_JOINTS, 2), np.nan)
    confidence = np.zeros((num_frames, NUM_JOINTS))
    keypoints[track.frames] = np.array(track.keypoints)
    confidence[track.frames] = np.array(track.confidence)
    return keypoints, confidence


def hands_on_grid(track: Track, first: int, last: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A track's hands on the frame grid from frame ``first`` to before ``last``: hands (n, 2, 21, 3)
    float32 px (see :mod:`posemoe.detect`), NaN where the person or the hand was not found, and
    presence (n, 2), 0 there; None for a track without hands (they were not asked for)."""
    if all(found is None for found in track.hands):
        return None
    grid = np.full((last - first, 2, 21, 4), np.nan, dtype=np.float32)
    grid[..., 3] = 0.0
    for frame, found in zip(track.frames, track.hands):
        if found is not None and first <= frame < last:
            grid[frame - first] = found
    return grid[..., :3].copy(), grid[..., 0, 3].copy()


def world_on_grid(track: Track, first: int, last: int) -> np.ndarray:
    """A track's 3D joints from the detector (metres) on the frame grid from frame ``first`` to before
    ``last``: (n, 17, 3), NaN where the person was not found or the detector gave none."""
    grid = np.full((last - first, NUM_JOINTS, 3), np.nan)
    for frame, found in zip(track.frames, track.world):
        if found is not None and first <= frame < last:
            grid[frame - first] = found
    return grid


def _nearest(tracks: list[Track], point: tuple[float, float, int]) -> Track:
    """The track whose box at the point's frame (or the nearest frame it was seen) contains or is
    nearest to the point (x px, y px, frame)."""
    x, y, frame = point

    def distance(track: Track) -> float:
        i = int(np.argmin(np.abs(np.array(track.frames) - frame)))
        box = track.boxes[i]
        outside = np.maximum(np.maximum(box[:2] - (x, y), (x, y) - box[2:]), 0.0)
        return float(np.linalg.norm(outside)) + abs(track.frames[i] - frame) * 1e-3

    return min(tracks, key=distance)


def select_people(tracks: list[Track], fps: float, count: int = 1,
                  picks: tuple[tuple[float, float, int], ...] = ()) -> tuple[list[Track], list[Track]]:
    """Choose whom to capture, after stitching the track pieces of each person (:func:`stitch`).

    count: the ``count`` largest people (median box height), 0 for everyone seen long enough
    (``MIN_SEEN_S``, ``MIN_SIZE``); largest first. Person 1, whom a one-person capture takes, is the
    largest of those seen for at least two seconds (or a quarter of the longest track), so that a
    passer-by close to the lens does not take the main subject's place.
    picks: (x px, y px, frame) points, each picking the person whose box at that frame (or the nearest
    frame they were seen) contains or is nearest to it, in the order given; they override ``count``.
    Returns (chosen, dropped): the chosen tracks, and the people not captured because they were seen
    too briefly (when everyone is asked for; for the report).
    """
    if not tracks:
        raise PoseMoEError(NO_PERSON)
    if count < 0:
        raise PoseMoEError(f"{count} people cannot be captured: ask for 1 or more, or 0 for everyone.")
    tracks = stitch(tracks, fps)
    if picks:
        chosen = [_nearest(tracks, point) for point in picks]
        for i, track in enumerate(chosen):
            if any(track is other for other in chosen[:i]):
                x, y, frame = picks[i]
                raise PoseMoEError(f"The pick {x:g},{y:g},{frame} names the same person as an earlier pick: "
                                   "give each person's point once.")
        return chosen, []
    first = max(_eligible(tracks, fps, 2.0), key=lambda t: t.height)
    others = sorted((t for t in _eligible(tracks, fps, MIN_SEEN_S) if t is not first), key=lambda t: -t.height)
    chosen = [first, *others][:count] if count else [first, *others]
    dropped = [t for t in tracks if not any(t is c for c in chosen)] if count == 0 else []
    return chosen, dropped


def select_person(tracks: list[Track], num_frames: int, fps: float,
                  point: tuple[float, float, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One person's detections on the frame grid (see :func:`select_people`): the largest, or the one
    at ``point``. Returns keypoints (num_frames, 17, 2) px with NaN where the person was not detected,
    and confidence (num_frames, 17) with 0 there."""
    chosen, _ = select_people(tracks, fps, picks=(point,) if point is not None else ())
    return on_grid(chosen[0], num_frames)


def fill_gaps(keypoints: np.ndarray, confidence: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bridge frames where the person was not detected, inside the span where they were.

    keypoints (N, 17, 2) px with NaN rows for undetected frames; confidence (N, 17).
    Returns (keypoints, filled, long_gap): keypoints linearly interpolated across every gap (held
    constant before the first and after the last detection), filled (N,) True where interpolated,
    long_gap (N,) True inside gaps longer than ``max_gap`` frames (the motion there is a guess).
    """
    detected = np.isfinite(keypoints).all(axis=(1, 2)) & (confidence.max(1) > 0)
    if not detected.any():
        raise PoseMoEError(NO_PERSON)
    frames = np.arange(len(keypoints))
    seen = frames[detected]
    known = keypoints[detected].reshape(len(seen), -1)
    filled_points = np.stack([np.interp(frames, seen, column) for column in known.T], axis=1)
    filled_points = filled_points.reshape(keypoints.shape)
    filled = ~detected
    long_gap = np.zeros(len(frames), dtype=bool)
    start = None
    for i in range(len(frames) + 1):
        if i < len(frames) and filled[i]:
            start = i if start is None else start
        elif start is not None:
            if i - start > max_gap:
                long_gap[start:i] = True
            start = None
    return filled_points, filled, long_gap
