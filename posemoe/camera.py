"""Cameras: the lens, Human3.6M's camera model, world/camera transforms and screen normalisation.

Camera space is OpenCV's (x right, y down, z forward), in metres. The lens is a focal length in pixels;
when the user does not know it, the capture assumes :data:`DEFAULT_FOV_DEGREES` across the longer side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import PoseMoEError

#: Across the longer side: a 26 mm full-frame-equivalent lens, most phones' main camera. The one place
#: this number is written; the CLI, the add-on and :attr:`posemoe.settings.Settings.lens_given` read it.
DEFAULT_FOV_DEGREES = 69.4


def focal_from_fov(width: int, height: int, fov_degrees: float = DEFAULT_FOV_DEGREES) -> float:
    """Focal length in pixels for a field of view measured across the longer image side."""
    if not 1.0 <= fov_degrees <= 170.0:
        raise PoseMoEError(f"A field of view of {fov_degrees} degrees is not plausible: give a value between 1 and 170.")
    return 0.5 * max(width, height) / math.tan(math.radians(fov_degrees) / 2.0)


def screen_focal(width: int, height: int, focal_px: float | None = None) -> float:
    """The focal length, in screen units (``2 * f_px / width``), that the normalisation of a
    ``width`` x ``height`` picture works with: ``focal_px`` when the lens is known, else the product's
    default lens (:data:`DEFAULT_FOV_DEGREES` across the longer side).

    Most users do not know their lens, so training gives many windows this default instead of the
    true focal length (``Augment.lens_known_prob``): the network learns to read the crop the default
    lens makes of a person filmed through another (Human3.6M's cameras are about 47 degrees), and a
    network with the lens channel (``ModelConfig.lens_input``) is told which of the two it got.
    """
    return 2.0 * (focal_px or focal_from_fov(width, height)) / width


@dataclass
class CameraPath:
    """Where the capture camera was in every frame, relative to the first frame's camera.

    rotations (T, 3, 3) and translations (T, 3) metres take a point from the first frame's camera to
    frame t's: ``X_t = R_t @ X_0 + t_t`` (OpenCV axes). held (T,) bool: frames whose pose was not
    measured but carried over from the last measured one (nothing to measure it by). A static camera
    is identities and zeros (:meth:`static`).
    """

    rotations: np.ndarray
    translations: np.ndarray
    held: np.ndarray

    @classmethod
    def static(cls, frames: int) -> "CameraPath":
        """A camera that never moves, over ``frames`` frames."""
        return cls(np.tile(np.eye(3), (frames, 1, 1)), np.zeros((frames, 3)), np.zeros(frames, dtype=bool))

    @classmethod
    def from_centres(cls, rotations: np.ndarray, centres: np.ndarray, held: np.ndarray) -> "CameraPath":
        """The path of a camera turned by ``rotations`` (T, 3, 3) whose centre is at ``centres`` (T, 3),
        metres in the first frame's camera."""
        return cls(rotations, -np.einsum("tij,tj->ti", rotations, centres), held)

    def centres(self) -> np.ndarray:
        """(T, 3) the camera's centre in every frame, metres in the first frame's camera (where
        ``X_t = 0``: ``-R_t^T t_t``)."""
        return -np.einsum("tji,tj->ti", self.rotations, self.translations)

    def between(self, first: int, stop: int) -> "CameraPath":
        """The path over frames ``first:stop`` (still relative to the first frame of the whole video)."""
        return CameraPath(self.rotations[first:stop], self.translations[first:stop], self.held[first:stop])

    def to_first_camera(self, points: np.ndarray) -> np.ndarray:
        """points (T, ..., 3) in each frame's own camera, metres -> (T, ..., 3) in the first frame's camera."""
        t = len(points)
        flat = (np.asarray(points, dtype=np.float64).reshape(t, -1, 3) - self.translations[:t, None])
        return (flat @ self.rotations[:t]).reshape(np.shape(points))

    def turn_degrees(self) -> np.ndarray:
        """(T,) each frame's total turn from the first frame, degrees."""
        return _angle_degrees(np.trace(self.rotations, axis1=1, axis2=2))

    def step_degrees(self) -> np.ndarray:
        """(T - 1,) the turn from each frame to the next, degrees."""
        return _angle_degrees(np.einsum("tij,tij->t", self.rotations[1:], self.rotations[:-1]))  # tr(R_t R_t-1^T)


def _angle_degrees(trace: np.ndarray) -> np.ndarray:
    """Traces (...) of rotation matrices -> (...) their angles, degrees."""
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


@dataclass(frozen=True)
class Camera:
    """A calibrated pinhole camera with Human3.6M's distortion model.

    R: (3, 3) rotation world -> camera. centre: (3,) camera centre in world metres.
    f, c: (2,) focal length and principal point in pixels. k: (3,) radial and p: (2,)
    tangential distortion coefficients. width, height: image size in pixels.
    """

    R: np.ndarray
    centre: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray
    p: np.ndarray
    width: int
    height: int
    name: str = ""

    @classmethod
    def from_h36m(cls, entry: dict) -> "Camera":
        """Build from one entry of the data's ``cameras_json`` (T in millimetres)."""
        return cls(
            R=np.asarray(entry["R"], dtype=np.float64),
            centre=np.asarray(entry["T"], dtype=np.float64) / 1000.0,
            f=np.asarray(entry["f"], dtype=np.float64),
            c=np.asarray(entry["c"], dtype=np.float64),
            k=np.asarray(entry["k"], dtype=np.float64),
            p=np.asarray(entry["p"], dtype=np.float64),
            width=int(entry["res_w"]),
            height=int(entry["res_h"]),
            name=str(entry.get("id", "")),
        )

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """points: (..., 3) world metres -> (..., 3) camera metres (``R @ (X - centre)``)."""
        return (points - self.centre) @ self.R.T

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        """points: (..., 3) camera metres -> (..., 3) world metres."""
        return points @ self.R + self.centre

    def project(self, points: np.ndarray) -> np.ndarray:
        """points: (..., 3) camera-space metres (z > 0) -> (..., 2) distorted pixel coordinates."""
        return project_h36m(points, self.f, self.c, self.k, self.p)


def project_h36m(points: np.ndarray, f: np.ndarray, c: np.ndarray, k: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Project camera-space points to pixels with Human3.6M's own distortion model.

    points: (..., 3) camera space, any length unit (only ratios matter), z > 0.
    f, c: (2,) pixels; k: (3,) radial; p: (2,) tangential. Returns (..., 2) pixels.

    This follows the dataset's reference code (``ProjectPointRadial.m``), which differs from
    OpenCV's tangential terms: ``tan = p1*y + p2*x`` and ``xy' = xy*(radial + tan) + (p2, p1)*r^2``.
    Using the dataset's own formula keeps our projections on the pixels its cameras were fit to.
    """
    xy = points[..., :2] / points[..., 2:3]
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    radial = 1.0 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * xy[..., 1:2] + p[1] * xy[..., 0:1]
    distorted = xy * (radial + tan) + np.asarray(p)[::-1] * r2
    return distorted * f + c


def normalize_screen(pixels: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels -> the model's screen coordinates: ``x / w * 2 - [1, h / w]``.

    pixels: (..., 2). Returns (..., 2): x in [-1, 1], y in [-h/w, h/w], aspect ratio kept,
    origin at the image centre.
    """
    return pixels / width * 2.0 - np.array([1.0, height / width])


def denormalize_screen(screen: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen`: (..., 2) screen coordinates -> (..., 2) pixels."""
    return (screen + np.array([1.0, height / width])) * width / 2.0
