"""How often the detector must look for new people: speed against what the capture keeps, on a video.

    python benchmarks/detect.py [VIDEO] [--every 5 10 20 30] [--markdown FILE] [--json FILE]

The shipped detector (:class:`posemoe.detect.blazepose.BlazePoseDetector`) follows everyone it has
found with BlazePose's landmark model and looks for people not yet followed every K frames with
BlazePose's person detector, following anyone new back through the frames since the last look. Each
row runs it with one K (and two rows with other bars for the person detector's score), in one
thread, over the whole video (default: the bundled sample, where a walker crosses in front of a man on
a box); the reference row is MediaPipe's own PoseLandmarker on every frame, the detector this product
used first. For each: decode and detect time per
frame, looks, people found per frame, and the person the capture chooses (the tracker's own choice):
frames where they were found, how far their keypoints lie from the reference's (median over joints
and frames, pixels), and their raw 2D jitter (median |acceleration|, pixels per frame^2; the
reference's landmarks are smoothed by MediaPipe).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posemoe.detect import blazepose, detect_frames, people  # noqa: E402
from posemoe.detect.layout import blazepose_to_h36m  # noqa: E402
from posemoe.files import atomic_output  # noqa: E402
from posemoe.machine import describe_machine  # noqa: E402
from posemoe.pipeline import _detector_output  # noqa: E402
from posemoe.track import build_tracks, select_person  # noqa: E402
from posemoe.video import probe  # noqa: E402


def task_bundle() -> bytes:
    """MediaPipe's PoseLandmarker ``.task`` bundle (a zip of BlazePose's two models) built from the
    mediapipe wheel's bare ``.tflite`` files: the Tasks API wants models that carry input-normalisation
    metadata, which MediaPipe's own metadata writer adds (the detector takes pixels scaled to [-1, 1],
    the landmark model pixels scaled to [0, 1], as the wheel's graphs do)."""
    import io
    import zipfile

    import mediapipe
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    def with_metadata(model: Path, outputs: int, mean: float, std: float) -> bytes:
        writer = metadata_writer.MetadataWriter.create(bytearray(model.read_bytes()))
        writer.add_general_info("blazepose").add_image_input(norm_mean=[mean], norm_std=[std])
        for i in range(outputs):
            writer.add_feature_output(name=f"output_{i}")
        return bytes(writer.populate()[0])

    modules = Path(mediapipe.__file__).parent / "modules"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("pose_detector.tflite", with_metadata(modules / "pose_detection" / "pose_detection.tflite", 2, 127.5, 127.5))
        bundle.writestr("pose_landmarks_detector.tflite",
                        with_metadata(modules / "pose_landmark" / "pose_landmark_full.tflite", 5, 0.0, 255.0))
    return buffer.getvalue()


class MediaPipeEveryFrame:
    """The reference: MediaPipe's PoseLandmarker (BlazePose Full, up to 3 people) on every frame."""

    name = "mediapipe-every-frame"

    def __init__(self, max_people: int = 3):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=task_bundle()),
                                               running_mode=vision.RunningMode.VIDEO, num_poses=max_people)
        self._landmarker = vision.PoseLandmarker.create_from_options(options)

    def detect(self, image: np.ndarray, time: float) -> tuple[np.ndarray, np.ndarray]:
        import cv2
        import mediapipe

        height, width = image.shape[:2]
        frame = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        result = self._landmarker.detect_for_video(frame, int(round(time * 1000)))
        if not result.pose_landmarks:
            return np.zeros((0, 17, 2)), np.zeros((0, 17))
        points = np.array([[(p.x * width, p.y * height) for p in person] for person in result.pose_landmarks])
        visibility = np.array([[p.visibility for p in person] for person in result.pose_landmarks])
        return blazepose_to_h36m(points, np.clip(visibility, 0.0, 1.0))

    def close(self) -> None:
        self._landmarker.close()


def run(video: Path, detector) -> dict:
    """Detect every frame of ``video``; the chosen person's keypoints (N, 17, 2) px and the figures."""
    info = probe(video)
    looks = [0]
    if isinstance(detector, blazepose.BlazePoseDetector):
        discover = detector._discover

        def counted(*args):
            looks[0] += 1
            return discover(*args)

        detector._discover = counted
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    found = [(keypoints, confidence) for _, keypoints, confidence in detect_frames(detector, video, 0, None, seconds)]
    wall = time.perf_counter() - clock
    detector.close()
    detections = [_detector_output(i, *frame, info.width, info.height) for i, frame in enumerate(found)]
    chosen, _ = select_person(build_tracks(detections), len(detections), info.fps)
    seen = np.isfinite(chosen).all(axis=(1, 2))
    return {"chosen": chosen, "frames": len(found), "ms_per_frame": 1000 * wall / len(found),
            "decode_ms": 1000 * seconds["decode"] / len(found), "looks": looks[0],
            "people_per_frame": float(np.mean([len(k) for k, _ in detections])),
            "chosen_frames": int(seen.sum()), "chosen_first": int(np.argmax(seen)),
            "chosen_last": int(len(seen) - 1 - np.argmax(seen[::-1]))}


def jitter(points: np.ndarray) -> float:
    """points (N, 17, 2) px, NaN where missing -> median |second difference| over joints and frames."""
    accel = np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=-1)
    return float(np.nanmedian(accel))


def call_times_ms(video: Path, calls: int = 50) -> tuple[float, float]:
    """Median milliseconds of one landmark-model call (crop, model, refinement; a region half the
    picture's height at its centre) and of one look for people (:func:`posemoe.detect.people.find_people`),
    each on the video's middle frame."""
    from posemoe.detect.landmarks import Region, landmarks
    from posemoe.video import read_frames

    info = probe(video)
    image = next(read_frames(video, info.frame_count // 2)).image
    region = Region(np.array([info.width / 2, info.height / 2]), info.height / 2, 0.0)

    def median_ms(call) -> float:
        call()  # the model loads on the first call
        times = []
        for _ in range(calls):
            clock = time.perf_counter()
            call()
            times.append(time.perf_counter() - clock)
        return 1000 * float(np.median(times))

    return median_ms(lambda: landmarks(image, region)), median_ms(lambda: people.find_people(image))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", default=str(ROOT / "samples" / "walk.mp4"))
    parser.add_argument("--every", type=int, nargs="+", default=[5, 10, 20, 30])
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    video = Path(args.video)
    info = probe(video)
    reference = run(video, MediaPipeEveryFrame())
    rows = [("MediaPipe PoseLandmarker on every frame (reference)", reference)]
    for every in args.every:
        rows.append((f"follow, look every {every} frames" + (" (shipped)" if every == blazepose.DISCOVER_EVERY else ""),
                     run(video, blazepose.BlazePoseDetector(discover_every=every))))
    for bar in (0.2, 0.5):
        rows.append((f"follow, look every {blazepose.DISCOVER_EVERY} frames, person detector's bar {bar:g} "
                     f"(shipped: {blazepose.MIN_DETECTION:g})", run(video, blazepose.BlazePoseDetector(min_detection=bar))))
    lines = [f"Detection on {video.name} ({info.width}x{info.height}, {info.frame_count} frames at {info.fps:g} frames/s), "
             f"one thread, whole video. Machine: {describe_machine()}.", "",
             "| detector | ms per frame (of it decoding) | looks for people | people per frame | chosen person: frames "
             "(first-last) | vs reference, median px | raw jitter, px/frame^2 |", "|---|---:|---:|---:|---|---:|---:|"]
    figures = []
    for name, row in rows:
        both = np.isfinite(row["chosen"]).all(axis=(1, 2)) & np.isfinite(reference["chosen"]).all(axis=(1, 2))
        distance = float(np.median(np.linalg.norm(row["chosen"][both] - reference["chosen"][both], axis=-1))) if both.any() else float("nan")
        looks = "every frame" if row is reference else str(row["looks"])
        shake = jitter(row["chosen"])
        lines.append(f"| {name} | {row['ms_per_frame']:.1f} ({row['decode_ms']:.1f}) | {looks} | {row['people_per_frame']:.2f} | "
                     f"{row['chosen_frames']} ({row['chosen_first']}-{row['chosen_last']}) | {distance:.1f} | {shake:.1f} |")
        figures.append({"detector": name, **{k: v for k, v in row.items() if k != "chosen"}, "vs_reference_px": distance,
                        "jitter": shake})
    call, look = call_times_ms(video)
    lines += ["", f"One call of the landmark model as shipped (crop, ONNX Runtime on one thread, heatmap refinement): "
                  f"{call:.1f} ms; one look for people with the person detector (letterbox, ONNX Runtime on one "
                  f"thread, decoding, suppression): {look:.1f} ms; medians of 50."]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Detection: how often to look for people\n\nGenerated by `python benchmarks/detect.py`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "video": video.name, "rows": figures,
                                       "landmark_call_ms": call, "person_detector_ms": look}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
