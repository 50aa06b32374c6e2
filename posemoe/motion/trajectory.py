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
sole. With several people, everyone on one floor stands on it: a person's size, and so their
distance, is the least certain thing the lifting gives, and :func:`floor_scales` corrects it by where
their feet meet the others' floor, leaving someone far above it (on a box) where they are.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from .. import PoseMoEError
from ..skeleton import ANKLE_HEIGHT, ANKLES, HEAD, NUM_JOINTS, PELVIS

MIN_CONFIDENCE = 0.3
#: A lower ankle that moves less than this from one frame to the next (metres) is standing on the
#: floor: the floor's height is the median of those ankles' (``benchmarks/world.py``, docs/benchmarks.md
#: "World-grounded motion": the 20th percentile of all frames, used before, left planted soles 26 mm
#: above the floor on average, this 15, with 1.1 % of frames a sole more than 2 cm under it, from 0.6).
PLANTED_STEP = 0.02
MIN_PLANTED = 10  # frames: fewer, and the 20th percentile of all frames is the floor
#: One floor for several people (:func:`floor_scales`): the lifted size's error, log-scale std (adults'
#: statures spread about 7 %, the lifter's size on real footage more).
SIZE_STD = 0.10
#: Metres: the error of a person's planted-ankle level under the camera (lifted legs, planted frames).
LEVEL_STD = 0.04
#: Two people whose camera heights above their planted feet differ by more than this factor do not
#: stand on one floor: the higher stays where the lifted size puts them (a 40 cm box under a camera
#: 1.5 m up is a factor 1.36).
MAX_CORRECTION = 1.3
#: Radians, per axis: the error of the up direction the people's bodies show (:func:`body_up`),
#: a little over ten degrees against the truth on the four-view real scene and on the synthetic
#: scenes of ``benchmarks/people.py``, with a heavier tail than a Gaussian's (a seated or bending
#: person); 0.2 leaves the synthetic scenes' median distance errors as they were (docs/decisions.md,
#: "One floor for everyone").
TILT_STD = 0.2
#: A frame whose head stands at least this fraction of the person's tallest (90th percentile) above
#: their ankles is upright enough to show which way is up.
UPRIGHT = 0.9


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


def world_frame(people: list[np.ndarray], weights: list[np.ndarray] | None = None,
                up: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One Z-up world with the floor at Z = 0 for everyone filmed by one camera.

    people: each person's camera-space joints (N_k, 17, 3) metres; weights: per person (N_k,), how
    much each frame counts (0 for guessed frames; default all 1). Returns (rotation (3, 3), origin (3,))
    with ``world = (camera - origin) @ rotation.T``: rows of ``rotation`` are the world X (right), Y
    (forward, away from the camera) and Z (up) axes in camera coordinates. Up is the normal of the
    surfaces everyone's feet touch (:func:`floor_normal`); the floor is the lowest of them, so someone
    standing on a box keeps their height above it; the origin is the floor point under the first
    person's first well-seen pelvis. up: the floor's up direction where it is known already (as
    :func:`floor_scales` gives it), instead of fitting it here.
    """
    people = [np.asarray(joints, dtype=np.float64) for joints in people]
    weights = ([np.ones(len(j)) for j in people] if weights is None
               else [np.asarray(w, dtype=np.float64) for w in weights])
    weights = [w if w.sum() > 0 else np.ones(len(w)) for w in weights]
    if up is None:
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


def _planted_level(joints: np.ndarray, weights: np.ndarray, up: np.ndarray,
                   centres: np.ndarray | None = None) -> float:
    """The height along ``up`` (3,) at which one person's lower ankle stands while it stays put: the
    median over frames where it moves slower than :data:`PLANTED_STEP` (a foot on the floor), or the
    20th percentile of all frames where too few are. joints (N, 17, 3) camera metres; weights (N,);
    centres (N, 3): heights measured from each frame's camera centre instead of the origin."""
    heights = joints[:, list(ANKLES)] @ up  # (N, 2)
    lower = np.argmin(heights, axis=1)
    ankle = joints[np.arange(len(joints)), np.array(ANKLES)[lower]]
    # Per frame, not per second: the frame rate is not known here, and at 24-60 frames/s a planted
    # ankle's depth noise moves it far less than a swing foot moves.
    step = np.r_[np.inf, np.linalg.norm(np.diff(ankle, axis=0), axis=-1)]
    planted = (weights > 0) & (step < PLANTED_STEP)
    lowest = heights.min(1) if centres is None else heights.min(1) - np.asarray(centres) @ up
    if planted.sum() >= MIN_PLANTED:
        return float(np.median(lowest[planted]))
    return float(np.percentile(lowest[weights > 0], 20))


def _planted_point(joints: np.ndarray, weights: np.ndarray, up: np.ndarray, centres: np.ndarray | None) -> np.ndarray:
    """Where one person's lower ankle stands, from the camera centre: (3,) the median over the frames
    :func:`_planted_level` would use (planted, or all well-seen frames where too few are)."""
    heights = joints[:, list(ANKLES)] @ up
    lower = np.argmin(heights, axis=1)
    ankle = joints[np.arange(len(joints)), np.array(ANKLES)[lower]]
    step = np.r_[np.inf, np.linalg.norm(np.diff(ankle, axis=0), axis=-1)]
    planted = (weights > 0) & (step < PLANTED_STEP)
    use = planted if planted.sum() >= MIN_PLANTED else weights > 0
    return np.median((ankle if centres is None else ankle - np.asarray(centres))[use], axis=0)


def body_up(people: list[np.ndarray], weights: list[np.ndarray] | None = None) -> np.ndarray:
    """The up direction (3,) the people's own bodies show: per person, the median over their upright
    frames (head to mid-ankle at least :data:`UPRIGHT` of its longest) of the unit vector from between
    the ankles to the head; the people's directions averaged, each counted by their upright frames.
    people: each (N_k, 17, 3) camera metres; weights per person (N_k,) (0: a guessed frame)."""
    total = np.zeros(3)
    for joints, w in zip(people, weights if weights is not None else [None] * len(people)):
        stature = joints[:, HEAD] - joints[:, list(ANKLES)].mean(1)
        length = np.linalg.norm(stature, axis=-1)
        use = length >= UPRIGHT * np.percentile(length, 90)
        if w is not None and np.any(use & (np.asarray(w) > 0)):
            use &= np.asarray(w) > 0
        direction = np.median(stature[use] / length[use, None], axis=0)
        total += use.sum() * direction / np.linalg.norm(direction)
    return total / np.linalg.norm(total)


def floor_scales(people: list[np.ndarray], weights: list[np.ndarray] | None = None,
                 centres: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """How much to scale each person about the camera centre so that everyone who stands on the
    floor stands on one floor: (K,) factors, and the floor's up direction (3,) they were found with
    (None where nobody's scale changes: one person, or no two on one floor).

    people: each person's joints (N_k, 17, 3) metres in one camera's space (the first frame's);
    weights: per person (N_k,), how much each frame counts; centres: per person (N_k, 3), the camera's
    centre in each frame (default: the origin, a static camera). Scaling a person's joints about the
    camera centre by ``s`` keeps their picture exactly and changes their size and their distance
    together: the one thing a single camera does not see. Along the people's own up
    (:func:`body_up`: each person's feet measure the floor's tilt too poorly to compare two people's
    levels), each person's lifted size puts the camera ``H_k`` above their planted ankles
    (:func:`_planted_level`); the camera is one, so people on one floor must agree on ``H``. In log
    scale, ``log s_k`` has the lifted size as its prior (std :data:`SIZE_STD`) and the floor contact
    ``log H - log H_k`` as a measurement (std :data:`LEVEL_STD` / ``H_k``: a camera high above the feet
    measures the distance well, one at the feet's height hardly at all); the common ``log H`` is the
    precision-weighted mean over the people on the floor, so their mean size is kept and only their
    sizes relative to each other change. On the floor: the lowest person (the largest ``H_k``) and
    everyone whose ``H_k`` is within a factor of :data:`MAX_CORRECTION` of theirs; someone higher up
    (on a box, a climber) is left as lifted.
    """
    people = [np.asarray(joints, dtype=np.float64) for joints in people]
    scales = np.ones(len(people))
    if len(people) < 2:
        return scales, None
    weights = ([np.ones(len(j)) for j in people] if weights is None
               else [np.asarray(w, dtype=np.float64) for w in weights])
    weights = [w if w.sum() > 0 else np.ones(len(w)) for w in weights]
    centres = [None] * len(people) if centres is None else centres
    up = body_up(people, weights)
    height = np.array([-_planted_level(j, w, up, c) for j, w, c in zip(people, weights, centres)])
    seen = height > 2 * LEVEL_STD  # a camera at the feet's height says nothing about distance
    if seen.sum() < 2:
        return scales, None
    log_height = np.log(np.where(seen, height, 1.0))
    on_floor = seen & (log_height >= log_height[seen].max() - np.log(MAX_CORRECTION))
    if on_floor.sum() < 2:
        return scales, None
    # Generalised least squares over the people on the floor: each one's log height under the camera
    # measures log H - log s_k, with the level's own error and the up direction's, which is shared:
    # a tilt moves the level of a person far from the camera more than that of a near one.
    floor = np.flatnonzero(on_floor)
    points = np.array([_planted_point(people[k], weights[k], up, centres[k]) for k in floor])
    across = (points - np.outer(points @ up, up)) / height[floor, None]
    noise = np.diag((LEVEL_STD / height[floor]) ** 2) + TILT_STD ** 2 * across @ across.T
    spread = np.linalg.inv(noise + SIZE_STD ** 2 * np.eye(len(floor)))
    measured = log_height[floor]
    common = spread.sum(0) @ measured / spread.sum()
    scales[floor] = np.exp(-SIZE_STD ** 2 * spread @ (measured - common))
    return scales, up


def to_world(points: np.ndarray, rotation: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """points (..., 3) camera metres -> (..., 3) world metres (Z up, floor at 0)."""
    return (np.asarray(points) - origin) @ rotation.T
