"""The capture inside Blender (the extension zip alone, no Worker Python) against the same capture
through a worker Python, both started from Blender's Capture operator.

    python benchmarks/blender.py [--zip FILE] [--repeat 3] [--markdown FILE] [--json FILE]

Blender here is the ``bpy`` module in a Python that has nothing but the standard library, bpy and
NumPy, as a Blender install's Python (``bare_blender_python``); the zip (built from this checkout
unless ``--zip``) is installed into it with ``extensions.package_install_files``, as Install from Disk
does. Inside Blender the capture runs on ONNX Runtime in a thread of Blender's process; through the
worker it runs in this checkout's Python (PyTorch on the CPU here), which the operator starts for each
capture, so its time includes that start. Each mode captures the whole sample ``--repeat`` times in
one Blender session: the first capture pays the imports and model loading, the median is what a user
sees from the second capture on. The machine is printed with the table.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from posemoe.files import atomic_output
from posemoe.machine import describe_machine
from posemoe.video import probe

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = ROOT / "samples" / "walk.mp4"

_CHILD = r'''
import json, os, sys, time

# Run as `python -I -S`: the standard library, plus what a Blender install's Python has (bpy and
# NumPy) from a folder that holds nothing else.
blender_python, zip_path, video, worker, repeat = sys.argv[1:6]
sys.path.append(blender_python)
import bpy
import numpy as np

PACKAGES = ("cv2", "onnxruntime", "scipy", "posemoe")
found_before = []
for name in (*PACKAGES, "torch"):
    try:
        __import__(name)
        found_before.append(name)
    except ImportError:
        pass
bpy.ops.wm.read_factory_settings(use_empty=True)
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                enable_on_install=True) == {"FINISHED"}
site = bpy.utils.user_resource("EXTENSIONS", path=".local/lib/python3.11/site-packages")
prefs = sys.modules["bl_ext.user_default.posemoe_mocap"].preferences.preferences()
prefs.python = worker
assert bpy.ops.posemoe.check_setup() == {"FINISHED"}
times = []
for _ in range(int(repeat)):
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.posemoe.video = video
    clock = time.perf_counter()
    assert bpy.ops.posemoe.capture() == {"FINISHED"}
    times.append(time.perf_counter() - clock)
frames = max(round(a.frame_range[1] - a.frame_range[0]) + 1 for a in bpy.data.actions)
(armature,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
heads = []
for frame in map(round, armature.animation_data.action.frame_range):  # the walker must travel
    bpy.context.scene.frame_set(frame)
    evaluated = armature.evaluated_get(bpy.context.evaluated_depsgraph_get())
    heads.append(np.array(armature.matrix_world @ evaluated.pose.bones["pelvis"].head))
print(json.dumps({
    "times": times, "take_frames": frames, "travelled": float(np.linalg.norm(heads[1][:2] - heads[0][:2])),
    "blender": bpy.app.version_string, "numpy": np.__version__, "found_before_install": found_before,
    "check": prefs.check_result,
    "loaded": {name: sys.modules[name].__file__.startswith(site) for name in PACKAGES if name in sys.modules},
    "torch_or_mediapipe_imported": any(name in sys.modules for name in ("torch", "mediapipe"))}), flush=True)
os._exit(0)  # bpy modules can crash in their exit handlers (4.2) or hang (4.5): the answer is out
'''


CACHE = ROOT / "benchmarks" / ".cache" / "blender"


def blender_python(folder: Path, blender: str | None = None, numpy: str | None = None) -> Path:
    """A folder holding only what a Blender install's Python has beyond the standard library: bpy and
    NumPy. Put it on the path of ``python -I -S``.

    Default: this Python's bpy and NumPy, linked. ``blender`` (a bpy version on PyPI, e.g. "5.0.1")
    and ``numpy`` (the version that Blender release bundles) are installed once, with pip, into
    ``benchmarks/.cache/blender`` (about 800 MB each); raises RuntimeError when pip cannot get them.
    """
    import numpy as this_numpy

    if blender is None and numpy is None:
        site = Path(this_numpy.__file__).parent.parent  # (not bpy.__file__: once imported it is Blender's inner bpy)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("bpy", "numpy", "numpy.libs"):
            if (site / name).exists() and not (folder / name).exists():
                (folder / name).symlink_to(site / name)
        return folder
    blender = blender or importlib.metadata.version("bpy")
    numpy = numpy or this_numpy.__version__
    target = CACHE / f"bpy-{blender}-numpy-{numpy}"
    if not (target / "bpy").is_dir():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
                               "--target", str(target), f"bpy=={blender}", f"numpy=={numpy}"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not install bpy {blender} with NumPy {numpy}: {done.stderr[-500:]}")
    return target


def run_mode(zip_path: Path, worker: str, repeat: int, folder: Path, python: Path) -> dict:
    """Install ``zip_path`` into a fresh Blender (``python``: its :func:`blender_python`), set the Worker
    Python to ``worker`` ("" for none) and capture the sample ``repeat`` times from the operator.

    Returns {"times" (s per capture), "take_frames", "travelled" (m, the pelvis from first to last key),
    "blender", "numpy", "found_before_install" (capture packages importable before the zip: should be
    none), "check" (Check Set-up's text), "loaded" ({package: loaded from the extension's folder} for
    those Blender's process imported), "torch_or_mediapipe_imported"}. Raises RuntimeError with the
    child's output when it fails."""
    import os

    script = folder / "child.py"
    script.write_text(_CHILD)
    user = Path(tempfile.mkdtemp(prefix="blender-user-", dir=folder))
    done = subprocess.run([sys.executable, "-I", "-S", str(script), str(python), str(zip_path), str(SAMPLE), worker,
                           str(repeat)],
                          capture_output=True, text=True, env={**os.environ, "BLENDER_USER_RESOURCES": str(user)})
    if done.returncode != 0:
        raise RuntimeError(f"the capture in Blender failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, help="the extension zip (default: built from this checkout)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--blender", help="a bpy version from PyPI to run as Blender (default: this Python's)")
    parser.add_argument("--numpy", help="the NumPy that Blender release bundles (default: this Python's)")
    parser.add_argument("--inside-only", action="store_true", help="only the capture inside Blender (a version check)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="posemoe-bench-blender-") as tmp:
        folder = Path(tmp)
        zip_path = args.zip
        if zip_path is None:
            subprocess.run([sys.executable, str(ROOT / "blender_addon" / "build.py"), "--out", str(folder / "dist")],
                           check=True, capture_output=True)
            (zip_path,) = (folder / "dist").glob("*.zip")
        python = blender_python(folder / "python", args.blender, args.numpy)
        modes = {"inside Blender (zip alone, ONNX Runtime)": run_mode(zip_path, "", args.repeat, folder, python)}
        if not args.inside_only:
            modes["worker Python (this checkout's, PyTorch)"] = run_mode(zip_path, sys.executable, args.repeat, folder,
                                                                         python)
    rows = []
    for mode, result in modes.items():
        if result["found_before_install"]:
            raise SystemExit(f"error: this Blender is not bare: {result['found_before_install']} import without the zip")
        if result["travelled"] < 0.5:
            raise SystemExit(f"error: {mode}: the walker travelled {result['travelled']:.2f} m; the capture is wrong")
        times = result["times"]
        rows.append({"mode": mode, "take_frames": result["take_frames"], "first_s": times[0],
                     "median_s": statistics.median(times[1:] or times), "times_s": times,
                     "travelled_m": result["travelled"], "blender": result["blender"], "numpy": result["numpy"]})
    info = probe(SAMPLE)
    video_frames = info.frame_count
    shown = [a for a in (argv if argv is not None else sys.argv[1:])]
    for option in ("--markdown", "--json"):  # where the table goes is not how it was measured
        if option in shown:
            del shown[shown.index(option):shown.index(option) + 2]
    command = " ".join(["python benchmarks/blender.py", *shown])
    lines = ["# Capture inside Blender against the worker", "",
             f"`{command}`, on {describe_machine()}. Blender {rows[0]['blender']} (the `bpy` module in a Python "
             f"with only the standard library, bpy and NumPy {rows[0]['numpy']}) with the extension zip installed; "
             f"the sample ({video_frames} video frames, {info.width}x{info.height}) captured from the Capture operator with its "
             "defaults onto a new armature, whose pelvis must travel. The worker is started for every capture.", "",
             "| where the capture runs | first capture (s) | later captures, median (s) | video frames/s | walker travels (m) |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['mode']} | {row['first_s']:.1f} | {row['median_s']:.1f} | "
                     f"{video_frames / row['median_s']:.1f} | {row['travelled_m']:.2f} |")
    figures = {"machine": describe_machine(), "rows": rows}
    if len(rows) == 2:
        figures["inside_over_worker"] = rows[0]["median_s"] / rows[1]["median_s"]
        lines += ["", f"Inside Blender takes **{figures['inside_over_worker']:.2f}x** the worker's time (later captures)."]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if args.markdown:
        with atomic_output(args.markdown) as path:
            Path(path).write_text(markdown)
    if args.json:
        with atomic_output(args.json) as path:
            Path(path).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
