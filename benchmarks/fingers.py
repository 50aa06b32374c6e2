"""Finger angles on synthetic hands: known joint angles -> 21 points seen by a camera -> our solve -> angles.

    python benchmarks/fingers.py [--hands N] [--frames N] [--seed S] [--fit-iterations N]
                                 [--markdown FILE] [--json FILE]

Each synthetic hand is a short take (``--frames``, default 30) of one person's hand: a human-sized hand
(wrist to middle knuckle 7.5-9.5 cm, each segment within 5 % of Buchholz et al.'s proportions), every
frame with its own joint angles drawn uniformly inside the joint limits less 5 degrees at each end, its
own palm orientation drawn uniformly over all rotations, the wrist 0.3-1.5 m in front of a pinhole camera
and anywhere in a 1280 x 720 view. Each take's lens is its own: a field of view across the long side
drawn from 55-80 degrees (phone main cameras and webcams).

What the solve is given is what the product gives it (``hands.body_hands``): the hand model's
landmarks (x, y pixels and a depth relative to the wrist in the same pixel scale, MediaPipe's format)
through ``fingers.camera_points`` with the take's ``focal_px``. Unless the user types a focal length,
that is the capture's default guess, ``focal_from_fov(width, height)`` (``DEFAULT_FOV_DEGREES`` across the long
side), not the true lens: the "focal guessed" rows. "focal given" rows pass the true focal length (a
user who knows the lens); the "no focal" row passes none, the weak-perspective hand as the model gives
it (what the solve saw before ``camera_points``; for comparison only, the product never does this).

The noise imitates MediaPipe's landmark jitter, independent per point and frame: ``level`` px per
coordinate (standard deviation) per 150 px of hand length (wrist to middle fingertip) on x and y, and
1.3 times that on the relative depth. Where those figures come from: MediaPipe's HandLandmarker on our
real hand clips (``../shared/media/real/hands/``, the references cached by ``benchmarks/hands.py``),
the robust (median absolute) second difference of each landmark over three frames, divided by
0.6745 * sqrt(6) to turn it into a per-frame standard deviation and scaled to a 150 px hand: 0.1-0.3 px
on the still close-ups (open_hand_closeup, asl_hand_portrait, hands 220-330 px long), 0.3-1.5 px on
most signers (hands 60-90 px long), up to 2-4 px on fast signing and waving, where real motion inflates
the figure (so these are upper bounds for the noise). The depth's figure is a median 1.3 times the
image's over those tracks. Hence levels 0.5 (a still, well-seen hand), 1 (typical) and 2 (poor); one
row triples the depth noise instead (MediaPipe's depth also errs slowly, which frame-to-frame jitter
does not show). Rows:
- "exact 3D": the true camera-space points, no noise: the solve's own error (must be ~0);
- single frames, no smoothing: every frame its own random pose and palm;
- "moving hand, One-Euro 0.5": the angles and palm drift smoothly over the take instead of jumping,
  solved with the product's default smoothing (how much the filter wins back on real motion).
Errors are absolute differences from the true angles, after the solve's joint limits, in degrees, pooled
per joint kind: finger MCP flexion, finger MCP abduction, PIP, DIP, the thumb's four angles, and all 20.
``--fit-iterations 0`` runs the direct per-segment solve instead of the least-squares fit (the "before").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.spatial.transform import Rotation

from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.motion import fingers
from posemoe.camera import focal_from_fov

WIDTH, HEIGHT, FPS = 1280, 720, 30.0
FOV_RANGE = (55.0, 80.0)  # degrees across the long side: the true lenses
DEPTH_NOISE = 1.3  # the relative depth's jitter per the image's, measured (module docstring)
GUESS = focal_from_fov(WIDTH, HEIGHT)  # what the capture assumes when the user gives no lens
FLOOR_DEG = 5.0  # the product's floor: median error at most 5 degrees
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


def camera_view(points: np.ndarray, focal: float, hand_length: float, level: float, depth_noise: float,
                rng: np.random.Generator) -> np.ndarray:
    """True camera-space points (T, 21, 3) metres seen through a lens of ``focal`` px -> what the hand
    model gives: (T, 21, 3) pixels (u, v, depth relative to the wrist in the same pixel scale), with
    noise of ``level`` px per 150 px of hand length on u, v and ``depth_noise`` times that on the depth."""
    wrist_depth = points[:, :1, 2:3]
    pixels = focal * points[..., :2] / points[..., 2:3] + (WIDTH / 2, HEIGHT / 2)
    relative = focal * (points[..., 2:3] - wrist_depth) / wrist_depth
    out = np.concatenate([pixels, relative], axis=-1)
    sigma = level * (focal * hand_length / wrist_depth[:, 0, 0]) / 150.0  # (T,) px
    noise = rng.normal(size=out.shape) * sigma[:, None, None] * np.array([1.0, 1.0, depth_noise])
    return out + noise


def one_hand(rng: np.random.Generator, frames: int, moving: bool) -> tuple[str, np.ndarray, np.ndarray, float, float]:
    """One synthetic take: side, true angles (T, 5, 4) radians, true camera-space points (T, 21, 3) m,
    the hand's length (wrist to middle fingertip) in metres and the lens's focal length in px."""
    side = ("left", "right")[rng.integers(2)]
    shape = random_shape(rng)
    focal = focal_from_fov(WIDTH, HEIGHT, rng.uniform(*FOV_RANGE))
    if moving:
        angles, palm = moving_angles(rng, frames)
        depth = np.full(frames, rng.uniform(0.3, 1.5))
        across = np.tile(rng.uniform(-1, 1, size=2), (frames, 1))
    else:
        angles, palm = draw_angles(rng, frames), Rotation.random(frames, random_state=rng).as_matrix()
        depth = rng.uniform(0.3, 1.5, size=frames)
        across = rng.uniform(-1, 1, size=(frames, 2))
    # Anywhere in the view, keeping the wrist a hand's length inside the picture.
    wrist = np.stack([across[:, 0] * (WIDTH / 2 - 150) * depth / focal,
                      across[:, 1] * (HEIGHT / 2 - 150) * depth / focal, depth], axis=1)
    points = fingers.forward(angles, palm, wrist, shape, side)
    hand_length = float(np.linalg.norm(shape.bases[2]) + shape.lengths[2].sum())
    return side, fingers.clip_to_limits(angles), points, hand_length, focal


def run_row(seed: int, hands: int, frames: int, level: float | None, lens: str = "guessed", moving: bool = False,
            depth_noise: float = DEPTH_NOISE, fit_iterations: int = 5) -> dict:
    """level None: the exact camera-space points. lens: what ``camera_points`` is given, "guessed" (the
    capture's default), "given" (the true focal length) or "none". Returns the errors (hands * frames,
    5, 4) degrees and the time the solve took."""
    rng = np.random.default_rng(seed)
    errors, seconds = [], 0.0
    settings = fingers.FingerSettings(smoothing=0.5 if moving else 0.0, fit_iterations=fit_iterations)
    for _ in range(hands):
        side, truth, points, hand_length, focal = one_hand(rng, frames, moving)
        if level is None:
            seen = points
        else:
            view = camera_view(points, focal, hand_length, level, depth_noise, rng)
            known = {"guessed": GUESS, "given": focal, "none": None}[lens]
            seen = fingers.camera_points(view, known, (WIDTH / 2, HEIGHT / 2))
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
    parser.add_argument("--fit-iterations", type=int, default=fingers.FingerSettings().fit_iterations,
                        help="the solve's least-squares steps (0: the direct per-segment solve)")
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    # name, noise level, lens, moving, depth noise
    rows = [("exact 3D (camera space), no noise", None, "given", False, DEPTH_NOISE),
            ("no focal (weak perspective), noise 0", 0.0, "none", False, DEPTH_NOISE),
            ("focal given, noise 0", 0.0, "given", False, DEPTH_NOISE)]
    rows += [(f"focal guessed, noise {level:g} px", level, "guessed", False, DEPTH_NOISE)
             for level in (0.0, 0.5, 1.0, 2.0)]
    rows += [("focal given, noise 1 px", 1.0, "given", False, DEPTH_NOISE),
             ("focal guessed, noise 1 px, depth noise x3", 1.0, "guessed", False, 3.0)]
    rows += [(f"moving hand, focal guessed, noise {level:g} px, One-Euro 0.5", level, "guessed", True, DEPTH_NOISE)
             for level in (1.0, 2.0)]
    results = []
    for name, level, lens, moving, depth_noise in rows:
        result = run_row(args.seed, args.hands, args.frames, level, lens, moving, depth_noise, args.fit_iterations)
        results.append({"row": name, "noise_px_per_150px": level, "lens": lens, "moving": moving,
                        "depth_noise": depth_noise, "seconds": result["seconds"],
                        "frames": len(result["errors"]), **summarise(result["errors"])})
    header = " | ".join(f"{kind} median / p90" for kind in KINDS)
    lines = [f"Finger angles on synthetic hands: {args.hands} takes of {args.frames} frames per row (seed "
             f"{args.seed}), wrist 0.3-1.5 m from a pinhole camera of {FOV_RANGE[0]:g}-{FOV_RANGE[1]:g} degrees "
             f"across {WIDTH} px (the guess: {GUESS:.0f} px), palms turned all round, noise per 150 px of hand "
             f"length, depth {DEPTH_NOISE:g} x; solve: {args.fit_iterations} least-squares steps; error in degrees "
             f"against the true angles (issue 37's floor: median <= {FLOOR_DEG:g}). Machine: {describe_machine()}.", "",
             f"| input | {header} | solve ms/frame |", "|---|" + "---:|" * (len(KINDS) + 1)]
    for r in results:
        cells = " | ".join(f"{r[kind]['median']:.2f} / {r[kind]['p90']:.2f}" for kind in KINDS)
        lines.append(f"| {r['row']} | {cells} | {1000 * r['seconds'] / r['frames']:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Hands: finger angles\n\nGenerated by `python benchmarks/fingers.py --hands {args.hands} "
                           f"--seed {args.seed} --fit-iterations {args.fit_iterations}`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "hands": args.hands, "frames": args.frames,
                                       "seed": args.seed, "fit_iterations": args.fit_iterations, "rows": results},
                                      indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
