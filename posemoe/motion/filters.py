"""Smoothing that removes jitter without dragging the motion behind the video.

Two filters, both on joint positions (the constant-length solve afterwards turns them back into a rig):
- One-Euro (Casiez, Roussel and Vogel, CHI 2012): a low-pass whose cut-off rises with speed, so slow
  parts are smoothed hard and fast moves pass with little lag. Causal (it could run live).
- Savitzky-Golay (``scipy.signal.savgol_filter``): a sliding polynomial fit over a window; zero lag
  because it looks ahead as far as it looks back.
``strength`` in [0, 1] sets either one: 0 barely touches the motion, 1 smooths hard. The input is
never changed; filters return new arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from .. import PoseMoEError

METHODS = ("one_euro", "savgol", "none")


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau * fps)


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = 1.5, beta: float = 0.5,
             derivative_cutoff: float = 1.0) -> np.ndarray:
    """x (N, ...) any units -> (N, ...) filtered. min_cutoff Hz at rest, beta how fast the cut-off
    rises with speed (per unit/s of the signal), derivative_cutoff Hz for the speed estimate."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    out[0] = x[0]
    speed = np.zeros_like(x[0])
    a_d = _alpha(derivative_cutoff, fps)
    for t in range(1, len(x)):
        speed = a_d * (x[t] - out[t - 1]) * fps + (1 - a_d) * speed
        a = _alpha(min_cutoff + beta * np.abs(speed), fps)
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out


def smooth(joints: np.ndarray, fps: float, method: str = "one_euro", strength: float = 0.5) -> np.ndarray:
    """joints (N, 17, 3) metres -> smoothed (N, 17, 3). method: one of :data:`METHODS`."""
    if method not in METHODS:
        raise PoseMoEError(f"Unknown smoothing {method!r}: choose one of {', '.join(METHODS)}.")
    if not 0.0 <= strength <= 1.0:
        raise PoseMoEError(f"Smoothing strength must be between 0 and 1, not {strength}.")
    joints = np.asarray(joints, dtype=np.float64)
    if method == "none" or strength == 0.0 or len(joints) < 5:
        return joints.copy()
    if method == "one_euro":
        # Cut-off at rest from 6 Hz (light) down to 0.6 Hz (heavy), on a log scale.
        return one_euro(joints, fps, min_cutoff=6.0 * 10 ** (-strength), beta=0.7)
    window = int(round(3 + strength * 0.6 * fps)) | 1  # 3 frames up to 0.6 s
    window = min(window, len(joints) if len(joints) % 2 else len(joints) - 1)
    return savgol_filter(joints, window, min(3, window - 1), axis=0, mode="interp")
