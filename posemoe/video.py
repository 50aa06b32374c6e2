"""Streaming video reading on OpenCV: one frame in memory at a time, with its index and time.

OpenCV applies the rotation stored in a phone video's metadata, so a portrait clip comes out upright;
the size reported here is therefore taken from the first decoded frame, not from the container header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import PoseMoEError

DEFAULT_FPS = 30.0  # used when a container stores no usable frame rate

_CONVERT_HINT = "Convert it to an H.264 MP4, for example `ffmpeg -i INPUT -c:v libx264 -pix_fmt yuv420p out.mp4`."


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. frame_count is the container's count (it can be off by a few frames
    in variable-frame-rate files; readers stop at the last decodable frame)."""

    path: str
    fps: float
    width: int
    height: int
    frame_count: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frame_count / self.fps


@dataclass(frozen=True)
class Frame:
    """One decoded frame: image (H, W, 3) uint8 BGR, its index from 0, and its time in seconds."""

    index: int
    time: float
    image: np.ndarray


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise PoseMoEError(f"There is no video at {path}: check the path.")
    if not path.is_file():
        raise PoseMoEError(f"{path} is a folder, not a video file: give the path of a video file.")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise PoseMoEError(f"OpenCV cannot open {path} as a video (not a video, or an unknown codec). {_CONVERT_HINT}")
    return capture


def probe(path: str | Path) -> VideoInfo:
    """Frame rate, size and frame count of a video; decodes the first frame to prove it is readable."""
    path = Path(path)
    capture = _open(path)
    try:
        ok, image = capture.read()
        if not ok or image is None:
            raise PoseMoEError(f"{path} holds no decodable frame (empty, truncated or an unknown codec). {_CONVERT_HINT}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if np.isfinite(fps) and 1.0 <= fps <= 1000.0 else DEFAULT_FPS
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return VideoInfo(str(path), float(fps), image.shape[1], image.shape[0], max(count, 1))
    finally:
        capture.release()


def read_frames(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
    """Yield frames ``start <= index < stop`` (stop None: to the end) one at a time.

    Times are ``index / fps``. A file that breaks off mid-way (truncated download) simply ends early;
    the caller sees fewer frames than :func:`probe` promised and can say so.
    """
    info = probe(path)
    if start < 0 or (stop is not None and stop <= start):
        raise PoseMoEError(f"The frame range {start}..{stop} is empty: give 0 <= start < stop.")
    capture = _open(Path(path))
    try:
        if start:
            capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        index = start
        while stop is None or index < stop:
            ok, image = capture.read()
            if not ok or image is None:
                break
            yield Frame(index, index / info.fps, image)
            index += 1
    finally:
        capture.release()
