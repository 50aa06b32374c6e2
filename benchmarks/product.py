"""Accuracy of the lifter users get: ``posemoe.lift.Lifter`` with its defaults, on Human3.6M S9/S11.

    python benchmarks/product.py [--weights DIR] [--every N] [--true-lens] [--markdown FILE] [--json FILE]

The lab benchmark (``training/benchmark.py``) lifts Human3.6M as recorded, through the training
loop's own window function. This one goes through the product's door, ``Lifter().lift(pixels, width,
height, confidence, fps=...)``, with every lifting setting at its default (flip averaging, windows every
9 frames, the product's normalisation, the default lens, ``posemoe.camera.DEFAULT_FOV_DEGREES``), on three kinds of input:

- (a) Human3.6M as recorded: ground-truth 2D through the calibrated cameras, 50 frames/s;
- (b) the test subjects' 3D filmed by virtual phone cameras (``training/views.py``, evaluation
  stream, seeded): yaw all round, pitch -25 to +10 degrees, 0.5-2.2 m high, 2-10 m away, 55-85 degree
  lenses, 16:9 and 9:16 pictures, the person now and then partly out of the picture (those joints
  are given with confidence 0, as a detector that cannot see them), at 24, 30 and 60 frames/s;
- (c) the real Stacked Hourglass detections of (a).

``--true-lens`` gives the Lifter every camera's own focal length (``focal_px``), as a user who knows
the lens would; the default is the user who does not. Scores against the truth at the video's own instants: protocol 1 (MPJPE), protocol 2 (P-MPJPE), MPJVE
and acceleration error in mm/s and mm/s^2 (so that frame rates compare). (a) and (c) use every
``--every``-th sequence x camera (say which next to the figures); (b) uses every test sequence, one
virtual camera each, since one camera per sequence is already few: the per-sequence errors spread
widely (25 to 87 mm on every 3rd sequence, whose 20 cameras gave the shipped weights 3 mm more than
all 58; the model card has the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from posemoe import metrics
from posemoe.camera import DEFAULT_FOV_DEGREES, denormalize_screen
from posemoe.lift import DEFAULT_WEIGHTS, Lifter
from posemoe.machine import describe_machine
from training.data import MISSING_NOTE, TEST_SUBJECTS, action_name, load_clips
from training.views import EVAL_STREAM, film, load_world

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
DATA = SHARED / "h36m_3d_17j_mm.npz"
DETECTIONS = SHARED / "h36m_2d_sh_mpii16_px10.npz"
RATES = (24.0, 30.0, 60.0)
SEED = 0


class Scores:
    """Per-action accumulation of per-frame errors (metres), averaged per action then over actions."""

    def __init__(self):
        self.actions: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.frames = 0

    def add(self, action: str, pred: np.ndarray, truth: np.ndarray, fps: float) -> np.ndarray:
        """pred, truth: (N, 17, 3) root-relative metres at ``fps``. Returns the (N, 17) joint errors
        of protocol 1, metres."""
        bucket = self.actions[action]
        error = np.linalg.norm(pred - truth, axis=-1)
        bucket["p1"].append(error.mean(-1))
        bucket["p2"].append(np.linalg.norm(metrics.procrustes_align(pred, truth) - truth, axis=-1).mean(-1))
        bucket["mpjve"].append(np.linalg.norm(np.diff(pred, axis=0) - np.diff(truth, axis=0), axis=-1).mean(-1) * fps)
        accel = np.diff(pred, n=2, axis=0) - np.diff(truth, n=2, axis=0)
        bucket["accel"].append(np.linalg.norm(accel, axis=-1).mean(-1) * fps * fps)
        self.frames += len(pred)
        return error

    def summary(self) -> dict:
        per_action = {a: {k: 1000 * float(np.concatenate(v).mean()) for k, v in d.items()} for a, d in sorted(self.actions.items())}
        keys = ("p1", "p2", "mpjve", "accel")
        return {**{k: float(np.mean([v[k] for v in per_action.values()])) for k in keys}, "frames": self.frames,
                "actions": per_action}


def recorded(lifter: Lifter, clips: list, detections: bool, true_lens: bool = False) -> dict:
    """(a) or (c): the test clips as recorded, ground-truth 2D or the real detections; ``true_lens``
    gives the Lifter each camera's focal length."""
    scores = Scores()
    for clip in clips:
        xy = clip.det2d if detections else clip.pose2d
        if xy is None:
            continue
        pixels = denormalize_screen(xy.astype(np.float64), clip.width, clip.height)
        focal_px = clip.focal * clip.width / 2.0 if true_lens else None
        pred = lifter.lift(pixels, clip.width, clip.height, fps=50.0, focal_px=focal_px)
        scores.add(action_name(clip.action), pred, clip.pose3d, 50.0)
    return scores.summary()


def filmed(lifter: Lifter, sequences: list[tuple[str, np.ndarray]], fps: float, seed: int = SEED,
           true_lens: bool = False) -> dict:
    """(b): test sequences ("subject/action", (N, 17, 3) world metres), each filmed by its own
    virtual camera at ``fps``; ``true_lens`` gives the Lifter that camera's focal length."""
    scores = Scores()
    out_of_frame = []
    # Joint errors (m) pooled over sequences by what the picture shows: frames with the whole body in;
    # in frames with some joints outside, the joints inside and the joints outside (given confidence 0).
    parts: dict[str, list] = {"whole_body": [], "inside": [], "outside": []}
    for index, (key, world) in enumerate(sequences):
        # The same camera for a sequence at every frame rate: only the rate changes between rows.
        view = film(world, fps, np.random.default_rng([seed, EVAL_STREAM, index]))
        confidence = view.in_frame.astype(np.float64)
        pred = lifter.lift(view.pixels, view.width, view.height, confidence, fps=fps,
                           focal_px=view.focal_px if true_lens else None)
        error = scores.add(action_name(key.split("/", 1)[1]), pred, view.truth, fps)  # (M, 17)
        out_of_frame.append(1 - view.in_frame.mean())
        whole = view.in_frame.all(1)
        parts["whole_body"].append(error[whole].ravel())
        parts["inside"].append(error[~whole][view.in_frame[~whole]])
        parts["outside"].append(error[~whole][~view.in_frame[~whole]])
    pooled = {f"{name}_mm": 1000 * float(np.concatenate(v).mean()) if sum(map(len, v)) else None for name, v in parts.items()}
    return {**scores.summary(), "out_of_frame": float(np.mean(out_of_frame)), "by_picture": pooled}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="weights folder (default: the shipped ones)")
    p.add_argument("--every", type=int, default=2, help="use every n-th sequence x camera in (a) and (c); (b) uses every sequence")
    p.add_argument("--rates", type=float, nargs="+", default=list(RATES), help="frame rates of (b)")
    p.add_argument("--true-lens", action="store_true", help="give the Lifter each camera's focal length")
    p.add_argument("--markdown")
    p.add_argument("--json")
    args = p.parse_args(argv)
    if not DATA.exists():
        print(f"{DATA} not found: this benchmark needs the Human3.6M files of ../shared/data.", file=sys.stderr)
        return 2
    lifter = Lifter(args.weights)
    clips = load_clips(DATA, TEST_SUBJECTS, DETECTIONS)[:: args.every]
    sequences = list(load_world(DATA, TEST_SUBJECTS).items())
    rows = []
    clock = time.perf_counter()
    lens = args.true_lens
    rows.append(("(a) as recorded, ground-truth 2D", 50.0, recorded(lifter, clips, False, lens)))
    print(f"(a): {rows[-1][2]['p1']:.1f} mm ({time.perf_counter() - clock:.0f} s)", file=sys.stderr, flush=True)
    for fps in args.rates:
        rows.append((f"(b) virtual phone cameras, {fps:g} frames/s", fps, filmed(lifter, sequences, fps, true_lens=lens)))
        print(f"(b) {fps:g}: {rows[-1][2]['p1']:.1f} mm ({time.perf_counter() - clock:.0f} s)", file=sys.stderr, flush=True)
    rows.append(("(c) as recorded, Stacked Hourglass detections", 50.0, recorded(lifter, clips, True, lens)))
    print(f"(c): {rows[-1][2]['p1']:.1f} mm ({time.perf_counter() - clock:.0f} s)", file=sys.stderr, flush=True)
    weights = Path(args.weights)
    shown = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights
    command = (f"python benchmarks/product.py --every {args.every}" + ("" if weights == DEFAULT_WEIGHTS else f" --weights {shown}")
               + (" --true-lens" if lens else "") + ("" if args.rates == list(RATES) else " --rates " + " ".join(f"{r:g}" for r in args.rates)))
    lines = [
        "# Product-path accuracy: the Lifter as users get it",
        "",
        f"Generated by `{command}` ({time.perf_counter() - clock:.0f} s). Weights: `{shown}`. "
        f"Machine: {describe_machine()}.",
        "",
        "`Lifter().lift(pixels, width, height, confidence, fps=...)` with every lifting setting at its default "
        "(flip averaging, windows every 9 frames, "
        + ("each camera's own focal length given as `focal_px`), " if lens else f"the {DEFAULT_FOV_DEGREES:g}-degree default lens; the true lens is not given), ")
        + 
        f"on Human3.6M S9 and S11, every {args.every}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(args.every, 'th')} sequence x camera (a, c) "
        f"and every sequence (b, {len(sequences)}). Virtual cameras (b): `training/views.py`, evaluation stream, seed 0, one camera per "
        "sequence (the same at every rate): yaw all round, pitch -25 to +10 degrees, 0.5-2.2 m high, 2-10 m away, "
        "55-85 degree lenses, 16:9 or 9:16; joints outside the picture are given with confidence 0. "
        "Errors in mm, root-relative, every frame, averaged per action then over actions; MPJVE in mm/s and "
        "acceleration error in mm/s^2 at the video's rate.",
        "",
        f"**{MISSING_NOTE}**",
        "",
        "| input | frames/s | frames scored | protocol 1 | protocol 2 | MPJVE (mm/s) | accel. error (mm/s^2) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, fps, r in rows:
        note = f" ({100 * r['out_of_frame']:.1f} % of joints out of the picture)" if "out_of_frame" in r else ""
        lines.append(f"| {name}{note} | {fps:g} | {r['frames']:,} | {r['p1']:.1f} | {r['p2']:.1f} | {r['mpjve']:.0f} | {r['accel']:.0f} |")
    lines += ["", "(b) by what the picture shows: protocol 1 per joint (mm), pooled over every joint and frame, in "
              "frames with the whole body in, and in frames where some joints are outside the picture (given with "
              "confidence 0) for the joints inside and outside:", "",
              "| frames/s | whole body in | joints inside, others out | joints outside |", "|---:|---:|---:|---:|"]
    for name, fps, r in rows:
        if "by_picture" in r:
            cells = [f"{v:.1f}" if v is not None else "-" for v in r["by_picture"].values()]
            lines.append(f"| {fps:g} | " + " | ".join(cells) + " |")
    actions = list(rows[0][2]["actions"])
    lines += ["", "Per action, protocol 1 / protocol 2 (mm):", "",
              "| action | " + " | ".join(name.split(",")[0].split(" ")[0] + (f" {fps:g}" if name.startswith("(b)") else "") for name, fps, _ in rows) + " |",
              "|---" * (1 + len(rows)) + "|"]
    for action in actions:
        cells = [f"{r['actions'][action]['p1']:.1f} / {r['actions'][action]['p2']:.1f}" if action in r["actions"] else "-" for _, _, r in rows]
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "machine": describe_machine(),
                                               "rows": [{"input": n, "fps": f, **r} for n, f, r in rows]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
