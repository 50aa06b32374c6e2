"""Human3.6M for training and evaluation: sequences per camera, windows by index, detector-like noise.

Sequences are stored once, concatenated, as camera-space 3D (root-relative metres) and 2D screen
coordinates; a window is only a start index into them, so the dataset never holds windows as copies.
The data files are read by path and never copied (their licence forbids it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posemoe.camera import Camera, normalize_screen, screen_focal
from posemoe.skeleton import (
    ARMS, FLIP_PERMUTATION, HEAD, L_ANKLE, L_ELBOW, L_KNEE, L_WRIST, LEGS, NOSE, R_ANKLE, R_ELBOW, R_KNEE, R_WRIST, ROOT,
    flip_horizontal,
)

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
MISSING_NOTE = (
    "Our copy of Human3.6M lacks 5 sequences (train S5 'Discussion 2', S5 'Discussion 3', S7 'Discussion', "
    "S7 'SittingDown 1'; test S9 'Discussion 1', 4.3% of the standard test frames)."
)

#: MPII-16 (Stacked Hourglass) index for each of our 17 joints; -1 for Neck/Nose, which MPII lacks.
MPII16_TO_17 = np.array([6, 2, 1, 0, 3, 4, 5, 7, 8, -1, 9, 13, 14, 15, 12, 11, 10])
#: Neck/Nose = Thorax + NOSE_FROM_HEAD * (Head - Thorax): least-squares fit on ground-truth 2D
#: projections of S1-S8 (one sequence per subject, all cameras), which gave 0.450.
NOSE_FROM_HEAD = 0.45


def action_name(sequence: str) -> str:
    """'Directions 1' -> 'Directions': the action a sequence belongs to, for per-action tables."""
    return sequence.split(" ")[0]


def mpii16_to_h36m17(pose: np.ndarray) -> np.ndarray:
    """MPII-16 keypoints (..., 16, C) -> our 17-joint order (..., 17, C), Neck/Nose interpolated."""
    out = pose[..., np.maximum(MPII16_TO_17, 0), :].copy()
    thorax, head = pose[..., 8, :], pose[..., 9, :]  # MPII-16's thorax and head top
    out[..., NOSE, :] = thorax + NOSE_FROM_HEAD * (head - thorax)
    return out


@dataclass
class Clip:
    """One sequence seen from one camera. pose3d: (N, 17, 3) root-relative camera metres;
    pose2d: (N, 17, 2) screen coordinates of the ground-truth projection; det2d: (N, 17, 2) screen
    coordinates of the real detections, or None; focal: the camera's focal length in screen units
    (``2 * f_px / width``); width, height: the camera's picture in pixels."""

    subject: str
    action: str
    camera: str
    pose3d: np.ndarray
    pose2d: np.ndarray
    det2d: np.ndarray | None
    focal: float
    width: int
    height: int


def load_clips(path: str | Path, subjects: tuple[str, ...], detections: str | Path | None = None) -> list[Clip]:
    """Every (sequence, camera) of ``subjects`` from the 3D file, projected through its cameras."""
    data = np.load(path)
    cameras = json.loads(str(data["cameras_json"]))
    dets = np.load(detections) if detections else None
    clips = []
    for key in sorted(k for k in data.files if "/" in k):
        subject, sequence = key.split("/", 1)
        if subject not in subjects:
            continue
        world = data[key].astype(np.float64) / 1000.0
        for entry in cameras[subject]:
            cam = Camera.from_h36m(entry)
            pose3d = cam.world_to_camera(world)
            pose2d = normalize_screen(cam.project(pose3d), cam.width, cam.height)
            det2d = None
            det_key = f"{key}/{cam.name}"
            if dets is not None and det_key in dets.files:
                det = mpii16_to_h36m17(dets[det_key].astype(np.float64) / 10.0)
                if len(det) == len(world):
                    det2d = normalize_screen(det, cam.width, cam.height).astype(np.float32)
            clips.append(
                Clip(subject, sequence, cam.name, (pose3d - pose3d[:, ROOT, None]).astype(np.float32), pose2d.astype(np.float32), det2d,
                     float(cam.f.mean() * 2.0 / cam.width), cam.width, cam.height)
            )
    if not clips:
        raise ValueError(f"no sequences of subjects {subjects} in {path}")
    return clips


@dataclass(frozen=True)
class Augment:
    """Detector-like corruption of clean 2D, in screen units (1 unit = half the image width).

    noise_max: per-window Gaussian noise std is drawn from U(0, noise_max). outlier_prob / outlier_std:
    rare large jumps (a detector that grabs the wrong limb). drop_max: per-window probability of
    dropping a joint is drawn from U(0, drop_max); a dropped joint is (0, 0) with visibility 0, the
    same encoding the engine uses for low-confidence joints. flip_prob: horizontal mirror.
    detection_prob: chance that a window uses the real detections instead of the projection.

    The faults a real detector makes for a stretch of frames, each the chance per window:
    swap_prob: the whole body labelled left for right for 3-30 frames (BlazePose on a person seen
    from behind); limb_swap_prob: one arm's or leg's labels swapped for 3-15 frames; drift_prob: one
    joint drifting away and back over 5 frames to a whole window (up to ``drift_max``); guess_prob: a
    run of 5 frames to a whole window where one occluded joint is only guessed (kept, as BlazePose's
    low-visibility joints are, but ``guess_std`` off; 0.03 is about 6 cm on a Human3.6M-sized person);
    hide_prob: a run of 5 frames to two windows' length (so often the whole window) where one of
    :data:`HIDDEN`'s groups of joints is not seen at all (visibility 0: behind the body, or cut off by
    the picture's edge). out_of_frame_drop: chance that joints outside the picture are dropped rather
    than kept where a detector extrapolates them.

    A fitted model of a real detector's errors (:class:`training.detector_errors.DetectorErrors`):
    ``detector``, used instead of the independent noise and outliers in a share ``detector_prob`` of
    the windows made from clean 2D (windows of real detections keep theirs).

    What the user tells the product: lens_known_prob is the chance that a window is normalised with
    its camera's true focal length (a user who gives ``--fov``); the others get the default lens the
    product assumes for the picture (:func:`posemoe.camera.screen_focal`).
    """

    noise_max: float = 0.012
    outlier_prob: float = 0.01
    outlier_std: float = 0.05
    drop_max: float = 0.1
    flip_prob: float = 0.5
    detection_prob: float = 0.0
    swap_prob: float = 0.0
    limb_swap_prob: float = 0.0
    drift_prob: float = 0.0
    drift_max: float = 0.06
    guess_prob: float = 0.0
    guess_std: float = 0.03
    hide_prob: float = 0.0
    out_of_frame_drop: float = 0.5
    lens_known_prob: float = 1.0
    detector: object | None = None
    detector_prob: float = 0.0


NO_AUGMENT = Augment(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
#: The product-path recipe's faults (``train.py --faults``).
FAULTS = dict(swap_prob=0.05, limb_swap_prob=0.05, drift_prob=0.05, guess_prob=0.1, hide_prob=0.2)
#: Joints of each limb, right then left (a limb swap exchanges the two).
LIMBS = (LEGS, ARMS)
#: Groups of joints a detector loses together for a while: a hand or a foot, a forearm or a shin, both
#: shins (the picture cut at the knees), the head. A network shown only single joints lost for a frame
#: or two misplaces joints lost for a whole window (``docs/decisions.md``, "Hidden joint groups").
HIDDEN = ((R_ANKLE,), (R_KNEE, R_ANKLE), (L_ANKLE,), (L_KNEE, L_ANKLE), (R_KNEE, R_ANKLE, L_KNEE, L_ANKLE),
          (L_WRIST,), (L_ELBOW, L_WRIST), (R_WRIST,), (R_ELBOW, R_WRIST), (NOSE, HEAD))


def given_focal(true: np.ndarray, default: np.ndarray, rng: np.random.Generator,
                augment: Augment) -> tuple[np.ndarray, np.ndarray]:
    """The focal length each window is normalised with: the true one (B,) for a share
    ``augment.lens_known_prob`` of windows, else the product's default lens for the picture (B,).
    Returns the focal lengths (B,) float32 in screen units and which are the true ones (B,) bool.
    Draws nothing when every lens is known (runs from before this setting resume exactly)."""
    if augment.lens_known_prob >= 1.0:
        return true, np.ones(len(true), dtype=bool)
    known = rng.random(len(true)) < augment.lens_known_prob
    return np.where(known, true, default).astype(np.float32), known


def _runs(rng: np.random.Generator, b: int, t: int, prob: float, shortest: int, longest: int) -> np.ndarray:
    """(B, T) bool: for a share ``prob`` of windows, one run of ``shortest``-``longest`` frames that
    overlaps the window (it may begin before it or end after it, as a detector's fault would)."""
    hit = rng.random(b) < prob
    length = rng.integers(shortest, longest + 1, b)
    start = rng.integers(1 - length, t)
    frame = np.arange(t)[None, :]
    return hit[:, None] & (frame >= start[:, None]) & (frame < (start + length)[:, None])


def swap_body(xy: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Label the whole body left for right where ``run`` (B, T) bool is set. xy: (B, T, 17, C).
    Returns a new (B, T, 17, C) array."""
    return np.where(run[..., None, None], xy[:, :, FLIP_PERMUTATION], xy)


def swap_limb(xy: np.ndarray, run: np.ndarray, limb: int) -> np.ndarray:
    """Exchange the labels of :data:`LIMBS`[limb]'s right and left joints (0 the legs, 1 the arms)
    where ``run`` (B, T) bool is set. xy: (B, T, 17, C). Returns a new (B, T, 17, C) array."""
    right, left = (list(side) for side in LIMBS[limb])
    out = xy.copy()
    swap = run[..., None, None]
    out[:, :, right] = np.where(swap, xy[:, :, left], xy[:, :, right])
    out[:, :, left] = np.where(swap, xy[:, :, right], xy[:, :, left])
    return out


def corrupt(xy: np.ndarray, target: np.ndarray, rng: np.random.Generator, augment: Augment,
            in_frame: np.ndarray | None = None, clean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Make clean 2D windows look like a detector's, and mirror some.

    xy: (B, T, 17, 2) screen coordinates; target: (B, T, 17, 3) root-relative camera metres; in_frame:
    (B, T, 17) bool, False for joints outside the picture (default: all inside); clean: (B,) bool,
    which windows are clean projections that the detector model may corrupt (default: all). Returns
    inputs (B, T, 17, 3) float32 as (x, y, visibility) and the targets (B, T, 17, 3) float32,
    mirrored with their inputs.
    """
    b, t = xy.shape[:2]
    xy = xy.astype(np.float32).copy()
    target = target.astype(np.float32).copy()
    projected = xy.copy()
    xy += rng.normal(size=xy.shape).astype(np.float32) * (rng.random((b, 1, 1, 1)) * augment.noise_max).astype(np.float32)
    if augment.outlier_prob > 0:
        jump = rng.random(xy.shape[:3] + (1,)) < augment.outlier_prob
        xy += jump * rng.normal(scale=augment.outlier_std, size=xy.shape).astype(np.float32)
    # The model draws only when it is on, so that runs without it resume exactly as before it existed;
    # its windows take its own noise and outliers instead of the independent ones.
    if augment.detector is not None and augment.detector_prob > 0:
        modelled = (rng.random(b) < augment.detector_prob) & (np.ones(b, dtype=bool) if clean is None else clean)
        if modelled.any():
            xy[modelled] = augment.detector.sample(projected[modelled], target[modelled], rng)
    if augment.swap_prob > 0:
        xy = swap_body(xy, _runs(rng, b, t, augment.swap_prob, 3, 30))
    if augment.limb_swap_prob > 0:
        run = _runs(rng, b, t, augment.limb_swap_prob, 3, 15)
        limb = rng.integers(0, len(LIMBS), b)
        for k in range(len(LIMBS)):
            xy = swap_limb(xy, run & (limb == k)[:, None], k)
    if augment.drift_prob > 0:
        run = _runs(rng, b, t, augment.drift_prob, 5, t)
        joint = rng.integers(0, xy.shape[2], b)
        # Away and back: a sine bump over the run, towards a random direction.
        phase = np.cumsum(run, axis=1) / np.maximum(run.sum(1, keepdims=True), 1)
        bump = np.sin(np.pi * phase) * run * rng.uniform(0, augment.drift_max, (b, 1))
        direction = rng.normal(size=(b, 2))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        xy[np.arange(b), :, joint] += (bump[..., None] * direction[:, None, :]).astype(np.float32)
    if augment.guess_prob > 0:
        run = _runs(rng, b, t, augment.guess_prob, 5, t)
        joint = rng.integers(0, xy.shape[2], b)
        xy[np.arange(b), :, joint] += (run[..., None] * rng.normal(scale=augment.guess_std, size=(b, t, 2))).astype(np.float32)
    visible = rng.random(xy.shape[:3]) >= rng.random((b, 1, 1)) * augment.drop_max
    if augment.hide_prob > 0:
        run = _runs(rng, b, t, augment.hide_prob, 5, 2 * t)
        group = rng.integers(0, len(HIDDEN), b)
        for k, joints in enumerate(HIDDEN):
            hide = run & (group == k)[:, None]
            visible[:, :, list(joints)] &= ~hide[..., None]
    if in_frame is not None:
        drop_outside = (rng.random(b) < augment.out_of_frame_drop)[:, None, None]
        visible &= in_frame | ~drop_outside
    visible = visible.astype(np.float32)
    inputs = np.concatenate([xy * visible[..., None], visible[..., None]], axis=-1).astype(np.float32)
    flip = rng.random(b) < augment.flip_prob
    if flip.any():
        inputs[flip] = flip_horizontal(inputs[flip])
        target[flip] = flip_horizontal(target[flip])
    return inputs, target


class WindowDataset:
    """Windows of ``frames`` consecutive frames over a list of clips, addressed by integer index.

    stride: distance between window starts within a clip (a clip shorter than a window is skipped).
    """

    def __init__(self, clips: list[Clip], frames: int, stride: int):
        self.frames = frames
        self.pose3d = np.concatenate([c.pose3d for c in clips])
        self.pose2d = np.concatenate([c.pose2d for c in clips])
        has_det = all(c.det2d is not None for c in clips)
        self.det2d = np.concatenate([c.det2d for c in clips]) if has_det else None
        self.focal = np.concatenate([np.full(len(c.pose3d), c.focal, dtype=np.float32) for c in clips])
        self.default_focal = np.concatenate([np.full(len(c.pose3d), screen_focal(c.width, c.height), dtype=np.float32) for c in clips])
        offsets = np.cumsum([0] + [len(c.pose3d) for c in clips])
        self.starts = np.concatenate(
            [np.arange(o, o + len(c.pose3d) - frames + 1, stride) for o, c in zip(offsets, clips)]
        ).astype(np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, indices: np.ndarray, rng: np.random.Generator, augment: Augment = NO_AUGMENT, independent: bool = False):
        """Gather windows ``indices``. Returns inputs (B, T, 17, 3) float32 as screen (x, y,
        visibility), targets (B, T, 17, 3) float32 root-relative camera metres, the focal lengths
        (B,) in screen units the windows are normalised with and whether each is the camera's own
        (B,) bool (:func:`given_focal`): what :func:`posemoe.normalize.normalize_windows` takes.

        independent: fill each window with unrelated frames drawn from the whole set instead (the
        per-frame warm start: T times more distinct poses per step for the same compute).
        """
        if independent:
            rows = rng.integers(0, len(self.pose3d), (len(indices), self.frames))
        else:
            rows = self.starts[indices][:, None] + np.arange(self.frames)
        target = self.pose3d[rows]
        xy = self.pose2d[rows]
        b = len(indices)
        use_det = np.zeros(b, dtype=bool)
        if self.det2d is not None and augment.detection_prob > 0:
            use_det = rng.random(b) < augment.detection_prob
            xy = np.where(use_det[:, None, None, None], self.det2d[rows], xy)
        inputs, target = corrupt(xy, target, rng, augment, clean=~use_det)
        return (inputs, target, *given_focal(self.focal[rows[:, 0]], self.default_focal[rows[:, 0]], rng, augment))
