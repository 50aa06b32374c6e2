"""World-grounded motion: the root's path, the floor and the feet, measured as the field measures them.

    python benchmarks/world.py [--every N] [--fps 30] [--weights DIR] [--markdown FILE] [--json FILE]

Human3.6M's test subjects (S9, S11), each sequence filmed by the same virtual phone camera as
``benchmarks/product.py``'s (b) (``training/views.py``, evaluation stream, seed 0: yaw all round, pitch
-25 to +10 degrees, 0.5-2.2 m high, 2-10 m away, 55-85 degree lenses, joints outside the picture given
with confidence 0), at 30 frames/s. The projected joints go through the capture's whole path after
detection, :func:`posemoe.pipeline.takes_from_detections` with its defaults (tracking, left/right repair,
lifting, root trajectory, world frame), then the clean-up users get, :func:`posemoe.motion.clean.clean`
with its defaults (smoothing, one length per bone, foot locking, the root as captured). Rows: the lens
not given (the default, ``posemoe.camera.DEFAULT_FOV_DEGREES``), the lens given (each camera's own focal length), and the lens not
given but the actor's height given (``--height``, the truth's standing height from its bone lengths), and
a moving camera: the same draw made to follow the actor, turning to keep the pelvis in the middle of the
picture and travelling with it (a dolly beside a walker: 70 % of the pelvis's travel on the floor), the
2D projected through each frame's camera and the true camera poses given to the capture
(``takes_from_detections(..., camera_path=...)``, camera "moving", the lens not given): its rows must
match the static camera's, the capture's own error being the same whichever way the camera moved.

Figures (the truth: Human3.6M's world, Z up, at the camera's instants):

- WA-MPJPE100 / W-MPJPE100 (mm): the take cut into 100-frame segments, each aligned to the truth by one
  similarity transform over the whole segment (WA) or over its first two frames (W), as WHAM and
  GVHMR define them (:mod:`posemoe.metrics`);
- RTE (%): the root's whole path rigidly aligned to the truth's, mean distance over the distance the
  truth travels;
- root depth error (mm, and % of the true depth): the cleaned pelvis's depth in the camera (scaled with
  the take when the height is given, as the Blender scene's camera is);
- foot sliding (mm per frame): how far the captured ankle moves from one frame to the next while the
  truth's ankle is planted (slower than 0.2 m/s and within 5 cm of its lowest), raw take and cleaned;
- penetration / float (mm): while the truth's ankle is planted, how far the captured sole (ankle less
  the rig's ankle height) is below / above the captured floor; sinking: frames whose lower sole is more
  than 2 cm under the floor (%);
- camera tilt error (degrees): the angle between the captured up direction and the truth's, in the
  camera's frame.

Per action, then the mean over actions (as the lifting tables are).
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
from posemoe.camera import CameraPath
from posemoe.files import atomic_output
from posemoe.lift import DEFAULT_WEIGHTS, Lifter
from posemoe.machine import describe_machine
from posemoe.motion.bones import robust_bone_lengths, standing_height
from posemoe.motion.clean import CleanupSettings, clean
from posemoe.skeleton import ANKLE_HEIGHT
from posemoe.normalize import resample_track
from posemoe.rotations import look_at
from posemoe.pipeline import takes_from_detections
from posemoe.settings import Settings
from posemoe.video import VideoInfo
from training.data import MISSING_NOTE, TEST_SUBJECTS, action_name
from training.views import EVAL_STREAM, film, load_world

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "h36m_3d_17j_mm.npz"
SEED = 0
ANKLES = (3, 6)
PLANTED_SPEED = 0.2  # m/s: the truth's ankle slower than this, ...
PLANTED_HEIGHT = 0.05  # m: ... and within this of its lowest, is planted
SINK = 0.02  # m
VARIANTS = {
    "lens not given": dict(lens=False, height=False),
    "lens given": dict(lens=True, height=False),
    "lens not given, height given": dict(lens=False, height=True),
    "moving camera, true poses given": dict(lens="moving", height=False),
}
DOLLY = 0.7  # the moving camera travels this share of the pelvis's travel on the floor
FIGURES = ("wa_mpjpe100_mm", "w_mpjpe100_mm", "rte_pct", "root_depth_mm", "root_depth_pct", "sliding_raw_mm",
           "sliding_mm", "penetration_mm", "float_mm", "sinking_pct", "tilt_deg")


def planted(ankles: np.ndarray, fps: float) -> np.ndarray:
    """ankles (N, 2, 3) world metres, Z up -> (N, 2) bool: the ankle is planted (still and low)."""
    speed = np.zeros(ankles.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(ankles, axis=0), axis=-1) * fps
    speed[0] = speed[1] if len(speed) > 1 else 0.0
    low = np.percentile(ankles[..., 2], 5, axis=0)
    return (speed < PLANTED_SPEED) & (ankles[..., 2] < low + PLANTED_HEIGHT)


def sliding(ankles: np.ndarray, contact: np.ndarray) -> float:
    """Mean ankle travel (m per frame) from the frame before, over frames where ``contact`` (N, 2) holds
    in both; ankles (N, 2, 3) metres."""
    step = np.linalg.norm(np.diff(ankles, axis=0), axis=-1)
    both = contact[1:] & contact[:-1]
    return float(step[both].mean()) if both.any() else float("nan")


def score(take, cleaned, truth_world: np.ndarray, truth_camera_root: np.ndarray, true_up_camera: np.ndarray,
          fps: float) -> dict:
    """One sequence's figures (see the module docstring). truth_world (N, 17, 3) world metres, Z up, the
    take's frames; truth_camera_root (N, 3) the pelvis in camera metres; true_up_camera (3,)."""
    joints = cleaned.joints
    contact = planted(truth_world[:, ANKLES], fps)
    sole = joints[:, ANKLES, 2] - ANKLE_HEIGHT  # (N, 2) m above the captured floor
    # The pelvis's depth in the camera as the user's scene has it: the camera scaled with the take about
    # the same floor point (blender_addon.apply.capture_camera), so a height given moves both.
    rotation, origin = np.asarray(take.world_rotation), np.asarray(take.world_origin)
    anchor = np.array([take.joints_world[0, 0, 0], take.joints_world[0, 0, 1], 0.0])
    camera = anchor + (-rotation @ origin - anchor) * cleaned.scale
    depth = (joints[:, 0] - camera) @ rotation[:, 2]
    up = rotation[2]
    return {
        "frames": len(joints),
        "wa_mpjpe100_mm": 1000 * metrics.wa_mpjpe(joints, truth_world),
        "w_mpjpe100_mm": 1000 * metrics.w_mpjpe(joints, truth_world),
        "rte_pct": 100 * metrics.root_translation_error(joints[:, 0], truth_world[:, 0]),
        "root_depth_mm": 1000 * float(np.abs(depth - truth_camera_root[:, 2]).mean()),
        "root_depth_pct": 100 * float((np.abs(depth - truth_camera_root[:, 2]) / truth_camera_root[:, 2]).mean()),
        "sliding_raw_mm": 1000 * sliding(take.joints_world[:, ANKLES], contact),
        "sliding_mm": 1000 * sliding(joints[:, ANKLES], contact),
        "penetration_mm": 1000 * float(np.maximum(-sole[contact], 0).mean()) if contact.any() else float("nan"),
        "float_mm": 1000 * float(np.maximum(sole[contact], 0).mean()) if contact.any() else float("nan"),
        "sinking_pct": 100 * float((sole.min(1) < -SINK).mean()),
        "tilt_deg": float(np.degrees(np.arccos(np.clip(up @ true_up_camera, -1.0, 1.0)))),
    }


def following(truth_world: np.ndarray, camera: dict, width: int, fps: float) -> tuple[list, np.ndarray, CameraPath, dict]:
    """The static draw ``camera`` made to follow the actor: each frame's centre moved by :data:`DOLLY` of
    the pelvis's travel on the floor, turned to look at the pelvis. truth_world (M, 17, 3) world metres
    at the camera's instants. Returns (detections as the capture takes them, (M, 17, 3) the truth in the
    first camera, the true path relative to the first camera, the first camera as {"R", "centre"})."""
    pelvis = truth_world[:, 0]
    centres = camera["centre"] + DOLLY * (pelvis - pelvis[0]) * (1.0, 1.0, 0.0)
    rotations = np.stack([look_at(p - c, (0.0, 0.0, 1.0)) for p, c in zip(pelvis, centres)])  # world -> camera
    local = np.einsum("tij,tkj->tki", rotations, truth_world - centres[:, None])
    bounds = np.array([1.0, camera["aspect"]])
    xy = local[..., :2] / np.maximum(local[..., 2:3], 1e-6) * camera["focal"]
    in_frame = (np.abs(xy) <= bounds).all(-1) & (local[..., 2] > 0.1)
    pixels = (xy + bounds) * width / 2.0
    detections = [(pixels[i][None], in_frame[i][None].astype(np.float64)) for i in range(len(pixels))]
    turns = rotations @ rotations[0].T
    path = CameraPath(turns, np.einsum("tij,tj->ti", rotations, centres[0] - centres), np.zeros(len(turns), dtype=bool))
    first = {"R": rotations[0], "centre": centres[0]}
    return detections, (truth_world - centres[0]) @ rotations[0].T, path, first


def run(lifter: Lifter, sequences: list[tuple[int, str, np.ndarray]], fps: float, seed: int = SEED) -> dict:
    """Every variant's figures per sequence: {variant: [{"action", figures...}, ...]}. sequences: (place
    among all test sequences, "subject/action", (N, 17, 3) world metres at 50 frames/s)."""
    results = defaultdict(list)
    for index, key, world in sequences:
        # The same camera for a sequence as benchmarks/product.py's (b) at the same rate.
        view = film(world, fps, np.random.default_rng([seed, EVAL_STREAM, index]))
        truth_world = resample_track(world, 50.0, fps, len(view.pixels)).astype(np.float64)
        camera = view.camera
        truth_camera = (truth_world - camera["centre"]) @ camera["R"].T
        true_up = camera["R"] @ np.array([0.0, 0.0, 1.0])
        detections = [(view.pixels[i][None], view.in_frame[i][None].astype(np.float64)) for i in range(len(view.pixels))]
        info = VideoInfo(path=key, fps=fps, width=view.width, height=view.height, frame_count=len(view.pixels))
        takes, cameras = {}, {}
        for lens in (False, True):
            settings = Settings(focal_px=view.focal_px if lens else None)
            takes[lens] = takes_from_detections(detections, info, settings, lifter=lifter)[0]
            cameras[lens] = (truth_camera, true_up)
        moving, moving_truth, path, first = following(truth_world, camera, view.width, fps)
        takes["moving"] = takes_from_detections(moving, info, Settings(camera="moving"), lifter=lifter, camera_path=path)[0]
        cameras["moving"] = (moving_truth, first["R"] @ np.array([0.0, 0.0, 1.0]))
        true_height = standing_height(robust_bone_lengths(truth_world))
        for name, variant in VARIANTS.items():
            take = takes[variant["lens"]]
            span = slice(take.first_frame, take.first_frame + len(take))
            in_camera, up = cameras[variant["lens"]]
            cleaned = clean(take.joints_world, fps, CleanupSettings(height=true_height if variant["height"] else None))
            results[name].append({"sequence": key, "action": action_name(key.split("/", 1)[1]),
                                  **score(take, cleaned, truth_world[span], in_camera[span, 0], up, fps)})
    return dict(results)


def per_action(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Figures averaged over each action's sequences, then "all": the mean over actions."""
    actions = defaultdict(list)
    for row in rows:
        actions[row["action"]].append(row)
    table = {action: {f: float(np.nanmean([r[f] for r in group])) for f in FIGURES} for action, group in sorted(actions.items())}
    table["all"] = {f: float(np.nanmean([table[a][f] for a in actions])) for f in FIGURES}
    return table


def markdown(results: dict, fps: float, every: int, weights: str, seconds: float, before: dict | None = None) -> str:
    """The tables; ``before``: an earlier run's JSON (``--json``), whose rows come first, marked with
    the commit it measured."""
    count = len(next(iter(results.values())))
    lines = [f"Human3.6M S9/S11, {count} sequences (every {every}{'st' if every == 1 else 'th'} test sequence), "
             f"each filmed by its own virtual phone camera (benchmarks/product.py's (b)) at {fps:g} frames/s, through "
             f"`takes_from_detections` and `clean` with their defaults. Weights: `{weights}`. Machine: "
             f"{describe_machine()}. {seconds:.0f} s. {MISSING_NOTE}", "",
             "| variant | WA-MPJPE100 (mm) | W-MPJPE100 (mm) | RTE (%) | root depth error (mm / %) | foot sliding, raw / cleaned (mm per frame) | "
             "penetration / float (mm) | frames sinking > 2 cm (%) | camera tilt error (deg) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    tables = {name: per_action(rows) for name, rows in results.items()}
    earlier = {f"before ({before['commit']}): {name}": per_action(rows) for name, rows in before["results"].items()} if before else {}
    for name, table in {**earlier, **tables}.items():
        a = table["all"]
        lines.append(f"| {name} | {a['wa_mpjpe100_mm']:.0f} | {a['w_mpjpe100_mm']:.0f} | {a['rte_pct']:.2f} | "
                     f"{a['root_depth_mm']:.0f} / {a['root_depth_pct']:.1f} | {a['sliding_raw_mm']:.1f} / {a['sliding_mm']:.1f} | "
                     f"{a['penetration_mm']:.1f} / {a['float_mm']:.1f} | {a['sinking_pct']:.1f} | {a['tilt_deg']:.1f} |")
    first = next(iter(tables))
    was = per_action(before["results"][first]) if before and first in before["results"] else {}
    lines += ["", f"Per action, {first}" + (f" (before: {before['commit']})" if was else "") + ":", "",
              "| action | WA-MPJPE100 (mm) | W-MPJPE100 (mm) | RTE (%) | foot sliding, cleaned (mm per frame) |",
              "|---|---:|---:|---:|---:|"]
    for action, a in tables[first].items():
        if action == "all":
            continue
        cells = []
        for figure, digits in (("wa_mpjpe100_mm", 0), ("w_mpjpe100_mm", 0), ("rte_pct", 2), ("sliding_mm", 1)):
            cell = f"{a[figure]:.{digits}f}"
            cells.append(f"{was[action][figure]:.{digits}f} -> {cell}" if action in was else cell)
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def commit() -> str:
    """The checkout's commit (short), with "+changes" when its files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--every", type=int, default=1, help="use every N-th test sequence (each keeps its camera)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--markdown", help="also write the tables to this Markdown file")
    parser.add_argument("--json", help="also write every sequence's figures to this JSON file")
    parser.add_argument("--before", help="an earlier run's --json, shown first (its \"commit\" names what it measured)")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"needs {DATA} (Human3.6M, not shipped)", file=sys.stderr)
        return 1
    world = load_world(DATA, TEST_SUBJECTS)
    sequences = [(index, key, joints) for index, (key, joints) in enumerate(world.items())][::args.every]
    clock = time.perf_counter()
    results = run(Lifter(args.weights), sequences, args.fps)
    before = json.loads(Path(args.before).read_text()) if args.before else None
    text = markdown(results, args.fps, args.every, Path(args.weights).name, time.perf_counter() - clock, before)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# World-grounded motion\n\nGenerated by `python benchmarks/world.py`.\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"machine": describe_machine(), "fps": args.fps, "commit": commit(), "results": results},
                                      indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
