"""Where the person is, not only how they stand: the root's camera-space path and a floor-based world.

The lifter returns joints relative to the pelvis. With a focal length, each frame's pelvis position
follows from the 2D keypoints: the translation ``t`` that makes ``rel + t`` project onto the detected
pixels. Writing the pinhole projection ``u = f (X + tx) / (Z + tz) + cx`` as a linear equation in ``t``
gives two equations per joint and a weighted least-squares problem of three unknowns per frame (the
same idea as the closed-form trajectory of weak-perspective lifters, without the weak-perspective
approximation). Depth is the least certain of the three; it is smoothed over about a second and the
other two solved again for the smoothed depth.

The world frame, one for everyone in the video: Z up (the normal of the floor the feet touch, see
:func:`floor_normal`), Y the camera's viewing direction laid flat on the floor, X to the right; the
floor at Z = 0 is put under the lowest person's planted ankles, which sit ``ANKLE_HEIGHT`` above the
sole.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from .. import PoseMoEError
from ..skeleton import ANKLE_HEIGHT, ANKLES, NUM_JOINTS, PELVIS

MIN_CONFIDENCE = 0.3
#: A lower ankle that moves less than this from one frame to the next (metres) is standing on the
#: floor: the floor's height is the median of those ankles' (``benchmarks/world.py``, docs/benchmarks.md
#: "World-grounded motion": the 20th percentile of all frames, used before, left planted soles 26 mm
#: above the floor on average, this 15, with 1.1 % of frames a sole more than 2 cm under it, from 0.6).
PLANTED_STEP = 0.02
MIN_PLANTED = 10  # frames: fewer, and the 20th percentile of all frames is the floor


def root_translation(keypoints: np.ndarray, confidence: np.ndarray, relative: np.ndarray, focal: float,
                     centre: tuple[float, float], depth_frames: int = 31) -> np.ndarray:
    """Camera-space pelvis position per frame.

    keypoints (N, 17, 2) px; confidence (N, 17); relative (N, 17, 3) root-relative camera-space metres
    (x right, y down, z forward); focal in px; centre (cx, cy) px. Frames with fewer than three
    confident joints are interpolated from their neighbours. Depth, the noisy direction, is smoothed
    over ``depth_frames`` (odd; Savitzky-Golay, order 2; about a second suits a walk) and the sideways
    and vertical position solved again for the smoothed depth, so the skeleton still lands on the
    detected pixels. Returns (N, 3) metres.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    relative = np.asarray(relative, dtype=np.float64)
    n = len(keypoints)
    # Normalised image coordinates: the equations become t_x - a t_z = a Z - X with a = (u - cx) / f.
    a = (keypoints - np.asarray(centre, dtype=np.float64)) / focal
    weight = np.where((confidence >= MIN_CONFIDENCE) & np.isfinite(a).all(-1), confidence, 0.0)
    a = np.nan_to_num(a)
    rows = np.zeros((n, NUM_JOINTS, 2, 3))
    rows[..., 0, 0] = 1.0
    rows[..., 1, 1] = 1.0
    rows[..., :, 2] = -a
    rhs = a * relative[..., 2:3] - relative[..., :2]
    w = weight[..., None, None]
    normal = np.einsum("njkc,njkd->ncd", rows * w, rows)
    target = np.einsum("njkc,njk->nc", rows * w, rhs)
    good = (weight > 0).sum(1) >= 3
    depth = np.full(n, np.nan)
    if good.any():
        depth[good] = np.linalg.solve(normal[good] + 1e-9 * np.eye(3), target[good][..., None])[:, 2, 0]
    good &= depth > 0.1  # a person behind the camera is a failed fit
    if not good.any():
        raise PoseMoEError("The person's position could not be estimated from the keypoints: too few joints were detected.")
    frames = np.arange(n)
    depth = np.interp(frames, frames[good], depth[good])
    window = min(depth_frames, n if n % 2 else n - 1)
    if window >= 5:
        depth = np.maximum(savgol_filter(depth, window, 2), 0.1)
    # With the depth fixed, each of x and y is a weighted mean: t = a (Z + t_z) - X.
    offsets = a * (relative[..., 2:3] + depth[:, None, None]) - relative[..., :2]
    total = weight.sum(1)
    side = (offsets * weight[..., None]).sum(1) / np.maximum(total, 1e-9)[:, None]
    side = np.stack([np.interp(frames, frames[good], side[good, k]) for k in range(2)], axis=1)
    return np.column_stack([side, depth])


def floor_normal(ankles: np.ndarray, weights: np.ndarray, groups: np.ndarray | None = None,
                 slope_std: float = 0.15, noise_std: float = 0.03) -> np.ndarray:
    """The floor's up direction in camera space from where the feet touch it.

    ankles: (N, 2, 3) camera-space metres of both ankles; weights (N,); groups (N,) int: which person
    each sample is (default: all one). Each frame's lower ankle is a floor sample (swing feet are
    dropped by refitting to each person's lowest 70 %). The planes ``y = a x + b z + c_g`` share their
    slopes and have one height ``c_g`` per person (someone on a box stands on a surface parallel to
    the floor, not on it); they are fitted by least squares with a Gaussian prior on the slopes (std
    ``slope_std``, ~8.5 degrees) around a level camera: a walk across the picture fixes the camera's
    roll but not its pitch, and the prior keeps the direction that the feet do not measure level.
    Returns the unit normal (3,) pointing up (towards -y).
    """
    groups = np.zeros(len(ankles), dtype=int) if groups is None else np.asarray(groups)
    _, groups = np.unique(groups, return_inverse=True)
    count = int(groups.max()) + 1 if len(groups) else 1
    lower = ankles[np.arange(len(ankles)), np.argmax(ankles[..., 1], axis=1)]
    design = np.column_stack([lower[:, 0], lower[:, 2], np.eye(count)[groups]])
    prior = np.diag([1.0, 1.0] + [0.0] * count) * (noise_std / slope_std) ** 2
    use = weights > 0
    for _ in range(3):
        w = np.where(use, weights, 0.0)
        coef = np.linalg.solve(design.T @ (design * w[:, None]) + prior * max(w.sum(), 1.0) / max(len(w), 1)
                               + 1e-9 * np.eye(len(prior)), design.T @ (w * lower[:, 1]))
        residual = lower[:, 1] - design @ coef  # > 0: below the plane (y points down)
        use = weights > 0
        for g in range(count):
            mine = (groups == g) & (weights > 0)
            if mine.any():
                use &= (groups != g) | (residual >= np.percentile(residual[mine], 30))
    normal = np.array([coef[0], -1.0, coef[1]])
    return normal / np.linalg.norm(normal)


def world_frame(people: list[np.ndarray], weights: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One Z-up world with the floor at Z = 0 for everyone filmed by one camera.

    people: each person's camera-space joints (N_k, 17, 3) metres; weights: per person (N_k,), how
    much each frame counts (0 for guessed frames; default all 1). Returns (rotation (3, 3), origin (3,))
    with ``world = (camera - origin) @ rotation.T``: rows of ``rotation`` are the world X (right), Y
    (forward, away from the camera) and Z (up) axes in camera coordinates. Up is the normal of the
    surfaces everyone's feet touch (:func:`floor_normal`); the floor is the lowest of them, so someone
    standing on a box keeps their height above it; the origin is the floor point under the first
    person's first well-seen pelvis.
    """
    people = [np.asarray(joints, dtype=np.float64) for joints in people]
    weights = ([np.ones(len(j)) for j in people] if weights is None
               else [np.asarray(w, dtype=np.float64) for w in weights])
    weights = [w if w.sum() > 0 else np.ones(len(w)) for w in weights]
    up = floor_normal(np.concatenate([j[:, list(ANKLES)] for j in people]), np.concatenate(weights),
                      np.concatenate([np.full(len(j), k) for k, j in enumerate(people)]))
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    if np.linalg.norm(forward) < 1e-6:  # looking straight down at the person: any horizontal forward
        forward = np.array([0.0, 1.0, 0.0]) - up[1] * up
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    rotation = np.stack([right, forward, up])
    floor = min(_planted_level(j, w, up) for j, w in zip(people, weights)) - ANKLE_HEIGHT
    first = int(np.argmax(weights[0] > 0))
    pelvis = people[0][first, PELVIS]
    origin = pelvis - (pelvis @ up - floor) * up
    return rotation, origin


def _planted_level(joints: np.ndarray, weights: np.ndarray, up: np.ndarray) -> float:
    """The height along ``up`` (3,) at which one person's lower ankle stands while it stays put: the
    median over frames where it moves slower than :data:`PLANTED_SPEED` (a foot on the floor), or the
    20th percentile of all frames where too few are. joints (N, 17, 3) camera metres; weights (N,)."""
    heights = joints[:, list(ANKLES)] @ up  # (N, 2)
    lower = np.argmin(heights, axis=1)
    ankle = joints[np.arange(len(joints)), np.array(ANKLES)[lower]]
    # Per frame, not per second: the frame rate is not known here, and at 24-60 frames/s a planted
    # ankle's depth noise moves it far less than a swing foot moves.
    step = np.r_[np.inf, np.linalg.norm(np.diff(ankle, axis=0), axis=-1)]
    planted = (weights > 0) & (step < PLANTED_STEP)
    if planted.sum() >= MIN_PLANTED:
        return float(np.median(heights.min(1)[planted]))
    return float(np.percentile(heights.min(1)[weights > 0], 20))


def to_world(points: np.ndarray, rotation: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """points (..., 3) camera metres -> (..., 3) world metres (Z up, floor at 0)."""
    return (np.asarray(points) - origin) @ rotation.T
