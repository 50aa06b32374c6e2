"""Headless batch conversion: videos in, animated ``.blend`` files (plus take, BVH and preview) out.

    blender --background --python blender_addon/batch.py -- VIDEO... --out DIR [options]
    python blender_addon/batch.py VIDEO... --out DIR [options]        # with the bpy module installed

For every video: capture (detection, lifting, trajectory), clean-up, our armature with two actions,
``<name>`` (cleaned, assigned) and ``<name>.raw`` (the rig fitted to the raw take, kept with a fake
user), saved as ``DIR/<name>.blend`` together with ``<name>.npz`` (the take), ``<name>_preview.mp4``,
optionally ``<name>.bvh`` / ``<name>.fbx`` from Blender's own exporters, and ``<name>.json``, a report
(ok or the error, frames, timings, motion quality, outputs). With ``--people all`` (or a number, or
``X,Y,FRAME`` picks) everyone captured gets an armature of their own, ``<name> Person <k>``, in the one
``.blend`` and the one take, and a BVH / FBX each, ``<name>_person<k>.bvh``. Everything runs synchronously: no modal
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
from posemoe.camera import DEFAULT_FOV_DEGREES  # noqa: E402
from posemoe.files import atomic_output  # noqa: E402
from posemoe.lift import Lifter  # noqa: E402
from posemoe.motion.clean import CleanupSettings, quality_report  # noqa: E402
from posemoe.cli import CAMERA_HELP, parse_people, per_person_path  # noqa: E402
from posemoe.pipeline import CAMERA_CHOICES, Settings, Timings, capture_people  # noqa: E402
from posemoe.take import save_takes  # noqa: E402
from posemoe.preview import write_preview  # noqa: E402
from posemoe.skeleton import PELVIS  # noqa: E402


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
    parser.add_argument("--people", action="append", metavar="WHO",
                        help="whom to capture: a number of people, the largest first (default 1), 'all', or X,Y,FRAME "
                             "(given once per person)")
    parser.add_argument("--fov", type=float, default=DEFAULT_FOV_DEGREES,
                        help=f"camera field of view across the longer side, degrees (default {DEFAULT_FOV_DEGREES})")
    parser.add_argument("--camera", default="auto", choices=CAMERA_CHOICES,
                        help=CAMERA_HELP + "; a moving camera is keyed in the .blend")
    parser.add_argument("--hands", action="store_true", help="also capture the fingers (slower: about 1.4 to 2.3 "
                        "times the capture time on a 2-core machine); the armatures get finger bones, BVH and FBX carry them")
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


def capture_settings(args: argparse.Namespace) -> Settings:
    """The capture settings the command line asks for (raises PoseMoEError for a bad --people)."""
    people, picks = parse_people(args.people)
    return Settings(fov_degrees=args.fov, people=people, picks=picks, max_people=max(Settings.max_people, people),
                    hands=args.hands, camera=args.camera)


def convert(video: Path, out: Path, args: argparse.Namespace, lifter: Lifter) -> dict:
    """Convert one video; returns its report. Raises PoseMoEError (nothing written) on failure."""
    name = video.stem
    timings = Timings()
    takes = capture_people(video, capture_settings(args), lifter=lifter, timings=timings)
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
        bpy.context.scene.frame_start = bpy.context.scene.frame_end = 1  # apply_takes grows it to the takes
    applied = apply.apply_takes(takes, cleanup, name, target=target, bone_map=args.map, camera=True, match="video",
                                frame_start=bpy.context.scene.frame_start if target is not None else 1, video=video)
    timings.add("clean-up and keys", time.perf_counter() - clock)

    outputs = {"blend": out / f"{name}.blend", "take": out / f"{name}.npz"}
    if not args.no_preview:
        outputs["preview"] = out / f"{name}_preview.mp4"
    exports = [(kind, per_person_path(out / f"{name}.{kind}", take.person, len(takes)), person)
               for kind in ("bvh", "fbx") if getattr(args, kind) for take, person in zip(takes, applied)]
    written: list[Path] = []
    try:
        clock = time.perf_counter()
        written.append(save_takes(outputs["take"], takes))
        if "preview" in outputs:
            written.append(write_preview(takes, outputs["preview"], video))
        for kind, path, person in exports:
            written.append(rig.export_bvh(person.armature, path) if kind == "bvh" else rig.export_fbx(person.armature, path))
        _save_blend(outputs["blend"])
        written.append(outputs["blend"])
        timings.add("write", time.perf_counter() - clock)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    for kind, path, _ in exports:  # one person: "bvh": the file; several: "bvh": [one per person]
        outputs[kind] = [*outputs.get(kind, []), path]
    outputs = {k: (str(v[0]) if len(v) == 1 else [str(p) for p in v]) if isinstance(v, list) else str(v)
               for k, v in outputs.items()}

    def person(take, done: apply.Applied) -> dict:
        cleaned = done.cleaned
        travel = cleaned.joints[-1, PELVIS, :2] - cleaned.joints[0, PELVIS, :2]
        return {"person": take.person, "frames": len(take), "first_frame": take.first_frame,
                "armature": done.armature.name,
                "actions": [a.name for a in (done.action, done.raw_action) if a is not None],
                "root_travel_m": float((travel ** 2).sum() ** 0.5),
                "quality": quality_report(take.joints_world, cleaned, take.fps)}

    everyone = [person(take, done) for take, done in zip(takes, applied)]
    return {
        "video": str(video), "ok": True, **everyone[0], "fps": takes[0].fps, "people": everyone,
        "notes": takes[0].notes, "camera": applied[0].camera.name if applied[0].camera else None,
        "warnings": [w for done in applied for w in done.warnings],
        "timings_s": timings.seconds, "outputs": outputs,
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
        people = f"{len(report['people'])} people, " if report["ok"] and len(report["people"]) > 1 else ""
        status = f"ok, {people}{report['frames']} frames -> {report['outputs']['blend']}" if report["ok"] else f"FAILED: {report['error']}"
        print(f"{video}: {status} ({report['seconds']:.1f} s)")
    print(f"{len(args.videos) - failed} of {len(args.videos)} videos converted; reports in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
