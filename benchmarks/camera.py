"""Moving camera: the camera's turn solved from the background, and what it does to the world motion.

    python benchmarks/camera.py [--frames N] [--markdown FILE] [--json FILE]

Clips: every body clip of ``../shared/media/real/*.mp4`` (not ``hands/``) and the bundled
``samples/walk.mp4``, at most the first ``--frames`` (300) frames of each; without ``../shared`` only the
sample. A pinhole turned about its centre sees an exact homography ``K_out R K_src^-1`` of the frame, so
any clip becomes a turning camera with a known answer: a virtual camera with the capture's default focal
length (:func:`posemoe.camera.focal_from_fov` of the clip's size) looks through a window of 85 % of the
picture and turns smoothly (seeded by the clip's name) up to 12 degrees of pan, with some tilt and roll; the same
window unturned is the reference. Both are written losslessly enough (Motion JPEG, quality 95) to be
read back by the capture like any video.

(i) **Turn solve**: the turned window through :func:`posemoe.pipeline.detect_video` with a
:class:`posemoe.camera_motion.TurnGathering` (one :class:`~posemoe.camera_motion.TurnSolver`, fed each
frame and the boxes of the people detected in it), against the true rotations: per-frame error
(median, p95, last frame), the largest true turn, ms per frame of the solve (the "camera" stage). Then
the clips as they are: the largest turn found and the turn at the last frame.

(ii) **World consistency**: the reference (unturned window, camera "static") and the turned window with
camera "static" (the turn left in), "auto" (the solve: the turn and, from the floor's motion, any travel)
and the true rotations given
(``takes_from_detections(..., camera_path=CameraPath(true R, 0, 0))``, camera "moving": what the lifter
itself allows, the solve being perfect), all with ``Settings(focal_px=f, people=0, workers=1)``; the
turned captures share one detection pass. Person 1 of the reference against the captured person whose
2D boxes (turned back into the reference window by the true rotations) overlap it most over common
frames. Over common frames: root path (the mean horizontal distance between the root paths, each from
its first common frame), heading (the mean difference of the hips' direction on the floor) and joints
(the mean world-joint distance after putting the first common frame's roots together).

(iv) **The real tracking shot** ``running_panning_camera.mp4`` with the defaults
(``capture_people(video, Settings())``, and ``Settings(camera="static")``): the cleaned root's path
length and net displacement, the camera's largest turn and its travel (the floor's image motion,
:func:`posemoe.camera_motion.judged_travel`), the notes; planted-foot sliding: the median
horizontal world speed of the take's ankle while :func:`posemoe.motion.clean.clean` plants that foot,
and the share of frames with a planted foot.

The clips as they are also say how far "auto" found the camera to travel (the take of person 1).

(v) **Cost**: each clip as it is, captured with camera "static" and "auto" (``workers=1``; the same
steps as ``capture_people``: ``detect_video`` with a ``TurnGathering`` where the camera is solved, then
``takes_from_detections``), one after the other in one run: the "camera" stage against the Timings
total, and the wall-clock ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from posemoe.camera import CameraPath, focal_from_fov
from posemoe.camera_motion import STATIC_DEGREES, TurnGathering, TurnSolver
from posemoe.detect import default_detector
from posemoe.files import atomic_output
from posemoe.lift import Lifter
from posemoe.machine import describe_machine
from posemoe.motion.clean import clean
from posemoe.motion.contacts import foot_speed
from posemoe.pipeline import Settings, Timings, capture_people, detect_video, takes_from_detections
from posemoe.skeleton import ANKLES, L_HIP, PELVIS, R_HIP
from posemoe.video import probe, read_frames

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "media" / "real"
SAMPLE = ROOT / "samples" / "walk.mp4"
TRACKING_SHOT = "running_panning_camera.mp4"
CROP = 0.85  # the virtual camera's window, a share of the picture's width and height
TURN_DEGREES = 12.0
MAX_FRAMES = 300
SEED = 0
#: What the capture should reach on synthetic turns: root path and heading under these, or within
#: TRUE_MARGIN of what the true rotations give.
TARGET_ROOT_M, TARGET_HEADING_DEG = 0.08, 2.5
TRUE_MARGIN_ROOT_M, TRUE_MARGIN_HEADING_DEG = 0.04, 1.0
#: How ../shared/media/real/README.md describes each clip's camera.
FILMED_BY = {
    "basketball_portrait_12fps.mp4": "static phone",
    "two_people_handshake_portrait_12fps.mp4": "static",
    "running_panning_camera.mp4": "travels beside her and turns (tracking shot)",
    "squats_portrait_5fps.mp4": "static",
    "two_children_jumping.mp4": "not stated (looks fixed)",
    "people_one_by_one_10fps.mp4": "not stated (looks fixed)",
    "walk.mp4": "fixed (the bundled sample)",
    "coffee_pouring.mp4": "not stated (looks fixed; a kettle and a cup move)",
    "asl_hand_portrait.mp4": "not stated (looks fixed; one hand before a plain wall)",
    "waving_webcam.mp4": "webcam",
    "open_hand_closeup.mp4": "not stated",
}


# ----------------------------------------------------------------------------------------------------
# Pure helpers: the synthetic turn, the window, matching people, the figures

def turn_rotations(frames: int, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """(frames, 3, 3) smooth rotations, first camera -> frame t (OpenCV axes), identity at frame 0: a
    pan (about the camera's y axis) easing from 0 to ``degrees`` (either way), with a tilt of up to 0.3
    and a roll of up to 0.15 of it swinging on the way."""
    t = np.linspace(0.0, 1.0, frames)
    pan = rng.choice([-1.0, 1.0]) * (0.5 - 0.5 * np.cos(np.pi * t))
    tilt = 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t)
    roll = 0.15 * np.sin(np.pi * rng.uniform(0.5, 2.0) * t)
    return Rotation.from_rotvec(np.radians(degrees) * np.stack([tilt, pan, roll], axis=1)).as_matrix()


def window(width: int, height: int, crop: float = CROP) -> tuple[float, np.ndarray, np.ndarray, tuple[int, int]]:
    """The virtual camera looking through ``crop`` of a ``width`` x ``height`` picture: (focal px, the
    picture's K, the window's K, the window's (width, height), even for the video writer). The focal
    length is the capture's default for the picture, the same in the window."""
    focal = focal_from_fov(width, height)
    size = (int(width * crop) // 2 * 2, int(height * crop) // 2 * 2)
    source = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    target = np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1]])
    return focal, source, target, size


def turned(image: np.ndarray, rotation: np.ndarray, source: np.ndarray, target: np.ndarray,
           size: tuple[int, int]) -> np.ndarray:
    """What the window's camera, turned by ``rotation`` (first camera -> now), sees of ``image``."""
    return cv2.warpPerspective(image, target @ rotation @ np.linalg.inv(source), size, flags=cv2.INTER_LINEAR)


def unturned_points(points: np.ndarray, rotations: np.ndarray, target: np.ndarray) -> np.ndarray:
    """points (T, J, 2) px in the turned window's frames -> where the unturned window sees them (the
    homography ``K R^T K^-1`` per frame). NaN stays NaN."""
    homographies = target @ np.swapaxes(rotations, 1, 2) @ np.linalg.inv(target)  # (T, 3, 3)
    lifted = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1)
    seen = np.einsum("tij,tkj->tki", homographies, lifted)
    return seen[..., :2] / seen[..., 2:]


def boxes(keypoints: np.ndarray, confidence: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """keypoints (T, J, 2) px, confidence (T, J), seen (T,) bool -> (T, 4) the box (x0, y0, x1, y1) of
    each frame's confident joints; NaN where none (or not ``seen``)."""
    points = np.where((confidence > 0)[..., None], keypoints, np.nan)
    if seen is not None:
        points[~seen] = np.nan
    with warnings.catch_warnings():  # all-NaN frames give NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.concatenate([np.nanmin(points, axis=1), np.nanmax(points, axis=1)], axis=1)


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (N, 4) boxes -> (N,) intersection over union (NaN where either is missing)."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    area = lambda box: (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area(a) + area(b) - inter)


def match_person(reference: tuple[int, np.ndarray], candidates: list[tuple[int, np.ndarray]],
                 least: float = 0.3) -> int | None:
    """reference (first frame, (N, 4) boxes), candidates the same -> the index of the candidate whose
    boxes overlap the reference's most on average over the frames both have, or None when none reaches
    ``least`` (intersection over union)."""
    first, ref = reference
    best, best_score = None, least
    for k, (start, box) in enumerate(candidates):
        lo, hi = max(first, start), min(first + len(ref), start + len(box))
        if hi <= lo:
            continue
        scores = overlap(ref[lo - first:hi - first], box[lo - start:hi - start])
        scores = scores[np.isfinite(scores)]
        if len(scores) and scores.mean() >= best_score:
            best, best_score = k, float(scores.mean())
    return best


def heading(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) world joints, Z up -> (T,) the direction of the hips (right to left) on the floor, radians."""
    hips = joints[:, L_HIP, :2] - joints[:, R_HIP, :2]
    return np.arctan2(hips[:, 1], hips[:, 0])


def consistency(reference, take) -> dict:
    """Two takes of one person: the figures of (ii) over their common video frames."""
    lo = max(reference.first_frame, take.first_frame)
    hi = min(reference.first_frame + len(reference), take.first_frame + len(take))
    if hi - lo < 2:
        return {"frames": max(hi - lo, 0), "root_m": float("nan"), "heading_deg": float("nan"), "joints_mm": float("nan")}
    a = reference.joints_world[lo - reference.first_frame:hi - reference.first_frame]
    b = take.joints_world[lo - take.first_frame:hi - take.first_frame]
    return {"frames": hi - lo, **world_difference(a, b)}


def world_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """a, b (T, 17, 3) world joints of the same frames -> root path (m), heading (degrees), joints (mm)."""
    path_a, path_b = a[:, PELVIS, :2] - a[0, PELVIS, :2], b[:, PELVIS, :2] - b[0, PELVIS, :2]
    turn = np.angle(np.exp(1j * (heading(a) - heading(b))))
    joints = np.linalg.norm((a - a[0, PELVIS]) - (b - b[0, PELVIS]), axis=-1)
    return {"root_m": float(np.linalg.norm(path_a - path_b, axis=1).mean()),
            "heading_deg": float(np.degrees(np.abs(turn)).mean()), "joints_mm": 1000 * float(joints.mean())}


def degrees_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3), (T, 3, 3) rotations -> (T,) the angle of a b^T, degrees."""
    return np.degrees((Rotation.from_matrix(a) * Rotation.from_matrix(b).inv()).magnitude())


def feet(take) -> dict:
    """The raw take's planted-foot sliding: the median horizontal speed (m/s) of an ankle while the
    clean-up plants it, and the share of frames with a planted foot."""
    cleaned = clean(take.joints_world, take.fps)
    speeds = np.stack([foot_speed(take.joints_world[:, ankle], take.fps) for ankle in ANKLES], axis=1)
    planted = cleaned.contacts
    root = cleaned.joints[:, PELVIS, :2]
    return {"sliding_m_per_s": float(np.median(speeds[planted])) if planted.any() else float("nan"),
            "planted_pct": 100 * float(planted.any(axis=1).mean()),
            "path_m": float(np.linalg.norm(np.diff(root, axis=0), axis=1).sum()),
            "net_m": float(np.linalg.norm(root[-1] - root[0]))}


# ----------------------------------------------------------------------------------------------------
# The captures

def write_views(video: Path, frames: int, rotations: np.ndarray, folder: Path) -> tuple[Path, Path, float, np.ndarray]:
    """The clip's first ``frames`` frames through the window, unturned and turned: (still video,
    turned video, focal px, the window's K)."""
    info = probe(video)
    focal, source, target, size = window(info.width, info.height)
    paths = folder / f"{video.stem}.still.avi", folder / f"{video.stem}.turned.avi"
    writers = [cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), info.fps, size) for p in paths]
    for writer in writers:
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for frame, rotation in zip(read_frames(video, 0, frames), rotations):
        writers[0].write(turned(frame.image, np.eye(3), source, target, size))
        writers[1].write(turned(frame.image, rotation, source, target, size))
    for writer in writers:
        writer.release()
    return paths[0], paths[1], focal, target


def detect(video: Path, settings: Settings, gather: bool, timings: Timings) -> tuple[list, object]:
    """``capture_people``'s detection with ``workers=1``: (detections, the camera's turn gathered during it
    (a ``TurnGathering``) or None)."""
    info = probe(video)
    focal = settings.focal_px or focal_from_fov(info.width, info.height, settings.fov_degrees)
    gathering = TurnGathering(focal, info.width, info.height) if gather else None
    detector = default_detector(settings.max_people)
    try:
        detections = detect_video(video, detector, settings, timings=timings, camera=gathering)
    finally:
        detector.close()
    return detections, gathering


def solve_alone(video: Path, focal: float, frames: int) -> CameraPath:
    """The turn of the first ``frames`` frames with no people boxes (``TurnSolver.add(image, None)``)."""
    info = probe(video)
    solver = TurnSolver(focal, info.width, info.height)
    for frame in read_frames(video, 0, frames):
        solver.add(frame.image, None)
    return solver.result()


def synthetic(video: Path, frames: int, own: CameraPath, lifter: Lifter, folder: Path) -> dict:
    """(i) and (ii) for one clip (its turn seeded by its name). own: the clip's own camera path as the
    capture solves it (a source camera that turns makes the synthetic turn only part of the truth)."""
    count = min(probe(video).frame_count, frames)
    synthetic_turn = turn_rotations(count, TURN_DEGREES, np.random.default_rng([SEED, zlib.crc32(video.name.encode())]))
    still, moving, focal, target = write_views(video, count, synthetic_turn, folder)
    base = Settings(focal_px=focal, workers=1)
    reference = capture_people(still, replace(base, camera="static"), lifter=lifter)[0]
    timings = Timings()
    detections, gathering = detect(moving, base, True, timings)
    n = len(detections)
    path = gathering.result(0, n)
    synthetic_turn = synthetic_turn[:n]
    moves = float(own.turn_degrees().max()) >= STATIC_DEGREES
    # The turned window sees a world point X0 at R_synthetic R_own X0 (the window shares the picture's
    # focal length and centre, so the clip's own turn is the window's too).
    truth = synthetic_turn @ own.rotations[:n] if moves else synthetic_turn
    error = degrees_between(path.rotations, truth)
    alone = solve_alone(moving, focal, n)
    error_alone = degrees_between(alone.rotations, truth[:len(alone.rotations)])
    info = probe(moving)
    true_path = CameraPath(synthetic_turn, np.zeros((n, 3)), np.zeros(n, dtype=bool))
    # The true camera turns about its centre: no travel, so the true row gets no floor motion.
    variants = {"static": (replace(base, camera="static"), None, None),
                "auto": (replace(base, camera="auto"), gathering.judged(0, n, "auto")[0], gathering.floor(0, n)),
                "true rotations": (replace(base, camera="moving"), true_path, None)}
    ref_boxes = (reference.first_frame, boxes(reference.keypoints_2d, reference.confidence, ~reference.filled))
    rows = {}
    for name, (settings, camera_path, floor) in variants.items():
        # Person 1, as users get it; where the turned window's person 1 is someone else, everyone is
        # captured and the reference's person picked out by their boxes.
        for people in (1, 0):
            takes = takes_from_detections(detections, info, replace(settings, people=people), lifter=lifter,
                                          camera_path=camera_path, floor=floor)
            candidates = []
            for take in takes:
                span = synthetic_turn[take.first_frame:take.first_frame + len(take)]
                candidates.append((take.first_frame, boxes(unturned_points(take.keypoints_2d, span, target),
                                                             take.confidence, ~take.filled)))
            k = match_person(ref_boxes, candidates)
            if k is not None:
                break
        rows[name] = ({"person": None, "frames": 0} if k is None else
                      {"person": takes[k].person, "everyone": people == 0, **consistency(reference, takes[k]),
                       "notes": takes[k].notes})
    return {
        "clip": video.name, "frames": n, "focal_px": focal, "window": [int(info.width), int(info.height)],
        "source_turns": moves, "source_turn_deg": float(own.turn_degrees().max()),
        "largest_true_turn_deg": float(np.degrees(Rotation.from_matrix(truth).magnitude()).max()),
        "largest_synthetic_turn_deg": float(np.degrees(Rotation.from_matrix(synthetic_turn).magnitude()).max()),
        "error_median_deg": float(np.median(error)), "error_p95_deg": float(np.percentile(error, 95)),
        "error_last_deg": float(error[-1]), "held_frames": int(path.held.sum()),
        "alone_error_median_deg": float(np.median(error_alone)), "alone_error_p95_deg": float(np.percentile(error_alone, 95)),
        "alone_error_last_deg": float(error_alone[-1]), "alone_held_frames": int(alone.held.sum()),
        "solve_ms_per_frame": 1000 * timings.seconds.get("camera", 0.0) / n,
        "world": rows,
    }


def as_filmed(video: Path, frames: int, lifter: Lifter) -> tuple[dict, CameraPath]:
    """(i)'s clips as they are and (v): the clip captured with camera "static", then "auto"; also its
    turn solved without people boxes. Returns the figures and the camera path the capture solved."""
    settings = Settings(stop=frames, workers=1)
    info = probe(video)
    out = {"clip": video.name}
    for camera in ("static", "auto"):
        timings, clock = Timings(), time.perf_counter()
        detections, gathering = detect(video, settings, camera == "auto", timings)
        path = gathering.result(0, len(detections)) if gathering is not None else None
        used = gathering.judged(0, len(detections), camera)[0] if gathering is not None else None
        floor = gathering.floor(0, len(detections)) if gathering is not None else None
        takes = takes_from_detections(detections, info, replace(settings, camera=camera), lifter=lifter,
                                      timings=timings, camera_path=used, floor=floor)
        out[camera] = {"wall_s": time.perf_counter() - clock, "stages_s": dict(timings.seconds),
                       "total_s": sum(timings.seconds.values()), "frames": len(detections), "notes": takes[0].notes,
                       **travel(takes[0])}
        if path is not None:
            out["kept_by_auto"] = used is not None
            out["edge_deg"], out["path_deg"] = gathering.edge_motion(path)
            own, turn = path, path.turn_degrees()
            out["largest_turn_deg"], out["last_turn_deg"] = float(turn.max()), float(turn[-1])
            out["held_frames"] = int(path.held.sum())
    alone = solve_alone(video, focal_from_fov(info.width, info.height), len(own.rotations)).turn_degrees()
    out["alone_largest_turn_deg"], out["alone_last_turn_deg"] = float(alone.max()), float(alone[-1])
    return out, own


def tracking_shot(video: Path, lifter: Lifter) -> dict:
    """(iv): the real tracking shot with the defaults, camera "auto" (the default) and "static"."""
    out = {"clip": video.name}
    for camera in ("auto", "static"):
        clock = time.perf_counter()
        take = capture_people(video, Settings(camera=camera), lifter=lifter)[0]
        out[camera] = {"wall_s": time.perf_counter() - clock, "frames": len(take),
                       "largest_turn_deg": float(CameraPath(take.camera_rotation, take.camera_translation,
                                                            np.zeros(len(take), dtype=bool)).turn_degrees().max()),
                       "notes": take.notes, **feet(take), **travel(take)}
    return out


def travel(take) -> dict:
    """The camera's travel over the take's frames (person 1's): its centre's distance from where it
    started at the last frame and at most, and its path length, metres."""
    centres = take.camera_poses()[1]
    away = np.linalg.norm(centres - centres[0], axis=1)
    return {"travel_last_m": float(away[-1]), "travel_max_m": float(away.max()),
            "travel_path_m": float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum())}


# ----------------------------------------------------------------------------------------------------
# The report

def markdown(result: dict) -> str:
    lines = ["# Moving camera", "",
             f"Generated by `python benchmarks/camera.py{'' if result['max_frames'] == MAX_FRAMES else ' --frames ' + str(result['max_frames'])}`. "
             f"Machine: {result['machine']}. {result['seconds']:.0f} s. At most the first {result['max_frames']} frames of each clip; "
             "detection in one thread (`workers=1`) except in (iv), which uses the defaults.", ""]
    if result.get("skipped"):
        lines += [result["skipped"], ""]
    lines += ["### (i) Turn solve on synthetic turns", "",
              f"Each clip seen by a virtual camera with the capture's default focal length through a window of {CROP:.0%} "
              f"of the picture, turned smoothly (seeded by the clip's name) up to {TURN_DEGREES:g} degrees of pan with some tilt and roll, "
              "the picture warped by the exact homography `K_out R K_src^-1` and written as Motion JPEG. The solver: "
              "`TurnGathering` inside `detect_video`, one `TurnSolver` fed every frame and the boxes of the people detected "
              "in it (what the capture does), and beside it a `TurnSolver` fed the same frames with no boxes (None). Error: the "
              "angle between the solved and the true rotation, per frame. Where the clip's own camera turns (the capture's "
              f"solve of the clip as it is finds over {STATIC_DEGREES:g} degree: marked *), the truth is the synthetic turn on top "
              "of that solved turn, so those rows measure consistency rather than truth. Solve: the \"camera\" stage's seconds "
              "(features, optical flow, fit) per frame.", "",
              "| clip | window (px) | frames | largest true turn (deg) | error median / p95 / last frame (deg), people boxes | "
              "frames held | error median / p95 / last frame (deg), no boxes | frames held | solve (ms per frame) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["synthetic"]:
        lines.append(f"| {row['clip']}{' *' if row['source_turns'] else ''} | {row['window'][0]}x{row['window'][1]} | "
                     f"{row['frames']} | {row['largest_true_turn_deg']:.1f} | "
                     f"{row['error_median_deg']:.3f} / {row['error_p95_deg']:.3f} / {row['error_last_deg']:.3f} | {row['held_frames']} | "
                     f"{row['alone_error_median_deg']:.3f} / {row['alone_error_p95_deg']:.3f} / {row['alone_error_last_deg']:.3f} | "
                     f"{row['alone_held_frames']} | {row['solve_ms_per_frame']:.1f} |")
    lines += ["", f"The clips as they are, the body clips and the hand clips (the solve over the whole clip, capped; "
              f"\"auto\" keeps a turn over `STATIC_DEGREES` = {STATIC_DEGREES:g} degree whose picture edges moved with it, "
              "`TurnGathering.edges_agree`; the camera as `../shared/media/real/README.md` describes it):", "",
              "| clip | camera (README) | frames | largest turn found (deg), people boxes / no boxes | turn at the last frame (deg), "
              "people boxes / no boxes | frames held | edges moved / path turned, frame to frame (deg) | kept by \"auto\" | "
              "travel kept by \"auto\": from the start at the last frame / path (m) |",
              "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for row in result["as_filmed"]:
        lines.append(f"| {row['clip']} | {FILMED_BY.get(row['clip'], 'not stated')} | {row['auto']['frames']} | "
                     f"{row['largest_turn_deg']:.2f} / {row['alone_largest_turn_deg']:.2f} | {row['last_turn_deg']:.2f} / "
                     f"{row['alone_last_turn_deg']:.2f} | {row['held_frames']} | "
                     f"{row['edge_deg']:.1f} / {row['path_deg']:.1f} | {'yes' if row['kept_by_auto'] else 'no (static)'} | "
                     f"{row['auto']['travel_last_m']:.2f} / {row['auto']['travel_path_m']:.2f} |")
    lines += ["", "### (ii) World consistency on synthetic turns", "",
              "Person 1 of the unturned window (camera \"static\", the reference) against the same person captured through "
              "the turned window (matched by their 2D boxes turned back into the reference window), every capture with "
              "`Settings(focal_px=f, workers=1)`, person 1 (where the turned capture's person 1 is someone else, as "
              "there, everyone is captured, `people=0`, and the matching person taken: marked +). Root path: mean horizontal distance between the root paths, each "
              "from its first common frame; heading: mean difference of the hips' direction on the floor; joints: mean "
              "world-joint distance after putting the first common frame's roots together. Target for \"auto\": root path "
              f"<= {TARGET_ROOT_M:g} m and heading <= {TARGET_HEADING_DEG:g} deg, or within {TRUE_MARGIN_ROOT_M:g} m and "
              f"{TRUE_MARGIN_HEADING_DEG:g} deg of the true-rotation row.", "",
              "| clip | camera | common frames | root path (m) | heading (deg) | joints (mm) | target |",
              "|---|---|---:|---:|---:|---:|---|"]
    for row in result["synthetic"]:
        world, true = row["world"], row["world"].get("true rotations", {})
        for k, (name, figures) in enumerate(world.items()):
            label = {"static": "static (turn left in)", "auto": "auto (the solve)", "true rotations": "true rotations given"}[name]
            clip = row["clip"] + (" *" if row["source_turns"] else "") if k == 0 else ""
            if figures.get("person") is None:
                lines.append(f"| {clip} | {label} | 0 | no matching person | | | |")
                continue
            target = ""
            if name == "auto" and row["source_turns"]:
                target = f"not scored: the clip's own camera turns ({row['source_turn_deg']:.1f} deg), which the reference keeps"
            elif name == "auto":
                ok = figures["root_m"] <= TARGET_ROOT_M and figures["heading_deg"] <= TARGET_HEADING_DEG
                near = (true.get("person") is not None and figures["root_m"] <= true["root_m"] + TRUE_MARGIN_ROOT_M
                        and figures["heading_deg"] <= true["heading_deg"] + TRUE_MARGIN_HEADING_DEG)
                target = "met" if ok else ("met (near the true rotations)" if near else "**missed**")
            label += " +" if figures.get("everyone") else ""
            lines.append(f"| {clip} | {label} | {figures['frames']} | {figures['root_m']:.3f} | "
                         f"{figures['heading_deg']:.2f} | {figures['joints_mm']:.0f} | {target} |")
    scored = [row for row in result["synthetic"] if not row["source_turns"]]
    autos, statics, trues = ([row["world"][name] for row in scored if row["world"][name].get("person") is not None]
                             for name in ("auto", "static", "true rotations"))
    if autos:
        lines += ["", "Mean over the clips whose own camera stays put: " + "; ".join(
            f"{label} {np.mean([f['root_m'] for f in group]):.3f} m, {np.mean([f['heading_deg'] for f in group]):.2f} deg, "
            f"{np.mean([f['joints_mm'] for f in group]):.0f} mm"
            for label, group in (("static", statics), ("auto", autos), ("true rotations", trues)) if group) + "."]
    shot = result.get("tracking_shot")
    lines += ["", f"### (iv) The real tracking shot, `{TRACKING_SHOT}`, `capture_people(video, Settings())`", ""]
    if shot is None:
        lines += [f"Skipped: `{TRACKING_SHOT}` (in `../shared/media/real`) was not among the clips measured."]
    else:
        lines += ["A woman runs past on an indoor track; the camera travels beside her and turns a little, so her "
                  "travel is mostly the camera's. Path and net displacement: the cleaned root (`clean` with its defaults) "
                  "on the floor. Sliding: the median horizontal world speed of the raw take's ankle while the clean-up "
                  "plants it. Camera travel: its centre's path length on the floor and its distance from the start at "
                  "the last frame.", "",
                  "| camera | frames | largest turn taken out (deg) | camera travel, path / from the start (m) | "
                  "root path length (m) | net displacement (m) | planted-foot sliding, median (m/s) | frames with a planted foot (%) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for camera in ("static", "auto"):
            c = shot[camera]
            lines.append(f"| {camera}{' (default)' if camera == 'auto' else ''} | {c['frames']} | {c['largest_turn_deg']:.2f} | "
                         f"{c['travel_path_m']:.2f} / {c['travel_last_m']:.2f} | "
                         f"{c['path_m']:.2f} | {c['net_m']:.2f} | {c['sliding_m_per_s']:.2f} | {c['planted_pct']:.0f} |")
        lines += ["", "Notes of the default capture:", "", *[f"- {note}" for note in shot["auto"]["notes"]]]
    lines += ["", "### (v) Cost", "",
              "Each clip as it is, captured with camera \"static\" and then \"auto\" in the same run (`workers=1`; the "
              "machine's speed drifts under other load, so compare within a row only). Camera: the \"camera\" stage's "
              "seconds, against the sum of the capture's stages (`Timings`: decode, detect, camera, track, lift, trajectory).", "",
              "| clip | frames | camera stage (s) | capture total, auto (s) | camera share (%) | ms per frame, camera | "
              "wall, static / auto (s) | auto / static |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["as_filmed"]:
        auto, static = row["auto"], row["static"]
        camera = auto["stages_s"].get("camera", 0.0)
        lines.append(f"| {row['clip']} | {auto['frames']} | {camera:.2f} | {auto['total_s']:.2f} | "
                     f"{100 * camera / auto['total_s']:.0f} | {1000 * camera / auto['frames']:.1f} | "
                     f"{static['wall_s']:.1f} / {auto['wall_s']:.1f} | {auto['wall_s'] / static['wall_s']:.2f} |")
    return "\n".join(lines) + "\n"


def hand_clips() -> list[Path]:
    """The hand clips of the real corpus (.mp4), where they are present."""
    return sorted((REAL / "hands").glob("*.mp4"))


def clips() -> tuple[list[Path], str | None]:
    """The body clips of ../shared/media/real and the sample, and why the real ones are missing (None: here)."""
    if not REAL.is_dir():
        return [SAMPLE], f"The real clips were skipped: `{REAL.relative_to(ROOT.parent)}` is not here; the sample only."
    return sorted(REAL.glob("*.mp4")) + [SAMPLE], None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=MAX_FRAMES, help="at most this many frames of each clip")
    parser.add_argument("--clips", nargs="*", help="only these clip names (for a quick look)")
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    videos, skipped = clips()
    if args.clips:
        videos = [v for v in videos if v.name in args.clips]
    lifter = Lifter()
    clock = time.perf_counter()
    result = {"machine": describe_machine(), "max_frames": args.frames, "skipped": skipped,
              "synthetic": [], "as_filmed": [], "tracking_shot": None}
    with tempfile.TemporaryDirectory(prefix="posemoe-camera-") as tmp:
        for video in videos:
            start = time.perf_counter()
            filmed, own = as_filmed(video, args.frames, lifter)
            result["as_filmed"].append(filmed)
            result["synthetic"].append(synthetic(video, args.frames, own, lifter, Path(tmp)))
            print(f"{video.name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
        # The hand clips as filmed only: things other than people move in them (false turns to refuse).
        for video in [v for v in hand_clips() if not args.clips or v.name in args.clips]:
            result["as_filmed"].append(as_filmed(video, args.frames, lifter)[0])
    shot = REAL / TRACKING_SHOT
    if shot in videos:
        result["tracking_shot"] = tracking_shot(shot, lifter)
    result["seconds"] = time.perf_counter() - clock
    text = markdown(result)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as out:
            out.write_text(text)
    if args.json:
        with atomic_output(args.json) as out:
            out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
