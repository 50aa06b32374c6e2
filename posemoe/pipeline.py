"""Video in, takes out (one per person captured): detection, person tracking, left/right repair, gap
filling, lifting, root trajectory, one world frame for everyone.

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
from .detect import EXTRAS, Detector, default_detector, detect_frames
from .detect.blazepose import BlazePoseDetector
from .detect.parallel import auto_workers, detect_in_threads, stretches
from .lift import Lifter
from .camera import CameraPath, focal_from_fov
from .camera_motion import FloorMotion, TurnGathering, judged_travel
from .motion.trajectory import floor_scales, root_translation, to_world, world_frame
from .settings import CAMERA_CHOICES, Settings  # noqa: F401  (part of this module's interface)
from .skeleton import NUM_JOINTS
from .second_opinion import with_second_opinion
from .swaps import PAIRS, exchange, repair_swaps
from .take import Take
from .track import NO_PERSON, Track, build_tracks, fill_gaps, hands_on_grid, on_grid, select_people, world_on_grid
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
    if settings.camera not in CAMERA_CHOICES:
        raise PoseMoEError(f"The camera setting {settings.camera!r} is not one of {', '.join(CAMERA_CHOICES)}: pick one.")
    if not isinstance(settings.workers, int) or settings.workers < 0:
        raise PoseMoEError(f"{settings.workers!r} detection threads is not possible: give 0 (automatic), 1 or more.")
    focal = settings.focal_px or focal_from_fov(info.width, info.height, settings.fov_degrees)
    if not np.isfinite(focal) or focal <= 0:
        raise PoseMoEError(f"A focal length of {focal} px is not possible: give a positive number of pixels, or a field of view.")
    return float(focal)


def detector_output(frame: int, width: int, height: int, keypoints, confidence, *extra) -> tuple[np.ndarray, ...]:
    """One frame's detector output as (P, 17, 2) px and (P, 17) floats, confidence in [0, 1] (NaN: 0),
    then whichever the detector gives of the hands (P, 2, 21, 4) and its own 3D of the joints (P, 17, 3)
    metres, in that order (see :mod:`posemoe.detect`).

    Joints more than a frame's width or height outside the picture become NaN (not detected): detectors
    place unseen joints a little beyond the edge, but one that far out is not a measurement.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    extra = [np.asarray(array, dtype=np.float64) for array in extra]
    kinds = [next((name for name, shape in EXTRAS.items() if array.shape[1:] == shape), None) for array in extra]
    if keypoints.size == 0 and confidence.size == 0:  # nobody, in whatever empty shape
        return (np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS))) + tuple(
            np.zeros((0, *shape)) for name, shape in EXTRAS.items() if name in kinds)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 2) or confidence.shape != keypoints.shape[:2]:
        raise PoseMoEError(f"The detector gave keypoints shaped {keypoints.shape} and confidences shaped {confidence.shape} "
                           f"in frame {frame}; a detector returns (people, {NUM_JOINTS}, 2) and (people, {NUM_JOINTS}) "
                           "(see posemoe.detect).")
    for array, kind in zip(extra, kinds):
        if kind is None or len(array) != len(keypoints) or kinds.count(kind) > 1:
            raise PoseMoEError(f"The detector gave an extra array shaped {array.shape} in frame {frame} for "
                               f"{len(keypoints)} people; a detector may add hands (people, 2, 21, 4) and its 3D "
                               f"joints (people, {NUM_JOINTS}, 3), once each (see posemoe.detect).")
    size = np.array([width, height], dtype=np.float64)
    with np.errstate(invalid="ignore"):  # NaN joints compare False and stay NaN
        far = (np.abs(keypoints - size / 2) > 1.5 * size).any(-1)
    keypoints = np.where(far[..., None], np.nan, keypoints)
    ordered = tuple(array for name in EXTRAS for array, kind in zip(extra, kinds) if kind == name)
    return (keypoints, np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0)) + ordered


def _end_frame(settings: Settings, info: VideoInfo) -> int:
    """The frame detection stops before, as far as the container's frame count tells."""
    return info.frame_count if settings.stop is None else min(settings.stop, info.frame_count)


def detect_video(path: str | Path, detector: Detector, settings: Settings, progress: Progress | None = None,
                 cancel: Callable[[], bool] | None = None, timings: Timings | None = None,
                 camera: TurnGathering | None = None) -> list[tuple[np.ndarray, ...]]:
    """Everyone's keypoints in every frame of ``settings.start:settings.stop``: a list of
    (keypoints (P, 17, 2) px, confidence (P, 17)[, hands (P, 2, 21, 4)]), one entry per frame read.
    ``camera`` gathers the camera's turn from the same decoded frames."""
    info = probe(path)
    end = _end_frame(settings, info)
    total = max(end - settings.start, 1)
    detections = []
    seconds = {"decode": 0.0, "detect": 0.0, "camera": 0.0}
    observe = camera.observer(settings.start, None) if camera is not None else None
    for _, keypoints, confidence, *hands in detect_frames(detector, path, settings.start, settings.stop, seconds, observe):
        _check(cancel)
        # Checked as it arrives: a detector that breaks the protocol fails now, not after the whole video.
        detections.append(detector_output(len(detections), info.width, info.height, keypoints, confidence, *hands))
        if progress is not None:
            progress("detect", len(detections), max(total, len(detections)))
    if not detections:
        raise PoseMoEError(f"No frames could be read from {path} in the range {settings.start}..{settings.stop}.")
    if timings is not None:
        for stage in seconds:
            timings.add(stage, seconds[stage])
    return detections


def detect_video_in_threads(path: str | Path, settings: Settings, workers: int, progress: Progress | None = None,
                            cancel: Callable[[], bool] | None = None, timings: Timings | None = None,
                            camera: TurnGathering | None = None) -> list[tuple[np.ndarray, ...]]:
    """As :func:`detect_video` with the default detector, the frames shared out over ``workers``
    threads (:mod:`posemoe.detect.parallel`). Timings get wall-clock seconds, split between
    decoding, detection and the camera's turn as the threads' own clocks split them."""
    info = probe(path)
    end = _end_frame(settings, info)
    total = max(end - settings.start, 1)
    found: dict[int, tuple[np.ndarray, ...]] = {}

    def on_frame(index: int, keypoints: np.ndarray, confidence: np.ndarray, *hands: np.ndarray) -> None:
        found[index] = detector_output(index - settings.start, info.width, info.height, keypoints, confidence, *hands)
        if progress is not None:
            progress("detect", len(found), max(total, len(found)))

    clock = time.perf_counter()
    ranges = stretches(settings.start, end, workers, open_end=settings.stop is None)
    spent = detect_in_threads(path, ranges, settings.max_people, on_frame, lambda: _check(cancel),
                              hands=settings.hands, observer_for=camera.observer if camera is not None else None)
    detections = []
    for index in range(settings.start, settings.start + len(found)):
        if index not in found:  # a truncated file: keep what precedes the first unreadable frame
            break
        detections.append(found[index])
    if not detections:
        raise PoseMoEError(f"No frames could be read from {path} in the range {settings.start}..{settings.stop}.")
    if timings is not None:
        wall = time.perf_counter() - clock
        for stage, seconds in zip(("decode", "detect", "camera"), spent):
            timings.add(stage, wall * seconds / max(sum(spent), 1e-9))
    return detections


def capture_people(video: str | Path, settings: Settings | None = None, *, detector: Detector | None = None,
                   lifter: Lifter | None = None, progress: Progress | None = None,
                   cancel: Callable[[], bool] | None = None, timings: Timings | None = None) -> list[Take]:
    """Turn a video of people moving into one Take per person captured (``settings.people`` or
    ``settings.picks``), person 1 first, all in one world.

    detector: any :class:`posemoe.detect.Detector` (default: BlazePose, closed afterwards).
    lifter: a loaded :class:`posemoe.lift.Lifter` (default: the shipped weights on the best device).
    Each take covers the frames from its person's first to last detection.
    """
    settings = settings or Settings()
    timings = timings if timings is not None else Timings()
    info = probe(video)
    focal = _check_settings(settings, info)
    camera = TurnGathering(focal, info.width, info.height) if settings.camera != "static" else None
    workers = 1 if detector is not None else settings.workers or auto_workers(_end_frame(settings, info) - settings.start)
    if workers > 1:
        detections = detect_video_in_threads(video, settings, workers, progress, cancel, timings, camera)
        name = BlazePoseDetector.name
    else:
        own_detector = detector is None
        detector = detector or default_detector(settings.max_people, hands=settings.hands)
        try:
            detections = detect_video(video, detector, settings, progress, cancel, timings, camera)
        finally:
            if own_detector:
                detector.close()
        name = getattr(detector, "name", type(detector).__name__)
    path, notes, floor = None, [], None
    if camera is not None:
        path, notes = camera.judged(settings.start, len(detections), settings.camera)
        floor = camera.floor(settings.start, len(detections))
    takes = takes_from_detections(detections, info, settings, lifter=lifter, progress=progress, cancel=cancel,
                                  timings=timings, detector_name=name, camera_path=path, floor=floor)
    for take in takes:
        take.notes = take.notes + notes
    return takes


def capture(video: str | Path, settings: Settings | None = None, **options) -> Take:
    """:func:`capture_people`'s person 1 (the largest, or the first pick): a video of one person into
    their Take. Options as :func:`capture_people`'s."""
    return capture_people(video, settings, **options)[0]


def _left_out(dropped: list[Track], fps: float, first_frame: int) -> list[str]:
    """Sentences for the report about the detections left out of "everyone"."""
    if not dropped:
        return []
    frames = lambda t: f"{len(t.frames)} frame{'s' if len(t.frames) != 1 else ''}"  # noqa: E731
    seen = ", ".join(f"{frames(t)} from video frame {first_frame + t.frames[0]}" for t in dropped[:5])
    more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
    return [f"Left out {len(dropped)} track{'s' if len(dropped) != 1 else ''} seen too briefly (under a second) or "
            f"too small (under a fifth of the tallest person) to be someone to capture ({seen}{more}; at {fps:g} "
            "frames/s)."]


def takes_from_detections(detections: list[tuple[np.ndarray, ...]], info: VideoInfo,
                          settings: Settings | None = None, *, lifter: Lifter | None = None,
                          progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
                          timings: Timings | None = None, detector_name: str = "",
                          camera_path: CameraPath | None = None, floor: FloorMotion | None = None) -> list[Take]:
    """Everything after detection: choose and follow the people, undo left/right swaps, bridge gaps,
    lift, place everyone in one world: the first frame's camera's, each frame's joints carried into it
    through ``camera_path`` (the camera's turn in every frame of ``detections``, as
    :meth:`posemoe.camera_motion.TurnGathering.judged` gives it; None: a static camera) and, where
    ``floor`` (the floor's image motion, :meth:`~posemoe.camera_motion.TurnGathering.floor`) shows the
    camera travelling, its travel (:func:`posemoe.camera_motion.judged_travel`, once the floor is known).

    detections: per frame read, (keypoints (P, 17, 2) px, confidence (P, 17)[, hands (P, 2, 21, 4)][, 3D
    joints (P, 17, 3) metres, averaged into the lifted pose]), as from :func:`detect_video`; info: the video they came from (fps, frame size, path). Progress stages "lift"
    (all people's frames together) and "trajectory". Returns one take per person captured, person 1
    first; each covers the frames from its person's first to last detection.
    """
    settings = settings or Settings()
    timings = timings if timings is not None else Timings()
    focal = _check_settings(settings, info)
    detections = [detector_output(i, info.width, info.height, *frame) for i, frame in enumerate(detections)]
    clock = time.perf_counter()
    picks = tuple((x, y, frame - settings.start) for x, y, frame in settings.picks)
    chosen, dropped = select_people(build_tracks(detections), info.fps, settings.people, picks)
    notes = _left_out(dropped, info.fps, settings.start)
    if settings.people > len(chosen) and not picks:
        notes.append(f"{settings.people} people were asked for; {len(chosen)} were seen long enough to capture.")
    people = []
    for track in chosen:
        keypoints, confidence = on_grid(track, len(detections))
        seen = np.flatnonzero(confidence.max(1) > 0)
        if len(seen) == 0:  # detections whose every joint has zero confidence
            raise PoseMoEError(NO_PERSON)
        first, last = int(seen[0]), int(seen[-1]) + 1
        keypoints, confidence, repaired = repair_swaps(keypoints[first:last], confidence[first:last], info.fps)
        keypoints, filled, long_gap = fill_gaps(keypoints, confidence, round(settings.max_gap_s * info.fps))
        hands, presence = hands_on_grid(track, first, last) or (None, None)
        if hands is not None:
            # A hand is the one at the body's wrist: where the arms' labels were put back, so are the hands'.
            swapped = repaired[:, 1]
            hands[swapped], presence[swapped] = hands[swapped, ::-1], presence[swapped, ::-1]
        world = world_on_grid(track, first, last)  # the detector's own 3D, NaN where it gave none
        for column, pair in enumerate(PAIRS):  # its labels put back where the 2D's were
            world = exchange(world, np.zeros(world.shape[:2]), repaired[:, column], (pair,))[0]
        people.append(dict(first=first, keypoints=keypoints, confidence=confidence, repaired=repaired,
                           filled=filled, long_gap=long_gap, hands=hands, presence=presence, world=world))
    timings.add("track", time.perf_counter() - clock)

    _check(cancel)
    clock = time.perf_counter()
    lifter = lifter or Lifter()
    total = sum(len(person["keypoints"]) for person in people)
    done = 0

    def lift_progress(frames_done: int, frames: int) -> None:
        # The lifter counts its own steps for the person being lifted (``person``, the loop's below);
        # the bar counts everyone's frames.
        _check(cancel)
        if progress is not None:
            progress("lift", done + frames_done * len(person["keypoints"]) // max(frames, 1), total)

    for person in people:
        # Bridged frames have no detector confidence; the lifter should still use their interpolated 2D.
        person["lift_confidence"] = np.where(person["filled"][:, None], 1.0, person["confidence"])
        person["relative"] = lifter.lift(
            person["keypoints"], info.width, info.height, person["lift_confidence"], stride=settings.stride,
            flip=settings.flip, focal_px=focal if settings.lens_given else None, fps=info.fps,
            progress=lift_progress).astype(np.float64)
        person["relative"] = with_second_opinion(person["relative"], person["world"])
        done += len(person["keypoints"])
    timings.add("lift", time.perf_counter() - clock)

    _check(cancel)
    clock = time.perf_counter()
    if progress is not None:
        progress("trajectory", 0, 1)
    path, camera_notes = camera_for(camera_path, len(detections))
    notes += camera_notes
    for person in people:
        root = root_translation(person["keypoints"], person["lift_confidence"], person["relative"], focal,
                                (info.width / 2, info.height / 2), depth_frames=int(info.fps) | 1)
        person["camera"] = person["relative"] + root[:, None, :]
    rotation, origin = _place(people, path)
    if floor is not None:
        # The travel is metric through the floor's height under the camera, which the turned world gives.
        moved, travel_notes = judged_travel(path, floor, rotation[2], -float(rotation[2] @ origin), settings.camera)
        notes += travel_notes
        if moved is not None:
            path = moved
            rotation, origin = _place(people, path)
    _check(cancel)  # the last chance: a capture cancelled now must not return a take
    if progress is not None:
        progress("trajectory", 1, 1)
    timings.add("trajectory", time.perf_counter() - clock)
    timings.frames += len(detections)

    model = f"{lifter.config.arch} T={lifter.frames} ({Path(lifter.weights).name}, {lifter.backend})"
    stored = {**{k: v for k, v in vars(settings).items()}, "detector": detector_name}
    return [Take(keypoints_2d=person["keypoints"], confidence=person["confidence"], filled=person["filled"],
                 long_gap=person["long_gap"], repaired=person["repaired"], joints_camera=person["camera"],
                 camera_rotation=person["path"].rotations, camera_translation=person["path"].translations,
                 joints_world=to_world(person["first_camera"], rotation, origin), world_rotation=rotation,
                 world_origin=origin, fps=info.fps, width=info.width, height=info.height, focal_px=focal,
                 first_frame=settings.start + person["first"], source=info.path, model=model, settings=stored,
                 person=k + 1, notes=notes, hands_2d=person["hands"], hand_presence=person["presence"])
            for k, person in enumerate(people)]


def _place(people: list[dict], path: CameraPath) -> tuple[np.ndarray, np.ndarray]:
    """Carry each person's camera-space joints into the first camera through ``path`` (their "path" and
    "first_camera") and fit everyone's one world: (rotation (3, 3), origin (3,)) as
    :func:`~posemoe.motion.trajectory.world_frame` gives them."""
    for person in people:
        person["path"] = path.between(person["first"], person["first"] + len(person["camera"]))
        person["camera"] = person.setdefault("lifted", person["camera"])  # as lifted: this is called again
        person["first_camera"] = person["path"].to_first_camera(person["camera"])
    weights = [(~person["long_gap"]).astype(float) for person in people]
    # One floor for everyone: each person's distance (and size with it) set so that their planted
    # feet meet the others' floor; the factors are all 1 for one person, whose capture is unchanged.
    centres = [person["path"].to_first_camera(np.zeros((len(person["camera"]), 3))) for person in people]
    scales, up = floor_scales([person["first_camera"] for person in people], weights, centres)
    for person, scale in zip(people, scales):
        if scale != 1.0:
            person["camera"] = person["lifted"] * scale  # about each frame's camera centre: the picture is kept
            person["first_camera"] = person["path"].to_first_camera(person["camera"])
    return world_frame([person["first_camera"] for person in people], weights, up)


def camera_for(path: CameraPath | None, frames: int) -> tuple[CameraPath, list[str]]:
    """The camera path a capture uses over its ``frames`` frames (None: a static camera), and sentences
    about it for the take's notes."""
    if path is None:
        return CameraPath.static(frames), []
    notes = [f"The camera turned by up to {float(path.turn_degrees().max()):.1f} degrees; its turn was taken out of "
             "the motion."]
    held = int(path.held.sum())
    if held:
        notes.append(f"In {held} frame{'s' if held != 1 else ''} the background gave nothing to follow; the camera "
                     "was held where it last was there.")
    return path, notes


def take_from_detections(detections: list[tuple[np.ndarray, ...]], info: VideoInfo,
                         settings: Settings | None = None, **options) -> Take:
    """:func:`takes_from_detections`' person 1 (the largest, or the first pick)."""
    return takes_from_detections(detections, info, settings, **options)[0]
