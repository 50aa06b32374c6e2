"""2D keypoint detectors: frames in, everyone's 17-joint keypoints in pixels with per-joint confidence out.

Any object with this shape plugs into :func:`posemoe.pipeline.capture`::

    class MyDetector:
        name = "rtmpose-m"
        def detect(self, image, time):   # image (H, W, 3) uint8 BGR, as OpenCV decodes; time in seconds, increasing
            return keypoints, confidence  # (P, 17, 2) pixels and (P, 17) in [0, 1], P people (may be 0)
        def close(self): ...

A detector may return more arrays after those two, each known by its shape:

- hands (P, 2, 21, 4), from a detector that also finds hands: each person's left and right hand's 21
  landmarks in MediaPipe's order, x, y px, z relative depth px, and the hand's presence in [0, 1] as
  the fourth channel (NaN and 0 where a hand was not found);
- its own 3D of the joints (P, 17, 3), metres, any origin, scale and turn (BlazePose's landmark model
  gives one, centred between the hips): averaged into the lifted pose
  (:mod:`posemoe.second_opinion`).

Keypoints are in our 17-joint order (:data:`posemoe.skeleton.JOINT_NAMES`). Detectors that output the
COCO-17 layout (RTMPose, ViTPose, YOLO-pose) convert with :func:`posemoe.detect.layout.coco_to_h36m`.
The default detector is BlazePose (:class:`posemoe.detect.blazepose.BlazePoseDetector`), which follows
people from frame to frame and so must be given the frames in time order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import PoseMoEError


#: The arrays a detector may return after keypoints and confidence, each known by its shape past the
#: people axis, in the order :func:`posemoe.pipeline.detector_output` gives them.
EXTRAS = {"hands": (2, 21, 4), "3D joints": (17, 3)}


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8 BGR -> keypoints (P, 17, 2) pixels, confidence (P, 17) in [0, 1]."""
        ...

    def close(self) -> None:
        ...


@cache
def model_session(path: Path, what: str):
    """An ONNX Runtime session (CPU) for the model file at ``path``, loaded once per process and shared
    by the detection threads; ``what`` names the model in the error when the file is missing."""
    import onnxruntime as ort

    if not path.is_file():
        raise PoseMoEError(f"{what} is missing from {path}: reinstall posemoe.")
    options = ort.SessionOptions()
    # One thread per call: detection already runs one thread per core (posemoe.detect.parallel).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """x (...) logits -> (...) float64 probabilities. In float64: a float32 logit below -88 overflows
    exp (a harmless inf, but NumPy warns on the console)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def default_detector(max_people: int = 3, hands: bool = False) -> Detector:
    """The shipped detector: BlazePose Full (both models on ONNX Runtime), offline; with ``hands``, also
    MediaPipe's hand models (:mod:`posemoe.detect.hands`)."""
    from .blazepose import BlazePoseDetector

    return BlazePoseDetector(max_people=max_people, hands=hands)


def detect_frames(detector: Detector, path: str | Path, start: int, stop: int | None,
                  seconds: dict[str, float], observe: Callable[..., None] | None = None
                  ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Decode frames ``start:stop`` of the video at ``path`` and run ``detector`` on each, in order.

    Yields (frame index, keypoints, confidence) as the detector returned them (unchecked: see
    :func:`posemoe.pipeline.detect_video`), calling it once per frame, in order. Adds the seconds
    spent to ``seconds["decode"]`` and ``seconds["detect"]`` as it goes, so a caller that stops early
    still has them. ``observe(index, image, keypoints, confidence)``, when given, sees each decoded
    frame with its detections before they are yielded: what else needs the pictures (the camera's
    turn) gathers it there, so the video is decoded once; its seconds go to ``seconds["camera"]``.
    """
    from ..video import read_frames

    seconds.setdefault("decode", 0.0)
    seconds.setdefault("detect", 0.0)
    seconds.setdefault("camera", 0.0)

    def decoded() -> Iterator:
        frames = read_frames(path, start, stop)
        while True:
            clock = time.perf_counter()
            frame = next(frames, None)
            seconds["decode"] += time.perf_counter() - clock
            if frame is None:
                return
            yield frame

    def detected() -> Iterator:
        for frame in decoded():
            result = detector.detect(frame.image, frame.time)
            if observe is not None:
                clock = time.perf_counter()
                observe(frame.index, frame.image, *result[:2])
                seconds["camera"] += time.perf_counter() - clock
            yield (frame.index, *result)

    results = detected()
    while True:
        # Detection time is the wall time of each step less the decoding and observing done inside it.
        clock, before = time.perf_counter(), seconds["decode"] + seconds["camera"]
        result = next(results, None)
        seconds["detect"] += time.perf_counter() - clock - (seconds["decode"] + seconds["camera"] - before)
        if result is None:
            return
        yield result
