"""MediaPipe's hand landmark model on ONNX Runtime: each person's two hands, 21 keypoints each.

A hand is followed from its own landmarks, frame to frame, the way MediaPipe's HandLandmarker (our
reference) follows it; the body says whose hand is which and where to look for one not yet followed:

1. a hand of a body side found in the previous frame is looked for in the region made from its
   landmarks (:func:`region_from_hand`, MediaPipe's ``HandLandmarksToRoi``): one landmark call, no
   re-crop; it is kept while its presence is at least 0.5 and, where the body's wrist is seen, its
   wrist stays near the body's (else it slid onto the other hand);
2. two sides of one person on the same hand keep the one whose handedness agrees;
3. where a side still has no hand (or, with nobody, fewer than two hands are followed), MediaPipe's
   palm detector looks at the whole frame (:func:`find_palms`, its ``palm_detection_full`` model and
   HandLandmarker's region from a palm), as HandLandmarker finds new hands: starting where it starts
   keeps us on its track. A palm is given to the person and side whose body wrist is nearest; one
   near no wrist is kept apart (:attr:`HandDetector.loose`, also followed), which keeps the hands of a
   close-up with no body to take them from. After looks that find nothing new the detector waits
   (1, 2 .. :data:`PALM_WAIT` frames) unless a body wrist newly shows without a hand or a followed
   hand is lost;
4. a side whose body wrist is seen (visibility over 0.1) and still has no hand is found as MediaPipe
   Holistic finds it (its ``HandLandmarksLeftAndRight`` graph of the ``mediapipe==0.10.21`` wheel):
   from BlazePose's wrist, pinky and index landmarks (15/17/19 left, 16/18/20 right) a rough region
   (:func:`region_from_pose`: centred on an estimate of the middle finger's base, (2 index + pinky) / 3,
   twice the wrist's distance from it, turned so the wrist-to-middle axis points up, moved 10 % towards
   the fingers and enlarged 2.7 times), in which Holistic's re-crop model gives a tight one
   (:func:`recrop`) for the landmark model. A hand whose presence is below 0.5 is not found.

Cropping is the body's (:func:`posemoe.detect.landmarks.crop`, MediaPipe's ImageToTensorCalculator
with replicated borders), at the models' sizes: 224 px for landmarks, 256 px for the re-crop model,
192 px letterboxed for the palm detector. The models come from the wheel, converted once by
``tools/hand_onnx.py``; MediaPipe itself is not needed. Nothing is downloaded.

Coordinates: keypoints (21, 3) are x, y image px (MediaPipe's normalised coordinates times the frame's
size) and z, the model's depth relative to the wrist in the same px scale (MediaPipe's z times the
frame's width; smaller is nearer the camera). The 21 keypoints are MediaPipe's hand order: 0 wrist,
1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky (base to tip).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from . import model_session
from .landmarks import Region, crop
from ..track import box_iou
from .people import find_boxes

MODELS = Path(__file__).resolve().parent / "models"
LANDMARK_MODEL = MODELS / "hand_landmark_full.onnx"
RECROP_MODEL = MODELS / "hand_recrop.onnx"
PALM_MODEL = MODELS / "palm_detection_full.onnx"
LANDMARK_SIZE, RECROP_SIZE, PALM_SIZE = 224, 256, 192  # the models' input sides, px
#: The palm detector's SSD anchor grids (cells per side, anchors per cell): 24 x 24 with 2 (stride 8),
#: then 12 x 12 with 6 (three layers of stride 16); 2,016 anchors.
PALM_GRIDS = ((24, 2), (12, 6))

#: BlazePose landmarks of each hand: (wrist, pinky, index), the person's left hand first.
POSE_HAND = ((15, 17, 19), (16, 18, 20))
MIN_WRIST_VISIBILITY = 0.1  # Holistic's gate on the body's wrist (HandVisibilityFromHandLandmarksFromPose)
MIN_PRESENCE = 0.5  # the hand landmark model's presence a hand needs (MediaPipe's default)
MIN_PALM = 0.5  # the palm detector's score a palm needs (HandLandmarker's min_hand_detection_confidence)
#: Palm keypoints used: 0 the wrist's centre, 2 the middle finger's base.
PALM_WRIST, PALM_MIDDLE = 0, 2
#: Palm hands are given to a body wrist nearer than this many times the palm region's side.
PALM_TO_WRIST = 0.5
#: The most frames a palm look waits after vain looks (doubling from 1; see HandDetector.detect). On
#: the hand clips (``benchmarks/hands.py``) 4 instead of 8 finds 2 more of asl_sign_book's 90 reference
#: hands (a hand beside the other, which the body's region misses) and changes nothing else, for 1-5 %
#: more palm looks per clip; MediaPipe looks in every frame a hand is missing.
PALM_WAIT = 4
#: Two hands whose keypoint boxes overlap more than this (intersection over union) are one hand
#: (HandLandmarker's duplicate threshold).
SAME_HAND = 0.5
#: A palm whose region overlaps a followed hand's region more than this (intersection over union) is
#: that hand (HandLandmarker's min_similarity_threshold, its min_tracking_confidence 0.5).
SAME_REGION = 0.5
#: The 12 landmarks of the palm and finger bases that frame the next region (wrist, thumb's first three,
#: two lowest of each finger: MediaPipe's HandLandmarksToRoi), fingertips excluded.
PALM_LANDMARKS = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]


def _transformed(region: Region, height: float, shift_y: float, scale: float) -> Region:
    """MediaPipe's RectTransformationCalculator on a region of side ``region.side`` (its width) and
    ``height`` px: the centre moved ``shift_y`` heights along the region's own y axis (negative: towards
    the top of the upright crop, the fingers), then the long side made square and scaled."""
    c, s = math.cos(region.angle), math.sin(region.angle)
    centre = region.centre + shift_y * height * np.array([-s, c])
    return Region(centre, max(region.side, height) * scale, region.angle)


def _angle(start: np.ndarray, end: np.ndarray) -> float:
    """The region angle (:class:`Region`) that turns the vector start -> end (2,) px to point up."""
    axis = np.asarray(end, dtype=np.float64) - start
    return math.atan2(axis[0], -axis[1])


def region_from_pose(wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray) -> Region:
    """Body landmarks (2,) px each -> the rough region where Holistic's re-crop model looks for the hand
    (``HandLandmarksFromPoseToRecropRoi``: the middle finger's base estimated as (2 index + pinky) / 3,
    a square twice its distance from the wrist, moved 0.1 of it towards the fingers, enlarged 2.7x)."""
    middle = (2.0 * np.asarray(index, dtype=np.float64) + pinky) / 3.0
    side = 2.0 * float(np.hypot(*(middle - wrist)))
    return _transformed(Region(middle, side, _angle(wrist, middle)), side, -0.1, 2.7)


def recrop(image: np.ndarray, region: Region) -> Region:
    """image (H, W, 3) uint8 BGR, a rough hand region -> the tight region Holistic's re-crop model gives
    (``HandRecropByRoi``): its two points are the new centre and a point whose distance is half the new
    side, pointing from the fingers to the wrist; the square is then moved 0.1 of its side towards the
    fingers."""
    session = model_session(RECROP_MODEL, "The hand re-crop model")
    raw = session.run(None, {session.get_inputs()[0].name: crop(image, region, RECROP_SIZE)})[0].reshape(2, 2)
    centre, scale_point = region.to_image(raw / RECROP_SIZE)
    side = 2.0 * float(np.hypot(*(scale_point - centre)))
    # AlignmentPointsRectsCalculator with a target angle of -90 degrees: the axis centre -> scale point
    # points down in the upright crop, so the region turns the opposite axis up.
    return _transformed(Region(centre, side, _angle(scale_point, centre)), side, -0.1, 1.0)


def region_from_hand(keypoints: np.ndarray) -> Region:
    """keypoints (21, 2 or 3) px -> the region where the hand is looked for in the next frame
    (MediaPipe's HandLandmarksToRoi): turned so the wrist to the mean of the index, middle and ring bases
    ((5 + 13) / 2 + 9) / 2 points up, the box of the palm landmarks (:data:`PALM_LANDMARKS`) in that
    frame, moved 0.1 of its height towards the fingers, its long side doubled."""
    points = np.asarray(keypoints, dtype=np.float64)[PALM_LANDMARKS, :2]
    top = ((points[4] + points[8]) / 2.0 + points[6]) / 2.0  # landmarks 5, 13, then 9
    angle = _angle(points[0], top)
    c, s = math.cos(angle), math.sin(angle)
    # The box in the region's own axes (x: (c, s), y: (-s, c)) around the axis-aligned box's centre,
    # as MediaPipe computes it.
    middle = (points.min(0) + points.max(0)) / 2.0
    local = (points - middle) @ np.array([[c, -s], [s, c]])
    low, high = local.min(0), local.max(0)
    centre_local = (low + high) / 2.0
    centre = middle + centre_local[0] * np.array([c, s]) + centre_local[1] * np.array([-s, c])
    width, height = high - low
    return _transformed(Region(centre, float(width), angle), float(height), -0.1, 2.0)


def hand_landmarks(image: np.ndarray, region: Region) -> tuple[np.ndarray, float, float]:
    """image (H, W, 3) uint8 BGR, a hand region -> (keypoints (21, 3): x, y image px, z px (the model's
    relative depth scaled as the region's side), presence in [0, 1], the model's handedness score: the
    probability of MediaPipe's label "Left", which assumes a mirrored (selfie) picture, so in ordinary
    video a high score means a right hand)."""
    session = model_session(LANDMARK_MODEL, "The hand landmark model")
    raw, presence, handedness, _ = session.run(None, {session.get_inputs()[0].name: crop(image, region, LANDMARK_SIZE)})
    raw = raw.reshape(21, 3).astype(np.float64) / LANDMARK_SIZE
    # LandmarkProjectionCalculator: z in crop units times the region's width.
    keypoints = np.concatenate([region.to_image(raw[:, :2]), raw[:, 2:] * region.side], axis=-1)
    return keypoints, float(presence.reshape(-1)[0]), float(handedness.reshape(-1)[0])


def find_palms(image: np.ndarray, min_score: float = MIN_PALM) -> list[tuple[float, Region, np.ndarray]]:
    """image (H, W, 3) uint8 BGR -> [(score, hand region, wrist (2,) px)], best first: the palms MediaPipe's
    palm detector finds (letterboxed 192 x 192 RGB in [0, 1], weighted suppression at 0.3 overlap) and the
    region HandLandmarker makes from each (turned so the wrist to the middle finger's base points up,
    the box moved half its height towards the fingers, its long side times 2.6)."""
    palms = []
    for score, box, points in find_boxes(image, PALM_MODEL, "The palm detector", PALM_SIZE, PALM_GRIDS, min_score, low=0.0):
        size = box[1] - box[0]
        region = Region((box[0] + box[1]) / 2.0, float(size[0]), _angle(points[PALM_WRIST], points[PALM_MIDDLE]))
        palms.append((score, _transformed(region, float(size[1]), -0.5, 2.6), points[PALM_WRIST]))
    return palms


def _region_overlap(one: Region, other: Region) -> float:
    """Two turned square regions -> intersection over union of their areas (HandAssociationCalculator's
    similarity of two hand regions)."""
    boxes = [((float(r.centre[0]), float(r.centre[1])), (r.side, r.side), math.degrees(r.angle)) for r in (one, other)]
    kind, polygon = cv2.rotatedRectangleIntersection(*boxes)
    if kind == cv2.INTERSECT_NONE or polygon is None:
        return 0.0
    inter = float(cv2.contourArea(polygon))
    return inter / max(one.side ** 2 + other.side ** 2 - inter, 1e-12)


def keypoint_iou(one: np.ndarray, other: np.ndarray) -> float:
    """Two hands' keypoints (21, 2+) px -> intersection over union of their keypoint boxes."""
    boxes = np.stack([np.concatenate([hand[:, :2].min(0), hand[:, :2].max(0)]) for hand in (one, other)])
    return float(box_iou(boxes[:1], boxes[1:])[0, 0])


class HandDetector:
    """Both hands of every person, frame after frame (frames in time order: it follows hands).

    Call with each frame and the people BlazePose found in it; index 0 of the hands axis is the person's
    left hand (taken from the body's left wrist), 1 the right. ``palms``: look with the palm detector for
    hands the body does not give (see the module's docstring; about as long as a landmark call).
    """

    def __init__(self, palms: bool = True, min_presence: float = MIN_PRESENCE):
        self.palms, self.min_presence = palms, min_presence
        #: last frame's body hands: (person, side, keypoints (21, 3) px)
        self._previous: list[tuple[int, int, np.ndarray]] = []
        self._loose: list[np.ndarray] = []  # last frame's hands near no body, keypoints (21, 3)
        #: (K, 21, 3) px: hands of the last frame found by the palm detector near no person's wrist.
        self.loose = np.zeros((0, 21, 3))
        self.palm_looks = 0  # looks with the palm detector so far
        self._palm_wait, self._palm_gap = 0, 1  # frames until the next palm look; the wait after the next vain one
        self._wanted: set[tuple[int, int]] = set()  # last frame's body sides seen without a hand

    def _follow(self, image: np.ndarray, person: int, side: int, wrist: np.ndarray | None
                ) -> tuple[np.ndarray, float, float] | None:
        """The hand of ``person``'s ``side`` followed from the last frame's landmarks of that side, as
        HandLandmarker tracks (one landmark call in :func:`region_from_hand`, no re-crop call), or None
        where there was none or it is lost (presence below the minimum, or its wrist now farther from the
        body's visible ``wrist`` (2,) px than :data:`PALM_TO_WRIST` region sides: it slid to another hand).
        Last frame's hand is the one of this side whose wrist is nearest the body's wrist (the person's
        index where the body gives no wrist)."""
        if wrist is None:
            candidates = [k for p, s, k in self._previous if s == side and p == person]
        else:
            candidates = sorted((k for _, s, k in self._previous if s == side),
                                key=lambda k: float(np.hypot(*(k[0, :2] - wrist))))
        if not candidates:
            return None
        keypoints, score, left = hand_landmarks(image, region_from_hand(candidates[0]))
        if score < self.min_presence:
            return None
        if wrist is not None and np.hypot(*(keypoints[0, :2] - wrist)) > PALM_TO_WRIST * region_from_hand(keypoints).side:
            return None
        return keypoints, score, left

    def detect(self, image: np.ndarray, points: np.ndarray, visibility: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8 BGR; points (P, 33 or more, 2) px, BlazePose's landmarks of each person;
        visibility (P, 33 or more) in [0, 1] -> hands (P, 2, 21, 3) px (x, y, relative depth z, see the
        module's docstring; NaN where not found), presence (P, 2) in [0, 1] (0 where not found) and
        handedness (P, 2): the landmark model's probability that the hand is the side we say it is
        (taken from the body; low values flag a left/right mix-up; NaN where not found)."""
        points = np.asarray(points, dtype=np.float64)
        points = points.reshape(0, 33, 2) if points.size == 0 else points
        visibility = np.asarray(visibility, dtype=np.float64).reshape(len(points), -1 if len(points) else 33)
        people = len(points)
        hands = np.full((people, 2, 21, 3), np.nan)
        presence = np.zeros((people, 2))
        handedness = np.full((people, 2), np.nan)
        missing, rough = [], {}  # sides with no hand yet; (person, side) -> the body's rough region
        for person in range(people):
            for side, (wrist, pinky, index) in enumerate(POSE_HAND):
                trio = points[person, [wrist, pinky, index]]
                if np.isfinite(trio).all() and visibility[person, wrist] > MIN_WRIST_VISIBILITY:
                    region = region_from_pose(*trio)
                    if region.side >= 1.0:
                        rough[person, side] = region
                # A hand seen last frame is followed from its own landmarks, as HandLandmarker follows it.
                found = self._follow(image, person, side, trio[0] if (person, side) in rough else None)
                if found is None:
                    missing.append((person, side))
                    continue
                keypoints, score, left = found
                hands[person, side], presence[person, side] = keypoints, score
                # The bare model's "Left" is the person's right hand in an unmirrored picture (it was
                # trained on mirrored selfies; on the ASL clips it agrees with the body this way).
                handedness[person, side] = left if side == 1 else 1.0 - left
        # Two body sides on one hand (hands held together, crossed, a wrist mistaken): the hand is kept
        # on the side its handedness agrees with best, as MediaPipe's HandLandmarker drops duplicates.
        for person in range(people):
            if presence[person].all() and keypoint_iou(hands[person, 0], hands[person, 1]) > SAME_HAND:
                worse = int(np.argmin(handedness[person]))
                hands[person, worse], presence[person, worse], handedness[person, worse] = np.nan, 0.0, np.nan
                missing.append((person, worse))
        found = [hands[person, side] for person in range(people) for side in (0, 1) if presence[person, side] > 0]
        wrists = points[:, [POSE_HAND[0][0], POSE_HAND[1][0]]] if people else np.zeros((0, 2, 2))
        loose = []

        def place(keypoints: np.ndarray, score: float, left: float, only: tuple[int, int] | None = None) -> bool:
            """A hand found away from last frame's hands: given to the nearest missing side whose body
            wrist is near its wrist (``only``: to that side or to none), kept apart if no body wrist is
            near, dropped if it is one found or near a wrist whose side has a hand. True if kept."""
            if score < self.min_presence or any(keypoint_iou(keypoints, other) > SAME_HAND for other in found):
                return False
            reach = PALM_TO_WRIST * region_from_hand(keypoints).side
            distance = np.linalg.norm(wrists - keypoints[0, :2], axis=-1)  # (P, 2) px
            slots = [(float(distance[p, s]), p, s) for p, s in missing
                     if distance[p, s] < reach and (only is None or (p, s) == only)]
            if slots:
                _, person, side = min(slots)
                missing.remove((person, side))
                hands[person, side], presence[person, side] = keypoints, score
                handedness[person, side] = left if side == 1 else 1.0 - left
            elif only is None and not (distance < reach).any():
                loose.append(keypoints)
            else:
                return False
            found.append(keypoints)
            return True

        # Hands kept apart in the last frame are followed from their landmarks, as HandLandmarker does.
        for previous in self._loose:
            place(*hand_landmarks(image, region_from_hand(previous)))
        # New hands are found as HandLandmarker finds them, by the palm detector, while a body side has
        # no hand or, with nobody, fewer than two hands are followed: following a hand from where the
        # reference first found it keeps us on its track (from a region of the body's, the landmarks
        # differ where hands move fast or touch). A look that finds nothing new waits twice as many
        # frames before the next (up to PALM_WAIT) unless a body wrist newly shows without a hand or a
        # hand followed last frame is lost (then HandLandmarker would look at once): a close-up with one
        # hand and a side the body never sees does not pay a look every frame.
        wanted = {key for key in missing if key in rough}
        if self.palms and (missing or (not people and len(loose) < 2)):
            if wanted - self._wanted or len(found) < len(self._previous) + len(self._loose):
                self._palm_wait, self._palm_gap = 0, 1
            if self._palm_wait > 0:
                self._palm_wait -= 1
            else:
                self.palm_looks += 1
                new = False
                for _, region, _ in find_palms(image):
                    # A palm whose region overlaps a found hand's is that hand: no landmark call
                    # (HandAssociationCalculator: overlap over SAME_REGION; a centre distance would also
                    # drop the second of two hands held together).
                    if any(_region_overlap(region_from_hand(k), region) > SAME_REGION for k in found):
                        continue
                    new |= place(*hand_landmarks(image, region))
                self._palm_wait, self._palm_gap = (0, 1) if new else (self._palm_gap, min(2 * self._palm_gap, PALM_WAIT))
        self._wanted = wanted
        # A body side still without a hand: Holistic's way, the re-crop model in the body's region.
        for person, side in [key for key in missing if key in rough]:
            place(*hand_landmarks(image, recrop(image, rough[person, side])), only=(person, side))
        self.loose = np.array(loose).reshape(-1, 21, 3)
        self._loose = loose
        self._previous = [(person, side, hands[person, side]) for person in range(people) for side in (0, 1)
                          if presence[person, side] > 0]
        return hands, presence, handedness

    def close(self) -> None:
        """Nothing to release (the models' sessions are shared)."""
