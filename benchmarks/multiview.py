"""Real footage in 3D: each view of a calibrated multi-view scene captured as a user would, scored
against the triangulation of all the views.

    python benchmarks/multiview.py [--before FILE] [--markdown FILE] [--json FILE]

The scene: ``../shared/media/multiview/pose2sim_multiperson/`` (README there): four synchronised,
calibrated portrait views (60 frames/s, 100 frames) of a man and a woman, bystanders in some views.
Skipped, with a message, where that folder is absent.

1. **Calibration.** Qualisys XML read as the README (and Pose2Sim) read it: intrinsics in 1/64 px,
   the camera's pose in the world, turned by pi about the camera's x axis to OpenCV's axes; lens
   distortion is left out, as Pose2Sim leaves it (the triangulation and its check both use the pinhole).
   Checked by reprojection: the median distance of each view's confident landmarks from the
   triangulation's reprojection.
2. **The truth** (a pseudo-truth, good to a few centimetres): the capture's own detector
   (:class:`posemoe.detect.blazepose.BlazePoseDetector`, up to 5 people) runs on every view; at the
   first frame where two people are each seen consistently by two views or more (their detections'
   hip centre, scale point, nose and shoulder and hip midpoints triangulate within :data:`SAME_PERSON_PX`),
   those two are the man and the woman (a bystander is seen by one view only). From there on each
   person is followed in all four views at once: BlazePose's landmark model runs in every view on the
   region the person's last triangulated alignment points project to (the region the detector itself
   would follow them in, from a 3D estimate rather than one view's, so a person the person detector
   misses in a view, or whose region slid onto the other person, is still looked for in the right
   place). Per frame and person, left/right is put the same way round in every view first (per limb
   group: legs, arms, face; the labelling of the views that agrees best across them; a view in the
   minority is dropped for that group, a tie decided by the body's own handedness: the nose in front
   of the ears), then each of the 33 landmarks is triangulated (DLT) from the views that see it
   (visibility >= :data:`MIN_VISIBILITY`), the worst view dropped while its reprojection is more than
   :data:`MAX_REPROJECTION_PX` off and more than two are left; a landmark left with fewer than two
   consistent views is missing. The 17 Human3.6M joints are made from the 33 in 3D exactly as the
   capture makes them in 2D (:func:`posemoe.detect.layout.blazepose_to_h36m`).
3. **The captures.** Each view through the command line, as a user runs it:
   ``python -m posemoe capture VIEW -o TAKE --people all`` with the default lens (what users get),
   and again with ``--focal-px`` the view's true focal length (the command line's lens option). Each
   take's people are matched to the truth's frame by frame by their 2D (the nearest within 15 % of the
   person's height, median over joints, of the truth's reprojection): a take that slides onto the other
   person is scored on each only while it is on them.
   MediaPipe's PoseLandmarker (the same BlazePose models, video mode, up to 5 people) on every view
   gives the anchor row: its per-frame 3D world landmarks, mapped onto the 17 joints the same way.
4. **Scores**, per view and person, on the frames where both the truth and the capture have the
   person: MPJPE and PA-MPJPE (:mod:`posemoe.metrics`), root-relative in the view's camera, on the 14
   limb and torso joints :data:`SCORED` (hips, knees, ankles, shoulders, elbows, wrists, thorax, head:
   not the pelvis, the root, zero by construction; not the spine and nose, which the layout makes as
   fixed blends of the others); per-joint errors; bone-length spread (std over frames of each bone's
   length, mean over the 16 bones); for the two people, the distance between their roots (pelvises)
   against the truth's (median over frames of the absolute error, mm and %), and the height of each
   one's planted feet above the truth's floor once both are placed by the capture: the take's
   camera-space joints of both people turned into the truth's world by the true camera's rotation,
   then one scale and one shift fitted to both together over all frames, so a shared error of size
   or distance is forgiven and how the capture places each person against the other shows (a
   fitted rotation would hide it: a tilt lays one floor under two people put at different heights). The floor: the lab's (Z up); its level under the lower of the two people's
   planted ankles less :data:`posemoe.skeleton.ANKLE_HEIGHT` (the capture's own rule). Planted:
   the truth's lower ankle moving slower than :data:`PLANTED_SPEED`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posemoe import metrics
from posemoe.detect.blazepose import BlazePoseDetector
from posemoe.detect.landmarks import HIP_CENTRE, SCALE_POINT, landmarks, region_from_axis
from posemoe.detect.layout import blazepose_to_h36m
from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.motion.bones import bone_length_series
from posemoe.skeleton import (
    ANKLE_HEIGHT, ANKLES, HEAD, JOINT_NAMES, L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, PELVIS,
    R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_SHOULDER, R_WRIST, THORAX,
)
from posemoe.take import load_takes
from posemoe.video import read_frames

ROOT = Path(__file__).resolve().parent.parent
SCENE = ROOT.parent / "shared" / "media" / "multiview" / "pose2sim_multiperson"
CALIBRATION = "Calib.qca.txt"
VIEWS = ("cam01", "cam02", "cam03", "cam04")

#: The 14 joints scored: limbs, thorax and head (see the module's docstring for the three left out).
SCORED = (R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, THORAX, HEAD, L_SHOULDER, L_ELBOW, L_WRIST,
          R_SHOULDER, R_ELBOW, R_WRIST)
MIN_VISIBILITY = 0.5  # BlazePose's visibility a landmark needs to be triangulated from a view
MIN_PRESENCE = 0.5  # the landmark model's presence a view's pose needs (the detector's own threshold)
#: A view whose reprojection is farther off than this is dropped from a landmark's triangulation:
#: about 6 cm on a body 3.5 m from these 1,680 px lenses, twice the spread of BlazePose's joint
#: centres between views (the README's 6-16 px median reprojection).
MAX_REPROJECTION_PX = 30.0
#: Two views' detections are one person when their swap-free points triangulate within this (px,
#: median reprojection).
SAME_PERSON_PX = 40.0
PLANTED_SPEED = 0.2  # m/s: a lower ankle slower than this stands on something

# BlazePose's 33 landmarks by side, as (left, right) pairs, grouped as the detector mixes them up: a
# view labels a whole leg (or arm, or the face) the wrong way round, not one joint.
GROUPS = {
    "legs": ((23, 24), (25, 26), (27, 28), (29, 30), (31, 32)),
    "arms": ((11, 12), (13, 14), (15, 16), (17, 18), (19, 20), (21, 22)),
    "face": ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10)),
}
NOSE_LANDMARK, EARS, SHOULDERS_33, HIPS_33 = 0, (7, 8), (11, 12), (23, 24)


# ----------------------------------------------------------------------------------------------------
# Cameras and triangulation

@dataclass(frozen=True)
class Camera:
    """One calibrated view: K (3, 3) px, R (3, 3) and t (3,) metres taking world points to OpenCV camera
    axes (``x_cam = R @ x_world + t``), the picture's width and height px."""

    name: str
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    @property
    def P(self) -> np.ndarray:
        """(3, 4) the projection matrix K [R | t]."""
        return self.K @ np.column_stack([self.R, self.t])

    @property
    def focal_px(self) -> float:
        return float((self.K[0, 0] + self.K[1, 1]) / 2)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """points (..., 3) world metres -> (..., 3) camera metres."""
        return points @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """points (..., 3) world metres -> (..., 2) px (NaN stays NaN)."""
        camera = self.to_camera(points) @ self.K.T
        return camera[..., :2] / camera[..., 2:3]


def read_calibration(path: Path) -> dict[str, Camera]:
    """A Qualisys ``.qca.txt`` -> {serial: Camera}, read as the scene's README says (Pose2Sim's
    reading): f = focalLength / 64, c = centerPoint / 64 less the video window's corner; the rotation
    r11..r33 read by column gives the world-to-camera rotation R = [r], t = -R @ position (mm ->
    m), both turned by pi about the camera's x axis (Qualisys's camera axes to OpenCV's)."""
    cameras = {}
    flip = np.diag([1.0, -1.0, -1.0])
    for node in ET.parse(path).getroot().iter("camera"):
        lens, window, pose = node.find("intrinsic").attrib, node.find("fov_video").attrib, node.find("transform").attrib
        K = np.array([[float(lens["focalLengthU"]) / 64, 0.0, float(lens["centerPointU"]) / 64 - float(window["left"])],
                      [0.0, float(lens["focalLengthV"]) / 64, float(lens["centerPointV"]) / 64 - float(window["top"])],
                      [0.0, 0.0, 1.0]])
        rotation = np.array([[float(pose[f"r{row}{col}"]) for col in "123"] for row in "123"])
        position = np.array([float(pose[axis]) for axis in "xyz"]) / 1000.0
        cameras[node.get("serial")] = Camera(node.get("serial"), K, flip @ rotation, flip @ (-rotation @ position),
                                             int(window["right"]) - int(window["left"]) + 1,
                                             int(window["bottom"]) - int(window["top"]) + 1)
    return cameras


def triangulate(projections: np.ndarray, points: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of many points at once.

    projections (V, 3, 4); points (V, ..., 2) px; use (V, ...) bool, which views each point is
    triangulated from. Returns (..., 3) world, NaN where fewer than two views are used."""
    points = np.nan_to_num(np.asarray(points, dtype=np.float64))
    shape = points.shape[1:-1]
    # Two rows per view, u P3 - P1 and v P3 - P2, each of unit length so every view counts alike;
    # rows of unused views are zero.
    rows = points[..., :, None] * projections[(slice(None),) + (None,) * len(shape) + (2,)][..., None, :] \
        - projections[(slice(None),) + (None,) * len(shape) + (slice(0, 2),)]  # (V, ..., 2, 4)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12) * np.asarray(use)[..., None, None]
    system = np.moveaxis(rows, 0, -3).reshape(*shape, -1, 4)  # (..., 2V, 4)
    homogeneous = np.linalg.svd(system)[2][..., -1, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        world = homogeneous[..., :3] / homogeneous[..., 3:]
    return np.where((np.asarray(use).sum(0) >= 2)[..., None], world, np.nan)


def reprojection_errors(cameras: list[Camera], world: np.ndarray, points: np.ndarray) -> np.ndarray:
    """world (..., 3), points (V, ..., 2) px -> (V, ...) px, the distance of each view's point from the
    world point's projection."""
    return np.stack([np.linalg.norm(camera.project(world) - p, axis=-1) for camera, p in zip(cameras, points)])


def robust_triangulate(cameras: list[Camera], points: np.ndarray, use: np.ndarray,
                       max_error: float = MAX_REPROJECTION_PX) -> tuple[np.ndarray, np.ndarray]:
    """:func:`triangulate` from mutually consistent views only: of every set of two views or more among
    those ``use`` allows, the largest whose every view reprojects within ``max_error`` px (of equal
    sizes, the one reprojecting closest). Every set is tried rather than the worst view dropped in
    turn: one bad view (a person half hidden behind the other) pulls a triangulation of all the views
    so far that a good view can look like the worst.

    points (V, ..., 2) px, use (V, ...) bool. Returns (world (..., 3), NaN where no two views agree
    within ``max_error``; used (V, ...) bool, the views kept)."""
    projections = np.stack([camera.P for camera in cameras])
    use = np.asarray(use, dtype=bool)
    shape = use.shape[1:]
    best_world = np.full(shape + (3,), np.nan)
    best_used = np.zeros_like(use)
    best_key = np.full(shape, -np.inf)  # views kept, then closeness: larger is better
    for size in range(2, len(cameras) + 1):
        for members in itertools.combinations(range(len(cameras)), size):
            mask = np.zeros(len(cameras), dtype=bool)
            mask[list(members)] = True
            subset = use & mask[(slice(None),) + (None,) * len(shape)]
            possible = subset.sum(0) == size
            world = triangulate(projections, points, subset)
            errors = np.where(subset, reprojection_errors(cameras, world, points), 0.0)
            worst = np.nan_to_num(errors.max(0), nan=np.inf)
            key = size - worst / (max_error + 1.0)  # in (size - 1, size]: size first, then closeness
            better = possible & (worst <= max_error) & (key > best_key)
            best_world = np.where(better[..., None], world, best_world)
            best_used = np.where(better[None], subset, best_used)
            best_key = np.where(better, key, best_key)
    return best_world, best_used


# ----------------------------------------------------------------------------------------------------
# The truth: the two people followed in all views at once

def _swap_free(points: np.ndarray) -> np.ndarray:
    """points (..., 39, 2 or 3) BlazePose landmarks -> (..., 5, C): points no left/right mix-up moves
    (nose, hip centre, scale point, shoulders' and hips' midpoints)."""
    return np.stack([points[..., NOSE_LANDMARK, :], points[..., HIP_CENTRE, :], points[..., SCALE_POINT, :],
                     points[..., list(SHOULDERS_33), :].mean(-2), points[..., list(HIPS_33), :].mean(-2)], axis=-2)


def detect_views(videos: list[Path], max_people: int = 5) -> list[list[list[tuple[np.ndarray, np.ndarray]]]]:
    """The capture's detector on each view: per view, per frame, everyone's (points (39, 2) px,
    visibility (39,))."""
    found = []
    for video in videos:
        detector = BlazePoseDetector(max_people=max_people)
        found.append([[(pose.points, pose.visibility) for pose in detector.poses(frame.image)]
                      for frame in read_frames(video, 0, None)])
    return found


def people_at(cameras: list[Camera], frame: list[list[tuple[np.ndarray, np.ndarray]]]) -> list[tuple[float, dict]]:
    """One frame's detections in every view (per view, [(points (39, 2), visibility (39,))]) -> the
    people seen consistently by two views or more: [(median reprojection px, {view: detection
    index})], best first, no detection in two people. Tries every choice of at most one detection per
    view (few people: a handful of choices)."""
    options = [[None, *range(len(view))] for view in frame]
    candidates = []
    for choice in itertools.product(*options):
        views = [v for v, k in enumerate(choice) if k is not None]
        if len(views) < 2:
            continue
        points = np.stack([_swap_free(frame[v][choice[v]][0]) for v in views])
        world, used = robust_triangulate([cameras[v] for v in views], points, np.ones(points.shape[:2], dtype=bool),
                                         SAME_PERSON_PX)
        if used.all():  # every view chosen agrees on every point
            error = float(np.median(reprojection_errors([cameras[v] for v in views], world, points)))
            candidates.append((-len(views), error, {v: choice[v] for v in views}))
    people, taken = [], set()
    for _, error, members in sorted(candidates, key=lambda c: (c[0], c[1])):
        if not any((v, k) in taken for v, k in members.items()):
            people.append((error, members))
            taken.update(members.items())
    return people


def _labelling(cameras: list[Camera], points: np.ndarray, seen: np.ndarray, group: tuple[tuple[int, int], ...],
               chirality) -> np.ndarray:
    """Which views label one limb group the right way round, in one frame: points (V, 39, 2) px, seen
    (V, 39) bool. Returns (V,) bool: True for a view to keep for this group. Every labelling of the
    views (one fixed) is triangulated from consistent views (:func:`robust_triangulate`); the one under
    which most points agree splits the views in two, the larger side is kept; on a tie ``chirality(world (33, 3)) -> bool`` says whether the labels as the
    first view gives them are the right way round."""
    views = np.flatnonzero(seen[:, [i for pair in group for i in pair]].any(1))
    keep = np.zeros(len(cameras), dtype=bool)
    if len(views) < 2:
        keep[views] = True
        return keep
    left, right = [p[0] for p in group], [p[1] for p in group]
    best = None
    for flips in itertools.product((False, True), repeat=len(views) - 1):
        flips = np.array((False, *flips))
        mine = points[views].copy()
        use = seen[views].copy()
        swapped = np.ix_(np.flatnonzero(flips), left + right)
        mine[swapped] = points[views[flips]][:, right + left]
        use[swapped] = seen[views[flips]][:, right + left]
        _, kept = robust_triangulate([cameras[v] for v in views], mine[:, left + right], use[:, left + right])
        # The labelling under which most of the views' points agree: a view labelled the wrong way
        # round agrees with nobody.
        score = int(kept.sum())
        if best is None or score > best[0]:
            best = (score, flips, mine, use)
    _, flips, mine, use = best
    if flips.sum() * 2 != len(flips):
        side = flips if flips.sum() * 2 > len(flips) else ~flips
    else:
        world, _ = robust_triangulate([cameras[v] for v in views], mine[:, :33], use[:, :33])
        side = ~flips if chirality(world) else flips
    keep[views[side]] = True
    return keep


def _nose_in_front(world: np.ndarray) -> bool:
    """world (33, 3) landmarks, Z up -> whether the nose is in front of the ears for the body the
    left/right labels describe: forward = (left - right) x up, from the hips and shoulders."""
    up = np.array([0.0, 0.0, 1.0])
    across = np.nanmean([world[11] - world[12], world[23] - world[24]], axis=0)
    forward = np.cross(across, up)
    face = world[NOSE_LANDMARK] - world[list(EARS)].mean(0)
    return bool(np.nan_to_num(face @ forward) >= 0)


def triangulate_person(cameras: list[Camera], points: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """One person in one frame: points (V, 39, 2) px, visibility (V, 39) in [0, 1] (0 for a view that
    does not see them). Returns (39, 3) world metres, NaN where fewer than two consistent views see a
    landmark: left/right first put the same way round (:func:`_labelling`), then each landmark from its
    consistent views (:func:`robust_triangulate`)."""
    seen = visibility >= MIN_VISIBILITY
    for group in GROUPS.values():
        keep = _labelling(cameras, points, seen, group, _nose_in_front)
        members = [i for pair in group for i in pair]
        seen[np.ix_(~keep, members)] = False
    world, _ = robust_triangulate(cameras, points, seen)
    return world


def follow(cameras: list[Camera], videos: list[Path], detections: list) -> dict:
    """The truth: the two people seen consistently from the first frame where two are, followed in all
    views (see the module's docstring). Returns {"landmarks": (2, N, 39, 3) world metres, NaN where not
    triangulated; "joints": (2, N, 17, 3), the Human3.6M joints; "start": the first frame; "views":
    (2, N, V) bool, the views whose pose was used; "points" (2, N, V, 39, 2) px and "visibility" (2, N, V,
    39), each view's landmarks of each person; "reprojection_px": per view, the median over
    landmarks kept and frames}."""
    frames = len(detections[0])
    start, seeds = None, None
    for i in range(frames):
        people = people_at(cameras, [view[i] for view in detections])
        if len(people) >= 2:
            start, seeds = i, people[:2]
            break
    if start is None:
        raise RuntimeError("no frame has two people seen by two views each")
    anchors = []  # per person, the last triangulated hip centre and scale point (2, 3)
    for _, members in seeds:
        views = sorted(members)
        points = np.stack([_swap_free(detections[v][start][members[v]][0])[1:3] for v in views])
        anchors.append(triangulate(np.stack([cameras[v].P for v in views]), points, np.ones(points.shape[:2], bool)))
    world = np.full((2, frames, 39, 3), np.nan)
    used = np.zeros((2, frames, len(cameras)), dtype=bool)
    seen_points = np.full((2, frames, len(cameras), 39, 2), np.nan)
    seen_visibility = np.zeros((2, frames, len(cameras), 39))
    errors: list[list[float]] = [[] for _ in cameras]
    readers = [read_frames(video, start, None) for video in videos]
    for i in range(start, frames):
        images = [next(reader).image for reader in readers]
        for p in range(2):
            points = np.full((len(cameras), 39, 2), np.nan)
            visibility = np.zeros((len(cameras), 39))
            for v, (camera, image) in enumerate(zip(cameras, images)):
                centre, scale = camera.project(anchors[p])
                pose = landmarks(image, region_from_axis(centre, scale))
                if pose.presence >= MIN_PRESENCE:
                    points[v], visibility[v] = pose.points, pose.visibility
            world[p, i] = triangulate_person(cameras, points, visibility)
            seen_points[p, i], seen_visibility[p, i] = points, visibility
            kept = np.isfinite(world[p, i]).all(-1)
            projected = np.stack([camera.project(world[p, i]) for camera in cameras])
            close = np.linalg.norm(projected - points, axis=-1) <= MAX_REPROJECTION_PX
            used[p, i] = (close & kept[None] & (visibility >= MIN_VISIBILITY)).sum(1) >= 17
            for v in range(len(cameras)):
                mine = kept & (visibility[v] >= MIN_VISIBILITY) & close[v]
                errors[v].extend(np.linalg.norm(projected[v] - points[v], axis=-1)[mine][:33].tolist())
            if np.isfinite(world[p, i, [HIP_CENTRE, SCALE_POINT]]).all():
                anchors[p] = world[p, i, [HIP_CENTRE, SCALE_POINT]]
    confidence = np.isfinite(world[..., :33, :]).all(-1).astype(float)
    joints, _ = blazepose_to_h36m(world[..., :33, :], confidence)
    return {"landmarks": world, "joints": joints, "start": start, "views": used, "points": seen_points,
            "visibility": seen_visibility,
            "reprojection_px": [float(np.median(e)) if e else float("nan") for e in errors],
            "seed_reprojection_px": [float(s[0]) for s in seeds]}


# ----------------------------------------------------------------------------------------------------
# Scores

def planted(joints: np.ndarray, fps: float, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """joints (N, 17, 3) world metres -> (N,) bool: frames whose lower ankle moves slower than
    :data:`PLANTED_SPEED` (NaN frames: False)."""
    heights = joints[:, list(ANKLES)] @ up
    lower = np.array(ANKLES)[np.argmin(np.nan_to_num(heights, nan=np.inf), axis=1)]
    ankle = joints[np.arange(len(joints)), lower]
    speed = np.linalg.norm(np.gradient(ankle, axis=0), axis=-1) * fps
    return np.nan_to_num(speed, nan=np.inf) < PLANTED_SPEED


def sole_heights(joints: np.ndarray, floor: float, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """joints (N, 17, 3) metres -> (N,) metres: the lower sole's height above the floor ``floor`` (the
    floor's level along ``up``), the ankle less :data:`ANKLE_HEIGHT`."""
    return np.nanmin(joints[:, list(ANKLES)] @ up, axis=1) - ANKLE_HEIGHT - floor


def truth_floor(people: list[np.ndarray], fps: float) -> float:
    """people: each (N, 17, 3) world metres, Z up -> the floor's level (Z, metres): under the lower
    person's planted ankles (median), as the capture puts its own floor."""
    levels = [float(np.median(sole_heights(j[planted(j, fps)], 0.0))) for j in people if planted(j, fps).any()]
    return min(levels)


def root_distance_error(captured: tuple[np.ndarray, np.ndarray], truth: tuple[np.ndarray, np.ndarray]) -> dict:
    """The two people's roots, (N, 3) each, captured (any one frame, metres) and true -> median over
    frames of |captured distance - true distance| (mm and % of the true distance), the medians of
    both distances (m)."""
    found = np.linalg.norm(captured[0] - captured[1], axis=-1)
    true = np.linalg.norm(truth[0] - truth[1], axis=-1)
    return {"error_mm": 1000 * float(np.median(np.abs(found - true))),
            "error_pct": 100 * float(np.median(np.abs(found - true) / true)),
            "captured_m": float(np.median(found)), "true_m": float(np.median(true))}


def floor_heights(captured: list[np.ndarray], truth: list[np.ndarray], floor: float, feet: list[np.ndarray],
                  rotation: np.ndarray) -> dict:
    """Each person's planted feet above the truth's floor once both are placed by the capture.

    captured, truth: per person (N, 17, 3) metres on the same frames, the capture in its camera's
    space, the truth in the world (Z up, floor at Z = ``floor``); feet: per person (N,) bool, the frames
    where the truth's foot is planted; rotation (3, 3) the true camera's world-to-camera rotation.
    Both captured people are turned into the world by the true camera's rotation, then one scale and
    one shift, fitted to all their joints together, place them (a lens or body size the capture got
    wrong for both is forgiven); no rotation is fitted, since a tilt would lay a floor under both of
    two people the capture put at different heights. Per person, the median over planted frames of
    the lower sole's height (:func:`sole_heights`), captured and true, metres."""
    turned = [c @ rotation for c in captured]  # x_world = R^T x_camera, on row vectors
    source = np.concatenate([c.reshape(-1, 3) for c in turned])
    target = np.concatenate([t.reshape(-1, 3) for t in truth])
    source_mean, target_mean = source.mean(0), target.mean(0)
    scale = float(np.sum((source - source_mean) * (target - target_mean)) / np.sum((source - source_mean) ** 2))
    placed = [scale * (c - source_mean) + target_mean for c in turned]
    return {"captured_m": [float(np.median(sole_heights(c[f], floor))) for c, f in zip(placed, feet)],
            "true_m": [float(np.median(sole_heights(t[f], floor))) for t, f in zip(truth, feet)],
            "scale": scale}


def score_person(pred: np.ndarray, truth: np.ndarray) -> dict:
    """pred, truth (N, 17, 3) camera metres on the same frames -> MPJPE and PA-MPJPE (mm) on
    :data:`SCORED`, root-relative, and the per-joint MPJPE (mm)."""
    p = (pred - pred[:, PELVIS:PELVIS + 1])[:, SCORED]
    g = (truth - truth[:, PELVIS:PELVIS + 1])[:, SCORED]
    return {"frames": len(p), "mpjpe_mm": 1000 * metrics.mpjpe(p, g), "pa_mpjpe_mm": 1000 * metrics.p_mpjpe(p, g),
            "per_joint_mm": {JOINT_NAMES[j]: 1000 * metrics.mpjpe(p[:, k], g[:, k]) for k, j in enumerate(SCORED)}}


def bone_spread_mm(joints: np.ndarray) -> float:
    """joints (N, 17, 3) metres -> mean over the 16 bones of the std over frames of its length, mm."""
    series = bone_length_series(joints)[:, 1:]
    series = series[np.isfinite(series).all(1)]
    return 1000 * float(series.std(0).mean()) if len(series) > 1 else float("nan")


# ----------------------------------------------------------------------------------------------------
# The captures and MediaPipe's world landmarks

def capture_view(video: Path, folder: Path, focal_px: float | None) -> tuple[list, float]:
    """``python -m posemoe capture VIDEO --people all`` (with ``--focal-px`` when given), as a user
    runs it -> (the takes, seconds)."""
    out = folder / f"{video.stem}-{'lens' if focal_px else 'default'}.npz"
    command = [sys.executable, "-m", "posemoe", "capture", os.path.relpath(video, ROOT), "-o", str(out), "--people", "all"]
    if focal_px:
        command += ["--focal-px", f"{focal_px:.1f}"]
    clock = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return load_takes(out), time.perf_counter() - clock


def takes_on_grid(takes: list, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """takes -> per take, 2D (frames, 17, 2) px and camera-space joints (frames, 17, 3) metres on the
    video's frame grid, NaN where the take has nothing or only bridged the frame."""
    points, joints = [], []
    for take in takes:
        k = np.full((frames, 17, 2), np.nan)
        j = np.full((frames, 17, 3), np.nan)
        span = take.first_frame + np.arange(len(take))
        seen = ~take.filled
        k[span[seen]] = take.keypoints_2d[seen]
        j[span] = take.joints_camera
        points.append(k)
        joints.append(j)
    return points, joints


def mediapipe_world(video: Path, max_people: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """MediaPipe's PoseLandmarker (video mode, BlazePose Full from the wheel) on every frame -> per
    frame, everyone's 2D (P, 17, 2) px and world landmarks (P, 17, 3) metres (hip-centred, camera-like
    axes), both through :func:`blazepose_to_h36m`."""
    if __package__:
        from .corpus import mediapipe_image
        from .detect import task_bundle
    else:
        from corpus import mediapipe_image
        from detect import task_bundle
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=task_bundle()),
                                           running_mode=vision.RunningMode.VIDEO, num_poses=max_people)
    pictures, worlds = [], []
    with vision.PoseLandmarker.create_from_options(options) as landmarker:
        for frame in read_frames(video, 0, None):
            height, width = frame.image.shape[:2]
            result = landmarker.detect_for_video(mediapipe_image(frame.image), int(round(frame.time * 1000)))
            flat = np.zeros((len(result.pose_landmarks), 33))
            image = np.array([[(p.x * width, p.y * height) for p in person] for person in result.pose_landmarks]).reshape(-1, 33, 2)
            world = np.array([[(p.x, p.y, p.z) for p in person] for person in result.pose_world_landmarks]).reshape(-1, 33, 3)
            pictures.append(blazepose_to_h36m(image, flat)[0])
            worlds.append(blazepose_to_h36m(world, flat)[0])
    return pictures, worlds


def per_frame_match(everyone: list[np.ndarray], truth_2d: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """everyone: per frame (P, 17, 2) px, NaN where missing; truth_2d (N, 17, 2) px; heights (N,) px ->
    (N,) index of the nearest detection within 15 % of the person's height of the truth (median over
    its joints, of those with 9 joints or more), -1 where none."""
    index = np.full(len(everyone), -1)
    for i, found in enumerate(everyone):
        if len(found) and np.isfinite(truth_2d[i]).any():
            with np.errstate(invalid="ignore"):
                distance = np.linalg.norm(found - truth_2d[i][None], axis=-1)
            seen = np.isfinite(distance).sum(-1) >= 9  # most joints, so a stray few cannot match
            typical = np.where(seen, np.nanmedian(np.where(seen[:, None], distance, 0.0), axis=-1), np.inf)
            if typical.min() <= 0.15 * heights[i]:
                index[i] = int(np.argmin(typical))
    return index


# ----------------------------------------------------------------------------------------------------

def measure(scene: Path, work: Path) -> dict:
    cameras_by_name = read_calibration(scene / CALIBRATION)
    cameras = [cameras_by_name[name] for name in VIEWS]
    videos = [scene / f"{name}.mp4" for name in VIEWS]
    clock = time.perf_counter()
    detections = detect_views(videos)
    truth = follow(cameras, videos, detections)
    truth_seconds = time.perf_counter() - clock
    fps = 60.0
    frames = truth["joints"].shape[1]
    joints = truth["joints"]
    valid = np.isfinite(joints[..., list(SCORED) + [PELVIS], :]).all((-1, -2))  # (2, N)
    floor = truth_floor([joints[p][valid[p]] for p in range(2)], fps)
    feet = [planted(joints[p], fps) & valid[p] for p in range(2)]
    true_soles = [float(np.median(sole_heights(joints[p][feet[p]], floor))) for p in range(2)]
    # Which is the man: the taller (the truth's median standing bone chain, head to ankle).
    statures = [float(np.nanmedian(np.sum(bone_length_series(joints[p])[:, [0, 1, 2, 6, 7, 8, 9]], axis=1)))
                for p in range(2)]
    names = ["man", "woman"] if statures[0] >= statures[1] else ["woman", "man"]
    result = {"truth": {
        "start_frame": truth["start"], "frames": frames, "seconds": truth_seconds,
        "valid_frames": [int(v.sum()) for v in valid], "names": names,
        "views_used_median": [float(np.median(truth["views"][p][valid[p]].sum(-1))) for p in range(2)],
        "reprojection_px": dict(zip(VIEWS, truth["reprojection_px"])),
        "seed_reprojection_px": truth["seed_reprojection_px"],
        "floor_z_m": floor, "sole_height_m": true_soles, "planted_frames": [int(f.sum()) for f in feet],
        "bone_spread_mm": [bone_spread_mm(joints[p][valid[p]]) for p in range(2)],
        "focal_px": {c.name: c.focal_px for c in cameras}}, "rows": []}
    for camera, video in zip(cameras, videos):
        truth_camera = camera.to_camera(joints)  # (2, N, 17, 3)
        truth_2d = camera.project(joints)
        heights = np.ptp(truth_2d[..., 1], axis=-1)  # (2, N)
        runs = []
        for lens in ("default", "true"):
            takes, seconds = capture_view(video, work, camera.focal_px if lens == "true" else None)
            runs.append((f"capture, {lens} lens", takes, seconds))
        pictures, worlds = mediapipe_world(video)
        for source, takes, seconds in runs:
            points, captured = takes_on_grid(takes, frames)
            everyone = [np.stack([k[i] for k in points]) for i in range(frames)]
            row = {"view": camera.name, "source": source, "seconds": seconds, "takes": len(takes),
                   "focal_px": float(takes[0].focal_px), "people": {}}
            found = []
            for p in range(2):
                # Frame by frame: a take that slides from one person onto the other is scored on
                # each person only while it is on them.
                index = per_frame_match(everyone, truth_2d[p], heights[p])
                use = valid[p] & (index >= 0)
                pred = np.array([captured[index[i]][i] for i in range(frames)])
                use &= np.isfinite(pred).all((-1, -2))
                found.append((pred, use))
                if use.any():
                    row["people"][names[p]] = {**score_person(pred[use], truth_camera[p][use]),
                                               "bone_spread_mm": bone_spread_mm(pred[use])}
            both = found[0][1] & found[1][1]
            if both.sum() >= 10:
                row["root_distance"] = root_distance_error((found[0][0][both, PELVIS], found[1][0][both, PELVIS]),
                                                           (joints[0][both, PELVIS], joints[1][both, PELVIS]))
                row["feet"] = floor_heights([found[p][0][both] for p in range(2)], [joints[p][both] for p in range(2)],
                                            floor, [feet[p][both] for p in range(2)], camera.R)
            result["rows"].append(row)
        row = {"view": camera.name, "source": "MediaPipe world landmarks", "people": {}}
        for p in range(2):
            index = per_frame_match(pictures, truth_2d[p], heights[p])
            use = valid[p] & (index >= 0)
            pred = np.array([worlds[i][index[i]] for i in np.flatnonzero(use)]).reshape(-1, 17, 3)
            if len(pred):
                row["people"][names[p]] = {**score_person(pred, truth_camera[p][use]), "bone_spread_mm": bone_spread_mm(pred)}
        result["rows"].append(row)
        print(f"{camera.name}: done", file=sys.stderr)
    return result


def _mean(rows: list[dict], source: str, key: str) -> float:
    values = [person[key] for row in rows if row["source"] == source for person in row["people"].values()]
    return float(np.mean(values)) if values else float("nan")


def _before_after(result: dict, before: dict) -> list[str]:
    """Rows of the capture with the default lens, an earlier run's (``before``, its "commit" naming what
    it measured) against this one's."""
    source = "capture, default lens"
    earlier = {row["view"]: row for row in before["rows"] if row["source"] == source}
    lines = ["", f"Before ({before['commit']}) and now, the capture with the default lens:", "",
             "| view | person | PA-MPJPE (mm), before -> now | root distance error (%), before -> now | "
             "planted soles above the floor (cm), before -> now (true) |", "|---|---|---:|---:|---:|"]
    for row in result["rows"]:
        if row["source"] != source or row["view"] not in earlier:
            continue
        old = earlier[row["view"]]
        for name in ("man", "woman"):
            k = result["truth"]["names"].index(name)
            then, now = old["people"].get(name), row["people"].get(name)
            pa = (f"{then['pa_mpjpe_mm']:.1f}" if then else "-") + " -> " + (f"{now['pa_mpjpe_mm']:.1f}" if now else "-")
            distance = " -> ".join(f"{r['root_distance']['error_pct']:.0f}" if "root_distance" in r else "-" for r in (old, row))
            soles = " -> ".join(f"{r['feet']['captured_m'][k] * 100:.0f}" if "feet" in r else "-" for r in (old, row))
            true = f" ({row['feet']['true_m'][k] * 100:.0f})" if "feet" in row else ""
            lines.append(f"| {row['view']} | {name} | {pa} | {distance} | {soles}{true} |")
    lines += ["", f"Mean PA-MPJPE over views and people: {_mean(before['rows'], source, 'pa_mpjpe_mm'):.1f} -> "
              f"{_mean(result['rows'], source, 'pa_mpjpe_mm'):.1f} mm; MediaPipe's world landmarks "
              f"{_mean(result['rows'], 'MediaPipe world landmarks', 'pa_mpjpe_mm'):.1f}."]
    return lines


def markdown(result: dict, before: dict | None = None) -> str:
    lines = ["# Real footage in 3D", "",
             f"Generated by `python benchmarks/multiview.py`. Machine: {result['machine']}.", ""]
    if "skipped" in result:
        return "\n".join(lines + [result["skipped"]]) + "\n"
    t = result["truth"]
    lines += [
        "The scene: `../shared/media/multiview/pose2sim_multiperson/` (Pose2Sim's Demo_MultiPerson, BSD-3-Clause): "
        "four synchronised calibrated portrait views, 60 frames/s, 100 frames, a man on a treadmill's deck and a "
        "woman beside it, bystanders in some views. **Method.** The truth is a triangulation of the capture's own "
        "detector across the four views: the detector finds the two people in every view, those seen consistently by "
        "two views or more at the first such frame are the man and the woman (bystanders are seen by one view), and "
        "from there BlazePose's landmark model follows each of them in all four views at once, in the region their "
        "last triangulated alignment points project to; per frame, each view's left/right labels are put the same "
        "way round (a view that disagrees with the others is dropped for that leg, arm or face group), and each of "
        "the 33 landmarks is triangulated (DLT) from the views that see it and reproject within "
        f"{MAX_REPROJECTION_PX:g} px, the 17 joints made from them as the capture makes them in 2D. Each view is then "
        "captured as a user would, `python -m posemoe capture VIEW -o TAKE --people all` (the default lens, then "
        "`--focal-px` the view's true one), its people matched to the truth's by their 2D, and scored root-relative "
        "in the view's camera on the 14 limb and torso joints (hips, knees, ankles, shoulders, elbows, wrists, "
        "thorax, head). MediaPipe's own per-frame 3D (PoseLandmarker's world landmarks, the same models, mapped onto "
        "the 17 joints the same way) is the anchor row. Root distance: the two pelvises' distance, captured against "
        "true, median over frames. Feet: both captured people turned into the truth's world by the true camera's "
        "rotation, then one scale and shift fitted to all their joints together (no rotation: a tilt would hide a "
        "person put higher than the other), then each one's lower sole (ankle less "
        f"{ANKLE_HEIGHT * 100:g} cm) above the floor, median over the truth's planted frames; the floor lies under the "
        "lower person's planted soles. A pseudo-truth from four views of 100 frames is a check, not a figure to tune to.",
        "",
        "**Calibration check** (median reprojection of the landmarks kept, px): "
        + ", ".join(f"{k} {v:.1f}" for k, v in t["reprojection_px"].items())
        + f". Truth from frame {t['start_frame']} on: {t['names'][0]} {t['valid_frames'][0]}, {t['names'][1]} "
        f"{t['valid_frames'][1]} of {t['frames']} frames with all 15 joints; views used per frame (median) "
        f"{t['views_used_median'][0]:g} and {t['views_used_median'][1]:g}; the truth's own bone-length spread "
        f"{t['bone_spread_mm'][0]:.0f} and {t['bone_spread_mm'][1]:.0f} mm; soles above the floor "
        f"{t['sole_height_m'][0] * 100:.0f} and {t['sole_height_m'][1] * 100:.0f} cm. True focal lengths "
        + ", ".join(f"{v:.0f}" for v in t["focal_px"].values()) + " px.", ""]
    lines += ["| view | source | person | frames | MPJPE (mm) | PA-MPJPE (mm) | bone spread (mm) | "
              "root distance error, mm (%) | planted soles above the floor, captured / true (cm) |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        for name in ("man", "woman"):
            person = row["people"].get(name)
            if person is None:
                lines.append(f"| {row['view']} | {row['source']} | {name} | not captured | | | | | |")
                continue
            distance = row.get("root_distance")
            feet = row.get("feet")
            k = result["truth"]["names"].index(name)
            lines.append(
                f"| {row['view']} | {row['source']} | {name} | {person['frames']} | {person['mpjpe_mm']:.1f} | "
                f"{person['pa_mpjpe_mm']:.1f} | {person['bone_spread_mm']:.0f} | "
                + (f"{distance['error_mm']:.0f} ({distance['error_pct']:.0f} %)" if distance else "") + " | "
                + (f"{feet['captured_m'][k] * 100:.0f} / {feet['true_m'][k] * 100:.0f}" if feet else "") + " |")
    if before is not None:
        lines += _before_after(result, before)
    lines += ["", "Means over views and people:", "", "| source | MPJPE (mm) | PA-MPJPE (mm) |", "|---|---:|---:|"]
    for source in dict.fromkeys(row["source"] for row in result["rows"]):
        lines.append(f"| {source} | {_mean(result['rows'], source, 'mpjpe_mm'):.1f} | "
                     f"{_mean(result['rows'], source, 'pa_mpjpe_mm'):.1f} |")
    names = [JOINT_NAMES[j] for j in SCORED]
    lines += ["", "Per joint (MPJPE, mm, mean over views and people):", "",
              "| source | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for source in dict.fromkeys(row["source"] for row in result["rows"]):
        people = [p for row in result["rows"] if row["source"] == source for p in row["people"].values()]
        lines.append(f"| {source} | " + " | ".join(f"{np.mean([p['per_joint_mm'][n] for p in people]):.0f}" for n in names) + " |")
    seconds = [row["seconds"] for row in result["rows"] if "seconds" in row]
    lines += ["", f"Capture time per view (the command, model loading included): {np.mean(seconds):.1f} s on average; "
              f"the truth took {t['seconds']:.0f} s; the whole benchmark {result['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    parser.add_argument("--before", help="an earlier run's --json with a \"commit\" naming what it measured, shown beside")
    args = parser.parse_args(argv)
    clock = time.perf_counter()
    result = {"machine": describe_machine()}
    if not (SCENE / CALIBRATION).is_file():
        result["skipped"] = f"Skipped: the multi-view scene is not here ({os.path.relpath(SCENE, ROOT)})."
    else:
        with tempfile.TemporaryDirectory(prefix="posemoe-multiview-") as work:
            result.update(measure(SCENE, Path(work)))
    result["wall_s"] = time.perf_counter() - clock
    text = markdown(result, json.loads(Path(args.before).read_text()) if args.before and "skipped" not in result else None)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as out:
            out.write_text(text)
    if args.json:
        with atomic_output(args.json) as out:
            out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
