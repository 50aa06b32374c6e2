"""The camera's motion: its turn from the background, and its travel from the floor's image motion.

A pinhole turned about its centre sees the background move by the homography ``K R K^-1``, whatever its
depth; a camera that also travels sees near things move more than far ones (parallax), so the turn is
the rotation that the most background features agree on, fitted robustly:

1. Corners (Shi-Tomasi, ``cv2.goodFeaturesToTrack``) are found outside every person's box (widened by
   :attr:`TurnSettings.person_margin`; the bare box where a person fills the picture), on a picture
   shrunk to :attr:`TurnSettings.work_size` pixels (speed: the solve runs beside detection).
2. They are followed frame to frame with pyramidal Lucas-Kanade optical flow, kept only where the flow
   run backwards returns to within :attr:`TurnSettings.flow_check_px` (a feature lost on a moving edge
   fails that) and never inside a person's box.
3. Every feature carries its ray in the *first* frame's camera (its ray where it was found, turned back
   by that frame's rotation), and each frame's rotation is fitted to those rays and the frame's rays of
   the same features: RANSAC over exact two-ray rotations, then the least-squares rotation of the
   inliers (Wahba's problem, ``Rotation.align_vectors``). Measuring from where each feature was found
   rather than from the previous frame keeps the small per-frame errors from adding up (a random walk).
4. New corners are added when fewer than :attr:`TurnSettings.renew_share` of the last set are still
   followed; the survivors stay, so the oldest features keep anchoring the fit to the first frame, and
   drift enters only through the new ones, at each renewal rather than each frame.

A large thing moving in front of a fixed camera (a kettle being poured, a hand held close) can pull the
fit like a turn; it rarely moves the picture's edges, so "auto" keeps a solved turn only where they moved
with it (:meth:`TurnGathering.edges_agree`).

Where a frame cannot be fitted (too few background features: a plain wall, a blurred whip pan, a
picture filled by the person) the last good rotation is held and the frame is marked in
:attr:`posemoe.camera.CameraPath.held`, so the take can say so.

The travel: the same optical-flow call follows faint corners of the picture's lower band (the floor, where
a phone is held about level), and each frame keeps the homography most of them agree on
(:attr:`TurnSolver.floor_homographies`, :class:`FloorMotion`). Once the capture has fitted the floor, its
normal and the camera's height make that homography metric (:func:`travelled`, :func:`judged_travel`).

Rotations map first-camera coordinates to frame-t-camera coordinates (OpenCV camera axes): a point
``X0`` fixed in the world is seen at ``R[t] @ X0`` in frame ``t``; joints lifted in frame ``t``'s camera go
back into the first camera's with ``R[t].T``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from . import PoseMoEError
from .camera import CameraPath
from .track import person_boxes

#: Below this much turn over a whole clip (degrees) the "auto" camera setting takes the camera as
#: static: what the solve finds on fixed cameras (docs/benchmarks.md, "Moving camera") stays under it.
STATIC_DEGREES = 1.0
#: The outer band of the picture, as a share of its width and height, whose motion confirms a turn.
BORDER = 0.2
#: "auto" keeps a turn only where the picture's edges moved at least this share of the turn's path.
EDGE_SHARE = 0.5
#: A floor homography whose floor directions move more than this (radians, as ``R`` would move unit
#: vectors) away from the turn is not the floor's: a wall, a person or a bad fit.
FLOOR_MISFIT = 0.02
#: "auto" keeps a travel that takes the camera at least this far (metres) from where it started.
TRAVEL_METRES = 0.5


@dataclass(frozen=True)
class TurnSettings:
    """work_size: the longer side, pixels, at most, of the picture the features are found and followed on.
    max_features, min_spacing (a fraction of work_size): how many corners are followed at most and how
    far apart. person_margin: each person's box is widened by this fraction of its size on every side before
    it is masked out for new corners (the bare box where that leaves too few). flow_check_px: the
    largest forward-backward flow disagreement kept (work pixels). flow_window, flow_levels: the optical
    flow's window (work pixels) and pyramid levels above the picture (smaller than OpenCV's 21 and 3, for
    speed; two levels of a 15-pixel window still follow about 30 work pixels a frame).
    inlier_px: a feature agrees with a rotation when its predicted position is this close (work pixels).
    min_inliers: fewer agreeing features and the frame is held. renew_share: new corners join when fewer
    than this share of the last set are still followed. ransac_trials: two-ray hypotheses per frame.
    floor_top: the floor's features are found below this share of the picture's height (a level camera's
    horizon is at half; a tenth below it keeps the far floor's edge and the walls' feet out);
    floor_features, floor_quality: how many at most, and how faint a corner may be (a floor's texture is
    fainter than the background's edges: carpet, asphalt, grass); min_floor: fewer followed into a frame
    and its floor motion is not measured."""

    work_size: int = 640
    max_features: int = 300
    min_spacing: float = 0.025
    person_margin: float = 0.15
    flow_check_px: float = 0.7
    flow_window: int = 15
    flow_levels: int = 2
    inlier_px: float = 1.0
    min_inliers: int = 12
    renew_share: float = 0.6
    ransac_trials: int = 128
    seed: int = 0
    floor_top: float = 0.6
    floor_features: int = 150
    floor_quality: float = 0.003
    min_floor: int = 20


def rays(points: np.ndarray, focal: float, centre: tuple[float, float]) -> np.ndarray:
    """points (N, 2) pixels -> (N, 3) unit rays in the camera (OpenCV axes) of that focal length (pixels)
    and principal point."""
    xy = (np.asarray(points, dtype=np.float64) - np.asarray(centre, dtype=np.float64)) / focal
    out = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _two_ray_rotations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b (M, 2, 3) unit rays -> (M, 3, 3) the rotations taking each a pair onto its b pair exactly
    (the first ray exactly, the second as close as the pair's angle allows): the triads' product."""

    def triad(v: np.ndarray) -> np.ndarray:
        n = np.cross(v[:, 0], v[:, 1])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        return np.stack([v[:, 0], n, np.cross(v[:, 0], n)], axis=-1)  # columns

    return triad(b) @ np.swapaxes(triad(a), -1, -2)


def fit_rotation(a: np.ndarray, b: np.ndarray, tolerance: float, trials: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The rotation ``R`` most background rays agree on: ``b ~ R @ a``.

    a, b: (N, 3) unit rays of the same N features in two cameras; tolerance: radians between ``R a`` and
    ``b`` for a feature to agree. RANSAC over two-ray rotations, then the least-squares rotation of the
    best hypothesis's agreeing features, and once more with those it agrees with. Returns (R (3, 3),
    inliers (N,) bool).
    """
    n = len(a)
    if n < 2:
        return np.eye(3), np.zeros(n, dtype=bool)
    picks = rng.integers(0, n, size=(trials, 2))
    picks = picks[picks[:, 0] != picks[:, 1]]
    candidates = _two_ray_rotations(a[picks], b[picks])  # (M, 3, 3)
    cos_tol = np.cos(tolerance)
    agree = np.einsum("mij,nj,ni->mn", candidates, a, b) > cos_tol  # (M, N)
    inliers = agree[int(np.argmax(agree.sum(axis=1)))]
    rotation = np.eye(3)
    for _ in range(2):
        if inliers.sum() < 2:
            break
        rotation = Rotation.align_vectors(b[inliers], a[inliers])[0].as_matrix()
        inliers = np.einsum("ij,nj,ni->n", rotation, a, b) > cos_tol
    return rotation, inliers


class TurnSolver:
    """Feed it every frame in order (:meth:`add`), then read :meth:`result`.

    focal_px: the capture's focal length for the full-size picture; width, height: its size in pixels.
    """

    def __init__(self, focal_px: float, width: int, height: int, settings: TurnSettings = TurnSettings()):
        self.settings = settings
        shrink = max(width, height) / settings.work_size
        # Shrinking by a whole factor averages whole blocks of pixels, which OpenCV does several times
        # faster than any other area resize, so a picture twice
        # the work size or more is shrunk by the next whole factor (at most work_size, at least two
        # thirds of it); a smaller one, by interpolation, which a shrink under 2 needs no averaging for.
        self._block = int(np.ceil(shrink)) if shrink >= 2 else 0
        self.scale = 1.0 / self._block if self._block else min(1.0, 1.0 / shrink)
        if self._block:
            self.size = (max(1, width // self._block), max(1, height // self._block))
        else:
            self.size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.focal = focal_px * self.scale
        self.centre = (0.5 * width * self.scale, 0.5 * height * self.scale)
        self.rng = np.random.default_rng(settings.seed)
        self.rotations: list[np.ndarray] = []
        self.held: list[bool] = []
        self.border_flow: list[float] = []  # per frame, the median motion of the picture's edge (work px)
        self._previous: np.ndarray | None = None
        self._origins = np.zeros((0, 3))  # (N, 3) each followed feature's ray in the first camera
        self._count = 0  # features right after the last renewal
        self._points = np.zeros((0, 1, 2), dtype=np.float32)  # (N, 1, 2) where they are now, work pixels
        self._floor = np.zeros((0, 1, 2), dtype=np.float32)  # (F, 1, 2) the floor's features, work pixels
        self._floor_count = 0
        #: per frame, the homography (3, 3) taking the floor band's features from the previous frame to
        #: this one, work pixels (NaN: not measured; the first frame's always)
        self.floor_homographies: list[np.ndarray] = []

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) the camera matrix of the work picture."""
        return np.array([[self.focal, 0.0, self.centre[0]], [0.0, self.focal, self.centre[1]], [0.0, 0.0, 1.0]])

    def _boxes(self, people: np.ndarray, margin: float) -> np.ndarray:
        """(P, 4) boxes in full-size pixels -> (P, 4) in work pixels, widened by ``margin`` of their size."""
        boxes = np.asarray(people, dtype=np.float64).reshape(-1, 4) * self.scale
        grow = margin * (boxes[:, 2:] - boxes[:, :2])
        return np.concatenate([boxes[:, :2] - grow, boxes[:, 2:] + grow], axis=1)

    def _mask(self, people: np.ndarray, margin: float) -> np.ndarray:
        """(h, w) uint8, 255 where corners may be found: outside every person box widened by ``margin``
        and away from the features already followed."""
        mask = np.full((self.size[1], self.size[0]), 255, dtype=np.uint8)
        for x0, y0, x1, y1 in self._boxes(people, margin):
            mask[max(0, int(y0)):max(0, int(np.ceil(y1))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = 0
        for x, y in self._points.reshape(-1, 2):
            cv2.circle(mask, (int(x), int(y)), int(self.settings.min_spacing * max(self.size)), 0, -1)
        return mask

    def _outside(self, points: np.ndarray, people: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """points (N, 2) work pixels -> (N,) bool, outside every person box widened by ``margin`` (by
        default not widened: what moves with a person just outside it, hair or a loose sleeve, the
        rotation fit rejects)."""
        keep = np.ones(len(points), dtype=bool)
        for x0, y0, x1, y1 in self._boxes(people, margin):
            keep &= ~((points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1))
        return keep

    def _renew(self, gray: np.ndarray, people: np.ndarray, rotation: np.ndarray) -> None:
        """Add corners of ``gray`` (whose rotation is ``rotation``) away from the people and the followed
        ones: outside the widened boxes, or where a person fills the picture so that too few are left
        there, outside the boxes themselves."""
        room = self.settings.max_features - len(self._points)
        found = None
        for margin in (self.settings.person_margin, 0.0):
            found = cv2.goodFeaturesToTrack(gray, room, 0.01, self.settings.min_spacing * max(self.size),
                                            mask=self._mask(people, margin)) if room > 0 else None
            if len(self._points) + (0 if found is None else len(found)) >= 3 * self.settings.min_inliers:
                break
        if found is not None:
            found = found.astype(np.float32)
            self._points = np.concatenate([self._points, found])
            self._origins = np.concatenate([self._origins, rays(found.reshape(-1, 2), self.focal, self.centre) @ rotation])
        self._count = len(self._points)

    def add(self, image: np.ndarray, people: np.ndarray | None = None) -> None:
        """image: (H, W, 3) BGR uint8 or (H, W) grey, the full-size frame; people: (P, 4) boxes (x0, y0,
        x1, y1) pixels of the people in it (anything that moves on its own), or None."""
        people = np.zeros((0, 4)) if people is None else people
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._block:
            crop = gray[:self.size[1] * self._block, :self.size[0] * self._block]  # whole blocks only
            gray = cv2.resize(crop, self.size, interpolation=cv2.INTER_AREA)
        elif self.scale != 1.0:
            gray = cv2.resize(gray, self.size, interpolation=cv2.INTER_LINEAR)
        if self._previous is None:
            self.rotations.append(np.eye(3))
            self.held.append(False)
            self.floor_homographies.append(np.full((3, 3), np.nan))
            self._renew(gray, people, np.eye(3))
            self._renew_floor(gray, people)
            self._previous = gray
            return
        # One optical-flow call follows both sets (the image pyramids are built once); each point's
        # flow does not depend on the others'.
        ahead, ok = self._flow(gray, np.concatenate([self._points, self._floor]))
        turn = len(self._points)
        self._follow_floor(ahead[turn:], ok[turn:], people)
        rotation = self._follow(ahead[:turn], ok[:turn], people)
        held = rotation is None
        if held:
            rotation = self.rotations[-1]
        self.rotations.append(rotation)
        self.held.append(held)
        # A held frame's rotation is stale: corners found now would carry its error for good, so new
        # ones wait for a measured frame unless nothing is left to follow.
        if (len(self._points) < self.settings.min_inliers
                or (not held and len(self._points) < self.settings.renew_share * self._count)):
            self._renew(gray, people, rotation)
        if len(self._floor) < max(self.settings.min_floor, self.settings.renew_share * self._floor_count):
            self._renew_floor(gray, people)
        self._previous = gray

    def _flow(self, gray: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """points (N, 1, 2) work pixels in the previous frame -> (where they are in ``gray`` (N, 1, 2),
        (N,) bool: followed, and the flow run backwards returns to within
        :attr:`TurnSettings.flow_check_px` of where it started)."""
        if len(points) == 0:
            return points, np.zeros(0, dtype=bool)
        window = (self.settings.flow_window, self.settings.flow_window)
        ahead, status, _ = cv2.calcOpticalFlowPyrLK(self._previous, gray, points, None, winSize=window,
                                                    maxLevel=self.settings.flow_levels)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(gray, self._previous, ahead, None, winSize=window,
                                                        maxLevel=self.settings.flow_levels)
        ok = (status[:, 0] == 1) & (status_back[:, 0] == 1)
        ok &= np.linalg.norm((back - points)[:, 0], axis=1) <= self.settings.flow_check_px
        return ahead, ok

    def _renew_floor(self, gray: np.ndarray, people: np.ndarray) -> None:
        """Add faint corners of the floor band (below :attr:`TurnSettings.floor_top` of the height),
        outside every widened person box (a person's feet and shadow move on their own)."""
        room = self.settings.floor_features - len(self._floor)
        if room <= 0:
            return
        spacing = self.settings.min_spacing * max(self.size)
        top = int(self.settings.floor_top * self.size[1])  # corners are looked for in the band alone (speed)
        mask = np.full((self.size[1] - top, self.size[0]), 255, dtype=np.uint8)
        for x0, y0, x1, y1 in self._boxes(people, self.settings.person_margin):
            mask[max(0, int(y0) - top):max(0, int(np.ceil(y1)) - top), max(0, int(x0)):max(0, int(np.ceil(x1)))] = 0
        for x, y in self._floor.reshape(-1, 2):
            cv2.circle(mask, (int(x), int(y) - top), int(spacing), 0, -1)
        found = cv2.goodFeaturesToTrack(gray[top:], room, self.settings.floor_quality, spacing, mask=mask)
        if found is not None:
            self._floor = np.concatenate([self._floor, found.astype(np.float32) + np.float32([0, top])])
        self._floor_count = len(self._floor)

    def _follow_floor(self, ahead: np.ndarray, ok: np.ndarray, people: np.ndarray) -> None:
        """Keep the floor features followed into this frame (outside the people) and record the
        homography most of them agree on (RANSAC), NaN where too few do."""
        ok = ok & self._outside(ahead[:, 0], people)
        homography = np.full((3, 3), np.nan)
        if ok.sum() >= self.settings.min_floor:
            found, inliers = cv2.findHomography(self._floor[ok], ahead[ok], cv2.RANSAC, self.settings.inlier_px)
            if found is not None and inliers.sum() >= self.settings.min_floor:
                homography = found
        self.floor_homographies.append(homography)
        self._floor = ahead[ok]

    def _follow(self, ahead: np.ndarray, ok: np.ndarray, people: np.ndarray) -> np.ndarray | None:
        """Keep the background features followed into this frame (``ahead`` (N, 1, 2) work pixels,
        ``ok`` (N,) from :meth:`_flow`); the frame's rotation (None: too few agree)."""
        if len(self._points) < self.settings.min_inliers:
            return None
        ok = ok & self._outside(ahead[:, 0], people)
        clear = ok & self._outside(ahead[:, 0], people, self.settings.person_margin)
        self.border_flow.append(self._border_flow(self._points[clear, 0], ahead[clear, 0]))
        self._points, self._origins = ahead[ok], self._origins[ok]
        if ok.sum() < self.settings.min_inliers:
            return None
        now = rays(self._points.reshape(-1, 2), self.focal, self.centre)
        rotation, inliers = fit_rotation(self._origins, now, self.settings.inlier_px / self.focal,
                                         self.settings.ransac_trials, self.rng)
        if inliers.sum() < self.settings.min_inliers:
            return None
        # Features that move against the turn (a near object's parallax, a second mover) are dropped.
        self._points, self._origins = self._points[inliers], self._origins[inliers]
        return rotation

    def _border_flow(self, before: np.ndarray, after: np.ndarray) -> float:
        """before, after (N, 2) work pixels of the features followed into this frame -> the median
        distance moved by those in the picture's outer band (:data:`BORDER`), 0 where fewer than
        :attr:`TurnSettings.min_inliers` are there. A turn moves the whole picture, edges included;
        something that moves in front of a fixed camera rarely reaches its edges."""
        size = np.asarray(self.size, dtype=np.float64)
        edge = ((before < BORDER * size) | (before > (1 - BORDER) * size)).any(axis=1)
        if edge.sum() < self.settings.min_inliers:
            return 0.0
        return float(np.median(np.linalg.norm(after[edge] - before[edge], axis=1)))

    def result(self) -> CameraPath:
        """The turn of every frame added so far (no travel: translations zero)."""
        if not self.rotations:
            raise PoseMoEError("The camera's turn cannot be solved without frames: the video gave none.")
        rotations = np.stack(self.rotations)
        return CameraPath(rotations, np.zeros((len(rotations), 3)), np.asarray(self.held))


@dataclass(frozen=True)
class FloorMotion:
    """The floor band's image motion over a video: homographies (T, 3, 3), [t] taking frame t - 1's
    floor features to frame t's in work pixels (NaN: not measured; [0] always), and intrinsics (3, 3),
    the work picture's camera matrix."""

    homographies: np.ndarray
    intrinsics: np.ndarray


def travelled(path: CameraPath, floor: FloorMotion, up: np.ndarray, height: float) -> tuple[CameraPath, np.ndarray]:
    """``path`` with the camera's travel along the floor added, from the floor's image motion.

    A plane seen from two cameras ``X_t = R X_t-1 + t`` moves by the homography ``R + t n^T / h`` (``n``
    its unit normal towards it, ``h`` the camera's height above it, both in the earlier camera); with
    ``R`` from the turn (the far background) and ``n``, ``h`` from the capture's floor fit (metric through
    the body's size), the image motion gives ``t`` in metres. A frame pair counts only where the floor's
    directions moved as the turn says (a wall or a person in the band does not), and the travel is kept
    along the floor: the camera's height is taken as constant (a carried phone bobs by centimetres, which
    the floor's motion measures poorly and every later frame would inherit).

    path: the turn (translations ignored); up (3,): the floor's normal in the first camera (OpenCV axes);
    height: metres from the first camera down to the floor. Returns (the path with translations,
    (T,) bool: frames whose step was measured; the first frame counts as measured).
    """
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    K = floor.intrinsics
    inverse = np.linalg.inv(K)
    rotations = path.rotations
    frames = len(rotations)
    centres = np.zeros((frames, 3))  # the camera's centre in the first camera
    measured = np.zeros(frames, dtype=bool)
    measured[0] = True
    for t in range(1, frames):
        homography = floor.homographies[t]
        step = np.zeros(3)
        if np.isfinite(homography).all():
            motion = inverse @ homography @ K
            motion /= np.linalg.svd(motion, compute_uv=False)[1]  # a plane's homography: middle value 1
            if np.linalg.det(motion) < 0:
                motion = -motion
            turn = rotations[t] @ rotations[t - 1].T
            down = rotations[t - 1] @ -up
            along = np.linalg.svd(down[None])[2][1:]  # (2, 3) the floor's directions in that camera
            if np.abs((motion - turn) @ along.T).max() <= FLOOR_MISFIT:
                step = -rotations[t].T @ (height * (motion - turn) @ down)
                step -= (step @ up) * up
                measured[t] = True
        centres[t] = centres[t - 1] + step
    return CameraPath.from_centres(rotations, centres, path.held), measured


def judged_travel(path: CameraPath, floor: FloorMotion, up: np.ndarray, height: float,
                  choice: str) -> tuple[CameraPath | None, list[str]]:
    """The path with the camera's travel (:func:`travelled`) where a capture with camera ``choice``
    keeps it (None: keep ``path`` as it is), and sentences for the take. "moving" keeps any travel
    measured; "auto" a travel that takes the camera :data:`TRAVEL_METRES` or more from where it started
    (a fixed camera's floor moves by nothing but noise); "static" none."""
    if choice == "static" or not height > 0:
        return None, []
    moved, measured = travelled(path, floor, up, height)
    if measured[1:].sum() == 0:
        return None, ["The floor showed nothing to follow, so the camera's travel could not be measured; if it was "
                      "carried along, the person travels less than they did."] if choice == "moving" else []
    centres = moved.centres()
    farthest = float(np.linalg.norm(centres - centres[0], axis=1).max())
    if choice == "auto" and farthest < TRAVEL_METRES:
        return None, []
    notes = [f"The camera travelled {float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()):.1f} m along the "
             "floor (from the floor's motion in the picture); its travel was taken out of the motion."]
    unmeasured = int((~measured).sum())
    if unmeasured:
        notes.append(f"In {unmeasured} frame{'s' if unmeasured != 1 else ''} the floor gave nothing to follow; the "
                     "camera was taken to stand still there.")
    return moved, notes


class TurnGathering:
    """A video's turn gathered while it is detected, frame by frame, in one stretch or several.

    :meth:`observer` gives the ``observe`` callback for one stretch of frames (``detect_frames``'s), each
    with a :class:`TurnSolver` of its own, so stretches detected in separate threads share nothing; a
    stretch also observes the first frame of the next (its seam), which links the two. :meth:`result`
    chains them into one :class:`~posemoe.camera.CameraPath`.
    """

    def __init__(self, focal_px: float, width: int, height: int, settings: TurnSettings = TurnSettings()):
        self.focal_px, self.width, self.height, self.settings = focal_px, width, height, settings
        self._solvers: dict[int, tuple[TurnSolver, list[int]]] = {}

    def observer(self, first: int, end: int | None) -> Callable[..., None]:
        """The callback for frames ``first`` to ``end`` (the next stretch's first frame; None: to the end
        of the video), called in order: (index, image (H, W, 3) BGR, keypoints (P, 17, 2) px,
        confidence (P, 17)); later frames are ignored."""
        solver, seen = TurnSolver(self.focal_px, self.width, self.height, self.settings), []
        self._solvers[first] = (solver, seen)

        def observe(index: int, image: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray) -> None:
            if end is None or index <= end:
                # Every joint, however unsure: a body part the detector doubts still moves with the body.
                # Output shaped against the detector protocol masks nothing here; the pipeline's check
                # names it as soon as the frame is yielded.
                points = np.asarray(keypoints, dtype=np.float64)
                usable = points.ndim == 3 and points.shape[2:] == (2,) and len(points) > 0
                solver.add(image, person_boxes(points, np.ones(points.shape[:2])) if usable else None)
                seen.append(index)

        return observe

    def result(self, start: int, frames: int) -> CameraPath:
        """The path over video frames ``start`` to ``start + frames`` (those detections were kept for).
        A stretch whose first frame its predecessor did not see (a file that broke off) starts from
        where the chain last was, its frames marked held."""
        rotations = np.tile(np.eye(3), (frames, 1, 1))
        held = np.ones(frames, dtype=bool)
        carried = np.eye(3)  # the first camera -> this stretch's first frame's camera
        for first in sorted(self._solvers):
            solver, seen = self._solvers[first]
            if not seen:
                continue
            part = solver.result()
            for index, rotation, was_held in zip(seen, part.rotations, part.held):
                if 0 <= index - start < frames and (index == first or index not in self._solvers):
                    rotations[index - start] = rotation @ carried
                    held[index - start] = was_held
            following = [i for i in self._solvers if i > first]
            seam = min(following) if following else None
            if seam is not None and seam in seen:
                carried = part.rotations[seen.index(seam)] @ carried
            elif seam is not None:
                carried = rotations[min(max(seen[-1] - start, 0), frames - 1)]
        held[0] = False  # the first frame defines the world
        return CameraPath(rotations, np.zeros((frames, 3)), held)

    def floor(self, start: int, frames: int) -> FloorMotion:
        """The floor's image motion over video frames ``start`` to ``start + frames``: each frame's
        homography from the stretch that saw it and the frame before (a seam's from the stretch before,
        which observed it last); NaN where none did."""
        homographies = np.full((frames, 3, 3), np.nan)
        solver = None
        for solver, seen in self._solvers.values():
            for j in range(1, len(seen)):
                if seen[j] == seen[j - 1] + 1 and 0 < seen[j] - start < frames:
                    homographies[seen[j] - start] = solver.floor_homographies[j]
        solver = solver or TurnSolver(self.focal_px, self.width, self.height, self.settings)
        return FloorMotion(homographies, solver.intrinsics)

    def edge_motion(self, path: CameraPath) -> tuple[float, float]:
        """(degrees the picture's edges moved through, frame to frame, summed; degrees ``path`` turns
        through, frame to frame, summed)."""
        solvers = [solver for solver, seen in self._solvers.values() if seen]
        edges = sum(np.degrees(np.sum(solver.border_flow) / solver.focal) for solver in solvers)
        return float(edges), float(path.step_degrees().sum())

    def edges_agree(self, path: CameraPath) -> bool:
        """Whether the picture's edges moved as much as ``path`` turns (at least :data:`EDGE_SHARE` of
        the angle it travels through): a real turn moves them, a large thing moving in front of a fixed
        camera (a kettle being poured, a hand held close) can pull the fit without."""
        edges, turned = self.edge_motion(path)
        return edges >= EDGE_SHARE * turned

    def judged(self, start: int, frames: int, choice: str) -> tuple[CameraPath | None, list[str]]:
        """The path a capture with camera ``choice`` uses over video frames ``start`` to ``start +
        frames`` (None: a static camera), and a sentence for the take where "auto" turned a solved turn
        down. "moving": the solved path; "auto": the solved path where it turns by
        :data:`STATIC_DEGREES` or more and the picture's edges moved with it (:meth:`edges_agree`);
        "static": None."""
        if choice == "static":
            return None, []
        path = self.result(start, frames)
        if choice == "moving":
            return path, []
        turn = float(path.turn_degrees().max())
        if turn < STATIC_DEGREES:
            return None, []
        if not self.edges_agree(path):
            return None, [f"Things moved across the picture as if the camera turned {turn:.0f} degrees, but its edges "
                          "stood still, so the camera was taken as fixed; if it did turn, capture again with the "
                          "camera set to Moving."]
        return path, []
