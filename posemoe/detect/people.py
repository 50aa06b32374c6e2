"""BlazePose's person detector on ONNX Runtime: where people are in a whole frame.

This is the half of BlazePose that looks for people; :mod:`posemoe.detect.landmarks` then follows each
one from frame to frame. The detector finds a person by their face and upper body and gives, besides a
face box (used only to merge overlapping finds), two alignment points: the hip centre and a point on the
body axis a body's radius away, from which the landmark model's first region is made. We run it
ourselves, as the landmark model: MediaPipe's PoseLandmarker would also run the landmark model (with its
segmentation head) on everyone it finds, work ours does again (``docs/decisions.md``, "BlazePose's
models on ONNX Runtime"). ``benchmarks/detect.py`` times a look for people; MediaPipe is not needed to
capture. The model file is made from the mediapipe wheel's by
``tools/blazepose_onnx.py``.

Pre- and post-processing follow MediaPipe's pose detection graphs (``pose_detection_cpu``,
``pose_detection_to_roi``; the Tasks API's ``pose_detector_graph`` uses the same settings): the frame
letterboxed into 224 x 224 RGB in [-1, 1] (black borders), 2,254 SSD anchors on 28 x 28, 14 x 14 and
7 x 7 grids, sigmoid scores, weighted non-maximum suppression at 0.3 intersection over union, and a
region centred on the hip centre, 2 x 1.25 x the alignment points' distance wide, turned so the body
axis points up (:func:`posemoe.detect.landmarks.region_from_axis`, the same framing as the landmark
model's own for the next frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ..track import box_iou
from . import model_session, sigmoid
from .landmarks import Region, region_from_axis

MODEL = Path(__file__).resolve().parent / "models" / "pose_detection.onnx"
SIZE = 224  # the model's input side, pixels
#: SSD anchor grids: (cells per side, anchors per cell). Layers of equal stride share a grid; each layer
#: has two anchors per cell, all of one fixed size, so only the centres matter.
GRIDS = ((28, 2), (14, 2), (7, 6))
SUPPRESSION_OVERLAP = 0.3  # intersection over union above which two detections are one person


@dataclass(frozen=True)
class Person:
    """One person found: score in [0, 1] and the region (:class:`Region`) where the landmark model
    should look for their body."""

    score: float
    region: Region


@cache
def anchors(grids: tuple[tuple[int, int], ...] = GRIDS) -> np.ndarray:
    """(A, 2) SSD anchor centres in [0, 1] of a model's input, in the order of its outputs: per grid of
    ``grids`` ((cells per side, anchors per cell), finest first), row by row as MediaPipe's
    SsdAnchorsCalculator lays them out. The person detector's: 2,254."""
    centres = []
    for cells, per_cell in grids:
        grid = (np.arange(cells) + 0.5) / cells
        x, y = np.meshgrid(grid, grid)
        centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=-1), per_cell, axis=0))
    return np.concatenate(centres)


def letterbox(image: np.ndarray, size: int = SIZE, low: float = -1.0) -> tuple[np.ndarray, float, np.ndarray]:
    """image (H, W, 3) uint8 BGR -> ((1, size, size, 3) float32 RGB in [low, 1], scale, offset (2,) px):
    the whole frame shrunk by ``scale`` to fit, centred, black around it. A point p of the model's input
    (continuous px) is image point (p - offset) / scale. The person detector takes [-1, 1], the palm
    detector [0, 1]."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    offset = 0.5 * (size - scale * np.array([width, height], dtype=np.float64))
    # Sampled exactly as MediaPipe's ImageToTensorCalculator samples (bilinear, its matrix taking input
    # index j / scale to output index j, with no half-pixel shift): the detector is sensitive to the
    # phase of sampling a frame shrunk 8 times. On the sample, sampling at pixel centres instead let a
    # sun flare outscore the walker in some frames (0.84 against MediaPipe's 0.57 for the walker);
    # this way the scores are MediaPipe's to the third decimal.
    matrix = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
    small = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    tensor = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32((1.0 - low) / 255.0) + np.float32(low)
    return tensor[None], scale, offset


def find_boxes(image: np.ndarray, model: Path, what: str, size: int, grids: tuple[tuple[int, int], ...],
               min_score: float, low: float = -1.0) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """One of MediaPipe's SSD detectors (the person detector, the palm detector) on a whole frame:
    image (H, W, 3) uint8 BGR -> [(score, box (2, 2) image px: top-left and bottom-right, keypoints
    (K, 2) image px)], best first, those scoring at least ``min_score`` after weighted suppression.
    model: its file (``what`` names it in the error when missing); size, grids, low: its input side,
    anchor grids and input range (see :func:`letterbox`)."""
    tensor, scale, offset = letterbox(image, size, low)
    session = model_session(model, what)
    raw, logits = session.run(None, {session.get_inputs()[0].name: tensor})
    scores = sigmoid(np.clip(logits.reshape(-1), -100.0, 100.0))  # clipped as MediaPipe clips
    keep = scores >= min_score
    if not keep.any():
        return []
    raw, scores, centres = raw.reshape(scores.size, -1)[keep].astype(np.float64), scores[keep], anchors(grids)[keep]
    # Offsets are in model pixels from the anchor's centre; the keypoints follow the box.
    centre = raw[:, :2] + centres * size
    half = 0.5 * raw[:, 2:4]
    keypoints = raw[:, 4:].reshape(len(raw), -1, 2) + centres[:, None] * size
    values = np.concatenate([centre - half, centre + half, keypoints.reshape(len(raw), -1)], axis=-1)
    return [(score, (merged[:4].reshape(2, 2) - offset) / scale, (merged[4:].reshape(-1, 2) - offset) / scale)
            for score, merged in suppress(scores, values)]  # model px -> image px


def suppress(scores: np.ndarray, values: np.ndarray, overlap: float = SUPPRESSION_OVERLAP) -> list[tuple[float, np.ndarray]]:
    """Weighted non-maximum suppression, as MediaPipe's (``algorithm: WEIGHTED``).

    scores (N,), values (N, 4 + K) whose first four columns are a box x0, y0, x1, y1 -> [(score,
    values (4 + K,))], best first: the best remaining detection and every other whose box overlaps it by
    more than ``overlap`` (intersection over union) become one, their values averaged by score, with
    the best one's score.
    """
    order = np.argsort(-scores, kind="stable")
    scores, values = scores[order], values[order]
    merged = []
    while len(scores):
        group = box_iou(values[:1, :4], values[:, :4])[0] > overlap
        group[0] = True
        weights = scores[group] / scores[group].sum()
        merged.append((float(scores[0]), weights @ values[group]))
        scores, values = scores[~group], values[~group]
    return merged


def find_people(image: np.ndarray, min_score: float = 0.5) -> list[Person]:
    """image (H, W, 3) uint8 BGR -> the people in it scoring at least ``min_score``, best first."""
    found = find_boxes(image, MODEL, "The BlazePose person detector", SIZE, GRIDS, min_score)
    # The first two keypoints are the alignment points: the hip centre and the scale point.
    return [Person(score, region_from_axis(points[0], points[1])) for score, _, points in found]
