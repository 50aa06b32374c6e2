"""Train a lifting network (PoseMoE or the entangled baseline) on Human3.6M.

    python training/train.py --config posemoe-t27 --steps 3000 --out runs/posemoe-t27
    python training/train.py --out runs/posemoe-t27 --resume --steps 6000   # add more training later
    torchrun --nproc_per_node=2 training/train.py --config posemoe-t81 ...  # several GPUs (DDP)
    python training/train.py --init posemoe/weights/posemoe-t27 --views-prob 0.5 --faults ... # fine-tune on what users film
    python training/train.py --init ... --detector-errors 0.7 ...  # clean windows given a real detector's errors

Trains on S1 S5 S6 S7 S8 (2D from projecting the 3D through all 4 cameras, optionally mixed with the
real detections, and with ``--views-prob`` through virtual phone cameras at 20-60 frames/s) and
validates on a fixed subset of S9 and S11. The network sees every window through the product's own
normalisation (:func:`network_batch`), exactly as :class:`posemoe.lift.Lifter` gives it. A run folder holds ``model.safetensors``
+ ``config.json`` (the weights), ``train_state.pt`` (optimiser and progress) and ``log.csv``. With
``--ema`` the saved weights are the moving average of the trained ones (late in a small-batch run on
a CPU the weights wander: a resume of the shipped weights' run from step 10,000 to 13,000, at learning
rates of 4e-5 down to 1.5e-5, read between 40.4 and 43.0 mm of validation, 1.8 mm apart at its last two
checks), and ``train_state.pt`` also keeps the trained weights themselves.

Resuming is exact: the data order, the augmentation and every random draw are functions of
(seed, step), so a run stopped and resumed gives the same weights as one that never stopped. The
learning-rate schedule is defined over ``--steps``; passing a larger ``--steps`` on resume extends it.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent

from posemoe.model import build_model, count_parameters, get_config
from posemoe.model.checkpoint import load_checkpoint, save_checkpoint
from posemoe.model.config import read_config
from posemoe.normalize import normalize_windows, turn_targets
from training.data import (FAULTS, NO_AUGMENT, TEST_SUBJECTS, TRAIN_SUBJECTS, Augment, WindowDataset, corrupt,
                           given_focal, load_clips)
from training.detector_errors import DEFAULT_MODEL, DetectorErrors
from training.views import TRAIN_STREAM, ViewRanges, VirtualViews, load_world
from training.losses import expert_loss, training_loss

#: Relative to the working directory (the repository root in every documented command), so that a
#: run's recorded settings resume on any machine with ../shared beside the checkout.
DEFAULT_DATA = os.path.relpath(ROOT.parent / "shared" / "data" / "h36m_3d_17j_mm.npz")
STATE_FILE = "train_state.pt"
LOG_FILE = "log.csv"
LOG_COLUMNS = ["step", "windows", "frames", "train_hours", "lr", "loss", "train_mpjpe_mm", "val_mpjpe_mm"]
#: Settings of one invocation, not of the run: never saved, never read back on --resume. Every other
#: setting is read back from the run's config.json unless given again (give --steps to extend a run).
PER_INVOCATION = ("resume", "until", "max_minutes", "quiet", "threads", "device", "eval_every", "save_every", "out")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="named model config (see `python -m posemoe info`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one field of the named model config (ablations), e.g. --set zero_init=false; "
                        "with --init, grow the network it starts from, e.g. --set lens_input=true")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Human3.6M 3D file (h36m_3d_17j_mm.npz)")
    p.add_argument("--detections", default=None, help="real 2D detections (h36m_2d_sh_mpii16_px10.npz) to mix in")
    p.add_argument("--detection-prob", type=float, default=0.3, help="share of windows that use the real detections")
    p.add_argument("--out", required=True, help="run folder for weights, state and log")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--steps", type=int, default=3000, help="total optimiser steps (the schedule's length)")
    p.add_argument("--batch", type=int, default=32, help="windows per step, over all processes")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.05, help="final learning rate / peak")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights, this decay per step (0: none); the average is "
                        "what is validated and saved as model.safetensors")
    p.add_argument("--velocity-weight", type=float, default=0.5, help="weight of the temporal (velocity) loss")
    p.add_argument("--expert-weight", type=float, default=0.5,
                   help="weight of the experts' own targets, for PoseMoE configs with expert heads (posemoe.py)")
    p.add_argument("--independent-frames", type=int, default=0, metavar="STEPS",
                   help="per-frame warm start: for the first STEPS steps, windows hold unrelated frames (no velocity loss)")
    p.add_argument("--stride", type=int, default=1, help="frames between training window starts")
    p.add_argument("--noise-max", type=float, default=Augment.noise_max)
    p.add_argument("--drop-max", type=float, default=Augment.drop_max)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default=None, help="start a new run from these weights (fine-tuning), with a fresh optimiser")
    p.add_argument("--views-prob", type=float, default=0.0,
                   help="share of each batch seen through virtual phone cameras at 20-60 frames/s (training/views.py)")
    p.add_argument("--out-of-frame-prob", type=float, default=ViewRanges.out_of_frame_prob,
                   help="share of virtual cameras aimed anywhere in the picture, so that part of the body may leave it "
                        "(a whole take leaves the picture more often than one window aimed at the person does)")
    p.add_argument("--faults", action="store_true", help="add a detector's faults (training.data.FAULTS): left/right swaps, drift, guessed joints, joints lost "
                        "for a while; the run's config.json keeps the rates, and a resume reads them back unless --faults is given again")
    p.add_argument("--detector-errors", type=float, default=0.0, metavar="PROB",
                   help="share of the windows made from clean 2D (virtual cameras included) given a real detector's errors from "
                        "the fitted model (training/detector_errors.py: bias, correlated noise, outliers, swaps) instead of "
                        "independent noise")
    p.add_argument("--detector-model", default=os.path.relpath(DEFAULT_MODEL),
                   help="the fitted detector error model --detector-errors uses (JSON)")
    p.add_argument("--lens-known-prob", type=float, default=1.0,
                   help="share of windows normalised with the true lens; the rest get the product's default lens, as users who give no --fov")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--eval-every", type=int, default=250, help="steps between validations")
    p.add_argument("--save-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--val-detected", action="store_true",
                   help="also validate on the real detections of the same windows (needs --detections); log.csv gets a "
                        "val_detected_mm column")
    p.add_argument("--val-stride", type=int, default=40, help="validate on every n-th non-overlapping S9/S11 window")
    p.add_argument("--max-minutes", type=float, default=0, help="stop (resumably) after this long; 0: no limit")
    p.add_argument("--until", type=int, default=0, help="stop (resumably) at this step; 0: at --steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.resume:
        probe = copy.deepcopy(p)
        for action in probe._actions:
            action.default = argparse.SUPPRESS
        explicit = vars(probe.parse_args(argv))
        saved = read_config(args.out).get("train", {})
        for key, value in saved.items():
            if key not in PER_INVOCATION and key not in explicit:
                setattr(args, key, value)
    elif not args.config and not args.init:
        p.error("--config or --init is required for a new run")
    try:
        args.faults = fault_rates(args.faults)
    except ValueError as error:
        p.error(str(error))
    return args


def fault_rates(faults: bool | dict | None) -> dict[str, float]:
    """The detector-fault rates a run trains with, as saved in its config.json.

    ``--faults`` (True) takes the current recipe, ``training.data.FAULTS``; a run's config keeps the
    rates themselves, so that a later change of FAULTS does not change the recipe of a resumed run.
    Runs saved before the rates were kept recorded True, and take the current recipe.
    """
    if faults is True:
        return dict(FAULTS)
    if not faults:
        return {}
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ValueError(f"the run's config.json has fault rates this code does not know, {unknown} (it knows {sorted(FAULTS)}): "
                         "resume with the code that wrote it, or remove them from the config")
    return {key: float(value) for key, value in faults.items()}


def learning_rate(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at ``args.steps``."""
    warm = min(1.0, (step + 1) / max(1, args.warmup))
    progress = min(1.0, step / max(1, args.steps))
    cosine = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return args.lr * warm * cosine


def batch_indices(step: int, batch: int, n: int, seed: int, cache: dict) -> np.ndarray:
    """Window indices of ``step``: consecutive slices of per-epoch permutations (a pure function)."""
    positions = step * batch + np.arange(batch)
    out = np.empty(batch, dtype=np.int64)
    for epoch in np.unique(positions // n):
        if epoch not in cache:
            cache.clear()
            cache[epoch] = np.random.default_rng([seed, int(epoch)]).permutation(n)
        mask = positions // n == epoch
        out[mask] = cache[epoch][positions[mask] % n]
    return out


def network_batch(inputs: np.ndarray, target: np.ndarray, focal: np.ndarray, lens_known: np.ndarray,
                  config) -> tuple[np.ndarray, np.ndarray]:
    """Screen windows and camera-space targets -> what the network is given and must answer: the
    product's one normalisation (:func:`posemoe.normalize.normalize_windows`), the targets turned
    with the windows' perspective crops (unchanged for a ``config.input`` of "screen").
    inputs, target: (B, T, 17, 3); focal: (B,) screen units; lens_known: (B,) bool, whether ``focal``
    is the camera's own (told to networks with the lens channel)."""
    if config.input == "screen":
        return inputs, target
    x, rotation = normalize_windows(inputs, focal, lens_known if config.lens_input else None)
    return x, turn_targets(target, rotation)


@torch.no_grad()
def validate(model: torch.nn.Module, data: WindowDataset, device: torch.device, batch: int = 256, detected: bool = False) -> float:
    """MPJPE in mm over every frame of the validation windows (no augmentation, no flip); with
    ``detected``, their real detections (``data`` must have them) instead of the true 2D."""
    model.eval()
    total, count = 0.0, 0
    rng = np.random.default_rng(0)
    augment = replace(NO_AUGMENT, detection_prob=1.0) if detected else NO_AUGMENT
    for i in range(0, len(data), batch):
        x, y = network_batch(*data.batch(np.arange(i, min(i + batch, len(data))), rng, augment), model.config)
        pred = model(torch.from_numpy(x).to(device)).float().cpu().numpy()
        total += np.linalg.norm(pred - y, axis=-1).mean(axis=(1, 2)).sum()
        count += len(x)
    model.train()
    return 1000.0 * total / count


def main(argv=None) -> int:
    args = parse_args(argv)
    distributed = "WORLD_SIZE" in os.environ
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} must be divisible by the {world} processes")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    main_process = rank == 0

    torch.manual_seed(args.seed)
    if args.resume or args.init:
        # A run resumes as it was saved; a fine-tune may grow the network it starts from (--set).
        model = load_checkpoint(out if args.resume else args.init, overrides=[] if args.resume else args.set).train()
        config = model.config
    else:
        config = get_config(args.config).with_overrides(args.set)
        model = build_model(config)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, train_seconds = 0, 0.0
    if args.resume:
        state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        step, train_seconds = int(state["step"]), float(state["train_seconds"])
    # The average's first update copies the trained weights; on resume model.safetensors holds the
    # average and train_state.pt the trained weights (a run saved without them starts a new average).
    average = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema),
                                                   use_buffers=True) if args.ema else None)
    if args.resume and average is not None and "model" in state:
        model.load_state_dict(state["model"])
        average.n_averaged.fill_(int(state["averaged"]))
    served = average.module if average is not None else model
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    train = WindowDataset(load_clips(args.data, TRAIN_SUBJECTS, args.detections), config.frames, args.stride)
    augment = Augment(noise_max=args.noise_max, drop_max=args.drop_max, detection_prob=args.detection_prob if args.detections else 0.0,
                      lens_known_prob=args.lens_known_prob, **args.faults,
                      detector=DetectorErrors.load(args.detector_model) if args.detector_errors > 0 else None,
                      detector_prob=args.detector_errors)
    views = (VirtualViews(list(load_world(args.data, TRAIN_SUBJECTS).values()), config.frames,
                          ViewRanges(out_of_frame_prob=args.out_of_frame_prob)) if args.views_prob > 0 else None)
    if args.val_detected and not args.detections:
        raise SystemExit("--val-detected needs --detections (the real detections to validate on)")
    val = (WindowDataset(load_clips(args.data, TEST_SUBJECTS, args.detections if args.val_detected else None), config.frames,
                         config.frames * args.val_stride) if main_process else None)
    if args.val_detected and main_process and val.det2d is None:
        raise SystemExit(f"--val-detected: {args.detections} lacks detections for some test sequences of {args.data}")
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        print(f"{config.arch} {args.config or args.init}: {count_parameters(model):,} parameters, {len(train):,} training windows, "
              f"step {step}/{args.steps}, device {device}, {world} process(es)", flush=True)

    record = {"train": {k: v for k, v in vars(args).items() if k not in PER_INVOCATION}}
    log_path = out / LOG_FILE
    if main_process and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_COLUMNS + (["val_detected_mm"] if args.val_detected else []))

    def save() -> None:
        save_checkpoint(served, out, {**record, "step": step, "train_hours": train_seconds / 3600})
        tmp = out / (STATE_FILE + ".tmp")
        trained = {"model": model.state_dict(), "averaged": int(average.n_averaged)} if average is not None else {}
        torch.save({"optimizer": optimizer.state_dict(), "step": step, "train_seconds": train_seconds, **trained}, tmp)
        tmp.replace(out / STATE_FILE)

    local_batch = args.batch // world
    use_amp = device.type == "cuda"
    cache: dict = {}
    started = time.time()
    running = []
    bar = tqdm(total=args.steps, initial=step, disable=not main_process or args.quiet, unit="step", dynamic_ncols=True)
    model.train()
    last = min(args.steps, args.until or args.steps)
    while step < last:
        if args.max_minutes and time.time() - started > args.max_minutes * 60:
            break
        tick = time.time()
        indices = batch_indices(step, args.batch, len(train), args.seed, cache)[rank * local_batch : (rank + 1) * local_batch]
        warm_start = step < args.independent_frames
        rng = np.random.default_rng([args.seed, step, rank])
        # The batch's last share comes through virtual phone cameras, the rest from Human3.6M's own.
        k = int(round(len(indices) * args.views_prob)) if views is not None else 0
        x, y, focal, known = train.batch(indices[: len(indices) - k], rng, augment, independent=warm_start)
        if k:
            seen = views.batch(np.random.default_rng([args.seed, TRAIN_STREAM, step, rank]), k)
            vx, vy = corrupt(seen.screen[..., :2], seen.target, rng, augment, seen.in_frame)
            lens, lens_known = given_focal(seen.focal, seen.default_focal, rng, augment)
            x, y = np.concatenate([x, vx]), np.concatenate([y, vy])
            focal, known = np.concatenate([focal, lens]), np.concatenate([known, lens_known])
        x, y = network_batch(x, y, focal, known, config)
        torch.manual_seed(args.seed * 1_000_003 + step * world + rank)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            pred, experts = net(x, return_experts=True) if config.specialists else (net(x), None)
        loss, err = training_loss(pred.float(), y, 0.0 if warm_start else args.velocity_weight)
        if config.specialists:
            loss = loss + args.expert_weight * expert_loss(experts, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        if average is not None:
            average.update_parameters(model)
        step += 1
        running.append((loss.item(), err.item()))  # waits for the GPU: the step's time must include it
        train_seconds += time.time() - tick
        bar.update(1)
        if not main_process:
            continue
        bar.set_postfix(loss=f"{loss.item():.4f}", mpjpe_mm=f"{1000 * err.item():.1f}")
        val_mm = validate(served, val, device) if step % args.eval_every == 0 or step == args.steps else None
        val_det = validate(served, val, device, detected=True) if val_mm is not None and args.val_detected else None
        if val_mm is not None or step % args.save_every == 0:
            mean_loss, mean_err = np.mean(running, axis=0)
            running.clear()
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([step, step * args.batch, step * args.batch * config.frames, f"{train_seconds / 3600:.4f}",
                                        f"{learning_rate(step - 1, args):.6g}", f"{mean_loss:.5f}", f"{1000 * mean_err:.2f}",
                                        "" if val_mm is None else f"{val_mm:.2f}"]
                                       + (["" if val_det is None else f"{val_det:.2f}"] if args.val_detected else []))
            save()
            if val_mm is not None:
                detected = f", {val_det:.1f} mm on real detections" if val_det is not None else ""
                bar.write(f"step {step}: validation MPJPE {val_mm:.1f} mm{detected} ({train_seconds / 60:.1f} min of training)")
    bar.close()
    if main_process:
        save()
        print(f"saved {out} at step {step}/{args.steps} after {train_seconds / 3600:.2f} h of training", flush=True)
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
