"""Small rotation geometry used across the project, written once.

SciPy's ``Rotation`` does the conversions; what it lacks lives here: quaternion sign continuity over
time, the best similarity (Umeyama) between two point sets, and a camera's no-roll look-at.
"""

from __future__ import annotations

import numpy as np


def continuous_quaternions(quats: np.ndarray, first_w_positive: bool = False) -> np.ndarray:
    """The same rotations with every quaternion in the hemisphere of the previous frame's.

    quats: (T, ..., 4) unit quaternions over time on axis 0, any component order (only the sign is
    changed). q and -q are one rotation; keeping neighbours close makes interpolation between keys
    take the short way. ``first_w_positive``: also put the first frame's scalar part (component 0,
    so use it only with (w, x, y, z) order) at w >= 0. Returns a new (T, ..., 4) array.
    """
    q = np.array(quats, dtype=np.float64)
    if first_w_positive and len(q):
        q = q * np.where(q[:1, ..., :1] < 0, -1.0, 1.0)
    flip = np.cumsum(np.sum(q[1:] * q[:-1], axis=-1) < 0, axis=0) % 2 == 1
    q[1:][flip] *= -1
    return q


def similarity_transform(source: np.ndarray, target: np.ndarray,
                         scale: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The similarity transform that best maps the points ``source`` onto ``target``.

    source, target: (..., K, 3), K matching points per set. Finds rotation R, scale s (1 with ``scale``
    False: the rigid fit, Kabsch) and translation t minimising ``sum ||s source_k @ R + t - target_k||^2``
    (Umeyama's closed form, reflections excluded). Returns (s (...), R (..., 3, 3), t (..., 1, 3)), so
    that ``s[..., None, None] * points @ R + t`` maps any other points of source's frame; R acts on row
    vectors, so ``R.T`` is the rotation that turns source's column vectors into target's.
    """
    mu_s = source.mean(axis=-2, keepdims=True)
    mu_t = target.mean(axis=-2, keepdims=True)
    s0 = source - mu_s
    t0 = target - mu_t
    cov = np.swapaxes(s0, -1, -2) @ t0  # (..., 3, 3)
    u, sigma, vt = np.linalg.svd(cov)
    # Flip the last singular direction where the best orthogonal map is a reflection.
    d = np.sign(np.linalg.det(u @ vt))
    sigma = sigma.copy()
    sigma[..., -1] *= d
    vt = vt.copy()
    vt[..., -1, :] *= d[..., None]
    rot = u @ vt  # applied on the right: s0 @ rot
    var_s = np.sum(s0**2, axis=(-2, -1))
    s = np.sum(sigma, axis=-1) / np.maximum(var_s, 1e-12) if scale else np.ones(var_s.shape)
    return s, rot, mu_t - s[..., None, None] * (mu_s @ rot)


def look_at(forward: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotations that turn a camera to look along ``forward`` with no roll against ``up``.

    forward: (..., 3) viewing directions (any length, not parallel to ``up``); up: (3,) the direction
    the picture's top should face, in the same frame. Returns (..., 3, 3) rotations whose rows are the
    camera's x (right), y (down) and z (forward) axes in that frame (OpenCV's camera axes), so ``R @ v``
    is ``v`` in the turned camera and ``R @ forward`` lies on its z axis. The picture's x axis stays
    perpendicular to ``up``.
    """
    z = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-2)
