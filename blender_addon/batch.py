"""Headless batch conversion: videos in, animated ``.blend`` files (plus take, BVH and preview) out.

    blender --background --python blender_addon/batch.py -- VIDEO... --out DIR [options]
    python blender_addon/batch.py VIDEO... --out DIR [options]        # with the bpy module installed

For every video: capture (detection, lifting, trajectory), clean-up, our armature with two actions,
``<name>`` (cleaned, assigned) and ``<name>.raw`` (the rig fitted to the raw take, kept with a fake
user), saved as ``DIR/<name>.blend`` together with ``<name>.npz`` (the take), ``<name>_preview.mp4``,
optionally ``<name>.bvh`` / ``<name>.fbx`` from Blender's own exporters, and ``<name>.json``, a report
(ok or the error, frames, timings, motion quality, outputs). Everything runs synchronously: no modal
operators or timers, which do not run in background mode. A clip that fails is reported and leaves no
files; the others are still converted; the exit status is 1 if any clip failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script (blender --python, or plain python): import our package
    # by its folder's name: blender_addon in the repository, posemoe_mocap in an installed extension.
    import importlib

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    _package = importlib.import_module(Path(__file__).resolve().parent.name)
    apply, rig = importlib.import_module(f"{_package.__name__}.apply"), importlib.import_module(f"{_package.__name__}.rig")
else:
    from . import apply, rig

import bpy  # noqa: E402

from posemoe import PoseMoEError  # noqa: E402
from posemoe.files import atomic_output  # noqa: E402
from posemoe.lift import Lifter  # noqa: E402
from posemoe.motion.clean import CleanupSettings, quality_report  # noqa: E402
from posemoe.pipeline import Settings, Timings, capture  # noqa: E402
from posemoe.preview import write_preview  # noqa: E402


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", help="video files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--bvh", action="store_true", help="also export a BVH with Blender's exporter")
    parser.add_argument("--fbx", action="store_true", help="also export an FBX with Blender's exporter")
    parser.add_argument("--no-preview", action="store_true", help="skip the preview video")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    parser.add_argument("--smoothing", default="one_euro", choices=("one_euro", "savgol", "none"))
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--foot-lock", default="auto", choices=("auto", "always", "never"))
    parser.add_argument("--root", default="full", choices=("full", "ground", "in_place"))
    parser.add_argument("--height", type=float, help="actor's height in metres")
    parser.add_argument("--rig", type=Path, help="a .blend holding the armature to animate (default: a new "
                        "PoseMoE armature in an empty scene); the output .blend is that file with the take added")
    parser.add_argument("--armature", help="the armature object's name in --rig")
    parser.add_argument("--map", help="bone map for --rig: rigify_fk, rigify_metarig, mixamo or a JSON file "
                        "(default: detected from the bone names)")
    parser.add_argument("--fov", type=float, default=69.4, help="camera field of view across the longer side, degrees")
    args = parser.parse_args(argv)
    if (args.rig is None) != (args.armature is None):
        parser.error("--rig and --armature go together: the .blend file and the armature's name in it")
    if args.rig is not None and not args.rig.is_file():
        parser.error(f"the rig file {args.rig} does not exist")
    return args


def _script_arguments() -> list[str]:
    """Blender passes a script its own arguments after ``--``; plain Python passes them all."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def _save_blend(path: Path) -> None:
    with atomic_output(path) as tmp:
        # Blender keeps a ".blend1" backup of a file it overwrites: let it write a new file instead.
        tmp.unlink()
        # copy=True writes the file without making it the session's current file.
        result = bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True, check_existing=False)
        if result != {"FINISHED"}:
            raise PoseMoEError(f"Blender could not save {path}.")


def convert(video: Path, out: Path, args: argparse.Namespace, lifter: Lifter) -> dict:
    """Convert one video; returns its report. Raises PoseMoEError (nothing written) on failure."""
    name = video.stem
    timings = Timings()
    take = capture(video, Settings(fov_degrees=args.fov), lifter=lifter, timings=timings)
    clock = time.perf_counter()
    cleanup = CleanupSettings(smoothing=args.smoothing, strength=args.strength, foot_lock=args.foot_lock,
                              root=args.root, height=args.height)
    target = None
    if args.rig:
        bpy.ops.wm.open_mainfile(filepath=str(args.rig), load_ui=False)
        target = bpy.data.objects.get(args.armature)
        if target is None or target.type != "ARMATURE":
            armatures = ", ".join(o.name for o in bpy.data.objects if o.type == "ARMATURE") or "none"
            raise PoseMoEError(f"{args.rig} has no armature named '{args.armature}' (armatures there: {armatures}); "
                               "pass one of those with --armature.")
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.context.scene.frame_start = bpy.context.scene.frame_end = 1  # apply_take grows it to the take
    applied = apply.apply_take(take, cleanup, name, target=target, bone_map=args.map, camera=True, match="video",
                               frame_start=bpy.context.scene.frame_start if target is not None else 1, video=video)
    armature, cleaned = applied.armature, applied.cleaned
    timings.add("clean-up and keys", time.perf_counter() - clock)

    outputs = {"blend": out / f"{name}.blend", "take": out / f"{name}.npz"}
    if not args.no_preview:
        outputs["preview"] = out / f"{name}_preview.mp4"
    if args.bvh:
        outputs["bvh"] = out / f"{name}.bvh"
    if args.fbx:
        outputs["fbx"] = out / f"{name}.fbx"
    written: list[Path] = []
    try:
        clock = time.perf_counter()
        written.append(take.save(outputs["take"]))
        if "preview" in outputs:
            written.append(write_preview(take, outputs["preview"], video))
        if "bvh" in outputs:
            written.append(rig.export_bvh(armature, outputs["bvh"]))
        if "fbx" in outputs:
            written.append(rig.export_fbx(armature, outputs["fbx"]))
        _save_blend(outputs["blend"])
        written.append(outputs["blend"])
        timings.add("write", time.perf_counter() - clock)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return {
        "video": str(video), "ok": True, "frames": len(take), "first_frame": take.first_frame, "fps": take.fps,
        "actions": [a.name for a in (applied.action, applied.raw_action) if a is not None], "armature": armature.name,
        "camera": applied.camera.name if applied.camera else None, "warnings": applied.warnings,
        "root_travel_m": float(((cleaned.joints[-1, 0, :2] - cleaned.joints[0, 0, :2]) ** 2).sum() ** 0.5),
        "quality": quality_report(take.joints_world, cleaned, take.fps),
        "timings_s": timings.seconds, "outputs": {k: str(v) for k, v in outputs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = _arguments(_script_arguments() if argv is None else argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lifter = Lifter(backend=args.backend, device=args.device)
    except (OSError, PoseMoEError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = 0
    for video in map(Path, args.videos):
        clock = time.perf_counter()
        try:
            report = convert(video, out, args, lifter)
        except PoseMoEError as error:
            failed += 1
            report = {"video": str(video), "ok": False, "error": str(error)}
        except Exception as error:  # a bug, not bad input: report it with its traceback, go on
            failed += 1
            report = {"video": str(video), "ok": False, "error": f"internal error: {error!r}",
                      "traceback": traceback.format_exc()}
        report["seconds"] = time.perf_counter() - clock
        try:
            with atomic_output(out / f"{video.stem}.json") as tmp:
                tmp.write_text(json.dumps(report, indent=2))
        except PoseMoEError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
        status = f"ok, {report['frames']} frames -> {report['outputs']['blend']}" if report["ok"] else f"FAILED: {report['error']}"
        print(f"{video}: {status} ({report['seconds']:.1f} s)")
    print(f"{len(args.videos) - failed} of {len(args.videos)} videos converted; reports in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
