"""Video in, Take out: detection, person tracking, left/right repair, gap filling, lifting, root
trajectory, world frame.

Long work reports through one callback ``progress(stage, done, total)`` and checks ``cancel()`` between
frames and between lifting batches; a cancelled capture raises :class:`posemoe.Cancelled` and returns
nothing. Stages, in order: "detect", "lift", "trajectory". :func:`take_from_detections` is everything
after detection, for keypoints from any source.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import Cancelled, PoseMoEError
from .detect import Detector, default_detector, detect_frames
from .detect.blazepose import BlazePoseDetector
from .detect.parallel import auto_workers, detect_in_threads, stretches
from .lift import Lifter
from .motion.trajectory import focal_from_fov, root_translation, to_world, world_frame
from .settings import Settings  # noqa: F401  (part of this module's interface)
from .skeleton import NUM_JOINTS
from .swaps import repair_swaps
from .take import Take
from .track import NO_PERSON, build_tracks, fill_gaps, select_person
from .video import VideoInfo, probe

Progress = Callable[[str, int, int], None]


@dataclass
class Timings:
    """Seconds spent per stage (decoding is measured inside detection) and frames processed."""

    seconds: dict[str, float] = field(default_factory=dict)
    frames: int = 0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


def _check(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled("The capture was cancelled; nothing was written.")


def _check_settings(settings: Settings, info: VideoInfo) -> float:
    """Refuse impossible settings before any work is done; returns the focal length in pixels."""
    if not np.isfinite(settings.max_gap_s) or settings.max_gap_s < 0:
        raise PoseMoEError(f"A longest bridged gap of {settings.max_gap_s} s is not possible: give 0 or more seconds.")
    if not isinstance(settings.workers, int) or settings.workers < 0:
        raise PoseMoEError(f"{settings.workers!r} detection threads is not possible: give 0 (automatic), 1 or more.")
    focal = settings.focal_px or focal_from_fov(info.width, info.height, settings.fov_degrees)
    if not np.isfinite(focal) or focal <= 0:
        raise PoseMoEError(f"A focal length of {focal} px is not possible: give a positive number of pixels, or a field of view.")
    return float(focal)


def _detector_output(frame: int, keypoints, confidence, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame's detector output as (P, 17, 2) px and (P, 17) floats, confidence in [0, 1] (NaN: 0).

    Joints more than a frame's width or height outside the picture become NaN (not detected): detectors
    place unseen joints a little beyond the edge, but one that far out is not a measurement.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if keypoints.size == 0 and confidence.size == 0:  # nobody, in whatever empty shape
        return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS))
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 2) or confidence.shape != keypoints.shape[:2]:
        raise PoseMoEError(f"The detector gave keypoints shaped {keypoints.shape} and confidences shaped {confidence.shape} "
                           f"in frame {frame}; a detector returns (people, {NUM_JOINTS}, 2) and (people, {NUM_JOINTS}) "
                           "(see posemoe.detect).")
    size = np.array([width, height], dtype=np.float64)
    with np.errstate(invalid="ignore"):  # NaN joints compare False and stay NaN
        far = (np.abs(keypoints - size / 2) > 1.5 * size).any(-1)
    keypoints = np.where(far[..., None], np.nan, keypoints)
    return keypoints, np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0)


def _end_frame(settings: Settings, info: VideoInfo) -> int:
    """The frame detection stops before, as far as the container's frame count tells."""
    return info.frame_count if settings.stop is None else min(settings.stop, info.frame_count)


def detect_video(path: str | Path, detector: Detector, settings: Settings, progress: Progress | None = None,
                 cancel: Callable[[], bool] | None = None,
                 timings: Timings | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Everyone's keypoints in every frame of ``settings.start:settings.stop``: a list of
    (keypoints (P, 17, 2) px, confidence (P, 17)), one entry per frame read."""
    info = probe(path)
    end = _end_frame(settings, info)
    total = max(end - settings.start, 1)
    detections = []
    seconds = {"decode": 0.0, "detect": 0.0}
    for _, keypoints, confidence in detect_frames(detector, path, settings.start, settings.stop, seconds):
        _check(cancel)
        # Checked as it arrives: a detector that breaks the protocol fails now, not after the whole video.
        detections.append(_detector_output(len(detections), keypoints, confidence, info.width, info.height))
        if progress is not None:
            progress("detect", len(detections), max(total, len(detections)))
    if not detections:
        raise PoseMoEError(f"No frames could be read from {path} in the range {settings.start}..{settings.stop}.")
    if timings is not None:
        timings.add("decode", seconds["decode"])
        timings.add("detect", seconds["detect"])
    return detections


def detect_video_in_threads(path: str | Path, settings: Settings, workers: int, progress: Progress | None = None,
                            cancel: Callable[[], bool] | None = None,
                            timings: Timings | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """As :func:`detect_video` with the default detector, the frames shared out over ``workers``
    threads (:mod:`posemoe.detect.parallel`). Timings get wall-clock seconds, split between
    decoding and detection as the threads' own clocks split them."""
    info = probe(path)
    end = _end_frame(settings, info)
    total = max(end - settings.start, 1)
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def on_frame(index: int, keypoints: np.ndarray, confidence: np.ndarray) -> None:
        found[index] = _detector_output(index - settings.start, keypoints, confidence, info.width, info.height)
        if progress is not None:
            progress("detect", len(found), max(total, len(found)))

    clock = time.perf_counter()
    ranges = stretches(settings.start, end, workers, open_end=settings.stop is None)
    decode, detect = detect_in_threads(path, ranges, settings.max_people, on_frame, lambda: _check(cancel))
    detections = []
    for index in range(settings.start, settings.start + len(found)):
        if index not in found:  # a truncated file: keep what precedes the first unreadable frame
            break
        detections.append(found[index])
    if not detections:
        raise PoseMoEError(f"No frames could be read from {path} in the range {settings.start}..{settings.stop}.")
    if timings is not None:
        wall = time.perf_counter() - clock
        share = decode / (decode + detect) if decode + detect > 0 else 0.0
        timings.add("decode", wall * share)
        timings.add("detect", wall * (1 - share))
    return detections


def capture(video: str | Path, settings: Settings | None = None, *, detector: Detector | None = None,
            lifter: Lifter | None = None, progress: Progress | None = None,
            cancel: Callable[[], bool] | None = None, timings: Timings | None = None) -> Take:
    """Turn a video of one person moving into a Take.

    detector: any :class:`posemoe.detect.Detector` (default: BlazePose, closed afterwards).
    lifter: a loaded :class:`posemoe.lift.Lifter` (default: the shipped weights on the best device).
    The take covers the frames from the chosen person's first to last detection.
    """
    settings = settings or Settings()
    timings = timings if timings is not None else Timings()
    info = probe(video)
    _check_settings(settings, info)
    workers = 1 if detector is not None else settings.workers or auto_workers(_end_frame(settings, info) - settings.start)
    if workers > 1:
        detections = detect_video_in_threads(video, settings, workers, progress, cancel, timings)
        name = BlazePoseDetector.name
    else:
        own_detector = detector is None
        detector = detector or default_detector(settings.max_people)
        try:
            detections = detect_video(video, detector, settings, progress, cancel, timings)
        finally:
            if own_detector:
                detector.close()
        name = getattr(detector, "name", type(detector).__name__)
    return take_from_detections(detections, info, settings, lifter=lifter, progress=progress, cancel=cancel,
                                timings=timings, detector_name=name)


def take_from_detections(detections: list[tuple[np.ndarray, np.ndarray]], info: VideoInfo,
                         settings: Settings | None = None, *, lifter: Lifter | None = None,
                         progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
                         timings: Timings | None = None, detector_name: str = "") -> Take:
    """Everything after detection: choose and follow the person, undo left/right swaps, bridge gaps,
    lift, place in the world.

    detections: per frame read, (keypoints (P, 17, 2) px, confidence (P, 17)), as from
    :func:`detect_video`; info: the video they came from (fps, frame size, path). Progress stages "lift"
    and "trajectory". The take covers the frames from the chosen person's first to last detection.
    """
    settings = settings or Settings()
    timings = timings if timings is not None else Timings()
    focal = _check_settings(settings, info)
    detections = [_detector_output(i, *frame, info.width, info.height) for i, frame in enumerate(detections)]
    clock = time.perf_counter()
    tracks = build_tracks(detections)
    person = None
    if settings.person is not None:
        x, y, frame = settings.person
        person = (x, y, frame - settings.start)
    keypoints, confidence = select_person(tracks, len(detections), info.fps, person)
    seen = np.flatnonzero(confidence.max(1) > 0)
    if len(seen) == 0:  # detections whose every joint has zero confidence
        raise PoseMoEError(NO_PERSON)
    first, last = int(seen[0]), int(seen[-1]) + 1
    keypoints, confidence = keypoints[first:last], confidence[first:last]
    keypoints, confidence, repaired = repair_swaps(keypoints, confidence, info.fps)
    keypoints, filled, long_gap = fill_gaps(keypoints, confidence, round(settings.max_gap_s * info.fps))
    timings.add("track", time.perf_counter() - clock)

    _check(cancel)
    clock = time.perf_counter()
    lifter = lifter or Lifter()

    def lift_progress(done: int, total: int) -> None:
        _check(cancel)
        if progress is not None:
            progress("lift", done, total)

    # Bridged frames have no detector confidence; the lifter should still use their interpolated 2D.
    lift_confidence = np.where(filled[:, None], 1.0, confidence)
    relative = lifter.lift(keypoints, info.width, info.height, lift_confidence, stride=settings.stride,
                           flip=settings.flip, focal_px=focal if settings.lens_given else None, fps=info.fps,
                           progress=lift_progress).astype(np.float64)
    timings.add("lift", time.perf_counter() - clock)

    _check(cancel)
    clock = time.perf_counter()
    if progress is not None:
        progress("trajectory", 0, 1)
    root = root_translation(keypoints, lift_confidence, relative, focal, (info.width / 2, info.height / 2),
                           depth_frames=int(info.fps) | 1)
    camera = relative + root[:, None, :]
    rotation, origin = world_frame(camera, weights=(~long_gap).astype(float))
    _check(cancel)  # the last chance: a capture cancelled now must not return a take
    if progress is not None:
        progress("trajectory", 1, 1)
    timings.add("trajectory", time.perf_counter() - clock)
    timings.frames += len(detections)

    return Take(
        keypoints_2d=keypoints, confidence=confidence, filled=filled, long_gap=long_gap, repaired=repaired,
        joints_camera=camera, joints_world=to_world(camera, rotation, origin),
        world_rotation=rotation, world_origin=origin, fps=info.fps, width=info.width, height=info.height,
        focal_px=focal, first_frame=settings.start + first, source=info.path,
        model=f"{lifter.config.arch} T={lifter.frames} ({Path(lifter.weights).name}, {lifter.backend})",
        settings={**{k: v for k, v in vars(settings).items()}, "detector": detector_name},
    )
