"""2D keypoint detectors: frames in, everyone's 17-joint keypoints in pixels with per-joint confidence out.

Any object with this shape plugs into :func:`posemoe.pipeline.capture`::

    class MyDetector:
        name = "rtmpose-m"
        def detect(self, image, time):   # image (H, W, 3) uint8 RGB; time in seconds, increasing
            return keypoints, confidence  # (P, 17, 2) pixels and (P, 17) in [0, 1], P people (may be 0)
        def close(self): ...

Keypoints are in our 17-joint order (:data:`posemoe.skeleton.JOINT_NAMES`). Detectors that output the
COCO-17 layout (RTMPose, ViTPose, YOLO-pose) convert with :func:`posemoe.detect.layout.coco_to_h36m`.
The default detector is MediaPipe BlazePose (:class:`posemoe.detect.blazepose.BlazePoseDetector`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8 RGB -> keypoints (P, 17, 2) pixels, confidence (P, 17) in [0, 1]."""
        ...

    def close(self) -> None:
        ...


def default_detector(max_people: int = 3) -> Detector:
    """The shipped detector: BlazePose Full from the mediapipe wheel, offline."""
    from .blazepose import BlazePoseDetector

    return BlazePoseDetector(max_people=max_people)


def detect_frames(detector: Detector, path: str | Path, start: int, stop: int | None,
                  seconds: dict[str, float]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Decode frames ``start:stop`` of the video at ``path`` and run ``detector`` on each, in order.

    Yields (frame index, keypoints, confidence) as the detector returned them (unchecked: see
    :func:`posemoe.pipeline.detect_video`). Adds the seconds spent to ``seconds["decode"]`` and
    ``seconds["detect"]`` as it goes, so a caller that stops early still has them.
    """
    import cv2

    from ..video import read_frames

    clock = time.perf_counter()
    for frame in read_frames(path, start, stop):
        now = time.perf_counter()
        seconds["decode"] = seconds.get("decode", 0.0) + now - clock
        keypoints, confidence = detector.detect(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB), frame.time)
        clock = time.perf_counter()
        seconds["detect"] = seconds.get("detect", 0.0) + clock - now
        yield frame.index, keypoints, confidence
