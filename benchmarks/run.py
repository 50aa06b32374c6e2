"""Every figure of the product in one file: ``python benchmarks/run.py`` writes docs/benchmarks.md and .json.

Sections, each produced by its own script in its own process (so one crash or one Blender module
cannot spoil the others) and each stamped with the machine it ran on:

- accuracy: the shipped lifter, the entangled baseline, the temporal convolution reference and the
  equal-budget checkpoint on Human3.6M S9/S11, protocols 1 and 2, ground-truth and detected 2D, lifter
  throughput, learning curves and the recipe ablation (``training/benchmark.py``; skipped, with a
  message, when ``../shared/data`` is absent);
- ablation: PoseMoE's readings against the entangled twin at an equal budget, two seeds each, with
  learning curves (``training/ablation.py``; skipped like accuracy without ``../shared/data``);
- product: the Lifter with its defaults, as users get it, on S9/S11 as recorded, through virtual phone
  cameras at 24, 30 and 60 frames/s, and on the real detections (``benchmarks/product.py``; skipped
  like accuracy without ``../shared/data``);
- capture speed per stage, PyTorch and ONNX Runtime (``benchmarks/capture.py``);
- detection on real footage: the detector against MediaPipe's own PoseLandmarker, clip by clip on the
  sample and ``../shared/media/real/``, and what looking for people less often would save and cost
  (``benchmarks/detect.py``; only the sample without ``../shared``);
- several people: synthetic two-person scenes from Human3.6M S9/S11 through one virtual camera, and the
  real clips with several people against the reference and hand labels (``benchmarks/people.py``; the
  synthetic part needs ``../shared/data``, the real part ``../shared/media/real``, the sample always);
- world-grounded motion: the root's path, the floor and the feet (WA-MPJPE100, W-MPJPE100, RTE, foot
  sliding, penetration and float, camera tilt) on the virtual phone cameras of product's (b), through
  the capture's whole path from 2D keypoints (``benchmarks/world.py``; skipped like accuracy without
  ``../shared/data``);
- real footage in 3D: each view of the calibrated four-view scene in ``../shared/media/multiview/``
  captured as a user would (``posemoe capture --people all``, the default lens and the true one) and
  scored against the triangulation of all the views: MPJPE, PA-MPJPE, per joint, bone-length spread,
  the distance between the two people and their feet above one floor, with MediaPipe's world
  landmarks as the anchor row (``benchmarks/multiview.py``; skipped, with a message, without that
  folder);
- moving camera: the camera's turn solved on synthetic turns of every real clip and the sample (a
  window of the picture turned by a known homography), what taking it out does to the world motion,
  the real tracking shot, and the solve's cost (``benchmarks/camera.py``; only the sample without
  ``../shared``);
- hands: hand keypoints against MediaPipe's HandLandmarker on ``../shared/media/real/hands/``
  (``benchmarks/hands.py``) and finger angles on synthetic hands (``benchmarks/fingers.py``);
- left/right swap repair on the sample's real detections, and held out on Human3.6M's
  (``benchmarks/swaps.py``; the held-out part needs ``../shared/data``);
- the detector error model training uses, its errors against the real detections' on S9/S11
  (``benchmarks/detector_errors.py``; skipped like accuracy without ``../shared/data``);
- keyframe writing in Blender (``benchmarks/keyframes.py``);
- the capture inside Blender from the extension zip alone, against the same through a worker Python
  (``benchmarks/blender.py``);
- motion quality before and after clean-up on the sample (``benchmarks/motion.py``);
- scale: time and peak memory for 1, 10 and 60 minutes of video (``benchmarks/scale.py``).

The whole run takes about three and a half hours on the 2-core development machine, most of it the
60-minute video: more than one working session. ``--sections`` reruns some of them and replaces only
those in the existing files (new weights need only ``--sections accuracy``); every section carries its
own date and machine, so a file assembled over several runs says which figure came from where.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from posemoe.files import atomic_output
from posemoe.machine import describe_machine

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
LIFTERS = ["posemoe/weights/posemoe-t27", "training/checkpoints/posemoe-t27-2400", "training/checkpoints/baseline-t27",
           "training/checkpoints/tcn-t27"]
ABLATION = ["training/checkpoints/posemoe-t27-2400", "training/ablations/ablation-usual-init",
            "training/ablations/ablation-lr2e-3", "training/ablations/ablation-frame-warm-start"]

SECTIONS = {
    # Relative (the scripts run in the repository root), so the recorded command runs on any checkout.
    "accuracy": ["training/benchmark.py", *LIFTERS, "--detections", os.path.relpath(SHARED / "h36m_2d_sh_mpii16_px10.npz", ROOT),
                 "--jobs", "2", "--ablation", *ABLATION],
    # Trains what runs/ablation lacks (10 runs of about 9 min on one core of this machine; --jobs 2
    # halves it when nothing else runs), then scores every run.
    "ablation": ["training/ablation.py", "--steps", "300", "--seeds", "0", "1", "--jobs", "2", "--eval-every", "100"],
    "product": ["benchmarks/product.py", "--every", "3"],
    "speed": ["benchmarks/capture.py"],
    "detect": ["benchmarks/detect.py"],
    "people": ["benchmarks/people.py"],
    "world": ["benchmarks/world.py", "--before", "benchmarks/world_before.json"],
    "multiview": ["benchmarks/multiview.py", "--before", "benchmarks/multiview_before.json"],
    "camera": ["benchmarks/camera.py"],
    "hands": ["benchmarks/hands.py"],
    "fingers": ["benchmarks/fingers.py"],
    "swaps": ["benchmarks/swaps.py"],
    "detector_errors": ["benchmarks/detector_errors.py"],
    "keyframes": ["benchmarks/keyframes.py"],
    "blender": ["benchmarks/blender.py"],
    "motion": ["benchmarks/motion.py"],
    "scale": ["benchmarks/scale.py"],
}


def _demoted(markdown: str) -> str:
    """The section's headings one level down, so the file keeps one top-level title."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def run_section(name: str, folder: Path) -> tuple[str, object]:
    """Run one section's script; returns (its Markdown, its JSON figures)."""
    if name in ("accuracy", "ablation", "product", "detector_errors", "world") and not SHARED.is_dir():
        message = f"Skipped: the {name} benchmark needs the Human3.6M files in {SHARED}."
        return f"# {name.capitalize()}\n\n{message}\n", {"skipped": message}
    markdown, figures = folder / f"{name}.md", folder / f"{name}.json"
    command = [sys.executable, *SECTIONS[name], "--markdown", str(markdown), "--json", str(figures)]
    clock = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: the {name} section failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    print(f"{name}: {time.perf_counter() - clock:.0f} s", file=sys.stderr)
    # The section names the script and arguments that made it; its temporary file name says nothing.
    return markdown.read_text().replace(f"{folder}/", ""), json.loads(figures.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS),
                        help="run only these; the others are kept from the existing files")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    json_path = args.out.with_suffix(".json")
    old = json.loads(json_path.read_text()) if json_path.exists() else {}
    sections = {name: old[name] for name in SECTIONS if isinstance(old.get(name), dict) and "markdown" in old[name]}
    with tempfile.TemporaryDirectory(prefix="posemoe-benchmarks-") as tmp:
        for name in args.sections:
            markdown, data = run_section(name, Path(tmp))
            stamp = f"Measured on {describe_machine()} ({time.strftime('%Y-%m-%d')}) by `python benchmarks/run.py --sections {name}`."
            sections[name] = {"measured": stamp, "markdown": markdown, "figures": data}
    missing = [name for name in SECTIONS if name not in sections]
    parts = ["# Benchmarks: the whole product\n\nGenerated by `python benchmarks/run.py` (every section; "
             "`--sections NAME...` reruns some and keeps the rest). Every section says how and where it was "
             "measured; rerun the command to check.\n"]
    if missing:
        parts.append(f"Not measured yet: {', '.join(missing)} (run `python benchmarks/run.py --sections {' '.join(missing)}`).\n")
    for name in SECTIONS:
        if name in sections:
            heading, _, body = _demoted(sections[name]["markdown"]).partition("\n")
            parts.append(f"{heading}\n\n_{sections[name]['measured']}_\n{body}")
    with atomic_output(args.out) as tmp:
        tmp.write_text("\n\n".join(part.strip() for part in parts) + "\n")
    with atomic_output(json_path) as tmp:
        tmp.write_text(json.dumps({name: sections[name] for name in SECTIONS if name in sections}, indent=1) + "\n")
    print(f"wrote {args.out} and {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
