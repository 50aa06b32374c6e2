"""Keypoint layouts of common detectors mapped to our 17-joint Human3.6M order, in one place.

Human3.6M has joints no detector gives (pelvis, spine, thorax, neck/nose, head top); they are derived
here the way the lifter was trained:
- Pelvis = mid-hips (H36M's pelvis is their midpoint within 0.3 mm).
- Thorax = mid-shoulders + 0.125 (mid-shoulders - pelvis), and Spine = pelvis + 0.537 (mid-shoulders -
  pelvis): both fractions are means over Human3.6M S1 ground truth (std 0.03 and 0.014).
- Head top = mid-ears + 1.1 (mid-ears - mid-shoulders): ears sit about 11 cm above the shoulders and the
  skull top about 12 cm above the ears on an adult; detectors give no head top.
- Neck/Nose = thorax + 0.45 (head top - thorax), exactly as the MPII detections were converted for
  training (:data:`training.data.NOSE_FROM_HEAD`), so the lifter sees the same geometry.
A derived joint's confidence is the smallest confidence of the landmarks it is made from.
All the combinations are affine, so they hold in pixels as well as in 3D.
"""

from __future__ import annotations

import numpy as np

from ..skeleton import (
    HEAD, L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, NOSE, NUM_JOINTS, PELVIS, R_ANKLE, R_ELBOW, R_HIP,
    R_KNEE, R_SHOULDER, R_WRIST, SPINE, THORAX,
)

THORAX_ABOVE_SHOULDERS = 0.125
SPINE_FRACTION = 0.537
HEAD_ABOVE_EARS = 1.1
NOSE_FROM_HEAD = 0.45

# Our limbs, in the order of the detectors' tables below.
_LIMBS = (R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST)

# MediaPipe BlazePose's 33 landmarks: 7/8 ears, 11/12 shoulders, 13/14 elbows, 15/16 wrists,
# 23/24 hips, 25/26 knees, 27/28 ankles (even = right).
BLAZEPOSE_LIMBS = (24, 26, 28, 23, 25, 27, 11, 13, 15, 12, 14, 16)
BLAZEPOSE_EARS = (7, 8)

# COCO-17: 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips, 13/14 knees, 15/16 ankles
# (even = right).
COCO_LIMBS = (12, 14, 16, 11, 13, 15, 5, 7, 9, 6, 8, 10)
COCO_EARS = (3, 4)


def _to_h36m(points: np.ndarray, confidence: np.ndarray, limbs: tuple[int, ...],
             ears: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    out = np.zeros(points.shape[:-2] + (NUM_JOINTS, points.shape[-1]))
    conf = np.zeros(confidence.shape[:-1] + (NUM_JOINTS,))
    out[..., _LIMBS, :] = points[..., limbs, :]
    conf[..., _LIMBS] = confidence[..., limbs]

    pelvis = 0.5 * (out[..., R_HIP, :] + out[..., L_HIP, :])
    shoulders = 0.5 * (out[..., L_SHOULDER, :] + out[..., R_SHOULDER, :])
    ears_mid = 0.5 * (points[..., ears[0], :] + points[..., ears[1], :])
    thorax = shoulders + THORAX_ABOVE_SHOULDERS * (shoulders - pelvis)
    head = ears_mid + HEAD_ABOVE_EARS * (ears_mid - shoulders)
    out[..., PELVIS, :] = pelvis
    out[..., SPINE, :] = pelvis + SPINE_FRACTION * (shoulders - pelvis)
    out[..., THORAX, :] = thorax
    out[..., HEAD, :] = head
    out[..., NOSE, :] = thorax + NOSE_FROM_HEAD * (head - thorax)

    hips = np.minimum(conf[..., R_HIP], conf[..., L_HIP])
    torso = np.minimum(hips, np.minimum(conf[..., L_SHOULDER], conf[..., R_SHOULDER]))
    head_conf = np.minimum(torso, np.minimum(confidence[..., ears[0]], confidence[..., ears[1]]))
    conf[..., PELVIS] = hips
    conf[..., SPINE] = torso
    conf[..., THORAX] = torso
    conf[..., NOSE] = head_conf
    conf[..., HEAD] = head_conf
    return out, conf


def blazepose_to_h36m(landmarks: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """landmarks (..., 33, C) any units, confidence (..., 33) -> (..., 17, C), (..., 17)."""
    return _to_h36m(landmarks, confidence, BLAZEPOSE_LIMBS, BLAZEPOSE_EARS)


def coco_to_h36m(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 keypoints (..., 17, C), confidence (..., 17) -> our order (..., 17, C), (..., 17)."""
    return _to_h36m(keypoints, confidence, COCO_LIMBS, COCO_EARS)
