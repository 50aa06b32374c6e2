"""Command line: ``posemoe capture`` (video to take, BVHs and preview), ``posemoe info``, ``posemoe export-onnx``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import PoseMoEError
from .camera import DEFAULT_FOV_DEGREES
from .settings import CAMERA_CHOICES
from .skeleton import PELVIS

#: What each ``--camera`` choice does, for the help text of the CLI and the batch conversion.
CAMERA_HELP = ("how the camera moved: 'static' takes it as fixed; 'moving' solves its turn (pan, tilt, roll) "
               "from the background and its travel along the floor from the floor's motion, in every frame, and "
               "takes both out of the motion; 'auto' (default) solves them and keeps the turn only if the camera "
               "turned more than a degree and the picture's edges moved with it, the travel only if it took the "
               "camera half a metre or more")


def cmd_info(args: argparse.Namespace) -> int:
    from .model import CONFIGS
    from .model.profile import describe

    print(f"{'config':<15} {'arch':<9} {'T':>4} {'width':>5} {'depth':>8} {'params':>11} {'MMACs/window':>13} {'MMACs/frame':>12}")
    for name, config in CONFIGS.items():
        info = describe(config)
        depth = f"{config.encoder_depth}+{config.decoder_depth}" if config.arch == "posemoe" else str(config.encoder_depth)
        print(f"{name:<15} {config.arch:<9} {config.frames:>4} {config.width:>5} {depth:>8} {info['parameters']:>11,} "
              f"{info['macs_per_window'] / 1e6:>13.1f} {info['macs_per_frame'] / 1e6:>12.2f}")
    print("depth: blocks per expert + cross-expert decoder layers (PoseMoE), spatio-temporal blocks (baseline)")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .lift import DEFAULT_WEIGHTS
    from .model.onnx_export import export_onnx, parity

    weights = args.weights or DEFAULT_WEIGHTS
    path = export_onnx(weights, args.out)
    onnx_error, torch_error = parity(weights, path)
    print(f"wrote {path}; largest difference from PyTorch in float64 on random inputs: ONNX Runtime "
          f"{onnx_error:.2e} m, PyTorch in float32 {torch_error:.2e} m")
    return 0


class _Bars:
    """One tqdm bar per pipeline stage, driven by the ``progress(stage, done, total)`` callback."""

    def __init__(self):
        self.bars = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage not in self.bars:
            for bar in self.bars.values():
                bar.close()
            self.bars[stage] = tqdm(total=total, desc=f"{stage:<10}", unit="frame" if stage in ("detect", "preview") else "step")
        bar = self.bars[stage]
        bar.total = max(bar.total, total)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _writable(path: Path) -> None:
    """Fail before hours of work rather than after: the output's folder must be creatable and writable."""
    if path.is_dir():
        raise PoseMoEError(f"Cannot write {path}: it is a folder. Give a file name.")
    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise PoseMoEError(f"Cannot write {path}: {existing} is a file, not a folder. Choose another output folder.")
    if not os.access(existing, os.W_OK):
        raise PoseMoEError(f"Cannot write {path}: {existing} is not writable. Choose another output folder.")


def parse_people(values: list[str] | None) -> tuple[int, tuple[tuple[float, float, int], ...]]:
    """--people values -> (how many, picks): "all", a number, or X,Y,FRAME points (given more than once)."""
    values = values or ["1"]
    if len(values) == 1 and values[0].strip().lower() == "all":
        return 0, ()
    if len(values) == 1 and values[0].strip().isdigit():
        if int(values[0]) < 1:
            raise PoseMoEError("--people wants 1 or more people, 'all', or X,Y,FRAME points; not 0.")
        return int(values[0]), ()
    picks = []
    for text in values:
        try:
            x, y, frame = text.split(",")
            picks.append((float(x), float(y), int(frame)))
        except ValueError:
            raise PoseMoEError(f"--people wants 'all', a number, or X,Y,FRAME in pixels and a frame number (for example "
                               f"640,360,0; give it once per person), not {text!r}.") from None
    return len(picks), tuple(picks)


def per_person_path(path: Path, person: int, people: int) -> Path:
    """The file for one person of several: NAME_person2.bvh beside NAME.bvh (one person: the path given)."""
    return path if people == 1 else path.with_name(f"{path.stem}_person{person}{path.suffix}")


def cmd_capture(args: argparse.Namespace) -> int:
    from .export.bvh import write_bvh
    from .motion.hands import body_hands
    from .lift import Lifter
    from .motion.clean import CleanupSettings, clean, quality_report
    from .pipeline import Settings, Timings, capture_people
    from .preview import write_preview
    from .take import save_takes

    outputs = [Path(p) for p in (args.out, args.bvh, args.preview) if p]
    if Path(args.out).suffix != ".npz":
        raise PoseMoEError(f"The take is written as .npz; give -o something.npz, not {args.out}.")
    for path in outputs:
        _writable(path)
    people, picks = parse_people(args.people)
    settings = Settings(start=args.start, stop=args.stop, people=people, picks=picks, max_gap_s=args.max_gap,
                        fov_degrees=args.fov, focal_px=args.focal_px, flip=not args.no_flip,
                        max_people=max(args.max_people, people), workers=args.workers, hands=args.hands,
                        camera=args.camera)
    cleanup = CleanupSettings(smoothing=args.smoothing, strength=args.strength, foot_lock=args.foot_lock,
                              root=args.root, height=args.height)
    timings = Timings()
    bars = _Bars()
    written: list[Path] = []
    try:
        clock = time.perf_counter()
        lifter = Lifter(args.weights, backend=args.backend, device=args.device)
        timings.add("load", time.perf_counter() - clock)
        takes = capture_people(args.video, settings, lifter=lifter, progress=bars, timings=timings)
        clock = time.perf_counter()
        cleaned = [clean(take.joints_world, take.fps, cleanup) for take in takes]
        timings.add("clean-up", time.perf_counter() - clock)
        if args.bvh:
            clock = time.perf_counter()
            for take, motion in zip(takes, cleaned):
                written.append(write_bvh(per_person_path(Path(args.bvh), take.person, len(takes)), motion.motion,
                                         scale=args.bvh_scale, hands=body_hands(take, motion.motion)))
            timings.add("bvh", time.perf_counter() - clock)
        if args.preview:
            clock = time.perf_counter()
            written.append(write_preview(takes, args.preview, args.video, progress=bars))
            timings.add("preview", time.perf_counter() - clock)
        written.append(save_takes(args.out, takes))
    except BaseException:
        for path in written:  # all or nothing: no half-finished set of files
            path.unlink(missing_ok=True)
        raise
    finally:
        bars.close()
    for take in takes:
        world = take.joints_world
        travel = np.linalg.norm(world[-1, PELVIS, :2] - world[0, PELVIS, :2])
        print(f"person {take.person}: {len(take)} frames ({take.duration:.1f} s) from frame {take.first_frame}, "
              f"{int(take.filled.sum())} bridged, {int(take.long_gap.sum())} in long gaps; root travelled {travel:.2f} m")
    print(f"model {takes[0].model}")
    for note in takes[0].notes:
        print(note)
    print(f"{'motion':<18}{'bone-length spread':>20}{'foot skating m/s':>18}{'jitter m/s2':>13}")
    for take, motion in zip(takes, cleaned):
        for name, row in quality_report(take.joints_world, motion, take.fps).items():
            label = name if len(takes) == 1 else f"{name} (person {take.person})"
            print(f"{label:<18}{row['bone_length_spread']:>20.3f}{row['foot_skating_m_per_s']:>18.3f}"
                  f"{row['jitter_m_per_s2']:>13.2f}")
    print(f"{'stage':<12}{'seconds':>9}{'frames/s':>10}")
    for stage, seconds in timings.seconds.items():
        rate = f"{timings.frames / seconds:>10.1f}" if seconds > 0 and stage != "load" else f"{'':>10}"
        print(f"{stage:<12}{seconds:>9.2f}{rate}")
    total = sum(timings.seconds.values())
    print(f"{'total':<12}{total:>9.2f}{timings.frames / total:>10.1f}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="posemoe", description="PoseMoE markerless motion capture")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="list the model configs with their parameters and MACs").set_defaults(func=cmd_info)
    export = sub.add_parser("export-onnx", help="export lifting weights to ONNX (dynamic batch size)")
    export.add_argument("--weights", help="weights folder (default: the shipped weights)")
    export.add_argument("--out", help="output file (default: model.onnx in the weights folder)")
    export.set_defaults(func=cmd_export_onnx)
    cap = sub.add_parser("capture", help="video to a 3D take (.npz) of one person or several, optionally BVHs and a preview video")
    cap.add_argument("video", help="the video file")
    cap.add_argument("-o", "--out", required=True, help="the take to write (.npz)")
    cap.add_argument("--bvh", help="also write a BVH (Y up, metres unless --bvh-scale)")
    cap.add_argument("--bvh-scale", type=float, default=1.0, help="BVH unit scale: 100 writes centimetres")
    cap.add_argument("--preview", help="also write a preview video (.mp4): 2D on the footage beside the 3D")
    cap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the lifter runs")
    cap.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"), help="lifting backend")
    cap.add_argument("--weights", help="lifting weights folder (default: the shipped weights)")
    cap.add_argument("--fov", type=float, default=DEFAULT_FOV_DEGREES,
                     help=f"camera field of view across the longer side, degrees (default {DEFAULT_FOV_DEGREES}: a phone's main camera)")
    cap.add_argument("--focal-px", type=float, help="focal length in pixels (overrides --fov)")
    cap.add_argument("--camera", default="auto", choices=CAMERA_CHOICES, help=CAMERA_HELP)
    cap.add_argument("--people", action="append", metavar="WHO",
                     help="whom to capture: a number of people, the largest first (default 1), 'all', or X,Y,FRAME "
                          "(the person at this pixel in this frame; give it once per person). Several people go "
                          "into one take; their BVHs are NAME_person1.bvh, NAME_person2.bvh, ...")
    cap.add_argument("--max-people", type=int, default=3, help="people to look for in each frame")
    cap.add_argument("--hands", action="store_true",
                     help="also capture the hands (21 landmarks each, in the take; slower, see docs/benchmarks.md)")
    cap.add_argument("--workers", type=int, default=0,
                     help="detection threads, each on a stretch of the video (0: one per core)")
    cap.add_argument("--start", type=int, default=0, help="first video frame")
    cap.add_argument("--stop", type=int, help="video frame to stop before")
    cap.add_argument("--max-gap", type=float, default=0.5, help="seconds of lost detection bridged before a gap is flagged")
    cap.add_argument("--no-flip", action="store_true", help="skip flip averaging (faster, a little less steady)")
    cap.add_argument("--smoothing", default="one_euro", choices=("one_euro", "savgol", "none"),
                     help="clean-up filter for the BVH (the take keeps the raw motion)")
    cap.add_argument("--strength", type=float, default=0.5, help="smoothing strength, 0 to 1")
    cap.add_argument("--foot-lock", default="auto", choices=("auto", "always", "never"), help="pin planted feet")
    cap.add_argument("--root", default="full", choices=("full", "ground", "in_place"),
                     help="root motion: as captured, over the floor at a fixed height, or on the spot")
    cap.add_argument("--height", type=float, help="actor's height in metres (scales the BVH skeleton and path)")
    cap.set_defaults(func=cmd_capture)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PoseMoEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled; nothing was written", file=sys.stderr)
        return 130
