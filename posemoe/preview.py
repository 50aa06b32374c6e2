"""A preview video: the 2D skeletons drawn on the footage beside a 3D view of the takes, so a person
sees at a glance whether the capture worked (right people, feet on the floor, walking rather than
sliding).

Everyone captured from the video is drawn, each labelled with their number ("Person 2") when there are
several. The 3D view is drawn with OpenCV lines through a virtual camera that follows person 1's pelvis
from the front left and a little above; the floor is a half-metre grid, each pelvis path a trail, and a
capture camera that turned or travelled has its own trail on the floor, a mark where it is and a line
where it looks.
Frames bridged by interpolation are marked "gap" beside the label (in the corner for one person).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from . import Cancelled, PoseMoEError
from .rotations import look_at
from .files import atomic_output
from .skeleton import BONES, HEAD, LEFT_JOINTS, PELVIS, RIGHT_JOINTS
from .take import Take
from .video import read_frames

HEIGHT = 540  # preview height in pixels; the video is scaled to it and the 3D view is square
_LEFT, _RIGHT, _CENTRE = (255, 140, 40), (40, 60, 240), (60, 200, 60)  # BGR
_CAMERA = (170, 60, 170)
HAND_PRESENCE = 0.5  # a hand is drawn only where the hand model is this sure of it


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
        right, down, forward = look_at(target - eye, (0.0, 0.0, 1.0))
        rel = np.asarray(points) - eye
        x, y, z = rel @ right, rel @ down, rel @ forward
        f = self.size * 0.9
        pixels = np.stack([f * x / np.maximum(z, 1e-3) + self.size / 2, f * y / np.maximum(z, 1e-3) + self.size / 2], -1)
        return pixels, z > 0.1


def _frame_of(take: Take, frame: int) -> int | None:
    """The take's index for video frame ``frame``, None outside its frames."""
    i = frame - take.first_frame
    return i if 0 <= i < len(take) else None


def _draw_3d(takes: list[Take], frame: int, view: _View, target: np.ndarray,
             camera: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The 3D view of video frame ``frame``; camera: person 1's capture camera as
    :meth:`Take.camera_poses` gives it, where it moved (None: not drawn)."""
    size = view.size
    canvas = np.full((size, size, 3), 245, np.uint8)
    grid = np.arange(-6.0, 6.01, 0.5)
    cx, cy = np.round(target[:2] / 0.5) * 0.5
    for g in grid:
        for a, b in (((cx + g, cy - 6, 0), (cx + g, cy + 6, 0)), ((cx - 6, cy + g, 0), (cx + 6, cy + g, 0))):
            seg = np.linspace(a, b, 25)
            pix, ok = view.project(seg, target)
            for k in range(len(seg) - 1):
                if ok[k] and ok[k + 1]:
                    cv2.line(canvas, tuple(np.int32(pix[k])), tuple(np.int32(pix[k + 1])), (215, 215, 215), 1, cv2.LINE_AA)
    i = _frame_of(takes[0], frame)
    if i is not None and camera is not None:
        _draw_camera(canvas, camera, i, view, target)
    for take in takes:
        i = _frame_of(take, frame)
        if i is None:
            continue
        trail = take.joints_world[: i + 1, PELVIS] * (1, 1, 0)
        pix, ok = view.project(trail, target)
        for k in range(len(trail) - 1):
            if ok[k] and ok[k + 1]:
                cv2.line(canvas, tuple(np.int32(pix[k])), tuple(np.int32(pix[k + 1])), (150, 150, 150), 2, cv2.LINE_AA)
        pix, ok = view.project(take.joints_world[i], target)
        for parent, child in BONES:
            if ok[parent] and ok[child]:
                cv2.line(canvas, tuple(np.int32(pix[parent])), tuple(np.int32(pix[child])), _colour(child), 3, cv2.LINE_AA)
        for p in pix[ok]:
            cv2.circle(canvas, tuple(np.int32(p)), 3, (40, 40, 40), -1, cv2.LINE_AA)
        if len(takes) > 1 and ok[HEAD]:
            _label(canvas, str(take.person), pix[HEAD] + (0, -12), 0.6)
    cv2.putText(canvas, "3D (floor grid 0.5 m)", (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (80, 80, 80), 1, cv2.LINE_AA)
    return canvas


def _distance(take: Take, centres: np.ndarray) -> float:
    """How far the 3D view stands back to show a capture camera that moved beside person 1 (``centres``
    (N, 3) world metres) as well as them (metres)."""
    apart = np.linalg.norm((centres - take.joints_world[:, PELVIS]) * (1, 1, 0), axis=1)
    return float(np.clip(1.5 * np.median(apart), 3.5, 12.0))


def _draw_camera(canvas: np.ndarray, camera: tuple[np.ndarray, np.ndarray], i: int, view: _View,
                 target: np.ndarray) -> None:
    """The capture camera's path on the floor up to take frame ``i``, a mark where it is and a half-metre
    line along where it looks (laid on the floor); camera: (rotations (N, 3, 3), centres (N, 3)) as
    :meth:`Take.camera_poses` gives them."""
    rotations, centres = camera
    trail = centres[: i + 1] * (1, 1, 0)
    pix, ok = view.project(trail, target)
    for k in range(len(trail) - 1):
        if ok[k] and ok[k + 1]:
            cv2.line(canvas, tuple(np.int32(pix[k])), tuple(np.int32(pix[k + 1])), _CAMERA, 2, cv2.LINE_AA)
    looks = rotations[i][:, 2] * (1, 1, 0)  # the camera's +Z (OpenCV: forward) in the world, on the floor
    looks = looks / max(float(np.linalg.norm(looks)), 1e-9)
    (at, tip), ok = view.project(np.stack([trail[-1], trail[-1] + 0.5 * looks]), target)
    if ok.all():
        cv2.line(canvas, tuple(np.int32(at)), tuple(np.int32(tip)), _CAMERA, 2, cv2.LINE_AA)
        cv2.circle(canvas, tuple(np.int32(at)), 6, _CAMERA, -1, cv2.LINE_AA)
        _label(canvas, "camera", at + (0, 22), 0.45)


def _label(image: np.ndarray, text: str, at: np.ndarray, scale: float, colour=(255, 255, 255)) -> None:
    """Text centred above ``at`` (x, y px) on a dark box, readable on any footage."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    x, y = int(at[0] - w / 2), int(at[1])
    cv2.rectangle(image, (x - 3, y - h - 3), (x + w + 3, y + base), (30, 30, 30), -1)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)


def _draw_2d(image: np.ndarray, takes: list[Take], frame: int) -> np.ndarray:
    scale = HEIGHT / image.shape[0]
    canvas = cv2.resize(image, (round(image.shape[1] * scale), HEIGHT), interpolation=cv2.INTER_AREA)
    for take in takes:
        i = _frame_of(take, frame)
        if i is None:
            continue
        points = take.keypoints_2d[i] * scale
        seen = take.confidence[i] >= 0.3
        for parent, child in BONES:
            style = 3 if seen[parent] and seen[child] else 1
            cv2.line(canvas, tuple(np.int32(points[parent])), tuple(np.int32(points[child])), _colour(child), style, cv2.LINE_AA)
        for side in range(2):  # hands, where captured: each finger from the wrist, thin
            if take.hand_presence[i, side] >= HAND_PRESENCE:
                hand = take.hands_2d[i, side, :, :2] * scale
                for finger in range(5):
                    chain = hand[[0, *range(1 + 4 * finger, 5 + 4 * finger)]]
                    cv2.polylines(canvas, [np.int32(chain)], False, (255, 255, 255), 1, cv2.LINE_AA)
        marks = ["gap"] if take.filled[i] else []
        if take.repaired[i].any():  # the detector had left and right the wrong way round here
            marks.append("left/right fixed: " + " and ".join(name for name, fixed in zip(("legs", "arms"), take.repaired[i]) if fixed))
        if len(takes) > 1:
            top = points[np.isfinite(points).all(-1)]
            above = (np.median(top[:, 0]), top[:, 1].min() - 10) if len(top) else (40.0, 30.0)
            _label(canvas, " ".join([f"Person {take.person}", *marks]), np.array(above), 0.6,
                   (0, 165, 255) if marks else (255, 255, 255))
        else:
            for row, mark in enumerate(marks):
                cv2.putText(canvas, mark, (10, 30 + 30 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.8 if row == 0 else 0.7,
                            (0, 0, 255) if mark == "gap" else (0, 165, 255), 2, cv2.LINE_AA)
    return canvas


def write_preview(takes: Take | list[Take], path: str | Path, video: str | Path | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None) -> Path:
    """Render the preview of one take, or everyone's takes from one video (from ``video``, default
    the takes' source) to an ``.mp4``, atomically: a temporary file renamed into place, nothing left
    behind on failure or cancel."""
    takes = [takes] if isinstance(takes, Take) else list(takes)
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".avi"):
        raise PoseMoEError(f"A preview is written as .mp4 or .avi; {path} has another extension.")
    first = takes[0]
    video = video or first.source
    # A camera that moved is shown beside the person: the view stands further back and looks from higher.
    camera = first.camera_poses() if first.camera_moved() else None
    view = _View(HEIGHT, elevation=45.0, distance=_distance(first, camera[1])) if camera else _View(HEIGHT)
    width = round(first.width * HEIGHT / first.height) + HEIGHT
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix.lower() == ".mp4" else "MJPG"))
    with atomic_output(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), fourcc, first.fps, (width, HEIGHT))
        try:
            _render(takes, video, view, width, writer, progress, cancel, camera)
        finally:
            writer.release()
    return path


def _render(takes: list[Take], video: str | Path, view: _View, width: int, writer: cv2.VideoWriter,
            progress: Callable[[str, int, int], None] | None, cancel: Callable[[], bool] | None,
            camera: tuple[np.ndarray, np.ndarray] | None) -> None:
    if not writer.isOpened():
        raise PoseMoEError("OpenCV cannot write this video format here; try an .avi preview instead.")
    start = min(take.first_frame for take in takes)
    stop = max(take.first_frame + len(take) for take in takes)
    lead = takes[0]
    written = 0
    for frame in read_frames(video, start, stop):
        if cancel is not None and cancel():
            raise Cancelled("The preview was cancelled; nothing was written.")
        # The 3D view follows person 1, held at their first or last frame outside their own.
        i = int(np.clip(frame.index - lead.first_frame, 0, len(lead) - 1))
        target = lead.joints_world[i, PELVIS] * (1, 1, 0) + (0, 0, 0.9)
        if camera is not None:  # halfway between the person and the camera that moved
            target[:2] = 0.5 * (target[:2] + camera[1][i, :2])
        left = _draw_2d(frame.image, takes, frame.index)
        right = _draw_3d(takes, frame.index, view, target, camera)
        writer.write(np.hstack([left[:, : width - HEIGHT], right]))
        written += 1
        if progress is not None:
            progress("preview", written, stop - start)
    if written == 0:
        raise PoseMoEError(f"No frames of {video} could be read for the preview.")
