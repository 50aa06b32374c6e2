"""Measures of motion quality, for the benchmark and the tests: how much bones stretch, how far planted
feet slide, and how much the joints shake."""

from __future__ import annotations

import numpy as np

from .bones import bone_length_series
from .contacts import FEET


def bone_length_spread(joints: np.ndarray) -> float:
    """joints (N, 17, 3) -> mean over bones of (std / median) of the bone's length: 0 for a rig."""
    series = bone_length_series(joints)[:, 1:]  # every joint's bone but the root's (which has none)
    return float(np.mean(series.std(0) / np.maximum(np.median(series, 0), 1e-9)))


def foot_skating(joints: np.ndarray, contacts: np.ndarray, fps: float) -> float:
    """Mean horizontal speed of feet while they are in contact, metres per second (0: no sliding).

    joints (N, 17, 3) world metres; contacts (N, 2) bool (right, left foot)."""
    slides, frames = 0.0, 0
    for f, (ankle, _, _) in enumerate(FEET):
        both = contacts[1:, f] & contacts[:-1, f]
        step = np.linalg.norm(np.diff(joints[:, ankle, :2], axis=0), axis=-1)
        slides += float(step[both].sum())
        frames += int(both.sum())
    return slides * fps / frames if frames else 0.0


def jitter(joints: np.ndarray, fps: float) -> float:
    """Mean magnitude of the joints' acceleration, m/s^2 (second differences): real motion
    accelerates too, so compare takes of the same motion, before and after clean-up."""
    if len(joints) < 3:
        return 0.0
    return float(np.linalg.norm(np.diff(joints, n=2, axis=0), axis=-1).mean() * fps**2)
