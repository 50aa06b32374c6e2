"""Accuracy metrics of 3D human pose estimation.

All functions take NumPy arrays of joint positions ``(..., J, 3)`` in metres and return metres
(or fractions for PCK/AUC). Callers decide what is root-relative; the benchmark passes root-relative
camera-space poses, as the field's protocols do.
"""

from __future__ import annotations

import numpy as np


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 1: mean Euclidean distance between matching joints.

    pred, gt: (..., J, 3) metres. Returns metres.
    """
    return float(np.mean(np.linalg.norm(pred - gt, axis=-1)))


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each pose in ``pred`` to ``gt`` with the best similarity transform.

    pred, gt: (..., J, 3). For every pose, finds rotation R, scale s and translation t minimising
    ``sum ||s R pred_j + t - gt_j||^2`` (Umeyama's closed form, reflections excluded).
    Returns the aligned prediction, (..., J, 3).
    """
    mu_p = pred.mean(axis=-2, keepdims=True)
    mu_g = gt.mean(axis=-2, keepdims=True)
    p0 = pred - mu_p
    g0 = gt - mu_g
    cov = np.swapaxes(p0, -1, -2) @ g0  # (..., 3, 3)
    u, sigma, vt = np.linalg.svd(cov)
    # Flip the last singular direction where the best orthogonal map is a reflection.
    d = np.sign(np.linalg.det(u @ vt))
    sigma = sigma.copy()
    sigma[..., -1] *= d
    vt = vt.copy()
    vt[..., -1, :] *= d[..., None]
    rot = u @ vt  # applied on the right: p0 @ rot
    var_p = np.sum(p0**2, axis=(-2, -1))
    scale = np.sum(sigma, axis=-1) / np.maximum(var_p, 1e-12)
    return scale[..., None, None] * (p0 @ rot) + mu_g


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
