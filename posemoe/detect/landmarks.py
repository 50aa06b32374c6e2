"""BlazePose's landmark model on ONNX Runtime: one person's 33 landmarks from a region of the frame.

This is the half of BlazePose that runs on every frame: given where a person is (a rotated square
region, :class:`Region`), the model finds their landmarks and, with two auxiliary points, where to
look in the next frame. MediaPipe runs the same model, but we run it ourselves: MediaPipe is a large
dependency the capture does not need (it stays the reference of the tests and benchmarks), and ours is
faster: our copy of the model has no segmentation head, which MediaPipe's graph always computes and we
never use (``benchmarks/detect.py`` prints the time per call). The model file is made from the mediapipe
wheel's by ``tools/blazepose_onnx.py``.

Geometry follows MediaPipe's Tasks graph (``pose_landmarks_detector_graph``), which is our reference:
the region is centred on the hip centre, its side is 1.25 x the diameter of the circle through the
scale point (the Tasks graph frames the next frame's region as its detector frames a new person; the
older ``pose_landmarks_to_roi`` graph used 1.5), turned so the body axis points up, cropped with
replicated borders to 256 x 256 RGB in [0, 1] the way MediaPipe's ImageToTensorCalculator samples it;
landmarks are refined on the model's heatmap. Pixel coordinates are MediaPipe's (its normalised
coordinates times the frame's size). For one region, our landmarks are MediaPipe's to a few
hundredths of a pixel (``tests/test_detect.py``, on the sample's frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import model_session, sigmoid

MODEL = Path(__file__).resolve().parent / "models" / "pose_landmark_full.onnx"
SIZE = 256  # the model's input side, pixels
LANDMARKS = 39  # 33 body landmarks, then auxiliary points: 33 hip centre, 34 scale point
HIP_CENTRE, SCALE_POINT = 33, 34
REGION_SCALE = 1.25  # region side / (2 x hip centre to scale point), as MediaPipe's Tasks graph
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Region:
    """A square region of the frame: centre (2,) px, side px, angle radians (the image turned by this
    much, counter-clockwise on screen, stands the body upright)."""

    centre: np.ndarray
    side: float
    angle: float

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The crop's x and y directions (2,) each, in image pixels per crop side."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([c, s]) * self.side, np.array([-s, c]) * self.side

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """points (..., 2) in crop units ([0, 1] across the crop) -> (..., 2) image px."""
        x_axis, y_axis = self.axes()
        return self.centre + (points[..., :1] - 0.5) * x_axis + (points[..., 1:2] - 0.5) * y_axis


def region_from_axis(hip_centre: np.ndarray, scale_point: np.ndarray, scale: float = REGION_SCALE) -> Region:
    """The region for a body whose hip centre and scale point (2,) px are known (BlazePose's alignment
    points: the scale point lies on the body axis, a body's radius from the hips)."""
    axis = np.asarray(scale_point, dtype=np.float64) - hip_centre
    radius = float(np.hypot(*axis))
    # The angle that turns the axis to point straight up (image y grows downwards).
    angle = math.atan2(axis[0], -axis[1])
    return Region(np.asarray(hip_centre, dtype=np.float64), 2.0 * radius * scale, angle)


def crop(image: np.ndarray, region: Region, size: int = SIZE) -> np.ndarray:
    """image (H, W, 3) uint8 BGR -> (1, size, size, 3) float32 RGB in [0, 1], the region upright (size:
    the model's input side; the hand models' differ from this model's 256)."""
    x_axis, y_axis = (axis / size for axis in region.axes())
    # Crop pixel index (a, b) samples image index coordinates corner + a x_axis + b y_axis, with no
    # half-pixel terms: MediaPipe's converter maps the region's corners onto the crop's corners
    # (cv::getPerspectiveTransform, then warpPerspective, which works in index coordinates). Sampling at
    # pixel centres instead, as we did, moved the landmarks by several pixels on a body 900 px tall
    # (test_a_fresh_look_gives_mediapipes_landmarks_to_a_tenth_of_a_pixel holds us to MediaPipe's).
    origin = region.centre - 0.5 * size * (x_axis + y_axis)
    matrix = np.stack([np.array([x_axis[0], y_axis[0], origin[0]]), np.array([x_axis[1], y_axis[1], origin[1]])])
    patch = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    patch = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
    return (patch.astype(np.float32) * np.float32(1.0 / 255.0))[None]


def refine(points: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """points (39, 2) crop units, heatmap (64, 64, 39) logits -> (39, 2) crop units: each landmark moved
    to the confidence-weighted mean of the heatmap cells in a 7 x 7 window around it, where the window's
    best cell is at least 50 % sure (as MediaPipe's RefineLandmarksFromHeatmapCalculator; cells outside
    the heatmap weigh nothing)."""
    height, width, count = heatmap.shape
    half = (HEATMAP_KERNEL - 1) // 2
    col = np.floor(points[:, 0] * width).astype(int)
    row = np.floor(points[:, 1] * height).astype(int)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    offsets = np.arange(-half, half + 1)
    rows = row[:, None, None] + offsets[None, :, None]  # (39, 7, 1)
    cols = col[:, None, None] + offsets[None, None, :]  # (39, 1, 7)
    valid = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width) & inside[:, None, None]
    logits = heatmap[rows.clip(0, height - 1), cols.clip(0, width - 1), np.arange(count)[:, None, None]]
    weight = np.where(valid, sigmoid(logits), 0.0)  # (39, 7, 7)
    total = weight.sum((1, 2))
    refined = np.stack([(weight * cols).sum((1, 2)) / np.maximum(total, 1e-12) / width,
                        (weight * rows).sum((1, 2)) / np.maximum(total, 1e-12) / height], axis=-1)
    sure = (weight.max((1, 2)) >= HEATMAP_MIN_CONFIDENCE) & (total > 0)
    return np.where(sure[:, None], refined, points)


@dataclass
class Pose:
    """One person's landmarks in a frame: points (39, 2) image px (33 body landmarks, then auxiliary
    points), visibility (39,) in [0, 1], presence: the model's belief (0-1) that a body is in the region,
    world (33, 3): the model's own 3D of the body landmarks, metres, centred between the hips, in the
    camera's axes as the model sees them (None where the model gave none)."""

    points: np.ndarray
    visibility: np.ndarray
    presence: float
    world: np.ndarray | None = None

    def next_region(self) -> Region:
        """Where to look for this person in the next frame."""
        return region_from_axis(self.points[HIP_CENTRE], self.points[SCALE_POINT])

    def box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 px around the 33 body landmarks."""
        body = self.points[:33]
        return np.concatenate([body.min(0), body.max(0)])

    def size(self) -> float:
        """The diagonal of :meth:`box`, px."""
        return float(np.hypot(*np.ptp(self.points[:33], axis=0)))


def landmarks(image: np.ndarray, region: Region) -> Pose:
    """image (H, W, 3) uint8 BGR, region where a person is -> their :class:`Pose`."""
    session = model_session(MODEL, "The BlazePose landmark model")
    raw, flag, heatmap, world = session.run(None, {session.get_inputs()[0].name: crop(image, region)})
    raw = raw.reshape(LANDMARKS, 5)
    points = refine(raw[:, :2] / SIZE, heatmap[0])
    # The 3D comes in the crop's axes, which the region turns against the picture's: turned back.
    world = world.reshape(LANDMARKS, 3)[:33].astype(np.float64)
    cos, sin = math.cos(region.angle), math.sin(region.angle)
    world[:, :2] = world[:, :2] @ np.array([[cos, sin], [-sin, cos]])
    return Pose(region.to_image(points), sigmoid(raw[:, 3]), float(flag.reshape(-1)[0]), world)
