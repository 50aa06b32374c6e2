"""A model of a 2D detector's errors, fitted on its real detections against the truth, for training.

Independent Gaussian noise per joint and frame (``training.data.Augment.noise_max``) is not what a
detector does. The Stacked Hourglass detections of Human3.6M (the training subjects' only) show:

- a **bias per joint in the body's own frame**: the detector's hip, spine or thorax is not where
  Human3.6M's markers put them (its "Spine" sits 40 px above ours at 1000 px), and the offset turns
  with the body and scales with its size in the picture;
- errors **correlated over time** (lag-1 autocorrelation 0.6-0.9 at 50 frames/s, still 0.2-0.6 half a
  second later: a slow and a fast part) **and between joints** (a whole limb or torso off together);
- errors that **grow with the joint's speed** (motion blur);
- **outliers**: a joint put on something else for a run of frames, mostly on another joint (76 % of
  the held-out subjects' outliers lie nearer another joint's truth than half their own error: a foot on
  the other foot, a wrist on the other wrist or on the hips), in bad stretches (35 % of the held-out
  27-frame windows hold one; ``benchmarks/detector_errors.py`` prints both, docs/benchmarks.md
  "Detector error model" has the figures). Outliers spread evenly over the windows made the model's
  errors cost the lifter more than the real detections do, hence the bad windows;
- **left/right swaps** of the legs, of the arms, or of the whole body, for a run of frames.

All lengths are metres in the person's plane: pixel errors divided by the picture's scale at the
person (pixels per metre, the weak-perspective fit of the true 2D to the root-relative 3D), so the
model applies at any camera, lens and distance. :func:`fit` learns it; :meth:`DetectorErrors.sample`
corrupts clean training windows with it (``train.py --detector-errors``, through
:func:`training.data.corrupt`); ``benchmarks/detector_errors.py`` compares its errors with the real ones
on the held-out subjects.

    python training/detector_errors.py --out training/detector_errors_sh.json   # refit (about 2 min)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from posemoe.skeleton import (
    L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_WRIST, NUM_JOINTS, PARENTS, PELVIS, R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_WRIST,
    THORAX,
)
from training.data import LIMBS, TRAIN_SUBJECTS, Clip, load_clips, swap_body, swap_limb

J = NUM_JOINTS
#: The fitted model the training recipe uses (a few KB of statistics, no per-frame data).
DEFAULT_MODEL = ROOT / "training" / "detector_errors_sh.json"
#: Frame rate of the data the model is fitted on and of the windows it corrupts (the network's).
FPS = 50.0
#: A joint further than this (metres, after the bias) from the truth is an outlier, not noise: about
#: 43 px on a Human3.6M camera (216 px per metre at the median), 5x the median error.
OUTLIER_M = 0.2
#: A frame's arms (or legs) are swapped when the detections fit the other side's truth better by at
#: least this (metres, summed over the limb pair's 6 joints) and by half: seen from the side the two
#: limbs overlap and a "swap" there is neither detectable nor harmful.
SWAP_MARGIN_M = 0.3
#: Joints whose bias may also shift along their own bone: the knees, feet, elbows and wrists (a
#: detector's ankle or wrist sits up or down the limb from the marker's). The torso's bones lie along
#: the body's own axes (pelvis->hip along x, pelvis->spine->thorax along y), where the shift would be
#: the same parameter twice.
ALONG_BONE = (R_KNEE, R_ANKLE, L_KNEE, L_ANKLE, L_ELBOW, L_WRIST, R_ELBOW, R_WRIST)
#: Lags (frames at 50 frames/s) at which the autocorrelation is fitted.
LAGS = (1, 2, 3, 5, 8, 12, 18, 26)
#: Speed bins (metres per second in the picture's plane) for the error's growth with speed.
SPEED_BINS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
SWAPS = ("body", "legs", "arms")
#: The network's window (frames): the unit over which a joint's noise level is drawn.
WINDOW = 27


@dataclass
class DetectorErrors:
    """The fitted model. Lengths in metres in the person's plane, time in frames at 50 frames/s.

    bias: (17, 4) per joint, an offset (x towards the body's left hip, y along pelvis->thorax, z their
    cross product) and a shift along the joint's own bone (parent to joint; only for
    :data:`ALONG_BONE`, 0 for the others).
    cov: (34, 34) covariance of the remaining noise at zero speed, joints x (x, y) flattened.
    slow_weight: (17,) share of each joint's variance in the slow part; slow_phi, fast_phi: the AR(1)
    coefficients per frame of the slow and the fast part. speed_gain: the noise's std is multiplied by
    ``1 + speed_gain * v``, v the joint's speed in m/s. window_scale: (21,) quantiles 0, 5, ..., 100 %
    of a joint's noise std over a 27-frame window against its std over all windows (some windows are
    hard: occlusion, an unusual pose). outlier_rate: (17,) share of frames a joint is an outlier;
    outlier_run: (21,) quantiles of an outlier run's length (frames); outlier_target: (17, 18) where
    each joint's outliers go: onto joint k (columns 0-16: the joint takes k's detection for the run)
    or, last column, elsewhere, at a distance drawn from outlier_size: (21,) quantiles of those
    outliers' distance (metres); None: always elsewhere (models fitted before). outlier_reach: (17,)
    metres, the 95th percentile of how far the joint the detector took was from the outlier's own: a
    window gives an outlier only joints within this reach (a seated person's thorax lands on a knee,
    a standing one's does not). outlier_window: (101,) quantiles 0, 1, ..., 100 % of a 27-frame
    window's outlier joint-frames against the mean window's: the chance of an outlier run in a window
    is scaled by a draw of it (outliers come in bad stretches). swap_rate / swap_run: share of frames and mean
    run length of each of :data:`SWAPS`. fitted_on: what it was fitted on.
    """

    bias: np.ndarray
    cov: np.ndarray
    slow_weight: np.ndarray
    slow_phi: float
    fast_phi: float
    speed_gain: float
    window_scale: np.ndarray
    outlier_rate: np.ndarray
    outlier_run: np.ndarray
    outlier_size: np.ndarray
    swap_rate: dict
    swap_run: dict
    fitted_on: str = ""
    outlier_target: np.ndarray | None = None
    outlier_reach: np.ndarray | None = None
    outlier_window: np.ndarray | None = None

    def save(self, path: str | Path) -> None:
        record = {k: (v.round(7).tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        Path(path).write_text(json.dumps(record, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "DetectorErrors":
        record = json.loads(Path(path).read_text())
        arrays = ("bias", "cov", "slow_weight", "window_scale", "outlier_rate", "outlier_run", "outlier_size", "outlier_target",
                  "outlier_reach", "outlier_window")
        return cls(**{k: (np.asarray(v, dtype=np.float64) if k in arrays and v is not None else v) for k, v in record.items()})

    def sample(self, xy: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Detector-like 2D for clean windows.

        xy: (B, T, 17, 2) clean 2D (any units, e.g. screen or pixels) at 50 frames/s; target: (B, T,
        17, 3) the same frames' root-relative camera-space 3D, metres, not mirrored. Returns (B, T,
        17, 2) float32 in the units of ``xy``: the clean 2D plus bias, correlated noise, outliers,
        then swaps.
        """
        b, t = xy.shape[:2]
        scale = picture_scale(xy, target)  # (B, T) xy units per metre
        error = project_bias(self.bias, target)  # (B, T, 17, 2) metres
        speed = joint_speed(xy, scale)
        # A hard window scales a joint's noise for the whole window; the scales' mean square is 1.
        window = _quantile_draw(rng, self.window_scale, (b, 1, J))
        error += self._noise(rng, b, t) * window[..., None] * (1.0 + self.speed_gain * speed)[..., None]
        # At most one outlier run per joint and window, of a length drawn from the real runs', that may
        # begin before the window or end after it; one distance and direction for the run (a joint
        # stuck on something else). A run of L frames covers L * T / (T + L - 1) of the window's frames
        # on average, which sets how often a run must be drawn for the fitted share of frames.
        metres = xy / scale[..., None, None]
        detected = metres + error  # where each joint would be detected, were it no outlier
        length = np.maximum(np.round(_quantile_draw(rng, self.outlier_run, (b, J))), 1).astype(np.int64)
        lengths = np.maximum(np.round(_quantile_grid(self.outlier_run)), 1)
        chance = np.minimum(self.outlier_rate / np.mean(lengths / (t + lengths - 1)), 1.0)
        if self.outlier_window is not None:
            boost = _capped_boost(chance, _quantile_grid(self.outlier_window))
            chance = np.minimum(chance * boost * _quantile_draw(rng, self.outlier_window, (b, 1)), 1.0)
        hit = rng.random((b, J)) < chance
        start = rng.integers(1 - length, t)
        frame = np.arange(t)[:, None, None]
        outlier = hit & (frame >= start) & (frame < start + length)  # (T, B, J)
        size = _quantile_draw(rng, self.outlier_size, (b, J))
        angle = rng.uniform(0, 2 * np.pi, (b, J))
        jump = size[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)  # (B, J, 2)
        outlier = np.moveaxis(outlier, 0, 1)  # (B, T, J)
        error += outlier[..., None] * jump[:, None]
        if self.outlier_target is not None:
            # An outlier onto another joint takes that joint's detection for the whole run.
            apart = np.linalg.norm(metres[:, :, :, None] - metres[:, :, None], axis=-1).mean(1)  # (B, J, J)
            reach = np.inf if self.outlier_reach is None else self.outlier_reach[None, :, None]
            weight = np.concatenate([self.outlier_target[None, :, :J] * (apart <= reach),
                                     np.broadcast_to(self.outlier_target[None, :, J:] + 1e-9, (b, J, 1))], axis=-1)
            cumulative = np.cumsum(weight / weight.sum(-1, keepdims=True), axis=-1)
            target = np.minimum((rng.random((b, J, 1)) > cumulative).sum(-1), J)  # (B, J): 17 elsewhere
            onto = target < J
            source = np.broadcast_to(np.where(onto, target, np.arange(J))[:, None, :, None], detected.shape)
            taken = np.take_along_axis(detected, source, axis=2) - metres
            error = np.where((outlier & onto[:, None])[..., None], taken, error)
        out = (xy + error * scale[..., None, None]).astype(np.float32)
        body = _markov_runs(rng, (b,), t, self.swap_rate["body"], self.swap_run["body"])
        legs = _markov_runs(rng, (b,), t, self.swap_rate["legs"], self.swap_run["legs"]) & ~body
        arms = _markov_runs(rng, (b,), t, self.swap_rate["arms"], self.swap_run["arms"]) & ~body
        out = swap_body(out, body)
        out = swap_limb(out, legs, 0)
        return swap_limb(out, arms, 1)

    def _noise(self, rng: np.random.Generator, b: int, t: int) -> np.ndarray:
        """(B, T, 17, 2) metres: the sum of a slow and a fast stationary AR(1) process, each with the
        joints' covariance :attr:`cov`, mixed per joint by :attr:`slow_weight`."""
        chol = np.linalg.cholesky(self.cov + 1e-10 * np.eye(2 * J))
        w = np.repeat(self.slow_weight, 2)
        total = np.zeros((b, t, 2 * J))
        for phi, share in ((self.slow_phi, w), (self.fast_phi, 1.0 - w)):
            innovation = rng.normal(size=(b, t, 2 * J)) @ chol.T
            state = innovation[:, 0]
            total[:, 0] += np.sqrt(share) * state
            for k in range(1, t):
                state = phi * state + np.sqrt(1.0 - phi * phi) * innovation[:, k]
                total[:, k] += np.sqrt(share) * state
        return total.reshape(b, t, J, 2)


def picture_scale(xy: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Units of ``xy`` per metre at the person: the weak-perspective least-squares fit of the
    root-relative 2D to the root-relative 3D's x, y. xy: (..., 17, 2); target: (..., 17, 3) root-relative
    metres. Returns (...) (never below 1e-6, so that a degenerate frame cannot divide by zero)."""
    rel = xy - xy[..., PELVIS, None, :]
    plane = target[..., :2]
    return np.maximum((rel * plane).sum((-1, -2)) / np.maximum((plane * plane).sum((-1, -2)), 1e-9), 1e-6)


def body_axes(target: np.ndarray) -> np.ndarray:
    """The body's own frame in camera coordinates. target: (..., 17, 3) metres. Returns (..., 3, 4):
    columns x towards the left hip, y along pelvis->thorax, z their cross product (each a unit vector),
    and the joint's own bone direction is added per joint by :func:`bias_design`."""
    left = target[..., L_HIP, :] - target[..., R_HIP, :]
    left /= np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-9)
    up = target[..., THORAX, :] - target[..., PELVIS, :]
    up = up - (up * left).sum(-1, keepdims=True) * left
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    return np.stack([left, up, np.cross(left, up)], axis=-1)


def bias_design(target: np.ndarray) -> np.ndarray:
    """(..., 17, 2, 4): maps a joint's bias parameters (:attr:`DetectorErrors.bias`) to its 2D offset
    in metres in the picture's plane (weak perspective: the x, y of the camera-space offset).
    target: (..., 17, 3) root-relative camera metres."""
    axes = body_axes(target)[..., None, :2, :]  # (..., 1, 2, 3)
    bone = target - target[..., list(np.maximum(PARENTS, 0)), :]
    bone /= np.maximum(np.linalg.norm(bone, axis=-1, keepdims=True), 1e-9)
    bone *= np.isin(np.arange(J), ALONG_BONE)[:, None]
    axes = np.broadcast_to(axes, target.shape[:-1] + (2, 3))
    return np.concatenate([axes, bone[..., :2, None]], axis=-1)


def project_bias(bias: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The bias's 2D offsets (..., 17, 2), metres in the picture's plane. bias: (17, 4); target:
    (..., 17, 3) root-relative camera metres."""
    return np.einsum("...jcp,jp->...jc", bias_design(target), bias)


def joint_speed(xy: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each joint's speed in the picture, metres per second at the person, at 50 frames/s.
    xy: (B, T, 17, 2) (T >= 2); scale: (B, T) xy units per metre. Returns (B, T, 17)."""
    velocity = np.gradient(xy / scale[..., None, None], axis=1) * FPS
    return np.linalg.norm(velocity, axis=-1)


def _quantile_draw(rng: np.random.Generator, quantiles: np.ndarray, shape) -> np.ndarray:
    """Draws of ``shape`` from a distribution given by its quantiles at 0, 1/(n-1), ..., 1 (n,),
    linear between them."""
    return np.interp(rng.random(shape), np.linspace(0, 1, len(quantiles)), quantiles)


def _quantile_grid(quantiles: np.ndarray, n: int = 1000) -> np.ndarray:
    """(n,) evenly spread values of the distribution :func:`_quantile_draw` draws from (for its means)."""
    return np.interp((np.arange(n) + 0.5) / n, np.linspace(0, 1, len(quantiles)), quantiles)


def _capped_boost(chance: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(J,) factors c such that min(chance * c * s, 1), averaged over the window scales s (n,), is
    ``chance`` (J,) again, where it can be: a chance scaled past 1 in a bad window is lost, and the
    other bad windows make up for it."""
    low, high = np.ones_like(chance), np.full_like(chance, 1e3)
    for _ in range(40):
        mid = np.sqrt(low * high)
        short = np.minimum(chance[:, None] * mid[:, None] * scales[None], 1.0).mean(1) < chance
        low, high = np.where(short, mid, low), np.where(short, high, mid)
    return high


def _markov_runs(rng: np.random.Generator, shape: tuple, t: int, rate, run: float) -> np.ndarray:
    """(*shape, T) bool: a stationary two-state chain per element, on a share ``rate`` of frames (a
    scalar or an array broadcasting to ``shape``) in runs of ``run`` frames on average."""
    rate = np.clip(np.broadcast_to(np.asarray(rate, dtype=np.float64), shape), 0.0, 0.999)
    leave = 1.0 / max(run, 1.0)
    enter = rate * leave / (1.0 - rate)
    state = rng.random(shape) < rate
    out = np.empty(shape + (t,), dtype=bool)
    draws = rng.random(shape + (t,))
    for k in range(t):
        if k:
            state = np.where(state, draws[..., k] >= leave, draws[..., k] < enter)
        out[..., k] = state
    return out


def _run_lengths(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def measure(clip: Clip) -> dict:
    """A clip's real errors, in metres in the person's plane. Returns error (N, 17, 2) detection
    minus truth, scale (N,) the picture's screen units per metre, speed (N, 17) m/s, and the frames
    whose legs / arms / whole body are swapped (N,) bool each."""
    scale = picture_scale(clip.pose2d, clip.pose3d)
    error = (clip.det2d - clip.pose2d) / scale[:, None, None]
    truth = clip.pose2d / scale[:, None, None]
    swapped = []
    for right, left in LIMBS:
        r, l = list(right), list(left)
        det, gt = clip.det2d[:, r + l] / scale[:, None, None], truth[:, r + l]
        same = np.linalg.norm(det - gt, axis=-1).sum(-1)
        crossed = np.linalg.norm(det - truth[:, l + r], axis=-1).sum(-1)
        swapped.append((same - crossed > SWAP_MARGIN_M) & (crossed < 0.5 * same))
    legs, arms = swapped
    speed = joint_speed(clip.pose2d[None], scale[None])[0]
    return {"error": error, "scale": scale, "speed": speed, "legs": legs & ~arms, "arms": arms & ~legs, "body": legs & arms}


def swap_mask(m: dict) -> np.ndarray:
    """(N, 17) bool: joints of a swapped limb pair in each frame (their error is the swap's, not noise)."""
    mask = np.zeros(m["error"].shape[:2], dtype=bool)
    for k, (right, left) in enumerate(LIMBS):
        hit = m["body"] | (m["legs"] if k == 0 else m["arms"])
        mask[:, list(right) + list(left)] |= hit[:, None]
    return mask


def fit(clips: list[Clip], note: str = "") -> DetectorErrors:
    """Fit the model on clips with real detections (``Clip.det2d``): bias, then swaps and outliers,
    then the noise's growth with speed, covariance and autocorrelation."""
    measured = [measure(c) for c in clips]
    # 1. Bias: least squares per joint over frames not swapped, joints not wildly off.
    normal = np.zeros((J, 4, 4))
    rhs = np.zeros((J, 4))
    for c, m in zip(clips, measured):
        design = bias_design(c.pose3d)  # (N, 17, 2, 4)
        keep = ~swap_mask(m) & (np.linalg.norm(m["error"], axis=-1) < 2 * OUTLIER_M)
        d = design * keep[..., None, None]
        normal += np.einsum("njcp,njcq->jpq", d, design)
        rhs += np.einsum("njcp,njc->jp", d, m["error"])
    # The torso joints' bone column is zero: the tiny ridge keeps their shift at 0.
    bias = np.linalg.solve(normal + 1e-6 * np.eye(4), rhs[..., None])[..., 0]

    # 2. Residuals; swaps and outliers with their runs.
    swap_frames = {k: 0 for k in SWAPS}
    swap_runs = {k: [] for k in SWAPS}
    out_count, valid_count, out_runs, out_sizes = np.zeros(J), np.zeros(J), [], []
    targets = np.zeros((J, J + 1))
    reaches = [[] for _ in range(J)]
    window_counts = []
    residuals = []
    frames = 0
    for c, m in zip(clips, measured):
        frames += len(c.pose3d)
        for k in SWAPS:
            swap_frames[k] += int(m[k].sum())
            swap_runs[k] += _run_lengths(m[k])
        r = m["error"] - project_bias(bias, c.pose3d)
        valid = ~swap_mask(m)
        dist = np.linalg.norm(r, axis=-1)
        outlier = valid & (dist > OUTLIER_M)
        out_count += outlier.sum(0)
        valid_count += valid.sum(0)
        w = len(outlier) // WINDOW
        window_counts.append(outlier[: w * WINDOW].reshape(w, -1).sum(1))
        truth = c.pose2d / m["scale"][:, None, None]
        onto = outlier_targets(truth, m["error"], outlier)
        np.add.at(targets, (np.nonzero(outlier)[1], onto[outlier]), 1)
        frame, joint = np.nonzero(onto < J)
        for j in range(J):
            pick = joint == j
            reaches[j].append(np.linalg.norm(truth[frame[pick], onto[frame[pick], j]] - truth[frame[pick], j], axis=-1))
        out_sizes.append(dist[outlier & (onto == J)])
        for j in range(J):
            out_runs += _run_lengths(outlier[:, j])
        residuals.append((r, valid & ~outlier, m["speed"]))

    # 3. Growth with speed: each joint's RMS per speed bin against its slowest bin, pooled.
    bins = np.asarray(SPEED_BINS)
    sq, n = np.zeros((J, len(bins))), np.zeros((J, len(bins)))
    for r, ok, v in residuals:
        idx = np.clip(np.searchsorted(bins, v, side="right") - 1, 0, len(bins) - 1)
        for j in range(J):
            np.add.at(sq[j], idx[ok[:, j], j], (r[ok[:, j], j] ** 2).sum(-1))
            np.add.at(n[j], idx[ok[:, j], j], 1)
    rms = np.sqrt(sq / np.maximum(n, 1))
    ratio = rms / np.maximum(rms[:, :1], 1e-9) - 1.0
    centre = np.append((bins[:-1] + bins[1:]) / 2, bins[-1] + 1.0)
    weight = n * (n > 100)
    speed_gain = float((weight * ratio * centre).sum() / max((weight * centre**2).sum(), 1e-9))
    speed_gain = max(speed_gain, 0.0)

    # 4. Covariance of the noise at zero speed, over frames where every joint is noise; how a joint's
    # noise varies from one 27-frame window to the next; autocorrelation.
    second = np.zeros((2 * J, 2 * J))
    count = 0
    lag_num, lag_den = np.zeros((len(LAGS), J)), np.zeros((len(LAGS), J))
    window_ms = []
    for r, ok, v in residuals:
        u = r / (1.0 + speed_gain * v)[..., None]
        w = len(u) // WINDOW
        sq = ((u[: w * WINDOW] ** 2).sum(-1) * ok[: w * WINDOW]).reshape(w, WINDOW, J).sum(1)
        n_ok = ok[: w * WINDOW].reshape(w, WINDOW, J).sum(1)
        window_ms.append(np.where(n_ok >= WINDOW // 2, sq / np.maximum(n_ok, 1), np.nan))
        rows = ok.all(1)
        flat = u[rows].reshape(-1, 2 * J)
        second += flat.T @ flat
        count += len(flat)
        for i, lag in enumerate(LAGS):
            if len(u) <= lag:
                continue
            both = ok[lag:] & ok[:-lag]
            lag_num[i] += ((u[lag:] * u[:-lag]).sum(-1) * both).sum(0)
            lag_den[i] += (0.5 * ((u[lag:] ** 2).sum(-1) + (u[:-lag] ** 2).sum(-1)) * both).sum(0)
    cov = second / max(count, 1)
    # Frames where every joint is noise are the easier ones: keep their correlations, but give each
    # joint the variance of all its own noise frames.
    window_ms = np.concatenate(window_ms)
    own = np.repeat(np.sqrt(np.nanmean(window_ms, axis=0) / np.diag(cov).reshape(J, 2).sum(-1)), 2)
    cov = cov * own[:, None] * own[None, :]
    # Each window's mean square against its joint's, as a std ratio, scaled so its mean square is 1.
    ratio = np.sqrt(window_ms / np.nanmean(window_ms, axis=0))[np.isfinite(window_ms)]
    window_scale = np.quantile(ratio, np.linspace(0, 1, 21))
    window_scale /= np.sqrt(np.mean(_quantile_grid(window_scale) ** 2))
    rho = lag_num / np.maximum(lag_den, 1e-12)  # (lags, J)
    slow_phi, fast_phi, slow_weight = _fit_two_ar1(rho)

    lengths = lambda runs: float(np.mean(runs)) if runs else 1.0  # noqa: E731
    window_counts = np.concatenate(window_counts).astype(np.float64)
    outlier_window = np.quantile(window_counts / max(window_counts.mean(), 1e-9), np.linspace(0, 1, 101))
    outlier_window /= max(_quantile_grid(outlier_window).mean(), 1e-9)  # draws of mean 1
    return DetectorErrors(
        bias=bias, cov=cov, slow_weight=slow_weight, slow_phi=slow_phi, fast_phi=fast_phi, speed_gain=speed_gain,
        window_scale=window_scale, outlier_rate=out_count / np.maximum(valid_count, 1),
        outlier_run=np.quantile(out_runs, np.linspace(0, 1, 21)) if out_runs else np.ones(21),
        outlier_size=(np.quantile(np.concatenate(out_sizes), np.linspace(0, 1, 21)) if sum(map(len, out_sizes))
                      else np.full(21, OUTLIER_M)),
        outlier_target=np.where(targets.sum(1, keepdims=True) > 0, targets, np.arange(J + 1) == J)
        / np.maximum(targets.sum(1, keepdims=True), 1),
        outlier_window=outlier_window,
        outlier_reach=np.array([np.percentile(np.concatenate(r), 95) if sum(map(len, r)) else 0.0 for r in reaches]),
        swap_rate={k: swap_frames[k] / max(frames, 1) for k in SWAPS}, swap_run={k: lengths(swap_runs[k]) for k in SWAPS},
        fitted_on=note)


def outlier_targets(truth: np.ndarray, error: np.ndarray, outlier: np.ndarray) -> np.ndarray:
    """Where each outlier went: truth (N, 17, 2) and error (N, 17, 2) metres in the person's plane,
    outlier (N, 17) bool. Returns (N, 17) ints: the joint whose truth the detection lies nearest, where
    that is nearer than half the joint's own error (the detector put it on that joint), else 17
    (elsewhere; also for joints that are no outliers)."""
    detected = truth + error
    gap = np.linalg.norm(detected[:, :, None] - truth[:, None], axis=-1)  # (N, 17 detected, 17 truth)
    gap[:, np.arange(J), np.arange(J)] = np.inf
    nearest = gap.argmin(-1)
    near = np.take_along_axis(gap, nearest[..., None], -1)[..., 0] < 0.5 * np.linalg.norm(error, axis=-1)
    return np.where(outlier & near, nearest, J)


def _fit_two_ar1(rho: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Fit rho_j(lag) = w_j slow^lag + (1 - w_j) fast^lag to the autocorrelations (len(LAGS), 17):
    a grid over (slow, fast) shared by all joints, w_j by least squares in [0, 1] for each."""
    lags = np.asarray(LAGS, dtype=np.float64)[:, None]
    best = (np.inf, 0.0, 0.0, None)
    for slow in np.linspace(0.9, 0.999, 100):
        for fast in np.linspace(0.0, 0.89, 90):
            a, c = slow**lags - fast**lags, fast**lags  # rho - c = w * a
            w = np.clip(((rho - c) * a).sum(0) / np.maximum((a * a).sum(0), 1e-12), 0.0, 1.0)
            loss = ((w * a + c - rho) ** 2).sum()
            if loss < best[0]:
                best = (loss, float(slow), float(fast), w)
    return best[1], best[2], best[3]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "h36m_3d_17j_mm.npz"))
    p.add_argument("--detections", default=str(ROOT.parent / "shared" / "data" / "h36m_2d_sh_mpii16_px10.npz"))
    p.add_argument("--out", default=str(DEFAULT_MODEL))
    args = p.parse_args(argv)
    clips = [c for c in load_clips(args.data, TRAIN_SUBJECTS, args.detections) if c.det2d is not None]
    model = fit(clips, f"Stacked Hourglass (MPII) detections of Human3.6M {', '.join(TRAIN_SUBJECTS)}, "
                       f"{len(clips)} sequence x camera clips, {sum(len(c.pose3d) for c in clips):,} frames")
    model.save(args.out)
    np.set_printoptions(precision=3, suppress=True, linewidth=160)
    print(f"wrote {args.out}: {model.fitted_on}")
    print("bias (mm: left, up, forward, along bone):\n", (1000 * model.bias).round(0))
    print(f"noise std at rest (mm): {1000 * np.sqrt(np.diag(model.cov).reshape(J, 2).sum(-1))}")
    print(f"slow phi {model.slow_phi:.3f}, fast phi {model.fast_phi:.3f}, slow share {model.slow_weight}")
    print(f"speed gain {model.speed_gain:.3f} per m/s; window std ratio quantiles {model.window_scale[[0, 5, 10, 15, 18, 20]]}")
    print(f"outliers {100 * model.outlier_rate} % of frames; runs (frames) {model.outlier_run[[0, 5, 10, 15, 18, 20]]}; "
          f"sizes (mm) {1000 * model.outlier_size[[0, 10, 18, 20]]}")
    print("swaps: " + ", ".join(f"{k} {100 * model.swap_rate[k]:.2f} % in runs of {model.swap_run[k]:.1f}" for k in SWAPS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
