"""Benchmark lifting checkpoints on Human3.6M S9 and S11 and write one side-by-side table.

    python training/benchmark.py runs/posemoe-t27 runs/baseline-t27 \\
        --detections ../shared/data/h36m_2d_sh_mpii16_px10.npz --markdown docs/benchmarks.md

For every checkpoint: protocol 1 (MPJPE) and protocol 2 (P-MPJPE) per action and averaged over
actions, from ground-truth 2D (projections through the calibrated cameras) and from the real Stacked
Hourglass detections; N-MPJPE, MPJVE, PCK@150mm and AUC with ground-truth 2D; lifter throughput on
this machine; parameters and MACs; and the learning curve from the run's log. Whole sequences are
lifted with the product's engine (``posemoe.lift``), so the numbers are what users get.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from posemoe import metrics
from posemoe.lift import lift_windows, onnx_window_function, torch_window_function
from posemoe.model.checkpoint import load_checkpoint
from posemoe.model.config import read_config
from posemoe.model.onnx_export import export_onnx
from posemoe.machine import describe_machine
from posemoe.model.profile import describe
from training.data import MISSING_NOTE, TEST_SUBJECTS, action_name, load_clips
from training.train import DEFAULT_DATA, LOG_FILE

THROUGHPUT_BATCHES = (1, 64, 256)


def machine() -> str:
    return f"{describe_machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def as_inputs(xy: np.ndarray) -> np.ndarray:
    """(N, 17, 2) screen coordinates -> (N, 17, 3) model inputs with every joint visible."""
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,), dtype=xy.dtype)], axis=-1)


def evaluate(model, clips, source: str, flip: bool, stride: int | None) -> dict:
    """Errors of ``model`` over ``clips`` with 2D from ``source`` ("gt" or "detected"), in mm."""
    per_action: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    extra = defaultdict(list)
    frames = model.config.frames
    predict = torch_window_function(model)
    for clip in clips:
        xy = clip.pose2d if source == "gt" else clip.det2d
        if xy is None:
            continue
        pred = lift_windows(predict, as_inputs(xy), clip.focal, frames, stride=stride, flip=flip,
                            normalize=model.config.input == "person", lens_known=True if model.config.lens_input else None)
        gt = clip.pose3d
        err = np.linalg.norm(pred - gt, axis=-1).mean(-1)
        err_p = np.linalg.norm(metrics.procrustes_align(pred, gt) - gt, axis=-1).mean(-1)
        bucket = per_action[action_name(clip.action)]
        bucket["p1"].append(err)
        bucket["p2"].append(err_p)
        if source == "gt":
            extra["n_mpjpe"].append((metrics.n_mpjpe(pred, gt), len(gt)))
            extra["mpjve"].append((metrics.mpjve(pred, gt), len(gt) - 1))
            extra["accel"].append((metrics.acceleration_error(pred, gt), len(gt) - 2))
            extra["pck"].append((metrics.pck(pred, gt), len(gt)))
            extra["auc"].append((metrics.auc(pred, gt), len(gt)))
    actions = {a: {k: 1000 * float(np.concatenate(v).mean()) for k, v in d.items()} for a, d in sorted(per_action.items())}
    result = {
        "actions": actions,
        "p1": float(np.mean([v["p1"] for v in actions.values()])),
        "p2": float(np.mean([v["p2"] for v in actions.values()])),
    }
    for key, values in extra.items():
        value = np.average([v for v, _ in values], weights=[w for _, w in values])
        result[key] = float(value if key in ("pck", "auc") else 1000 * value)
    return result


def throughput(folder: Path, model, repeats: int = 5) -> dict[str, dict[str, float]]:
    """Output frames per second of one forward pass at several batch sizes (windows per call), on
    PyTorch and on ONNX Runtime (the model exported to a temporary file), CPU.

    Each cell is the median of ``repeats`` timed calls after a warm-up call: a shared machine stalls
    now and then, and one stalled call would drag a mean down with it.
    """
    c = model.config
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(folder, Path(tmp) / "model.onnx")
        backends = {"PyTorch": torch_window_function(model), "ONNX Runtime": onnx_window_function(onnx_path, "cpu")}
        result = {}
        for name, predict in backends.items():
            result[name] = {}
            for batch in THROUGHPUT_BATCHES:
                x = np.random.default_rng(0).normal(size=(batch, c.frames, c.joints, c.input_channels)).astype(np.float32)
                predict(x)  # warm-up
                seconds = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    predict(x)
                    seconds.append(time.perf_counter() - start)
                result[name][str(batch)] = batch * c.frames / float(np.median(seconds))
    return result


def learning_curve(folder: Path) -> list[dict]:
    path = folder / LOG_FILE
    if not path.exists():
        return []
    with open(path) as f:
        return [row for row in csv.DictReader(f) if row.get("val_mpjpe_mm")]


def ablation_rows(folders: list[Path]) -> list[dict]:
    """Validation learning curves of short recipe-ablation runs, read from their logs (no evaluation)."""
    rows = []
    for folder in folders:
        train = read_config(folder).get("train", {})
        changes = list(train.get("set", []))
        if train.get("independent_frames"):
            changes.append(f"per-frame warm start for {train['independent_frames']} steps")
        change = ", ".join(changes) or "-"
        rows.append({"name": folder.name, "change": change, "lr": train.get("lr"), "batch": train.get("batch"),
                     "curve": {int(r["step"]): float(r["val_mpjpe_mm"]) for r in learning_curve(folder)}})
    return rows


def ablation_markdown(rows: list[dict]) -> list[str]:
    steps = sorted(set.intersection(*(set(r["curve"]) for r in rows)))  # steps every run reached
    lines = ["## Recipe ablation (validation MPJPE in mm, every 40th non-overlapping S9/S11 window, GT 2D)", "",
             "Short runs with the same seed, data order and schedule (`--steps` of the full run, stopped with `--until`).", "",
             "| run | change | lr | batch | " + " | ".join(f"step {s}" for s in steps) + " |",
             "|---" * (4 + len(steps)) + "|"]
    for r in rows:
        cells = [f"{r['curve'][s]:.1f}" for s in steps]
        lines.append(f"| {r['name']} | {r['change']} | {r['lr']} | {r['batch']} | " + " | ".join(cells) + " |")
    return lines + [""]


def to_markdown(results: list[dict], command: str, flip: bool, ablation: list[dict]) -> str:
    names = [r["name"] for r in results]
    lines = [
        "# Lifting benchmark: Human3.6M S9 and S11",
        "",
        "Generated by:",
        "",
        f"    {command}",
        "",
        f"Machine: {results[0]['machine']}.",
        "Protocol 1 is MPJPE and protocol 2 P-MPJPE (Procrustes with scale), in mm, root-relative, every frame of",
        f"every camera, averaged per action and then over actions. Whole sequences are lifted by `posemoe.lift` "
        f"with non-overlapping windows{' and flip averaging' if flip else ''}. "
        "Detected 2D: Stacked Hourglass (MPII-trained, not fine-tuned on Human3.6M), its missing Neck/Nose joint "
        "interpolated between Thorax and Head (`training/data.py`).",
        "",
        f"**{MISSING_NOTE}**",
        "",
        "## Summary",
        "",
        "| checkpoint | arch | T | params | MMACs/frame | train steps | train hours | P1 GT 2D | P2 GT 2D | P1 detected | P2 detected | N-MPJPE | MPJVE | PCK@150 | AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        g, d = r["gt"], r.get("detected")
        lines.append(
            f"| {r['name']} | {r['arch']} | {r['frames']} | {r['parameters']:,} | {r['macs_per_frame'] / 1e6:.2f} | "
            f"{r['train_steps']} | {r['train_hours']:.2f} | {g['p1']:.1f} | {g['p2']:.1f} | "
            f"{d['p1'] if d else float('nan'):.1f} | {d['p2'] if d else float('nan'):.1f} | {g['n_mpjpe']:.1f} | "
            f"{g['mpjve']:.2f} | {100 * g['pck']:.1f}% | {100 * g['auc']:.1f}% |"
        )
    lines += ["", "MPJVE in mm per frame (50 fps).", "", "## Per action, protocol 1 / protocol 2 (mm)", ""]
    sources = [("gt", "GT 2D")] + ([("detected", "detected")] if all(r.get("detected") for r in results) else [])
    header = "| action | " + " | ".join(f"{n} {label}" for n in names for _, label in sources) + " |"
    lines += [header, "|---" * (1 + len(names) * len(sources)) + "|"]
    for action in results[0]["gt"]["actions"]:
        cells = []
        for r in results:
            for key, _ in sources:
                v = r[key]["actions"][action]
                cells.append(f"{v['p1']:.1f} / {v['p2']:.1f}")
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    lines += ["", "## Lifter throughput on this machine (output frames/s of one forward pass, CPU, median of 5 calls)", ""]
    lines += ["| checkpoint | backend | " + " | ".join(f"batch {b} windows" for b in THROUGHPUT_BATCHES) + " |"]
    lines += ["|---" * (2 + len(THROUGHPUT_BATCHES)) + "|"]
    for r in results:
        for backend, fps in r["throughput"].items():
            lines.append(f"| {r['name']} | {backend} | " + " | ".join(f"{fps[str(b)]:,.0f}" for b in THROUGHPUT_BATCHES) + " |")
    lines += ["", "## Learning curves (validation: every 40th non-overlapping S9/S11 window, GT 2D, no flip)", ""]
    for r in results:
        lines += [f"**{r['name']}**: `python training/train.py {r['train_command']}`", ""]
        lines += ["| step | windows seen | training hours | validation MPJPE (mm) |", "|---|---|---|---|"]
        lines += [f"| {row['step']} | {int(row['windows']):,} | {float(row['train_hours']):.2f} | {row['val_mpjpe_mm']} |" for row in r["curve"]]
        lines.append("")
    if ablation:
        lines += ablation_markdown(ablation)
    return "\n".join(lines) + "\n"


def train_command(train: dict) -> str:
    keys = ["config", "init", "steps", "batch", "lr", "threads", "seed", "views_prob", "out_of_frame_prob", "ema"]
    parts = [f"--{k.replace('_', '-')} {train[k]}" for k in keys if train.get(k)]
    if train.get("faults"):
        parts.append("--faults")
    if train.get("lens_known_prob", 1.0) < 1.0:
        parts.append(f"--lens-known-prob {train['lens_known_prob']}")
    if train.get("detections"):
        parts.append(f"--detections {Path(train['detections']).name} --detection-prob {train['detection_prob']}")
    return " ".join(parts)


def accuracy(folder: Path, data: str, detections: str | None, flip: bool, stride: int | None) -> dict:
    """{"gt": errors, "detected": errors (when detections are given)} of one checkpoint on S9/S11."""
    clips = load_clips(data, TEST_SUBJECTS, detections)
    model = load_checkpoint(folder)
    started = time.time()
    score = {"gt": evaluate(model, clips, "gt", flip, stride)}
    print(f"{folder.name}: GT 2D P1 {score['gt']['p1']:.1f} mm, P2 {score['gt']['p2']:.1f} mm ({time.time() - started:.0f} s)", flush=True)
    if detections:
        score["detected"] = evaluate(model, clips, "detected", flip, stride)
        print(f"{folder.name}: detected P1 {score['detected']['p1']:.1f} mm, P2 {score['detected']['p2']:.1f} mm", flush=True)
    return score


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoint folders (model.safetensors + config.json)")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--detections", default=None, help="h36m_2d_sh_mpii16_px10.npz for the detected-2D protocol")
    p.add_argument("--flip", action="store_true", help="flip averaging at test time")
    p.add_argument("--stride", type=int, default=None, help="window stride (default: the window length)")
    p.add_argument("--markdown", default=None, help="write the table here")
    p.add_argument("--json", default=None, help="write all figures here (default: beside --markdown)")
    p.add_argument("--jobs", type=int, default=1, help="checkpoints evaluated in parallel processes")
    p.add_argument("--ablation", nargs="*", default=[], help="run folders whose learning curves form the recipe ablation table")
    args = p.parse_args(argv)
    if not Path(args.data).exists():
        print(f"{args.data} not found: the benchmark needs the Human3.6M files of ../shared/data.", file=sys.stderr)
        return 2
    print(MISSING_NOTE)
    folders = [Path(f) for f in args.checkpoints]
    jobs = [(f, args.data, args.detections, args.flip, args.stride) for f in folders]
    if args.jobs > 1:
        # One process per checkpoint, one thread each: on small CPUs this beats threads inside one model.
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            scores = list(pool.map(accuracy, *zip(*jobs)))
    else:
        scores = [accuracy(*job) for job in jobs]
    results = []
    for folder, score in zip(folders, scores):
        model = load_checkpoint(folder)
        saved = read_config(folder)
        c = model.config
        results.append({
            "name": folder.name, "arch": c.arch, "frames": c.frames, **describe(c), "machine": machine(),
            "train_steps": saved.get("step", 0), "train_hours": saved.get("train_hours", 0.0),
            "train_command": train_command(saved.get("train", {})), "curve": learning_curve(folder),
            **score, "throughput": throughput(folder, model),  # measured alone, after the accuracy jobs
        })
    command = "python training/benchmark.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    ablation = ablation_rows([Path(f) for f in args.ablation])
    text = to_markdown(results, command, args.flip, ablation)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
        json_path = Path(args.json or Path(args.markdown).with_suffix(".json"))
        json_path.write_text(json.dumps({"command": command, "missing": MISSING_NOTE, "results": results, "ablation": ablation}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
