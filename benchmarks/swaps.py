"""Left/right swap repair on real detections: how many injected swaps it undoes, and what else it touches.

    python benchmarks/swaps.py [--trials 300] [--seed 0] [--markdown FILE] [--json FILE]
    python benchmarks/swaps.py --save tests/data/walk_detections.npz   # refresh the tests' copy

The detections are the chosen person's 2D keypoints on the bundled sample, as the capture finds them
(one thread, the tracker's choice), read from ``tests/data/walk_detections.npz`` (``--fresh``: detected
now; refresh the copy with ``--save`` whenever the detector changes). Each trial swaps the left and
right labels of the whole body, of the legs or of the arms for 3-30 consecutive frames (seeded), runs
:func:`posemoe.swaps.repair_swaps` and counts the swapped frames whose labels come back exactly
("repaired"), those that come back within 2 % of the body's height of the truth (the two sides overlap
there, so a swap changes next to nothing: "right or indistinguishable"), and any frame outside the swap
that changed. The clean detections alone must come through untouched.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.swaps import PAIRS, body_height, exchange, repair_swaps

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "walk.mp4"
SHARED = ROOT.parent / "shared" / "data"
DETECTIONS = ROOT / "tests" / "data" / "walk_detections.npz"
KINDS = {"whole body": ("legs", "arms"), "legs": ("legs",), "arms": ("arms",)}


def detect_sample() -> tuple[np.ndarray, np.ndarray, float]:
    """The chosen person's keypoints (N, 17, 2) px (NaN where unseen), confidence (N, 17), fps."""
    from posemoe.detect import default_detector
    from posemoe.pipeline import Settings, detector_output, detect_video
    from posemoe.track import build_tracks, select_person
    from posemoe.video import probe

    info = probe(SAMPLE)
    detector = default_detector()
    try:
        found = detect_video(SAMPLE, detector, Settings(workers=1))
    finally:
        detector.close()
    detections = [detector_output(i, info.width, info.height, *frame) for i, frame in enumerate(found)]
    keypoints, confidence = select_person(build_tracks(detections), len(detections), info.fps)
    return keypoints, confidence, info.fps


def trial(keypoints, confidence, fps, rng, pairs: tuple[str, ...]) -> dict:
    """One injected swap of 3-30 detected frames; the counts of what the repair did."""
    seen = np.flatnonzero(np.isfinite(keypoints).all(axis=(1, 2)))
    length = int(rng.integers(3, 31))
    start = int(rng.integers(0, len(seen) - length + 1))
    frames = seen[start:start + length]
    broken, broken_confidence = exchange(keypoints, confidence, frames, pairs)
    fixed, _, _ = repair_swaps(broken, broken_confidence, fps)
    tolerance = 0.02 * body_height(keypoints)
    error = np.nanmax(np.linalg.norm(fixed - keypoints, axis=-1), axis=1)  # worst joint per frame, px
    inside = np.zeros(len(keypoints), dtype=bool)
    inside[frames] = True
    exact = np.isfinite(keypoints).all(axis=(1, 2))
    return {"swapped": length,
            "repaired": int((error[frames] == 0).sum()),
            "within_tolerance": int((error[frames] <= tolerance).sum()),
            "others_changed": int(((error > 0) & ~inside & exact).sum())}


def human36m(trials: int, rng: np.random.Generator, subjects: tuple[str, ...] = ("S9", "S11")) -> tuple[list[str], dict]:
    """The Stacked Hourglass detections of ``subjects`` (every 3rd sequence x camera, every 2nd frame: 25
    frames/s), whose true labels the projected ground truth gives: held out for S9/S11; the training
    subjects (S1, S5-S8) are where the repair's constants were chosen. Returns Markdown lines and
    figures."""
    from training.data import load_clips

    clips = [c for c in load_clips(SHARED / "h36m_3d_17j_mm.npz", subjects, SHARED / "h36m_2d_sh_mpii16_px10.npz")
             if c.det2d is not None][::3]
    fps = 25.0
    # The detector's own swaps, judged against the truth: a pair is swapped in a frame when its joints
    # lie nearer the truth with left and right exchanged, by at least 5 % of the body's height.
    found = {"true": 0, "relabelled": 0, "right": 0, "closer": 0, "farther": 0}
    injected = {kind: {"swapped": 0, "repaired": 0, "others_changed": 0} for kind in KINDS}
    for clip in clips:
        detected = clip.det2d[::2].astype(np.float64)
        truth = clip.pose2d[::2].astype(np.float64)
        confidence = np.ones(detected.shape[:2])
        fixed, fixed_confidence, relabelled = repair_swaps(detected, confidence, fps)
        height = body_height(truth)
        for column, (right, left) in enumerate(PAIRS.values()):
            both, mirrored = list(right) + list(left), list(left) + list(right)
            as_labelled = np.linalg.norm(detected[:, both] - truth[:, both], axis=-1).mean(1)
            exchanged = np.linalg.norm(detected[:, mirrored] - truth[:, both], axis=-1).mean(1)
            swapped = as_labelled - exchanged > 0.05 * height
            found["true"] += int(swapped.sum())
            found["relabelled"] += int(relabelled[:, column].sum())
            found["right"] += int((relabelled[:, column] & swapped).sum())
            after = np.linalg.norm(fixed[:, both] - truth[:, both], axis=-1).mean(1)
            change = (after - as_labelled)[relabelled[:, column]]
            found["closer"] += int((change < -0.01 * height).sum())
            found["farther"] += int((change > 0.01 * height).sum())
        segment = slice(0, min(len(fixed), 300))
        for kind, pairs in KINDS.items():
            for _ in range(trials):
                result = trial(fixed[segment], fixed_confidence[segment], fps, rng, pairs)
                for key in injected[kind]:
                    injected[kind][key] += result[key]
    held_out = not set(subjects) & {"S1", "S5", "S6", "S7", "S8"}
    lines = ["", f"{'Held out' if held_out else 'Where the constants were chosen'}: Human3.6M {'/'.join(subjects)} Stacked "
             f"Hourglass detections ({len(clips)} sequence x camera clips, "
             "25 frames/s), a detector with its own swaps whose true labels the ground truth gives. Of the "
             f"limb pairs it labelled the wrong way round (by 5 % of the body's height or more; {found['true']:,} "
             f"pair-frames), the repair put back {100 * found['right'] / max(found['true'], 1):.1f} % (recall); of the "
             f"{found['relabelled']:,} pair-frames it relabelled, {100 * found['right'] / max(found['relabelled'], 1):.1f} % "
             f"were such swaps (precision); against the truth, {found['closer']:,} relabelled pair-frames came closer and "
             f"{found['farther']:,} went farther (by 1 % of the height or more). "
             f"Injected swaps into the repaired clips ({trials} per kind per clip, 300 frames each):", "",
             "| swapped | frames swapped | repaired exactly | other frames changed |", "|---|---:|---:|---:|"]
    for kind, row in injected.items():
        lines.append(f"| {kind} | {row['swapped']:,} | {100 * row['repaired'] / row['swapped']:.1f} % | {row['others_changed']} |")
    return lines, {"clips": len(clips), "detector_swaps": found, "injected": injected}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=300, help="injected swaps per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", nargs="+", default=["S9", "S11"],
                        help="Human3.6M subjects whose detections to repair (default: the held-out S9 S11; "
                             "the constants were chosen on S1 S5 S6 S7 S8)")
    parser.add_argument("--fresh", action="store_true", help="detect the sample now instead of reading the tests' copy")
    parser.add_argument("--save", help="detect the sample and write the detections here (the tests' copy)")
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.save or args.fresh:
        keypoints, confidence, fps = detect_sample()
        if args.save:
            with atomic_output(args.save) as tmp:
                with open(tmp, "wb") as file:
                    np.savez_compressed(file, keypoints=keypoints.astype(np.float32),
                                        confidence=confidence.astype(np.float32), fps=np.float64(fps))
            print(f"wrote {args.save}", file=sys.stderr)
    else:
        with np.load(DETECTIONS) as data:
            keypoints, confidence, fps = data["keypoints"].astype(np.float64), data["confidence"].astype(np.float64), float(data["fps"])
    seen = np.isfinite(keypoints).all(axis=(1, 2))
    # The detector's own output already holds swaps (BlazePose flickers the legs' labels for a frame or
    # a few in this side view); the clean clip is the one with those undone, and it must come through
    # a second repair untouched.
    keypoints, confidence, raw_swaps = repair_swaps(keypoints, confidence, fps)
    _, _, clean = repair_swaps(keypoints, confidence, fps)
    rng = np.random.default_rng(args.seed)
    rows = {}
    for kind, pairs in KINDS.items():
        results = [trial(keypoints, confidence, fps, rng, pairs) for _ in range(args.trials)]
        rows[kind] = {key: int(sum(r[key] for r in results)) for key in results[0]}
    source = "detected now by the shipped detector" if args.save or args.fresh else \
        f"as recorded in {DETECTIONS.relative_to(ROOT)} (`--fresh`: detected now)"
    lines = [f"Swap repair on the chosen person's real detections of {SAMPLE.name}, {source} ({int(seen.sum())} detected "
             f"frames at {fps:g} frames/s), {args.trials} injected swaps of 3-30 frames per kind, seed {args.seed}. "
             f"The detector's own output: legs relabelled in {int(raw_swaps[:, 0].sum())} frames, arms in "
             f"{int(raw_swaps[:, 1].sum())}; that clip, repaired, repaired again: {int(clean.any(1).sum())} frames "
             f"relabelled. Machine: {describe_machine()}.", "",
             "| swapped | frames swapped | repaired exactly | right or indistinguishable (2 % of height) | other frames changed |",
             "|---|---:|---:|---:|---:|"]
    for kind, row in rows.items():
        lines.append(f"| {kind} | {row['swapped']:,} | {100 * row['repaired'] / row['swapped']:.1f} % | "
                     f"{100 * row['within_tolerance'] / row['swapped']:.1f} % | {row['others_changed']} |")
    figures = {"machine": describe_machine(), "detector_swaps": raw_swaps.sum(0).tolist(),
               "clean_relabelled": int(clean.any(1).sum()), "rows": rows}
    if SHARED.is_dir():
        held_lines, figures["human36m"] = human36m(max(1, args.trials // 60), rng, tuple(args.subjects))
        lines += held_lines
    else:
        lines += ["", f"(The held-out check on Human3.6M needs {SHARED}; skipped.)"]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Left/right swap repair\n\nGenerated by `python benchmarks/swaps.py`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
