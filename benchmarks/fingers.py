"""Finger angles on synthetic hands: known joint angles -> 21 points seen by a camera -> our solve -> angles.

    python benchmarks/fingers.py [--hands N] [--frames N] [--seed S] [--markdown FILE] [--json FILE]

Each synthetic hand is a short take (``--frames``, default 30) of one person's hand: a human-sized hand
(wrist to middle knuckle 7.5-9.5 cm, each segment within 5 % of Buchholz et al.'s proportions), every
frame with its own joint angles drawn uniformly inside the joint limits less 5 degrees at each end, its
own palm orientation drawn uniformly over all rotations, the wrist 0.3-1.5 m in front of a pinhole camera
(focal 1000 px) and anywhere in a 1280 x 720 view. The points are projected to pixels, and the hand
model's output is imitated: pixel noise of ``level`` px per 150 px of hand length (wrist to middle
fingertip) on x and y, twice that on the relative depth, which MediaPipe gives in the same (pixel) scale
as x and y, with the wrist at 0. The solve gets what the product will give it: (u, v, relative depth) in
pixels, a weak-perspective hand, so near the camera the perspective the model cannot see adds its own
error. Rows:
- "exact 3D": the true camera-space points, no noise: the solve's own error (must be ~0);
- "pixels + relative depth" at noise 0, 1, 2, 3 px per 150 px hand: one frame at a time, no smoothing;
- "moving hand, One-Euro": the angles and palm drift smoothly over the take instead of jumping, with
  2 px noise, solved with the default smoothing (how much the filter wins back on real motion);
- "perspective undone": as the pixel rows, but the solve's input goes through
  ``fingers.camera_points`` with the camera's focal length, which removes the weak-perspective error
  (what a known or estimated focal length would buy).
Errors are absolute differences from the true angles, after the solve's joint limits, in degrees, pooled
per joint kind: finger MCP flexion, finger MCP abduction, PIP, DIP, the thumb's four angles, and all 20.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posemoe.files import atomic_output  # noqa: E402
from posemoe.machine import describe_machine  # noqa: E402
from posemoe.motion import fingers  # noqa: E402

FOCAL, WIDTH, HEIGHT, FPS = 1000.0, 1280, 720, 30.0
FLOOR_DEG = 5.0  # issue 37: median error at most 5 degrees
KINDS = {  # name: (fingers, angle columns)
    "MCP flex": ([1, 2, 3, 4], [0]),
    "MCP abduction": ([1, 2, 3, 4], [1]),
    "PIP": ([1, 2, 3, 4], [2]),
    "DIP": ([1, 2, 3, 4], [3]),
    "thumb": ([0], [0, 1, 2, 3]),
    "all": ([0, 1, 2, 3, 4], [0, 1, 2, 3]),
}


def random_shape(rng: np.random.Generator) -> fingers.HandShape:
    shape = fingers.default_shape(rng.uniform(0.075, 0.095))
    return fingers.HandShape(shape.bases, shape.lengths * rng.uniform(0.95, 1.05, size=shape.lengths.shape))


def draw_angles(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 5, 4) radians uniform inside the limits less 5 degrees each end (so clipping is no help)."""
    low, high = np.radians(fingers.LIMITS_DEG[..., 0] + 5), np.radians(fingers.LIMITS_DEG[..., 1] - 5)
    return rng.uniform(low, high, size=(n, 5, 4))


def moving_angles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth motion over n frames: angles (n, 5, 4) radians as sums of slow sines inside the limits, and
    palm frames (n, 3, 3) turning at up to about 3 rad/s."""
    low, high = np.radians(fingers.LIMITS_DEG[..., 0] + 5), np.radians(fingers.LIMITS_DEG[..., 1] - 5)
    t = np.arange(n)[:, None, None] / FPS
    phase = rng.uniform(0, 2 * np.pi, size=(2, 5, 4))
    freq = rng.uniform(0.3, 2.0, size=(2, 5, 4))  # Hz: a finger curling and opening up to twice a second
    wave = 0.5 + 0.25 * (np.sin(2 * np.pi * freq[0] * t + phase[0]) + np.sin(2 * np.pi * freq[1] * t + phase[1]))
    angles = low + (high - low) * wave
    spin = rng.normal(size=3)
    spin *= rng.uniform(0.5, 3.0) / np.linalg.norm(spin)
    palm = (Rotation.random(random_state=rng) * Rotation.from_rotvec(np.arange(n)[:, None] / FPS * spin)).as_matrix()
    return angles, palm


def camera_view(points: np.ndarray, hand_length: float, level: float, rng: np.random.Generator) -> np.ndarray:
    """True camera-space points (T, 21, 3) metres -> what the hand model gives: (T, 21, 3) pixels
    (u, v, depth relative to the wrist in the same pixel scale), with noise."""
    wrist_depth = points[:, :1, 2:3]
    pixels = FOCAL * points[..., :2] / points[..., 2:3] + (WIDTH / 2, HEIGHT / 2)
    relative = FOCAL * (points[..., 2:3] - wrist_depth) / wrist_depth
    out = np.concatenate([pixels, relative], axis=-1)
    sigma = level * (FOCAL * hand_length / wrist_depth[:, 0, 0]) / 150.0  # (T,) px
    noise = rng.normal(size=out.shape) * sigma[:, None, None] * np.array([1.0, 1.0, 2.0])
    return out + noise


def solver_input(view: np.ndarray, perspective: bool) -> np.ndarray:
    """What the solve is given: the weak-perspective hand, or (perspective) the same with the camera's
    focal length and centre used to undo the perspective (:func:`posemoe.motion.fingers.camera_points`)."""
    return fingers.camera_points(view, FOCAL if perspective else None, (WIDTH / 2, HEIGHT / 2))


def one_hand(rng: np.random.Generator, frames: int, moving: bool) -> tuple[str, np.ndarray, np.ndarray, float]:
    """One synthetic take: side, true angles (T, 5, 4) radians, true camera-space points (T, 21, 3) m,
    and the hand's length (wrist to middle fingertip) in metres."""
    side = ("left", "right")[rng.integers(2)]
    shape = random_shape(rng)
    if moving:
        angles, palm = moving_angles(rng, frames)
        depth = np.full(frames, rng.uniform(0.3, 1.5))
        across = np.tile(rng.uniform(-1, 1, size=2), (frames, 1))
    else:
        angles, palm = draw_angles(rng, frames), Rotation.random(frames, random_state=rng).as_matrix()
        depth = rng.uniform(0.3, 1.5, size=frames)
        across = rng.uniform(-1, 1, size=(frames, 2))
    # Anywhere in the view, keeping the wrist a hand's length inside the picture.
    wrist = np.stack([across[:, 0] * (WIDTH / 2 - 150) * depth / FOCAL,
                      across[:, 1] * (HEIGHT / 2 - 150) * depth / FOCAL, depth], axis=1)
    points = fingers.forward(angles, palm, wrist, shape, side)
    hand_length = float(np.linalg.norm(shape.bases[2]) + shape.lengths[2].sum())
    return side, fingers.clip_to_limits(angles), points, hand_length


def run_row(seed: int, hands: int, frames: int, level: float | None, moving: bool = False,
            perspective: bool = False) -> dict:
    """level None: the exact camera-space points. Returns the errors (hands * frames, 5, 4) degrees and
    the time the solve took."""
    rng = np.random.default_rng(seed)
    errors, seconds = [], 0.0
    settings = fingers.FingerSettings(smoothing=0.5 if moving else 0.0)
    for _ in range(hands):
        side, truth, points, hand_length = one_hand(rng, frames, moving)
        seen = points if level is None else solver_input(camera_view(points, hand_length, level, rng), perspective)
        clock = time.perf_counter()
        motion = fingers.solve_hand(seen, np.ones(frames), side, FPS, settings)
        seconds += time.perf_counter() - clock
        errors.append(np.degrees(np.abs(motion.angles - truth)))
    return {"errors": np.concatenate(errors), "seconds": seconds}


def summarise(errors: np.ndarray) -> dict:
    out = {}
    for kind, (which, columns) in KINDS.items():
        values = errors[:, which][:, :, columns].ravel()
        out[kind] = {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hands", type=int, default=300, help="synthetic takes per row (default 300)")
    parser.add_argument("--frames", type=int, default=30, help="frames per take (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    rows = [("exact 3D (camera space), no noise", None, False, False)]
    rows += [(f"pixels + relative depth, noise {level:g} px", float(level), False, False) for level in (0, 1, 2, 3)]
    rows += [("moving hand, noise 2 px, One-Euro 0.5", 2.0, True, False)]
    rows += [(f"perspective undone (focal known), noise {level:g} px", float(level), False, True) for level in (0, 2)]
    results = []
    for name, level, moving, perspective in rows:
        result = run_row(args.seed, args.hands, args.frames, level, moving, perspective)
        results.append({"row": name, "noise_px_per_150px": level, "moving": moving, "perspective_undone": perspective,
                        "seconds": result["seconds"],
                        "frames": len(result["errors"]), **summarise(result["errors"])})
    header = " | ".join(f"{kind} median / p90" for kind in KINDS)
    lines = [f"Finger angles on synthetic hands: {args.hands} takes of {args.frames} frames per row (seed "
             f"{args.seed}), wrist 0.3-1.5 m from a {FOCAL:g} px pinhole camera, palms turned all round; error "
             f"in degrees against the true angles (issue 37's floor: median <= {FLOOR_DEG:g}). "
             f"Machine: {describe_machine()}.", "",
             f"| input | {header} | solve ms/frame |", "|---|" + "---:|" * (len(KINDS) + 1)]
    for r in results:
        cells = " | ".join(f"{r[kind]['median']:.2f} / {r[kind]['p90']:.2f}" for kind in KINDS)
        lines.append(f"| {r['row']} | {cells} | {1000 * r['seconds'] / r['frames']:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Hands: finger angles\n\nGenerated by `python benchmarks/fingers.py --hands {args.hands} "
                           f"--seed {args.seed}`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "hands": args.hands, "frames": args.frames,
                                       "seed": args.seed, "rows": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
