"""The landmark model's own 3D as a second opinion on the lifted pose.

BlazePose's landmark model gives, beside each person's 2D landmarks, their 3D "world" landmarks: metres,
centred between the hips, seen from the camera, estimated from the one frame's picture. The lifter sees
only the 2D keypoints, over a window of frames. The two err differently, so their average is nearer the
truth than either (docs/benchmarks.md, "Real footage in 3D"). Per frame the landmarks are put onto the
lifted pose by the similarity (rotation, scale, shift) that fits them best, which keeps the lifter's
size, place and facing, and then the two poses are averaged joint by joint.

The weight is the plain average's: the real footage with a truth to choose by is one scene, and on it
anything from a quarter to three quarters gave the same within a few millimetres, so no other value is
argued for.
"""

from __future__ import annotations

import numpy as np

from .rotations import similarity_transform
from .skeleton import PELVIS

#: The second opinion's share of the averaged pose.
WEIGHT = 0.5


def with_second_opinion(lifted: np.ndarray, landmarks: np.ndarray, weight: float = WEIGHT) -> np.ndarray:
    """lifted (N, 17, 3) pelvis-relative camera metres; landmarks (N, 17, 3) the landmark model's 3D
    (metres, any origin, scale and turn), NaN in frames it has none -> (N, 17, 3) pelvis-relative: per
    frame with landmarks, ``(1 - weight) * lifted + weight * landmarks`` fitted onto ``lifted`` by a
    similarity; frames without, ``lifted`` as it was."""
    lifted = np.asarray(lifted, dtype=np.float64)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    out = lifted.copy()
    seen = np.isfinite(landmarks).all(axis=(1, 2)) & np.isfinite(lifted).all(axis=(1, 2))
    if weight == 0.0 or not seen.any():
        return out
    scale, rotation, shift = similarity_transform(landmarks[seen], lifted[seen])
    fitted = scale[:, None, None] * landmarks[seen] @ rotation + shift
    blended = (1.0 - weight) * lifted[seen] + weight * fitted
    out[seen] = blended - blended[:, PELVIS:PELVIS + 1]
    return out
