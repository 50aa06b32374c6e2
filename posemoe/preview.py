"""A preview video: the 2D skeleton drawn on the footage beside a 3D view of the take, so a person sees
at a glance whether the capture worked (right person, feet on the floor, walking rather than sliding).

The 3D view is drawn with OpenCV lines through a virtual camera that follows the pelvis from the front
left and a little above; the floor is a half-metre grid, the pelvis path a trail. Frames bridged by
interpolation are marked "gap" in the corner.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from . import Cancelled, PoseMoEError
from .skeleton import BONES, LEFT_JOINTS, RIGHT_JOINTS
from .files import atomic_output
from .take import Take
from .video import read_frames

HEIGHT = 540  # preview height in pixels; the video is scaled to it and the 3D view is square
_LEFT, _RIGHT, _CENTRE = (255, 140, 40), (40, 60, 240), (60, 200, 60)  # BGR


def _colour(child: int) -> tuple[int, int, int]:
    return _LEFT if child in LEFT_JOINTS else _RIGHT if child in RIGHT_JOINTS else _CENTRE


class _View:
    """A perspective camera looking at ``target`` (world metres) from the front left, above."""

    def __init__(self, size: int, azimuth: float = 35.0, elevation: float = 15.0, distance: float = 3.5):
        self.size = size
        az, el = np.radians(azimuth), np.radians(elevation)
        # The world's -Y faces the camera, so the viewer stands on the -Y side, turned by the azimuth.
        self.direction = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
        self.distance = distance

    def project(self, points: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """points (..., 3) world metres -> pixels (..., 2) and in-front mask (...)."""
        eye = target + self.distance * self.direction
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        rel = np.asarray(points) - eye
        x, y, z = rel @ right, rel @ up, rel @ forward
        f = self.size * 0.9
        pixels = np.stack([f * x / np.maximum(z, 1e-3) + self.size / 2, -f * y / np.maximum(z, 1e-3) + self.size / 2], -1)
        return pixels, z > 0.1


def _draw_3d(take: Take, i: int, view: _View) -> np.ndarray:
    size = view.size
    canvas = np.full((size, size, 3), 245, np.uint8)
    joints = take.joints_world[i]
    target = np.array([joints[0, 0], joints[0, 1], 0.9])
    grid = np.arange(-6.0, 6.01, 0.5)
    cx, cy = np.round(target[:2] / 0.5) * 0.5
    for g in grid:
        for a, b in (((cx + g, cy - 6, 0), (cx + g, cy + 6, 0)), ((cx - 6, cy + g, 0), (cx + 6, cy + g, 0))):
            seg = np.linspace(a, b, 25)
            pix, ok = view.project(seg, target)
            for k in range(len(seg) - 1):
                if ok[k] and ok[k + 1]:
                    cv2.line(canvas, tuple(np.int32(pix[k])), tuple(np.int32(pix[k + 1])), (215, 215, 215), 1, cv2.LINE_AA)
    trail = take.joints_world[: i + 1, 0] * (1, 1, 0)
    pix, ok = view.project(trail, target)
    for k in range(len(trail) - 1):
        if ok[k] and ok[k + 1]:
            cv2.line(canvas, tuple(np.int32(pix[k])), tuple(np.int32(pix[k + 1])), (150, 150, 150), 2, cv2.LINE_AA)
    pix, ok = view.project(joints, target)
    for parent, child in BONES:
        if ok[parent] and ok[child]:
            cv2.line(canvas, tuple(np.int32(pix[parent])), tuple(np.int32(pix[child])), _colour(child), 3, cv2.LINE_AA)
    for p in pix[ok]:
        cv2.circle(canvas, tuple(np.int32(p)), 3, (40, 40, 40), -1, cv2.LINE_AA)
    cv2.putText(canvas, "3D (floor grid 0.5 m)", (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (80, 80, 80), 1, cv2.LINE_AA)
    return canvas


def _draw_2d(image: np.ndarray, take: Take, i: int) -> np.ndarray:
    scale = HEIGHT / image.shape[0]
    frame = cv2.resize(image, (round(image.shape[1] * scale), HEIGHT), interpolation=cv2.INTER_AREA)
    points = take.keypoints_2d[i] * scale
    seen = take.confidence[i] >= 0.3
    for parent, child in BONES:
        style = 3 if seen[parent] and seen[child] else 1
        cv2.line(frame, tuple(np.int32(points[parent])), tuple(np.int32(points[child])), _colour(child), style, cv2.LINE_AA)
    if take.filled[i]:
        cv2.putText(frame, "gap", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 255), 2, cv2.LINE_AA)
    if take.repaired[i].any():  # the detector had left and right the wrong way round here
        limbs = " and ".join(name for name, fixed in zip(("legs", "arms"), take.repaired[i]) if fixed)
        cv2.putText(frame, f"left/right fixed: {limbs}", (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 165, 255), 2, cv2.LINE_AA)
    return frame


def write_preview(take: Take, path: str | Path, video: str | Path | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None) -> Path:
    """Render the preview of ``take`` (from ``video``, default the take's source) to an ``.mp4``,
    atomically: a temporary file renamed into place, nothing left behind on failure or cancel."""
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".avi"):
        raise PoseMoEError(f"A preview is written as .mp4 or .avi; {path} has another extension.")
    video = video or take.source
    view = _View(HEIGHT)
    width = round(take.width * HEIGHT / take.height) + HEIGHT
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    with atomic_output(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), fourcc, take.fps, (width, HEIGHT))
        try:
            _render(take, video, view, width, writer, progress, cancel)
        finally:
            writer.release()
    return path


def _render(take: Take, video: str | Path, view: _View, width: int, writer: cv2.VideoWriter,
            progress: Callable[[str, int, int], None] | None, cancel: Callable[[], bool] | None) -> None:
    if not writer.isOpened():
        raise PoseMoEError("OpenCV cannot write this video format here; try an .avi preview instead.")
    written = 0
    for frame in read_frames(video, take.first_frame, take.first_frame + len(take)):
        if cancel is not None and cancel():
            raise Cancelled("The preview was cancelled; nothing was written.")
        i = frame.index - take.first_frame
        left = _draw_2d(frame.image, take, i)
        writer.write(np.hstack([left[:, : width - HEIGHT], _draw_3d(take, i, view)]))
        written += 1
        if progress is not None:
            progress("preview", written, len(take))
    if written == 0:
        raise PoseMoEError(f"No frames of {video} could be read for the preview.")
