"""Accuracy metrics of 3D human pose estimation.

All functions take NumPy arrays of joint positions ``(..., J, 3)`` in metres and return metres
(or fractions for PCK/AUC). Callers decide what is root-relative; the benchmark passes root-relative
camera-space poses, as the field's protocols do.
"""

from __future__ import annotations

import numpy as np

from .rotations import similarity_transform


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 1: mean Euclidean distance between matching joints.

    pred, gt: (..., J, 3) metres. Returns metres.
    """
    return float(np.mean(np.linalg.norm(pred - gt, axis=-1)))


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each pose in ``pred`` to ``gt`` with the best similarity transform.

    pred, gt: (..., J, 3). Returns the aligned prediction, (..., J, 3) (see :func:`similarity_transform`).
    """
    s, rot, t = similarity_transform(pred, gt)
    return s[..., None, None] * (pred @ rot) + t


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 2: MPJPE after per-pose Procrustes alignment with scale.

    pred, gt: (..., J, 3) metres. Returns metres.
    """
    return mpjpe(procrustes_align(pred, gt), gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after the per-pose scale that best fits the prediction to the ground truth.

    pred, gt: (..., J, 3) root-relative metres. Returns metres.
    """
    num = np.sum(pred * gt, axis=(-2, -1), keepdims=True)
    den = np.maximum(np.sum(pred * pred, axis=(-2, -1), keepdims=True), 1e-12)
    return mpjpe(pred * (num / den), gt)


def mpjve(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint velocity error: MPJPE of the first differences over time.

    pred, gt: (T, J, 3) metres, consecutive frames. Returns metres per frame.
    """
    return mpjpe(np.diff(pred, axis=0), np.diff(gt, axis=0))


def acceleration_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint acceleration error: MPJPE of the second differences over time.

    pred, gt: (T, J, 3) metres, consecutive frames. Returns metres per frame squared.
    """
    return mpjpe(np.diff(pred, n=2, axis=0), np.diff(gt, n=2, axis=0))


def pck(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.150) -> float:
    """Percentage of correct keypoints: fraction of joints closer than ``threshold`` metres.

    pred, gt: (..., J, 3) metres. Returns a fraction in [0, 1].
    """
    return float(np.mean(np.linalg.norm(pred - gt, axis=-1) < threshold))


def auc(pred: np.ndarray, gt: np.ndarray, max_threshold: float = 0.150, steps: int = 31) -> float:
    """Area under the PCK curve for thresholds 0..max_threshold (the field's 0-150 mm, 5 mm steps).

    pred, gt: (..., J, 3) metres. Returns a fraction in [0, 1].
    """
    dist = np.linalg.norm(pred - gt, axis=-1).ravel()
    thresholds = np.linspace(0.0, max_threshold, steps)
    return float(np.mean([(dist < t).mean() for t in thresholds]))


def _segments(frames: int, length: int) -> list[slice]:
    """Consecutive ``length``-frame segments of a take of ``frames`` frames (a shorter take: one)."""
    if frames <= length:
        return [slice(0, frames)]
    return [slice(start, start + length) for start in range(0, frames - length + 1, length)]


def wa_mpjpe(pred: np.ndarray, gt: np.ndarray, length: int = 100) -> float:
    """World-aligned MPJPE (WA-MPJPE100, as WHAM and GVHMR report it): the take cut into ``length``-frame
    segments, each segment's prediction aligned to the truth with one similarity transform over all its
    joints and frames, then MPJPE. pred, gt: (N, J, 3) world metres (any two world frames). Returns
    metres."""
    errors = []
    for part in _segments(len(gt), length):
        p, g = pred[part], gt[part]
        s, rot, t = similarity_transform(p.reshape(-1, 3), g.reshape(-1, 3))
        errors.append(np.linalg.norm(s * p @ rot + t - g, axis=-1).ravel())
    return float(np.concatenate(errors).mean())


def w_mpjpe(pred: np.ndarray, gt: np.ndarray, length: int = 100) -> float:
    """World MPJPE (W-MPJPE100, as WHAM and GVHMR report it): as :func:`wa_mpjpe`, but each segment is
    aligned on its first two frames only, so drift of the path over the segment counts in full.
    pred, gt: (N, J, 3) world metres. Returns metres."""
    errors = []
    for part in _segments(len(gt), length):
        p, g = pred[part], gt[part]
        s, rot, t = similarity_transform(p[:2].reshape(-1, 3), g[:2].reshape(-1, 3))
        errors.append(np.linalg.norm(s * p @ rot + t - g, axis=-1).ravel())
    return float(np.concatenate(errors).mean())


def root_translation_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """RTE, as GVHMR reports it: the root's path (N, 3) aligned to the truth's (N, 3) by one rigid
    transform (no scale), the mean distance between them as a share of the distance the truth travels
    (a fraction: x 100 for %). Undefined (NaN) for a truth that does not move."""
    _, rot, t = similarity_transform(pred, gt, scale=False)
    travelled = float(np.linalg.norm(np.diff(gt, axis=0), axis=-1).sum())
    if travelled <= 0:
        return float("nan")
    return float(np.linalg.norm(pred @ rot + t - gt, axis=-1).mean() / travelled)
