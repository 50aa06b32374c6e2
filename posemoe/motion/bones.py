"""One length per bone for a whole take, and the body height they make.

Lifted joints stretch and shrink a little from frame to frame; a rig's bones must not. Each bone's
length is the median over the frames that are not outliers (more than three scaled median absolute
deviations away, e.g. a frame where a limb was lost), then left and right are averaged, because
people are close to symmetric and a lifter's left/right errors are not.
"""

from __future__ import annotations

import numpy as np

from .. import PoseMoEError
from ..skeleton import (
    ANKLE_HEIGHT, ANKLES, HEAD, KNEES, LEFT_JOINTS, NOSE, NUM_JOINTS, PARENTS, RIGHT_JOINTS, ROOT, SPINE, THORAX,
)

# The chain from the sole to the top of the head when standing: shin, thigh, then spine to head.
_STANDING_CHAIN = (ANKLES, KNEES, (SPINE,), (THORAX,), (NOSE,), (HEAD,))


def bone_length_series(joints: np.ndarray) -> np.ndarray:
    """joints (N, 17, 3) metres -> (N, 17) length of the bone ending at each joint (root: 0)."""
    joints = np.asarray(joints, dtype=np.float64)
    parents = np.array([max(p, 0) for p in PARENTS])
    return np.linalg.norm(joints - joints[:, parents], axis=-1)


def robust_bone_lengths(joints: np.ndarray, symmetric: bool = True) -> np.ndarray:
    """joints (N, 17, 3) metres -> (17,) one length per bone (the bone ending at each joint; root 0)."""
    series = bone_length_series(joints)
    if not np.isfinite(series).all():
        raise PoseMoEError("The 3D joints contain NaN or infinite values; capture the video again.")
    median = np.median(series, axis=0)
    mad = 1.4826 * np.median(np.abs(series - median), axis=0)
    keep = np.abs(series - median) <= 3.0 * np.maximum(mad, 1e-6)
    lengths = np.array([np.median(series[keep[:, j], j]) if keep[:, j].any() else median[j] for j in range(NUM_JOINTS)])
    if symmetric:
        left, right = list(LEFT_JOINTS), list(RIGHT_JOINTS)
        mean = 0.5 * (lengths[left] + lengths[right])
        lengths[left], lengths[right] = mean, mean
    lengths[ROOT] = 0.0
    return lengths


def standing_height(lengths: np.ndarray) -> float:
    """Sole to head top when standing straight, metres, from bone lengths (17,)."""
    return ANKLE_HEIGHT + sum(float(np.mean([lengths[j] for j in joints])) for joints in _STANDING_CHAIN)


def height_scale(lengths: np.ndarray, height: float | None) -> float:
    """Factor that makes the skeleton ``height`` metres tall (1 when height is None)."""
    if height is None:
        return 1.0
    if not 0.5 <= height <= 2.6:
        raise PoseMoEError(f"A body height of {height} m is not plausible: give the actor's height in metres (0.5 to 2.6).")
    # The ankle's height above the sole is a constant of the rig, not of the bones.
    return (height - ANKLE_HEIGHT) / (standing_height(lengths) - ANKLE_HEIGHT)
