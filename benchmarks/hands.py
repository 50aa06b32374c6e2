"""Hand keypoints against MediaPipe's HandLandmarker, clip by clip, on every hand clip we have.

    python benchmarks/hands.py [VIDEO ...] [--no-palms] [--fresh] [--no-speed] [--markdown FILE] [--json FILE]

Default clips: every video in ``../shared/media/real/hands/`` (README there). For each clip, in one
thread over the whole video, the reference is MediaPipe's own HandLandmarker (Tasks API, video mode, two
hands, the same two models: :func:`task_bundle`); ours is BlazePose's body
(:class:`posemoe.detect.blazepose.BlazePoseDetector`) then :class:`posemoe.detect.hands.HandDetector`.
Each row gives:

- ms per frame of our hand stage alone (the body's time excluded), and the palm detector's looks;
- hands found: the reference's hand-frames that have one of ours near them (median keypoint distance
  under :data:`SAME_HAND` hand sizes), of all the reference's hand-frames (the issue's floor: 95 %),
  a hand the reference follows twice counted once (:func:`deduplicated`);
  and hand-frames of ours near none of the reference's;
- distance of each matched hand's 21 keypoints from the reference's, in % of the reference hand's size
  (wrist to the middle finger's base, keypoints 0 to 9; the 95th percentile over the clip of that hand's
  length, :func:`clip_sizes`): median and p90 over keypoints and frames (the floor: median 2 % on the
  ASL clips);
- raw jitter: median |second difference| of the keypoints, px per frame^2, over frames where the hand
  is seen three frames running (hands followed by the reference's handedness label), and our ratio to
  the reference's;
- left/right mix-ups: matched hand-frames where the side we took from the body disagrees with the
  reference's handedness label.

Then the capture's speed with hands off and on (``capture_people`` with its defaults, both detection
threads, lifting included: video frames per second and x real time) on every clip and the sample;
``--no-speed`` skips it.

For ``asl_hand_portrait.mp4`` the TensorFlow.js keypoints stored beside it are a second reference:
median distance of ours and of MediaPipe's from them. The reference's results are cached in
``benchmarks/.cache`` (keyed by the clip's path, size and time; ``--fresh`` ignores the cache).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from posemoe.detect import hands as hand_models
from posemoe.detect.blazepose import BlazePoseDetector
from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.video import probe, read_frames

if __package__:  # imported as benchmarks.hands
    from .corpus import (HANDS, ROOT, cached, jitter, mediapipe_bundle, mediapipe_image, median_ms, middle_frame,
                         tfjs_keypoints, videos)
else:  # run as a script (or imported) with this folder on the path
    from corpus import (HANDS, ROOT, cached, jitter, mediapipe_bundle, mediapipe_image, median_ms, middle_frame,
                        tfjs_keypoints, videos)

SAME_HAND = 1.0  # hand sizes (wrist to middle base), median keypoint distance: the same hand


def task_bundle() -> bytes:
    """MediaPipe's HandLandmarker bundle of the palm detector and the hand landmark model, built as
    :func:`detect.task_bundle` builds the pose bundle: both take RGB pixels scaled to [0, 1] (mean 0, std
    255), as the wheel's hand graphs feed them."""
    return mediapipe_bundle({"hand_detector.tflite": ("palm_detection/palm_detection_full.tflite", 2, 0.0, 255.0),
                             "hand_landmarks_detector.tflite": ("hand_landmark/hand_landmark_full.tflite", 4, 0.0, 255.0)})


def run_reference(video: Path) -> dict:
    """MediaPipe's HandLandmarker on every frame -> {"hands": per frame (K, 21, 3) px, "sides": per frame
    (K,) 0 for the person's left hand, 1 right, "ms_per_frame"}."""
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.HandLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=task_bundle()),
                                           running_mode=vision.RunningMode.VIDEO, num_hands=2)
    landmarker = vision.HandLandmarker.create_from_options(options)
    found, sides, seconds = [], [], 0.0
    for frame in read_frames(video, 0, None):
        height, width = frame.image.shape[:2]
        image = mediapipe_image(frame.image)
        clock = time.perf_counter()
        result = landmarker.detect_for_video(image, int(round(frame.time * 1000)))
        seconds += time.perf_counter() - clock
        found.append(np.array([[(p.x * width, p.y * height, p.z * width) for p in hand] for hand in result.hand_landmarks]).reshape(-1, 21, 3))
        # The Tasks API's label, unlike the bare model's score, names the hand as seen in the picture as it
        # is: "Right" agrees with the body's right wrist on the ASL clips (the benchmark counts where not).
        sides.append(np.array([1 if hand[0].category_name == "Right" else 0 for hand in result.handedness], dtype=int))
    landmarker.close()
    return {"hands": found, "sides": sides, "ms_per_frame": 1000 * seconds / max(len(found), 1)}


def reference(video: Path, fresh: bool) -> dict:
    """:func:`run_reference`, cached as ``benchmarks/detect.py`` caches its reference."""
    return cached(video, "hands-reference", fresh, lambda: run_reference(video))


def run_ours(video: Path, palms: bool) -> dict:
    """Our body detector then hand detector on every frame -> the same record as :func:`run_reference`
    (hands found by the palm detector away from any body get side -1), with the hand stage's time."""
    body, detector = BlazePoseDetector(), hand_models.HandDetector(palms=palms)
    found, sides, seconds = [], [], 0.0
    for frame in read_frames(video, 0, None):
        poses = body.poses(frame.image)
        points = np.array([pose.points for pose in poses]).reshape(-1, 39, 2)
        visibility = np.array([pose.visibility for pose in poses]).reshape(-1, 39)
        clock = time.perf_counter()
        hands, presence, _ = detector.detect(frame.image, points, visibility)
        seconds += time.perf_counter() - clock
        seen = presence > 0
        found.append(np.concatenate([hands[seen], detector.loose]))
        sides.append(np.concatenate([np.nonzero(seen)[1], np.full(len(detector.loose), -1)]).astype(int))
    return {"hands": found, "sides": sides, "ms_per_frame": 1000 * seconds / max(len(found), 1),
            "palm_looks": detector.palm_looks}


def hand_size(hand: np.ndarray) -> float:
    """hand (21, 2+) px -> wrist to the middle finger's base, px, in this frame."""
    return float(np.hypot(*(hand[9, :2] - hand[0, :2])))


def clip_sizes(hands: list[np.ndarray], sides: list[np.ndarray]) -> list[list[float]]:
    """The reference's hands per frame ((H, 21, 2+) px each) and their sides ((H,) 0 left, 1 right) ->
    per frame, each hand's size, px: the 95th percentile over the clip of that side's wrist to
    middle-finger base (as the body's height is the clip's 95th percentile in benchmarks/detect.py).
    One frame's length is not the hand's size: a hand pointing at the camera foreshortens it to a few
    pixels (asl_sign_again: a median of 13 px against 37 px for the same hand seen side on), which would
    blow its keypoints' distances up threefold and shrink the radius within which it is matched."""
    lengths = {side: [hand_size(hand) for frame, labels in zip(hands, sides) for hand, label in zip(frame, labels)
                      if int(label) == side] for side in (0, 1)}
    size = {side: float(np.percentile(values, 95)) for side, values in lengths.items() if values}
    return [[size[int(label)] for label in labels] for labels in sides]


def match(ours: list[np.ndarray], theirs: list[np.ndarray], sizes: list[list[float]]) -> list[list[int]]:
    """Per frame, for each of the reference's hands (sizes: theirs, px, per frame), the index of our
    nearest hand (median keypoint distance) if within :data:`SAME_HAND` of its size, else -1; each of
    ours used once (nearest first)."""
    matched = []
    for mine, refs, frame_sizes in zip(ours, theirs, sizes):
        pairs = []
        for r, (ref, size) in enumerate(zip(refs, frame_sizes)):
            for m, hand in enumerate(mine):
                distance = float(np.median(np.linalg.norm(hand[:, :2] - ref[:, :2], axis=-1)))
                if distance <= SAME_HAND * size:
                    pairs.append((distance, r, m))
        chosen, used = [-1] * len(refs), set()
        for _, r, m in sorted(pairs):
            if chosen[r] < 0 and m not in used:
                chosen[r] = m
                used.add(m)
        matched.append(chosen)
    return matched


def deduplicated(ref: dict, matched: list[list[int]], sizes: list[list[float]]
                 ) -> tuple[dict, list[list[int]], list[list[float]], int]:
    """The reference's record, our matches to it (:func:`match`) and its hands' sizes, with one hand
    dropped where two of its hands are one (keypoint boxes overlapping more than HandLandmarker's own
    duplicate threshold, which our detector applies too: ``posemoe.detect.hands.SAME_HAND``), and how
    many were dropped: its video mode can follow one hand twice (asl_sign_help: two "left" hands 0.77
    over each other). Of two copies the one we matched is kept: one hand, found if either copy is."""
    hands, sides, kept_matches, kept_sizes, dropped = [], [], [], [], 0
    for frame, labels, chosen, frame_sizes in zip(ref["hands"], ref["sides"], matched, sizes):
        kept: list[int] = []
        for i in sorted(range(len(frame)), key=lambda i: chosen[i] < 0):  # matched copies first
            if all(hand_models.keypoint_iou(frame[i], frame[j]) <= hand_models.SAME_HAND for j in kept):
                kept.append(i)
        kept.sort()
        dropped += len(frame) - len(kept)
        hands.append(np.asarray(frame)[kept].reshape((len(kept),) + np.shape(frame)[1:]) if len(frame) else frame)
        sides.append(np.asarray(labels)[kept])
        kept_matches.append([chosen[i] for i in kept])
        kept_sizes.append([frame_sizes[i] for i in kept])
    return {**ref, "hands": hands, "sides": sides}, kept_matches, kept_sizes, dropped


def compare(row: dict, ref: dict) -> dict:
    """The figures of our row against the reference (see the module's docstring)."""
    frames = min(len(row["hands"]), len(ref["hands"]))
    sizes = clip_sizes(ref["hands"][:frames], ref["sides"][:frames])
    matched = match(row["hands"][:frames], ref["hands"][:frames], sizes)
    ref, matched, sizes, duplicates = deduplicated({**ref, "hands": ref["hands"][:frames], "sides": ref["sides"][:frames]},
                                                   matched, sizes)
    distances, mixups, ours_used = [], 0, 0
    ref_tracks = {side: np.full((frames, 21, 2), np.nan) for side in (0, 1)}
    our_tracks = {side: np.full((frames, 21, 2), np.nan) for side in (0, 1)}
    for f, chosen in enumerate(matched):
        for r, m in enumerate(chosen):
            ref_hand, side = ref["hands"][f][r], int(ref["sides"][f][r])
            ref_tracks[side][f] = ref_hand[:, :2]
            if m < 0:
                continue
            ours_used += 1
            hand = row["hands"][f][m]
            our_tracks[side][f] = hand[:, :2]
            distances.append(np.linalg.norm(hand[:, :2] - ref_hand[:, :2], axis=-1) / sizes[f][r] * 100)
            mixups += int(row["sides"][f][m] >= 0 and row["sides"][f][m] != side)
    distances = np.concatenate(distances) if distances else np.zeros(0)
    stats = np.percentile(distances, [50, 90]) if distances.size else [float("nan")] * 2
    shake, shake_ref = jitter(*our_tracks.values()), jitter(*ref_tracks.values())
    reference_hands = sum(len(h) for h in ref["hands"][:frames])
    return {"frames": frames, "ms_per_frame": row["ms_per_frame"], "palm_looks": row.get("palm_looks", 0),
            "reference_hands": reference_hands, "reference_hands_found": ours_used,
            "found_fraction": ours_used / reference_hands if reference_hands else float("nan"),
            "our_hands": sum(len(h) for h in row["hands"][:frames]),
            "extra_hands": sum(len(h) for h in row["hands"][:frames]) - ours_used,
            "median": float(stats[0]), "p90": float(stats[1]), "jitter": shake,
            "jitter_ratio": shake / shake_ref if shake_ref > 0 else float("nan"), "reference_jitter": shake_ref,
            "mixups": mixups, "reference_duplicates": duplicates}


def tfjs_check(video: Path, rows: dict[str, dict]) -> str | None:
    """Median distance (% of the hand's size) of each row's nearest hand from the TensorFlow.js hand
    keypoints stored beside ``video`` (``<stem>.hands_tfjs.json``: per frame, 21 [x px, y px, z] of one
    hand), or None where there are none."""
    frames = tfjs_keypoints(video, "hands")
    if frames is None:
        return None
    tfjs = [np.array(frame, dtype=np.float64).reshape(-1, 21, 3) for frame in frames]
    sizes = clip_sizes(tfjs, [np.zeros(len(frame), dtype=int) for frame in tfjs])  # one hand throughout
    parts = []
    for name, row in rows.items():
        distances, found = [], 0
        for f, matched in enumerate(match(row["hands"], tfjs, sizes)):
            for r, m in enumerate(matched):
                if m >= 0:
                    found += 1
                    distances.append(np.linalg.norm(row["hands"][f][m][:, :2] - tfjs[f][r][:, :2], axis=-1) / sizes[f][r] * 100)
        median = float(np.median(np.concatenate(distances))) if distances else float("nan")
        parts.append(f"{name} {median:.2f} % ({found} of {sum(len(t) for t in tfjs)} hand-frames found)")
    return f"{video.name} against TensorFlow.js's MediaPipe Hands keypoints (median, % of the hand's size): " + "; ".join(parts) + "."


def call_times_ms(video: Path, calls: int = 30) -> tuple[float, float, float]:
    """Median milliseconds of one hand landmark call, one re-crop call and one palm detector look, on
    the video's middle frame (one ONNX Runtime thread)."""
    from posemoe.detect.landmarks import Region

    info, image = middle_frame(video)
    region = Region(np.array([info.width / 2, info.height / 2]), info.height / 3, 0.0)
    return (median_ms(lambda: hand_models.hand_landmarks(image, region), calls),
            median_ms(lambda: hand_models.recrop(image, region), calls), median_ms(lambda: hand_models.find_palms(image), calls))


def capture_speed(clips: list[Path]) -> tuple[list[str], list[dict]]:
    """The whole capture (``capture_people``, defaults, one person) of each clip with hands off and on,
    best of two: Markdown lines and figures."""
    from posemoe.lift import Lifter
    from posemoe.pipeline import capture_people
    from posemoe.settings import Settings

    lifter = Lifter()
    lines = ["", "Capture speed, hands off and on (`capture_people` with its defaults: both detection threads, "
             "lifting and the trajectory included; best of two):", "",
             "| clip | frames | hands off: frames/s (x real time) | hands on: frames/s (x real time) | extra time |",
             "|---|---:|---:|---:|---:|"]
    figures = []
    for video in clips:
        info = probe(video)
        seconds = {}
        for hands in (False, True):
            times = []
            for _ in range(2):
                clock = time.perf_counter()
                capture_people(video, Settings(hands=hands), lifter=lifter)
                times.append(time.perf_counter() - clock)
            seconds[hands] = min(times)
        rate = {h: info.frame_count / t for h, t in seconds.items()}
        figures.append({"clip": video.name, "frames": info.frame_count, "fps": info.fps, "seconds_off": seconds[False],
                        "seconds_on": seconds[True]})
        lines.append(f"| {video.name} | {info.frame_count} | {rate[False]:.1f} ({rate[False] / info.fps:.2f}) | "
                     f"{rate[True]:.1f} ({rate[True] / info.fps:.2f}) | {100 * (seconds[True] / seconds[False] - 1):+.0f} % |")
        print(lines[-1], flush=True)
    return lines, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", help="clips (default: every clip of ../shared/media/real/hands)")
    parser.add_argument("--no-palms", action="store_true", help="hands from the body only, no palm detector")
    parser.add_argument("--fresh", action="store_true", help="run the reference again instead of reading its cache")
    parser.add_argument("--no-speed", action="store_true", help="skip the capture speed with hands off and on")
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.videos:
        clips = [Path(v) for v in args.videos]
    elif HANDS.is_dir():
        clips = videos(HANDS)
    else:
        message = f"Skipped: the hand clips ({HANDS.relative_to(ROOT.parent)}) are absent."
        print(message, file=sys.stderr)
        if args.markdown:
            with atomic_output(args.markdown) as tmp:
                tmp.write_text(f"# Hands: keypoints on real footage\n\n{message}\n")
        if args.json:
            with atomic_output(args.json) as tmp:
                tmp.write_text(json.dumps({"skipped": message}) + "\n")
        return 0
    lines = [f"One thread, whole clips. Machine: {describe_machine()}. Ours: BlazePose body, then hands from the body's "
             f"wrists{'' if args.no_palms else ' and the palm detector where the body gives none'}. Distances in % of the "
             f"reference hand's size (wrist to middle-finger base, the 95th percentile over the clip of that hand's length: "
             f"one frame's is foreshortened where the hand points at the camera); hands matched to the reference's by median keypoint "
             f"distance under {SAME_HAND:g} hand size; where the reference follows one hand twice (keypoint boxes "
             f"overlapping more than {hand_models.SAME_HAND:g}, its own duplicate threshold) it counts once.", "",
             "| clip | ms per frame, our hand stage (MediaPipe's) | palm looks | reference's hands found | our other hands | "
             "median % | p90 % | jitter px/frame^2 (x reference) | left/right mix-ups |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    figures, notes = [], []
    for video in clips:
        info = probe(video)
        ref = reference(video, args.fresh)
        row = run_ours(video, palms=not args.no_palms)
        f = compare(row, ref)
        figures.append({"clip": video.name, "reference_ms_per_frame": ref["ms_per_frame"], **f})
        lines.append(f"| {video.name} ({info.width}x{info.height}, {f['frames']} frames) | {f['ms_per_frame']:.1f} ({ref['ms_per_frame']:.1f}) | "
                     f"{f['palm_looks']} | {f['reference_hands_found']} of {f['reference_hands']} ({100 * f['found_fraction']:.1f} %)"
                     f"{'' if not f['reference_duplicates'] else ', ' + str(f['reference_duplicates']) + ' counted twice by it dropped'} | "
                     f"{f['extra_hands']} | {f['median']:.2f} | {f['p90']:.2f} | {f['jitter']:.2f} ({f['jitter_ratio']:.2f}) | {f['mixups']} |")
        print(lines[-1], flush=True)
        note = tfjs_check(video, {"ours": row, "MediaPipe's HandLandmarker": ref})
        if note:
            notes.append(note)
    landmark, recrop_ms, palm = call_times_ms(clips[0])
    tail = ["", *notes, "", f"One hand landmark call (crop, ONNX Runtime on one thread): {landmark:.1f} ms; one re-crop call: "
            f"{recrop_ms:.1f} ms; one palm detector look: {palm:.1f} ms; medians of 30 on {clips[0].name}. A hand "
            f"followed from the last frame costs one landmark call; one found anew, a palm look or a re-crop call more."]
    speed_lines, speed = ([], []) if args.no_speed else capture_speed(clips + [ROOT / "samples" / "walk.mp4"])
    text = "\n".join(lines + tail + speed_lines)
    print("\n".join(tail))
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Hands: keypoints on real footage\n\nGenerated by `python benchmarks/hands.py`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "rows": figures, "landmark_call_ms": landmark,
                                       "recrop_call_ms": recrop_ms, "palm_look_ms": palm, "speed": speed}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
