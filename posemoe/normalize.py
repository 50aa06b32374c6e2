"""The one input normalisation: what the lifting network sees, in training and in the product alike.

Videos frame people unlike Human3.6M: small or large, off-centre, portrait or landscape, through
lenses of 55-85 degrees. A lifter shown raw screen coordinates learns the framing of its training
cameras (Human3.6M's fixed camera heights let it read "sitting" from where the pelvis is on screen,
which no phone video allows). So each window of ``T`` frames is normalised as a whole:

1. **Perspective crop.** The camera is turned, virtually, to look straight at the window's mean
   pelvis (rotation ``R``, no roll against the image's vertical), and the keypoints are re-projected
   through it. A person at the edge of a wide lens is then seen as the camera really sees them (from
   the side of the optical axis) and the network's camera-space output is turned back with ``R``.
   This is the "perspective crop" of Yu et al., *PCLs: Geometry-aware Neural Reconstruction of 3D
   Pose with Perspective Crop Layers* (CVPR 2021); it needs the focal length, which the product has
   (``Settings.fov``) and training knows.
2. **Scale.** The person's size is read from the longest-looking body segments. A segment seen end-on
   (a thigh while sitting, a torso bent towards the camera) looks shorter than it is, never longer,
   so the size is an upper quantile over segments and frames of ``length / reference length``.
3. **Place.** The window's mean pelvis goes to where Human3.6M's subjects stand on screen
   (:data:`H36M_PELVIS`), the framing the network was first trained on; motion inside the window stays.

:class:`posemoe.lift.Lifter` (after flip averaging's mirror) and training (after augmentation) both
call :func:`normalize_windows`, so the network meets in use exactly what it met in training.
"""

from __future__ import annotations

import warnings

import numpy as np

from .rotations import look_at
from .skeleton import (
    HEAD, L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, PELVIS, R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_SHOULDER, THORAX,
)

#: Human3.6M training subjects on screen (S1, S5-S8, ground-truth projections through their own
#: cameras, every 10th frame): median pelvis position and the cameras' focal length, normalised
#: screen units (half the image width is 1).
H36M_PELVIS = (0.066, -0.179)
H36M_FOCAL = 2.29

#: Segments that measure the person, (joint, joint), and their reference lengths on screen: the
#: training subjects' median 3D length times Human3.6M's median focal / depth (0.442 screen units per
#: metre), from S1, S5-S8, every 20th frame, all four cameras.
SEGMENTS = ((PELVIS, THORAX), (R_HIP, L_HIP), (L_SHOULDER, R_SHOULDER), (R_HIP, R_KNEE), (L_HIP, L_KNEE),
            (R_KNEE, R_ANKLE), (L_KNEE, L_ANKLE), (L_SHOULDER, L_ELBOW), (R_SHOULDER, R_ELBOW), (THORAX, HEAD))
SEGMENT_LENGTHS = np.array([0.2124, 0.1201, 0.1179, 0.1983, 0.1983, 0.1955, 0.1955, 0.1231, 0.1231, 0.0748])
#: The quantile of the per-segment ratios taken as the person's size, and its median on the training
#: subjects' own windows (raw screen windows, every 10th), so that on median a Human3.6M window keeps
#: its size; through the perspective crop that median is a little lower. The shipped weights were
#: trained with this value, so a change here is a change of the network's input.
SIZE_QUANTILE = 0.8
H36M_SIZE = 0.999

#: The picture's up in camera space (OpenCV axes, y down): the perspective crop turns with no roll against it.
CAMERA_UP = np.array([0.0, -1.0, 0.0])


def person_size(xy: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The person's size in each window, relative to a Human3.6M subject on Human3.6M's screen.

    xy: (W, T, 17, 2) screen coordinates at Human3.6M's focal length (:data:`H36M_FOCAL`); visible:
    (W, T, 17) bool. Returns (W,) (1: Human3.6M's median size; NaN where no segment is seen whole).
    """
    a = np.array([s[0] for s in SEGMENTS])
    b = np.array([s[1] for s in SEGMENTS])
    length = np.linalg.norm(xy[..., a, :] - xy[..., b, :], axis=-1)  # (W, T, S)
    seen = visible[..., a] & visible[..., b]
    ratio = np.where(seen, length / SEGMENT_LENGTHS, np.nan).reshape(len(xy), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, handled by the caller
        return np.nanquantile(ratio, SIZE_QUANTILE, axis=1) / H36M_SIZE


def normalize_windows(windows: np.ndarray, focal: float | np.ndarray,
                      lens_known: bool | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Perspective-crop, scale and place every window's person (see the module docstring).

    windows: (W, T, 17, 3) screen x, y (``posemoe.camera.normalize_screen``: origin at the image
    centre, half the width is 1) and visibility (0 or 1); invisible joints may hold anything.
    focal: the focal length in the same units (``2 * f_px / width``), one or (W,). lens_known: whether
    ``focal`` is the camera's own rather than the default guess, one or (W,), given to networks with
    the lens channel (``ModelConfig.lens_input``); None for the others.
    Returns the network's input (W, T, 17, C) float32 (C: 3, or 4 with the lens channel last),
    invisible joints at (0, 0), and the rotations
    (W, 3, 3) float32 of the turned cameras: a pose ``P`` (..., 3) the network gives in a turned camera
    is ``P @ R`` in the real one (:func:`restore_poses`).
    """
    windows = np.asarray(windows, dtype=np.float64)
    count = len(windows)
    focal = np.broadcast_to(np.asarray(focal, dtype=np.float64), (count,))
    visible = windows[..., 2] > 0
    rays = np.concatenate([windows[..., :2] / focal[:, None, None, None], np.ones(windows.shape[:-1] + (1,))], axis=-1)
    # The window's centre: the pelvis where seen, else the mean of that frame's visible joints.
    pelvis_seen = visible[:, :, PELVIS]
    joints_mean = (rays * visible[..., None]).sum(2) / np.maximum(visible.sum(2), 1)[..., None]
    frame_centre = np.where(pelvis_seen[..., None], rays[:, :, PELVIS], joints_mean)
    frame_weight = visible.any(-1).astype(np.float64)[..., None]
    centre = (frame_centre * frame_weight).sum(1) / np.maximum(frame_weight.sum(1), 1)  # (W, 3)
    centre[frame_weight.sum((1, 2)) == 0] = (0.0, 0.0, 1.0)
    rotation = look_at(centre, CAMERA_UP)
    turned = np.einsum("wij,wtkj->wtki", rotation, rays)
    xy = turned[..., :2] / np.maximum(turned[..., 2:3], 1e-6) * H36M_FOCAL
    size = person_size(xy, visible)
    measured = np.isfinite(size) & (size > 1e-3)  # a window with no whole segment, or all joints on one spot
    scale = np.ones_like(size)
    scale[measured] = 1.0 / size[measured]
    xy = xy * scale[:, None, None, None] + np.asarray(H36M_PELVIS)
    xy = np.where(visible[..., None], xy, 0.0)
    channels = [xy, visible[..., None]]
    if lens_known is not None:
        known = np.broadcast_to(np.asarray(lens_known, dtype=np.float64), (count,))
        channels.append(np.broadcast_to(known[:, None, None, None], visible.shape + (1,)))
    inputs = np.concatenate(channels, axis=-1).astype(np.float32)
    return inputs, rotation.astype(np.float32)


def restore_poses(poses: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Turn poses from the turned cameras of :func:`normalize_windows` back into the real camera.

    poses: (W, T, 17, 3) metres in the turned cameras; rotation: (W, 3, 3). Returns (W, T, 17, 3).
    """
    return np.einsum("wtki,wij->wtkj", poses, rotation).astype(np.float32)


def turn_targets(poses: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """The inverse of :func:`restore_poses`: real-camera poses (W, T, 17, 3) into the turned cameras
    (training targets). rotation: (W, 3, 3). Returns (W, T, 17, 3)."""
    return np.einsum("wij,wtkj->wtki", rotation, poses).astype(np.float32)


#: The frame rate the network is trained at (Human3.6M's). Video at another rate is resampled to it
#: for lifting (:func:`resample_inputs`) and the result back (:func:`resample_track`), so a window
#: always spans the same 0.54 s of motion.
NETWORK_FPS = 50.0


def resample_inputs(inputs: np.ndarray, fps: float, to_fps: float) -> np.ndarray:
    """Keypoint inputs of a clip at ``fps`` resampled to ``to_fps``, linearly in time.

    inputs: (N, 17, 3) screen x, y and visibility (0 or 1), N >= 2. Returns (M, 17, 3) covering the
    same time span (sample ``i`` at ``i / to_fps`` seconds, M = floor((N - 1) * to_fps / fps) + 1).
    A resampled joint is visible only where both source frames around it saw it.
    """
    n = len(inputs)
    m = int(np.floor((n - 1) * to_fps / fps + 1e-9)) + 1
    t = np.arange(m) * (fps / to_fps)  # in source frames
    lo = np.minimum(np.floor(t).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = (t - lo)[:, None, None]
    xy = inputs[lo, :, :2] * (1 - w) + inputs[hi, :, :2] * w
    seen = (inputs[lo, :, 2:] > 0) & ((inputs[hi, :, 2:] > 0) | (w < 1e-9))
    return np.concatenate([np.where(seen, xy, 0.0), seen.astype(inputs.dtype)], axis=-1)


def resample_track(values: np.ndarray, fps: float, to_fps: float, count: int) -> np.ndarray:
    """Values of a clip at ``fps`` (M, ...) resampled linearly to ``count`` samples at ``to_fps``
    (sample ``i`` at ``i / to_fps`` seconds; times past the last sample take the last). Returns (count, ...)."""
    t = np.arange(count) * (fps / to_fps)
    lo = np.minimum(np.floor(t).astype(np.int64), len(values) - 1)
    hi = np.minimum(lo + 1, len(values) - 1)
    w = np.clip(t - lo, 0.0, 1.0).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[lo] * (1 - w) + values[hi] * w
