"""Two people standing close together stay two people (posemoe.detect.blazepose).

BlazePose's regions are squares about 1.25 x a body's height on the side, so those of two people side by
side overlap by more than MediaPipe's 0.5: its association let one region remove the other, and on the
multi-view scene's views (``benchmarks/multiview.py``) the capture followed one of the two people in
most frames, its region sliding from one to the other. Here both models are stand-ins that see a
made-up scene (the logic under test is what joins them, not the models), so these run in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from posemoe.detect import blazepose
from posemoe.detect.blazepose import SAME_REGION, BlazePoseDetector, _box, covered, distinct, explained, pair_regions
from posemoe.detect.landmarks import HIP_CENTRE, Pose, region_from_axis
from posemoe.detect.people import Person
from posemoe.track import box_iou

RADIUS = 200.0  # px: hips to the scale point; the region's side is 2.5 x this
# A body's 33 landmarks around its hips: a figure 160 px wide and 400 px tall.
_RNG = np.random.default_rng(0)
TEMPLATE = np.column_stack([_RNG.uniform(-80, 80, 33), _RNG.uniform(-220, 180, 33)])


def body(hips: tuple[float, float]) -> Pose:
    """A standing body whose hip centre is ``hips`` (px)."""
    hips = np.asarray(hips, dtype=np.float64)
    points = np.vstack([TEMPLATE + hips, hips, hips - (0.0, RADIUS), np.repeat(hips[None], 4, axis=0)])
    return Pose(points, np.ones(39), 1.0)


def mixed(a: Pose, b: Pose) -> Pose:
    """A skeleton drawn across two bodies: its first landmarks on ``a``, the rest on ``b``."""
    points = np.vstack([a.points[:17], b.points[17:]])
    return Pose(points, np.full(39, 0.7), 0.8)


class Scene:
    """Stand-ins for the two models: the person detector finds ``finds`` (hip centres, px) each frame,
    the landmark model returns the body (or ``phantom``) nearest the region's centre."""

    def __init__(self, bodies: list[tuple[float, float]], finds: list[tuple[float, float]] | None = None):
        self.bodies = [body(hips) for hips in bodies]
        self.finds = list(bodies) if finds is None else finds
        self.phantom: tuple[np.ndarray, Pose] | None = None  # (where, the pose a region there gives)
        self.looked_at: list[np.ndarray] = []  # region centres given to the landmark model

    def find_people(self, image, min_score):
        return [Person(0.9, region_from_axis(np.asarray(hips, float), np.asarray(hips, float) - (0.0, RADIUS)))
                for hips in self.finds]

    def landmarks(self, image, region):
        self.looked_at.append(region.centre)
        candidates = [(pose.points[HIP_CENTRE], pose) for pose in self.bodies]
        if self.phantom is not None:
            candidates.append(self.phantom)
        return min(candidates, key=lambda c: np.hypot(*(c[0] - region.centre)))[1]


@pytest.fixture
def scene(monkeypatch):
    def make(*args, **kwargs) -> Scene:
        made = Scene(*args, **kwargs)
        monkeypatch.setattr(blazepose, "find_people", made.find_people)
        monkeypatch.setattr(blazepose, "landmarks", made.landmarks)
        return made
    return make


IMAGE = np.zeros((1200, 1000, 3), np.uint8)
# Hips 160 px apart: the two people's regions (500 px squares) overlap by 0.52.
SIDE_BY_SIDE = [(400.0, 600.0), (560.0, 600.0)]


def _hips(poses: list[Pose]) -> list[tuple[float, float]]:
    return sorted(tuple(pose.points[HIP_CENTRE]) for pose in poses)


def test_the_scene_is_two_people_whose_regions_overlap_more_than_mediapipes_bar():
    a, b = (region_from_axis(np.array(h), np.array(h) - (0.0, RADIUS)) for h in SIDE_BY_SIDE)
    assert box_iou(_box(a)[None], _box(b)[None])[0, 0] > SAME_REGION


@pytest.mark.parametrize("max_people", [2, 3, 5])
def test_two_people_side_by_side_are_both_followed(scene, max_people):
    scene(SIDE_BY_SIDE)
    detector = BlazePoseDetector(max_people=max_people)
    for _ in range(5):
        assert _hips(detector.poses(IMAGE)) == SIDE_BY_SIDE


def test_a_find_that_overlaps_the_wrong_person_more_does_not_lose_either(scene):
    """The person detector finds only the right-hand person, its region put nearer the other person's
    than their own: the find takes the left one's place, its landmarks land on the right one, so the left
    one is looked for where they were too."""
    made = scene(SIDE_BY_SIDE)
    detector = BlazePoseDetector(max_people=3)
    assert len(detector.poses(IMAGE)) == 2
    made.finds = [(440.0, 600.0)]  # the right-hand person's find, 40 px from the left's hips
    for _ in range(3):
        assert _hips(detector.poses(IMAGE)) == SIDE_BY_SIDE


def test_a_skeleton_drawn_across_two_people_is_dropped(scene):
    made = scene(SIDE_BY_SIDE)
    across = mixed(*made.bodies)
    made.phantom = (np.array([480.0, 600.0]), across)
    made.finds = SIDE_BY_SIDE + [(480.0, 600.0)]
    detector = BlazePoseDetector(max_people=3)
    for _ in range(3):
        found = detector.poses(IMAGE)
        assert _hips(found) == SIDE_BY_SIDE and not any(pose is across for pose in found)


def test_one_person_found_twice_is_reported_once(scene):
    made = scene([(400.0, 600.0)], finds=[(400.0, 600.0), (400.0, 420.0)])  # the second find overlaps 0.47
    detector = BlazePoseDetector(max_people=3)
    for _ in range(3):
        assert len(detector.poses(IMAGE)) == 1
    assert len(made.looked_at) >= 3


def test_where_people_stand_apart_the_fresh_find_is_followed_as_mediapipe_does(scene):
    """One person, found again in every frame a little off their own next region: the landmark model
    looks in the person detector's region (MediaPipe's association: the fresher stream wins), once."""
    made = scene([(400.0, 600.0)], finds=[(410.0, 590.0)])
    detector = BlazePoseDetector(max_people=3)
    detector.poses(IMAGE)
    made.looked_at.clear()
    detector.poses(IMAGE)
    assert len(made.looked_at) == 1 and np.allclose(made.looked_at[0], (410.0, 590.0))


def test_pairing_is_one_to_one_most_overlapping_first():
    regions = [region_from_axis(np.array(h), np.array(h) - (0.0, RADIUS)) for h in SIDE_BY_SIDE]
    assert pair_regions(regions, regions) == {0: 0, 1: 1}
    assert pair_regions(regions[1:], regions) == {1: 0}  # one find takes one place only
    assert pair_regions([], regions) == {} and pair_regions(regions, []) == {}


def test_distinct_keeps_the_most_visible_of_one_body_and_separate_people():
    a, b = body(SIDE_BY_SIDE[0]), body(SIDE_BY_SIDE[1])
    faint = Pose(a.points + 3.0, np.full(39, 0.5), 1.0)
    assert distinct([faint, a, b]) == [a, b]
    assert explained(mixed(a, b), [a, b]) < blazepose.SAME_BODY < explained(b, [a])
    mirror = Pose(a.points[::-1].copy(), np.full(39, 0.5), 1.0)  # left and right (and all) relabelled
    squeezed = a.points.copy()
    squeezed[:33] = a.points[32::-1]
    squeezed[:33, 1] = a.points[HIP_CENTRE, 1] + 60.0 + 0.6 * TEMPLATE[::-1, 1]
    legs = Pose(squeezed, np.full(39, 0.5), 1.0)  # a skeleton drawn on the lower half, labels muddled
    assert explained(legs, [a]) > blazepose.SAME_BODY
    assert distinct([a, mirror, b]) == [a, b] and distinct([legs, a]) == [a]
    assert covered(mirror, a) < blazepose.SAME_PLACE < covered(b, a)
