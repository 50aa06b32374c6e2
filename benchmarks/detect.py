"""The capture's detector against MediaPipe's PoseLandmarker, clip by clip, on every real clip we have.

    python benchmarks/detect.py [VIDEO ...] [--look-every 1 2 3 5] [--markdown FILE] [--json FILE]

Default clips: the bundled sample and every video in ``../shared/media/real/`` and its ``hands/``
folder (README there; skipped with a message where that folder is absent). For each clip, in one
thread over the whole video, the reference is MediaPipe's own PoseLandmarker (Tasks API, video mode,
up to 3 people, the same two BlazePose models: :func:`task_bundle`), and each row is our
:class:`posemoe.detect.blazepose.BlazePoseDetector` looking with the person detector every K frames
(the shipped K marked). For each:

- ms per frame (decoding included) and looks with the person detector;
- people per frame, and the reference's person-frames we also find (a person of ours within 20 % of
  the body's height, median over joints);
- the person the capture chooses (``posemoe.track``'s own choice): frames found against the
  reference's chosen person's;
- distance of our chosen person's 17 keypoints from the reference's chosen person's, in % of the body's
  height (the 95th percentile over the clip of the reference person's keypoint-box height): median,
  p90 and p99 over joints and frames; spikes: frames in which some joint is more than 10 % off;
- everyone: the same distances for every person of the reference's that we find (each from the
  nearest of ours, in % of that person's own height in the frame), whoever the capture chooses: the
  fidelity where the chosen people differ (close-ups whose "people" are arms);
- raw 2D jitter: median |second difference| over joints and frames, px per frame^2, and its ratio to
  the reference's (neither is smoothed: the Tasks PoseLandmarker smooths nothing with several people);
- identity switches: times our chosen person moves between the reference's chosen person and someone
  else (a body of the reference nearer to ours), and the frames spent on someone else.

Then, per clip, a noise floor: the shipped detector against itself with every region it follows from
the last frame moved :data:`NUDGE_PX` (:class:`Nudged`), the same distances: where two equally valid
runs drift apart (a headless torso the person detector rarely finds, followed from its own landmarks),
the reference cannot be matched more closely than this by any implementation that is not bit-exact.

For the squats clip the TensorFlow.js BlazePose keypoints stored beside it are a second, independent
reference: median distance of ours and of MediaPipe's from them. Then one table of the trade between
speed and fidelity over the whole corpus, per K. The reference's detections are cached in
``benchmarks/.cache`` (:func:`corpus.cached`: keyed by the clip's size and time; ``--fresh`` ignores the cache).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from posemoe import PoseMoEError
from posemoe.detect import blazepose, detect_frames, people
from posemoe.detect.landmarks import Region, landmarks
from posemoe.detect.layout import blazepose_to_h36m
from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.pipeline import detector_output
from posemoe.swaps import PAIRS, repair_swaps
from posemoe.track import build_tracks, select_person
from posemoe.video import probe

if __package__:  # imported as benchmarks.detect
    from .corpus import (HANDS, REAL, ROOT, cached, jitter, mediapipe_bundle, mediapipe_image, median_ms, middle_frame,
                         tfjs_keypoints, videos)
else:  # run as a script (or imported) with this folder on the path
    from corpus import (HANDS, REAL, ROOT, cached, jitter, mediapipe_bundle, mediapipe_image, median_ms, middle_frame,
                        tfjs_keypoints, videos)

SPIKE = 10.0  # % of the body's height
SAME_PERSON = 20.0  # % of the body's height, median over joints


def task_bundle() -> bytes:
    """MediaPipe's PoseLandmarker bundle of BlazePose's two models: the detector takes pixels scaled to
    [-1, 1], the landmark model pixels scaled to [0, 1], as the wheel's graphs do."""
    return mediapipe_bundle({"pose_detector.tflite": ("pose_detection/pose_detection.tflite", 2, 127.5, 127.5),
                             "pose_landmarks_detector.tflite": ("pose_landmark/pose_landmark_full.tflite", 5, 0.0, 255.0)})


class MediaPipeEveryFrame:
    """The reference: MediaPipe's PoseLandmarker (BlazePose Full, up to 3 people, video mode)."""

    name = "mediapipe-pose-landmarker"

    def __init__(self, max_people: int = 3):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=task_bundle()),
                                               running_mode=vision.RunningMode.VIDEO, num_poses=max_people)
        self._landmarker = vision.PoseLandmarker.create_from_options(options)

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        result = self._landmarker.detect_for_video(mediapipe_image(image), int(round(time * 1000)))
        if not result.pose_landmarks:
            return np.zeros((0, 17, 2)), np.zeros((0, 17))
        points = np.array([[(p.x * width, p.y * height) for p in person] for person in result.pose_landmarks])
        visibility = np.array([[p.visibility for p in person] for person in result.pose_landmarks])
        return blazepose_to_h36m(points, np.clip(visibility, 0.0, 1.0))

    def close(self) -> None:
        self._landmarker.close()


#: How far the noise-floor run moves every region it follows from the last frame, px: about what
#: rounding moves a region between two implementations of the same graph (float32 against float64,
#: another resampler).
NUDGE_PX = 0.1


class Nudged(blazepose.BlazePoseDetector):
    """The shipped detector with every region it follows from the last frame moved :data:`NUDGE_PX` to
    the right and down before use: against the shipped detector's own output, how far two equally valid
    runs drift apart on each clip (nothing where the person detector refreshes the regions every frame;
    on a body the detector rarely finds, such as a headless torso, the landmark model follows its own
    output and small differences grow)."""

    def poses(self, image: np.ndarray):
        self._regions = [Region(region.centre + NUDGE_PX, region.side, region.angle) for region in self._regions]
        return super().poses(image)


def run(video: Path, detector) -> dict:
    """Detect every frame of ``video``: everyone's keypoints, the chosen person's (N, 17, 2) px with
    NaN where not found, and the time."""
    info = probe(video)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    found = [(keypoints, confidence) for _, keypoints, confidence, *_ in detect_frames(detector, video, 0, None, seconds)]
    wall = time.perf_counter() - clock
    detector.close()
    detections = [detector_output(i, info.width, info.height, *frame) for i, frame in enumerate(found)]
    try:
        chosen, confidence = select_person(build_tracks(detections), len(detections), info.fps)
    except PoseMoEError:  # nobody in the whole clip
        chosen, confidence = np.full((len(detections), 17, 2), np.nan), np.zeros((len(detections), 17))
    return {"everyone": [k for k, _ in detections], "chosen": chosen, "confidence": confidence, "fps": info.fps,
            "ms_per_frame": 1000 * wall / max(len(found), 1), "looks": getattr(detector, "looks", len(found))}


def reference(video: Path, fresh: bool) -> dict:
    """:func:`run` with MediaPipe, cached (:func:`cached`)."""
    return cached(video, "detect-reference", fresh, lambda: run(video, MediaPipeEveryFrame()))


def body_height(points: np.ndarray) -> float:
    """points (N, 17, 2) px, NaN where missing -> the 95th percentile of the per-frame keypoint-box
    height, px: the body's height, robust to crouching and to a few bad frames."""
    seen = np.isfinite(points).all(axis=(1, 2))
    if not seen.any():
        return float("nan")
    return float(np.percentile(np.ptp(points[seen][..., 1], axis=1), 95))


def people_found(ours: list[np.ndarray], theirs: list[np.ndarray]) -> tuple[int, int]:
    """Per frame, everyone's keypoints (P, 17, 2) px -> (the reference's person-frames that have one of
    ours within :data:`SAME_PERSON` % of their height, all the reference's person-frames)."""
    hit = total = 0
    for mine, refs in zip(ours, theirs):
        for person in refs:
            total += 1
            height = max(float(np.nanmax(person[:, 1]) - np.nanmin(person[:, 1])), 1.0)
            if len(mine):
                distance = np.nanmedian(np.linalg.norm(mine - person[None], axis=-1), axis=-1)
                hit += bool(np.nanmin(distance) <= SAME_PERSON / 100 * height)
    return hit, total


def everyone_distances(ours: list[np.ndarray], theirs: list[np.ndarray]) -> np.ndarray:
    """Per frame, everyone's keypoints (P, 17, 2) px -> the distances (n, 17) of each of the
    reference's people found by :func:`people_found`'s rule from the nearest of ours, in % of that
    person's keypoint-box height in the frame: fidelity person by person, whoever the capture chooses."""
    rows = []
    for mine, refs in zip(ours, theirs):
        for person in refs:
            height = max(float(np.nanmax(person[:, 1]) - np.nanmin(person[:, 1])), 1.0)
            if len(mine):
                each = np.linalg.norm(mine - person[None], axis=-1)  # (P, 17)
                typical = np.nan_to_num(np.nanmedian(each, axis=-1), nan=np.inf)  # a person of ours with no joints: never
                nearest = int(np.argmin(typical))
                if typical[nearest] <= SAME_PERSON / 100 * height:
                    rows.append(each[nearest] / height * 100)
    return np.array(rows).reshape(-1, 17)


def switches(ours: np.ndarray, reference_chosen: np.ndarray, everyone: list[np.ndarray]) -> tuple[int, int]:
    """Our chosen person (N, 17, 2) px -> (times they move between the reference's chosen person and
    someone else, frames spent on someone else): in each frame both have, on whichever of the
    reference's bodies is nearest (median joint distance)."""
    labels = []
    for mine, chosen, refs in zip(ours, reference_chosen, everyone):
        if not (np.isfinite(mine).all() and np.isfinite(chosen).all()) or len(refs) == 0:
            continue
        distance = np.nanmedian(np.linalg.norm(refs - mine[None], axis=-1), axis=-1)
        to_chosen = float(np.median(np.linalg.norm(chosen - mine, axis=-1)))
        labels.append(to_chosen <= float(np.nanmin(distance)) + 1e-6)
    labels = np.array(labels, dtype=bool)
    return int(np.sum(labels[1:] != labels[:-1])), int(np.sum(~labels))


def relabels(row: dict, ref: dict) -> tuple[int, int]:
    """Left/right repair (:func:`posemoe.swaps.repair_swaps`, as the capture runs it) on our chosen
    person -> (pair-frames it relabels, of them those where the relabelled pair lies nearer the
    reference's same pair than the detected one did)."""
    seen = np.isfinite(row["chosen"]).all(axis=(1, 2))
    if seen.sum() < 2:
        return 0, 0
    fixed, _, relabelled = repair_swaps(row["chosen"], row["confidence"], row["fps"])
    agreed = 0
    for column, (right, left) in enumerate(PAIRS.values()):
        joints = list(right) + list(left)
        before = np.linalg.norm(row["chosen"][:, joints] - ref["chosen"][:, joints], axis=-1).mean(1)
        after = np.linalg.norm(fixed[:, joints] - ref["chosen"][:, joints], axis=-1).mean(1)
        agreed += int((relabelled[:, column] & (after < before)).sum())
    return int(relabelled.sum()), agreed


def compare(row: dict, ref: dict) -> dict:
    """The figures of one row against the reference (see the module's docstring)."""
    height = body_height(ref["chosen"])
    both = np.isfinite(row["chosen"]).all(axis=(1, 2)) & np.isfinite(ref["chosen"]).all(axis=(1, 2))
    distance = np.linalg.norm(row["chosen"][both] - ref["chosen"][both], axis=-1) / height * 100  # (n, 17) %
    stats = np.percentile(distance, [50, 90, 99]) if distance.size else [float("nan")] * 3
    hit, total = people_found(row["everyone"], ref["everyone"])
    everyone = everyone_distances(row["everyone"], ref["everyone"])
    everyone_stats = np.nanpercentile(everyone, [50, 99]) if everyone.size else [float("nan")] * 2
    switched, elsewhere = switches(row["chosen"], ref["chosen"], ref["everyone"])
    shake, shake_ref = jitter(row["chosen"]), jitter(ref["chosen"])
    relabelled, agreed = relabels(row, ref)
    return {"ms_per_frame": row["ms_per_frame"], "looks": row["looks"], "frames": len(row["everyone"]),
            "people_per_frame": float(np.mean([len(k) for k in row["everyone"]])),
            "reference_people_found": hit, "reference_people": total,
            "chosen_frames": int(np.isfinite(row["chosen"]).all(axis=(1, 2)).sum()),
            "reference_chosen_frames": int(np.isfinite(ref["chosen"]).all(axis=(1, 2)).sum()),
            "median": float(stats[0]), "p90": float(stats[1]), "p99": float(stats[2]),
            "everyone_median": float(everyone_stats[0]), "everyone_p99": float(everyone_stats[1]),
            "spikes": int((distance.max(axis=1) > SPIKE).sum()) if distance.size else 0,
            "jitter": shake, "jitter_ratio": shake / shake_ref if shake_ref > 0 else float("nan"),
            "switches": switched, "frames_on_someone_else": elsewhere, "height_px": height,
            "relabelled": relabelled, "relabelled_as_reference": agreed}


def tfjs_check(video: Path, rows: dict[str, dict]) -> str | None:
    """Median distance (% of height) of each row's chosen person from the TensorFlow.js keypoints
    stored beside ``video`` (``<stem>.blazepose_tfjs.json``), or None where there are none."""
    frames = tfjs_keypoints(video, "blazepose")  # per frame, 33 landmarks [x px, y px, z]
    if frames is None:
        return None
    points = np.array([np.array(frame, dtype=np.float64)[:33, :2] if len(frame) >= 33 else np.full((33, 2), np.nan)
                       for frame in frames])
    tfjs, _ = blazepose_to_h36m(points, np.ones(points.shape[:2]))
    height = body_height(tfjs)
    parts = []
    for name, row in rows.items():
        n = min(len(row["chosen"]), len(tfjs))
        distance = np.linalg.norm(row["chosen"][:n] - tfjs[:n], axis=-1) / height * 100
        parts.append(f"{name} {np.nanmedian(distance):.2f} %")
    return f"{video.name} against TensorFlow.js's BlazePose keypoints (median, % of the height): " + "; ".join(parts) + "."


def default_clips() -> list[Path]:
    clips = [ROOT / "samples" / "walk.mp4"]
    if REAL.is_dir():
        clips += videos(REAL) + videos(HANDS)
    else:
        print(f"{REAL} is absent: only the sample is measured.", file=sys.stderr)
    return clips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", help="clips (default: the sample and the real corpus)")
    parser.add_argument("--look-every", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--fresh", action="store_true", help="run the reference again instead of reading its cache")
    parser.add_argument("--markdown", help="also write the tables to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    clips = [Path(v) for v in args.videos] or default_clips()
    shipped = blazepose.LOOK_EVERY
    settings = sorted(set(args.look_every) | {shipped})
    head = ("| clip | detector | ms per frame | looks | people per frame | reference's people found | chosen person: "
            "frames (reference's) | median % | p90 % | p99 % | everyone: median / p99 % | spikes | "
            "jitter px/frame^2 (x reference) | identity switches (frames on someone else) | left/right repair: pair-frames relabelled (towards the reference) |")
    lines = [f"One thread per clip, whole clip. Machine: {describe_machine()}. Distances in % of the body's height "
             f"(95th percentile of the reference's keypoint-box height); spikes: frames with a joint more than {SPIKE:g} % off.",
             "", head, "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    figures, notes, floor = [], [], []
    for video in clips:
        info = probe(video)
        ref = reference(video, args.fresh)
        clip = f"{video.name} ({info.width}x{info.height}, {info.frame_count} frames, {info.fps:g} fps)"
        rows = {"MediaPipe": ref}
        ref_row = compare(ref, ref)
        lines.append(f"| {clip} | MediaPipe PoseLandmarker (reference) | {ref['ms_per_frame']:.1f} | every frame | "
                     f"{ref_row['people_per_frame']:.2f} | {ref_row['reference_people']} | {ref_row['chosen_frames']} | "
                     f"0 | 0 | 0 | 0 | 0 | {ref_row['jitter']:.1f} | | {ref_row['relabelled']} |")
        figures.append({"clip": video.name, "detector": "mediapipe", **ref_row})
        for every in settings:
            row = run(video, blazepose.BlazePoseDetector(look_every=every))
            rows[f"ours, K={every}"] = row
            f = compare(row, ref)
            name = f"ours, person detector every {every} frame{'s' if every > 1 else ''}" + (" (shipped)" if every == shipped else "")
            lines.append(f"| | {name} | {f['ms_per_frame']:.1f} | {f['looks']} | {f['people_per_frame']:.2f} | "
                         f"{f['reference_people_found']} of {f['reference_people']} | {f['chosen_frames']} ({f['reference_chosen_frames']}) | "
                         f"{f['median']:.2f} | {f['p90']:.2f} | {f['p99']:.2f} | {f['everyone_median']:.2f} / {f['everyone_p99']:.2f} | {f['spikes']} | {f['jitter']:.1f} ({f['jitter_ratio']:.2f}) | "
                         f"{f['switches']} ({f['frames_on_someone_else']}) | {f['relabelled']} ({f['relabelled_as_reference']}) |")
            figures.append({"clip": video.name, "detector": f"blazepose look_every={every}", "look_every": every, **f})
        f = compare(run(video, Nudged()), rows[f"ours, K={shipped}"])
        floor.append(f"| {video.name} | {f['median']:.2f} | {f['p99']:.2f} | {f['everyone_median']:.2f} / {f['everyone_p99']:.2f} | "
                     f"{f['reference_people_found']} of {f['reference_people']} |")
        figures.append({"clip": video.name, "detector": f"blazepose nudged {NUDGE_PX:g} px against blazepose", **f})
        note = tfjs_check(video, rows)
        if note:
            notes.append(note)
        print("\n".join(lines[-len(settings) - 1:]), flush=True)
    trade = []
    for group, title in (("body", "the sample and the body clips"), ("hands", "the hands/ clips (waist-up signers, close-ups)")):
        members = {video.name for video in clips if (video.parent.name == "hands") == (group == "hands")}
        if not members:
            continue
        trade += ["", f"The trade over {title}, per K (frames pooled over clips for the time; worst clip for the rest):", "",
                  "| person detector every | ms per frame (all frames) | worst median % | worst p99 % | spikes | worst jitter ratio | "
                  "reference's people found | chosen frames short of the reference's |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for every in settings:
            ours = [f for f in figures if f.get("look_every") == every and f["clip"] in members]
            frames = sum(f["frames"] for f in ours)
            ms = sum(f["ms_per_frame"] * f["frames"] for f in ours) / frames
            short = sum(max(0, f["reference_chosen_frames"] - f["chosen_frames"]) for f in ours)
            trade.append(f"| {every}{' (shipped)' if every == shipped else ''} | {ms:.1f} | {np.nanmax([f['median'] for f in ours]):.2f} | "
                         f"{np.nanmax([f['p99'] for f in ours]):.2f} | {sum(f['spikes'] for f in ours)} | "
                         f"{np.nanmax([f['jitter_ratio'] for f in ours]):.2f} | "
                         f"{sum(f['reference_people_found'] for f in ours)} of {sum(f['reference_people'] for f in ours)} | {short} |")
        theirs = [f for f in figures if f["detector"] == "mediapipe" and f["clip"] in members]
        ref_ms = sum(f["ms_per_frame"] * f["frames"] for f in theirs) / sum(f["frames"] for f in theirs)
        trade.append(f"| MediaPipe PoseLandmarker | {ref_ms:.1f} | | | | | | |")
    call, look = call_times_ms(clips[0])
    tail = ["", *notes, "", f"One call of the landmark model (crop, ONNX Runtime on one thread, heatmap refinement): {call:.1f} ms; "
            f"one look with the person detector (letterbox, ONNX Runtime on one thread, decoding, suppression): {look:.1f} ms; "
            f"medians of 50 on {clips[0].name}."]
    floor = ["", f"Noise floor: the shipped detector against itself with every region it follows from the last frame moved "
             f"{NUDGE_PX:g} px (about what rounding moves one between two implementations of the graph): where two "
             "equally valid runs drift apart, no implementation can be held closer to the reference than this "
             "(distances in % of our chosen person's height).", "",
             "| clip | chosen person: median % | p99 % | everyone: median / p99 % | people found |",
             "|---|---:|---:|---:|---:|", *floor]
    text = "\n".join(lines + trade + floor + tail)
    print("\n".join(trade + floor + tail))
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Detection on real footage\n\nGenerated by `python benchmarks/detect.py`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "rows": figures, "landmark_call_ms": call,
                                       "person_detector_ms": look}, indent=1) + "\n")
    return 0


def call_times_ms(video: Path, calls: int = 50) -> tuple[float, float]:
    """Median milliseconds of one landmark-model call (a region half the picture's height at its
    centre) and of one look for people (:func:`posemoe.detect.people.find_people`), on the video's
    middle frame."""
    info, image = middle_frame(video)
    region = Region(np.array([info.width / 2, info.height / 2]), info.height / 2, 0.0)
    return median_ms(lambda: landmarks(image, region), calls), median_ms(lambda: people.find_people(image), calls)


if __name__ == "__main__":
    raise SystemExit(main())
