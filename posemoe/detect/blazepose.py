"""MediaPipe BlazePose (Full) as a multi-person :class:`~posemoe.detect.Detector`, offline.

The pose models ship inside the ``mediapipe==0.10.21`` wheel (Apache-2.0) as bare ``.tflite`` files for
the legacy single-person ``solutions.pose``. The newer Tasks API finds several people, which we need to
pick the right person when two are in view (the sample clip has a man on a box and a walker), but it
wants a ``.task`` bundle whose models carry input-normalisation metadata. We build that bundle in memory
from the wheel's files with MediaPipe's own metadata writer: the detector takes pixels scaled to [-1, 1]
and the landmark model pixels scaled to [0, 1], as the legacy graphs do. Nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from .. import PoseMoEError
from .layout import blazepose_to_h36m



@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe's C++ start-up chatter (EGL probing, delegate and graph notices), which it
    writes straight to file descriptor 2 before its logging is configured. Python errors still raise."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _with_input_metadata(model: bytes, outputs: int, mean: float, std: float) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    writer.add_general_info("blazepose").add_image_input(norm_mean=[mean], norm_std=[std])
    for i in range(outputs):
        writer.add_feature_output(name=f"output_{i}")
    return bytes(writer.populate()[0])


@cache
def task_bundle() -> bytes:
    """The PoseLandmarker ``.task`` bundle (a zip of two models) built from the mediapipe wheel."""
    try:
        import mediapipe
    except ImportError as error:
        raise PoseMoEError("MediaPipe is not installed: run `pip install mediapipe==0.10.21` (the README's set-up does).") from error
    modules = Path(mediapipe.__file__).parent / "modules"
    detector = modules / "pose_detection" / "pose_detection.tflite"
    landmarks = modules / "pose_landmark" / "pose_landmark_full.tflite"
    if not detector.is_file() or not landmarks.is_file():
        raise PoseMoEError(f"The BlazePose models are missing from {modules}: reinstall `mediapipe==0.10.21`.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("pose_detector.tflite", _with_input_metadata(detector.read_bytes(), 2, 127.5, 127.5))
        bundle.writestr("pose_landmarks_detector.tflite", _with_input_metadata(landmarks.read_bytes(), 5, 0.0, 255.0))
    return buffer.getvalue()


class BlazePoseDetector:
    """Up to ``max_people`` people per frame; frames must come in time order (video mode tracks).

    min_detection: score a new person needs to be found; min_tracking: score to keep following one.
    """

    name = "blazepose-full"

    def __init__(self, max_people: int = 3, min_detection: float = 0.5, min_tracking: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=task_bundle()),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=max_people,
            min_pose_detection_confidence=min_detection,
            min_pose_presence_confidence=min_detection,
            min_tracking_confidence=min_tracking,
        )
        with _quiet_native_stderr():
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._last_ms = -1

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, np.ndarray]:
        """image (H, W, 3) uint8 RGB; time in seconds -> (P, 17, 2) pixels, (P, 17) visibility."""
        import mediapipe

        height, width = image.shape[:2]
        # MediaPipe needs strictly increasing integer milliseconds.
        ms = max(int(round(time * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        frame = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        with _quiet_native_stderr():  # the first frames with a person log notices about their crop
            result = self._landmarker.detect_for_video(frame, ms)
        if not result.pose_landmarks:
            return np.zeros((0, 17, 2)), np.zeros((0, 17))
        points = np.array([[(p.x * width, p.y * height) for p in person] for person in result.pose_landmarks])
        visibility = np.array([[p.visibility for p in person] for person in result.pose_landmarks])
        return blazepose_to_h36m(points, np.clip(visibility, 0.0, 1.0))

    def close(self) -> None:
        self._landmarker.close()
