"""Train several runs side by side on one lent GPU inside a fixed wall-clock budget, then pack them.

    python training/pack_data.py pack ../shared/data .devdata        # here, once (about 24 MB)
    python3 training/gpu_session.py --packed .devdata --seconds 480 --out "$OUT"   # on the GPU machine
    python3 training/gpu_session.py --packed .devdata --out "$OUT" --extend runs/posemoe-t27 7500 \
        --extend runs/posemoe-t27 14000          # or: resume carried runs, one after another
    python3 training/gpu_session.py --packed .devdata --out "$OUT" --ablation 1000   # or: the readings' ablation (training/ablation.py)

A lent GPU machine comes for minutes, not hours, so the runs must end on time with their learning
rate decayed. The cosine schedule is defined over ``--steps``, and a GPU's speed for a given model is
not known in advance, so each run first trains a few hundred steps (``--until``), which also proves the
set-up; the measured seconds per step, with all runs sharing the GPU as they will, then fix each run's
total ``--steps``, and the run resumes to it (the warm-up steps are the same either way; the two
commands are in each run's ``commands.txt``). ``--max-minutes`` stays as a safety net. The runs finish
with a lifter speed measurement on the GPU and are packed into ``--out`` as tar pieces of under 16 MiB
(the most the device tool hands back per file): ``cat NAME.tar.part-* | tar x`` unpacks one.

The data is unpacked to ``../shared/data`` beside the checkout, the path every run records, so the
runs resume on any of our machines unchanged.

These small models leave the GPU mostly idle, yet runs side by side slow each other down far more
than that suggests (``docs/decisions.md``, "Runs side by side on one GPU"): with ten minutes of GPU,
train one run (``--only NAME``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RELATIVE_DATA = os.path.relpath(DATA, ROOT)

#: name -> (training arguments, calibration steps). Calibration lengths are chosen so that every run
#: is still calibrating while the others are: the measured speeds then include the sharing.
RUNS = {
    "posemoe-t27-gpu-b256": (["--config", "posemoe-t27", "--batch", "256", "--lr", "1e-3", "--warmup", "300"], 300),
    "posemoe-t27-gpu-b1024": (["--config", "posemoe-t27", "--batch", "1024", "--lr", "2e-3", "--warmup", "300"], 200),
    "posemoe-t81-gpu-b256": (["--config", "posemoe-t81", "--batch", "256", "--lr", "1e-3", "--warmup", "500"], 150),
}
COMMON = ["--data", f"{RELATIVE_DATA}/h36m_3d_17j_mm.npz", "--detections", f"{RELATIVE_DATA}/h36m_2d_sh_mpii16_px10.npz",
          "--detection-prob", "0.3", "--seed", "0", "--quiet"]
GUESS_STEPS = 20000
PIECE = 15 * 2**20


def start(name: str, args: list[str], runs: Path, device: str) -> subprocess.Popen:
    command = [sys.executable, "training/train.py", *args, "--out", str(runs / name), "--device", device, "--threads", "4"]
    with open(runs / f"{name}.commands.txt", "a") as f:
        f.write(shlex.join(["python", *command[1:]]) + "\n")
    log = open(runs / f"{name}.out", "a")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_all(procs: dict[str, subprocess.Popen], runs: Path) -> list[str]:
    ok = []
    for name, proc in procs.items():
        if proc.wait() == 0:
            ok.append(name)
        else:
            tail = (runs / f"{name}.out").read_text().splitlines()[-15:]
            print(f"{name} failed (exit {proc.returncode}):\n  " + "\n  ".join(tail), flush=True)
    return ok


def seconds_per_step(folder: Path) -> float:
    """From the run's log: training seconds per step over its second half (first half warms up CUDA)."""
    rows = list(csv.DictReader(open(folder / "log.csv")))
    a, b = rows[len(rows) // 2 - 1], rows[-1]
    return (float(b["train_hours"]) - float(a["train_hours"])) * 3600 / (int(b["step"]) - int(a["step"]))


def gpu_throughput(folder: Path) -> dict[str, float]:
    """Lifted frames per second on the GPU, host copies included, 1,024 windows per call."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))  # no install on a lent GPU machine (see main)
    from posemoe.lift import torch_window_function
    from posemoe.model.checkpoint import load_checkpoint

    model = load_checkpoint(folder, "cuda")
    c = model.config
    x = np.random.default_rng(0).normal(size=(1024, c.frames, c.joints, c.input_channels)).astype(np.float32)
    result = {}
    for precision in ("fp32", "bf16"):
        predict = torch_window_function(model, precision)
        for _ in range(3):
            predict(x)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(10):
            predict(x)
        result[precision] = 10 * len(x) * c.frames / (time.perf_counter() - started)
    return result


def train_side_by_side(names: list[str], runs: Path, device: str, began: float, seconds: float) -> list[str]:
    """Calibrate RUNS side by side, then resume each to the steps that fit; returns the names that finished."""
    procs = {n: start(n, [*RUNS[n][0], *COMMON, "--steps", str(GUESS_STEPS), "--until", str(RUNS[n][1]),
                          "--save-every", str(RUNS[n][1] // 6), "--eval-every", str(10 * GUESS_STEPS)], runs, device)
             for n in names}
    alive = wait_all(procs, runs)
    calibrated = time.time()
    # The resumed processes load the data again (about as long as the first start took).
    startup = min(60.0, (calibrated - began) * 0.5)
    left = seconds - (calibrated - began) - startup - 30  # 30 s: the speed test and packing
    plan = {}
    for name in alive:
        sps = seconds_per_step(runs / name)
        plan[name] = RUNS[name][1] + max(0, int(left / (sps * 1.1)) // 50 * 50)
        print(f"{name}: {sps * 1000:.1f} ms/step shared; training to step {plan[name]}", flush=True)
    procs = {n: start(n, ["--resume", "--steps", str(plan[n]), "--max-minutes", f"{(left + startup) / 60:.2f}",
                          "--save-every", "250", "--eval-every", "500"], runs, device) for n in plan}
    return wait_all(procs, runs)


def extend(requests: list[list[str]], runs: Path, device: str, deadline: float) -> list[str]:
    """Resume a copy of each carried run folder to its total steps, one at a time; returns the copies' names.

    One at a time because runs sharing the GPU each slow down 2-3x. ``--max-minutes`` (what is left
    before ``deadline``) keeps a run that is slower than hoped from eating the packing time."""
    finished = []
    for folder, steps in requests:
        name = f"{Path(folder).name}-to-{steps}"
        shutil.copytree(ROOT / folder, runs / name, dirs_exist_ok=True)
        minutes = (deadline - time.time()) / 60
        if minutes < 1:
            print(f"{name}: no time left, not started", flush=True)
            continue
        proc = start(name, ["--resume", "--steps", steps, "--max-minutes", f"{minutes:.2f}", "--save-every", "250",
                            "--eval-every", "500"], runs, device)
        finished += wait_all({name: proc}, runs)
    return finished


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packed", type=Path, required=True, help="folder written by training/pack_data.py pack")
    p.add_argument("--seconds", type=float, default=480, help="wall-clock budget of this whole script")
    p.add_argument("--out", type=Path, required=True, help="where the packed runs go")
    p.add_argument("--runs", default="/tmp/runs", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--only", nargs="*", default=list(RUNS), help="names of RUNS to train")
    p.add_argument("--extend", nargs=2, action="append", metavar=("FOLDER", "STEPS"),
                   help="instead of RUNS: resume a copy of this run folder to STEPS (a larger total extends its "
                        "schedule); repeatable, run one after another, each within what is left of --seconds")
    p.add_argument("--ablation", type=int, metavar="STEPS",
                   help="instead of RUNS: training/ablation.py, every PoseMoE reading and the twin, two seeds, STEPS "
                        "steps of 256 windows side by side (carry runs/ablation to finish or extend earlier runs)")
    args = p.parse_args(argv)
    began = time.time()
    # A lent GPU machine has the checkout but no install: the scripts started from here (train.py,
    # ablation.py, pack_data.py) find posemoe and training through the path.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip() if args.device == "cuda" else "CPU", flush=True)

    if not (DATA / "h36m_3d_17j_mm.npz").exists():
        subprocess.run([sys.executable, "training/pack_data.py", "unpack", str(args.packed), str(DATA)], cwd=ROOT, check=True)
    args.runs.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    if args.ablation:
        table = args.out / "ablation.md"
        done = subprocess.run([sys.executable, "training/ablation.py", "--steps", str(args.ablation), "--batch", "256",
                               "--device", args.device, "--jobs", "12", "--eval-every", "250", "--out", str(args.runs / "ablation"),
                               "--markdown", str(table)], cwd=ROOT).returncode == 0
        finished = ["ablation"] if done else []
    elif args.extend:
        finished = extend(args.extend, args.runs, args.device, began + args.seconds - 30)
    else:
        finished = train_side_by_side(args.only, args.runs, args.device, began, args.seconds)

    summary = {}
    for name in finished:
        folder = args.runs / name
        if name == "ablation":  # its table is in --out already; pack the runs for the next draw
            tar = subprocess.run(["tar", "cf", "-", "-C", str(args.runs), name], capture_output=True, check=True).stdout
            for i in range(0, len(tar), PIECE):
                (args.out / f"{name}.tar.part-{i // PIECE:02d}").write_bytes(tar[i : i + PIECE])
            continue
        rows = list(csv.DictReader(open(folder / "log.csv")))
        vals = [(int(r["step"]), float(r["val_mpjpe_mm"])) for r in rows if r["val_mpjpe_mm"]]
        summary[name] = {"step": int(rows[-1]["step"]), "train_hours": float(rows[-1]["train_hours"]), "validation": vals[-3:]}
        if args.device == "cuda":
            summary[name]["gpu_frames_per_s"] = gpu_throughput(folder)
        for extra in (f"{name}.out", f"{name}.commands.txt"):
            (args.runs / extra).replace(folder / extra)
        tar = subprocess.run(["tar", "cf", "-", "-C", str(args.runs), name], capture_output=True, check=True).stdout
        for i in range(0, len(tar), PIECE):
            (args.out / f"{name}.tar.part-{i // PIECE:02d}").write_bytes(tar[i : i + PIECE])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"done in {time.time() - began:.0f} s", flush=True)
    return 0 if finished else 1


if __name__ == "__main__":
    raise SystemExit(main())
