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
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posemoe.files import atomic_output  # noqa: E402
from posemoe.machine import describe_machine  # noqa: E402

SAMPLE = ROOT / "samples" / "walk.mp4"

_CHILD = r'''
import json, sys, time
blender_python, zip_path, video, worker, repeat = sys.argv[1:6]
sys.path.append(blender_python)
import bpy

bpy.ops.wm.read_factory_settings(use_empty=True)
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                enable_on_install=True) == {"FINISHED"}
prefs = sys.modules["bl_ext.user_default.posemoe_mocap"].preferences.preferences()
prefs.python = worker
times = []
for _ in range(int(repeat)):
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.posemoe.video = video
    clock = time.perf_counter()
    assert bpy.ops.posemoe.capture() == {"FINISHED"}
    times.append(time.perf_counter() - clock)
frames = max(round(a.frame_range[1] - a.frame_range[0]) + 1 for a in bpy.data.actions)
print(json.dumps({"times": times, "take_frames": frames}))
'''


def bare_blender_python(folder: Path) -> Path:
    """A folder holding only what a Blender install's Python has beyond the standard library (bpy and
    NumPy, linked from this Python's site-packages); put it on the path of ``python -I -S``."""
    import numpy

    site = Path(numpy.__file__).parent.parent  # (not bpy.__file__: once imported it is Blender's inner bpy)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("bpy", "numpy", "numpy.libs"):
        if (site / name).exists() and not (folder / name).exists():
            (folder / name).symlink_to(site / name)
    return folder


def run_mode(zip_path: Path, worker: str, repeat: int, folder: Path) -> dict:
    """Capture the sample ``repeat`` times in a fresh bare Blender; returns {"times", "take_frames"}."""
    import os

    script = folder / "child.py"
    script.write_text(_CHILD)
    user = Path(tempfile.mkdtemp(prefix="blender-user-", dir=folder))
    done = subprocess.run([sys.executable, "-I", "-S", str(script), str(bare_blender_python(folder / "python")),
                           str(zip_path), str(SAMPLE), worker, str(repeat)],
                          capture_output=True, text=True, env={**os.environ, "BLENDER_USER_RESOURCES": str(user)})
    if done.returncode != 0:
        raise SystemExit(f"error: the capture in Blender failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, help="the extension zip (default: built from this checkout)")
    parser.add_argument("--repeat", type=int, default=3)
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
        modes = {"inside Blender (zip alone, ONNX Runtime)": run_mode(zip_path, "", args.repeat, folder),
                 "worker Python (this checkout's, PyTorch)": run_mode(zip_path, sys.executable, args.repeat, folder)}
    rows = []
    for mode, result in modes.items():
        times = result["times"]
        rows.append({"mode": mode, "take_frames": result["take_frames"], "first_s": times[0],
                     "median_s": statistics.median(times[1:] or times), "times_s": times})
    inside, worker = rows[0]["median_s"], rows[1]["median_s"]
    video_frames = 230
    lines = ["# Capture inside Blender against the worker", "",
             f"`python benchmarks/blender.py --repeat {args.repeat}`, on {describe_machine()}. The sample "
             f"({video_frames} video frames, 1768x994), captured from Blender's Capture operator with its defaults, "
             "onto a new armature; Blender is the `bpy` module in a Python with only the standard library, bpy and "
             "NumPy, with the extension zip installed. The worker is started for every capture.", "",
             "| where the capture runs | first capture (s) | later captures, median (s) | video frames/s |",
             "|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['mode']} | {row['first_s']:.1f} | {row['median_s']:.1f} | "
                     f"{video_frames / row['median_s']:.1f} |")
    lines += ["", f"Inside Blender takes **{inside / worker:.2f}x** the worker's time (later captures)."]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if args.markdown:
        with atomic_output(args.markdown) as path:
            Path(path).write_text(markdown)
    if args.json:
        with atomic_output(args.json) as path:
            Path(path).write_text(json.dumps({"machine": describe_machine(), "rows": rows,
                                              "inside_over_worker": inside / worker}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
