"""How well the detector error model fits: its errors against the real ones on held-out subjects.

The model (``training/detector_errors.py``) is fitted on the Stacked Hourglass detections of the
training subjects S1, S5, S6, S7, S8. Here it corrupts the ground-truth 2D of the test subjects S9 and
S11 (every sequence, every camera, cut into the network's 27-frame windows as training cuts them),
and the simulated errors are set against the real detections' errors of the same frames, joint by
joint, in pixels on Human3.6M's 1000-pixel-wide pictures. The independent noise that training used
before (``training.data.Augment``'s defaults: a std drawn up to 6 px per window, 1 % outliers of
25 px) is shown beside it.

    python benchmarks/detector_errors.py            # prints a markdown table (about 1 min on one core)

A second table says what the difference costs a lifter: its network, as training validates it (every
40th non-overlapping 27-frame window of S9/S11, the camera's own lens, no mirror; not the product path),
given the ground-truth 2D, the real detections, the model's simulation of them and the same without the
model's bias (the Stacked Hourglass conventions): simulated errors that cost the network more than the
real ones teach it to distrust its input more than real detections call for. A network trained on some
real detections of the training subjects (the shipped one was) has learnt their kind of error, which
favours the real column. ``--weights`` names the networks (default: the shipped ones; about 1.5 min
each on one core).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from posemoe.files import atomic_output
from posemoe.lift import DEFAULT_WEIGHTS
from posemoe.machine import describe_machine
from posemoe.skeleton import JOINT_NAMES
from training.data import MISSING_NOTE, NO_AUGMENT, TEST_SUBJECTS, Augment, Clip, WindowDataset, corrupt, load_clips
from training.detector_errors import (DEFAULT_MODEL, OUTLIER_M, DetectorErrors, measure, outlier_targets,
                                      project_bias, swap_mask)

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 27
#: What the section says the model is, above its table (the figures below it are measured).
DESCRIPTION = (
    "Training's clean 2D (virtual phone cameras and Human3.6M's own) gets a real detector's errors from a model "
    "fitted on the Stacked Hourglass detections of the training subjects only (`training/detector_errors.py`, "
    "`train.py --detector-errors PROB`): a bias per joint in the body's own frame (the table under this one), noise "
    "correlated between joints (their 34 x 34 covariance) and over time (a slow and a fast AR(1) part), "
    "a noise level drawn per 27-frame window (hard windows), outlier runs of real lengths, concentrated in bad windows "
    "as the real ones are and landing on another joint as often as they do (else elsewhere at real distances), and "
    "left/right swaps of the legs, the arms or the whole body in runs. Lengths are metres at the person, so it "
    "scales with the person's size in any picture. Fitted, the error did not grow with the joint's speed "
    "(`speed_gain` 0: Human3.6M's joints rarely exceed 1 m/s); the detections carry no confidence, so "
    "confidence is not modelled. Below, its errors against the real ones on subjects it never saw.")


def simulate(clip: Clip, model: DetectorErrors | None, rng: np.random.Generator) -> np.ndarray:
    """Simulated detections of a clip's frames cut into 27-frame windows (the tail dropped):
    (W * 27, 17, 2) screen units. model None: the old independent noise (Augment's defaults)."""
    w = len(clip.pose2d) // WINDOW
    xy = clip.pose2d[: w * WINDOW].reshape(w, WINDOW, 17, 2)
    target = clip.pose3d[: w * WINDOW].reshape(w, WINDOW, 17, 3)
    if model is not None:
        out = model.sample(xy, target, rng)
    else:
        out = corrupt(xy, target, rng, replace(Augment(), drop_max=0.0, flip_prob=0.0))[0][..., :2]
    return out.reshape(w * WINDOW, 17, 2)


def autocorrelation(error: np.ndarray, lag: int) -> np.ndarray:
    """Per-joint autocorrelation at ``lag`` frames of errors (W * 27, 17, 2) within each 27-frame
    window, about each joint's mean error. Returns the pooled sums (numerator, denominator) (2, 17)."""
    e = error.reshape(-1, WINDOW, 17, 2)
    e = e - e.mean((0, 1), keepdims=True)
    num = (e[:, lag:] * e[:, :-lag]).sum((0, 1, -1))
    den = 0.5 * ((e[:, lag:] ** 2).sum((0, 1, -1)) + (e[:, :-lag] ** 2).sum((0, 1, -1)))
    return np.stack([num, den])


def lifter_errors(weights: str | Path, clips: list[Clip], model: DetectorErrors, seed: int) -> dict[str, float]:
    """MPJPE (mm) of the network at ``weights`` on every 40th 27-frame window of ``clips`` (which must
    carry detections), as training validates it, for each kind of 2D input: "ground truth", "real",
    "model", "model without bias"."""
    import torch

    from posemoe.model.checkpoint import load_checkpoint
    from training.train import network_batch

    network = load_checkpoint(weights).eval()
    data = WindowDataset(clips, network.config.frames, network.config.frames * 40)
    unbiased = replace(model, bias=np.zeros_like(model.bias))
    inputs = {"ground truth": NO_AUGMENT, "real": replace(NO_AUGMENT, detection_prob=1.0),
              "model": replace(NO_AUGMENT, detector=model, detector_prob=1.0),
              "model without bias": replace(NO_AUGMENT, detector=unbiased, detector_prob=1.0)}
    out = {}
    for name, augment in inputs.items():
        rng = np.random.default_rng(seed)
        errors = []
        with torch.no_grad():
            for i in range(0, len(data), 256):
                x, y = network_batch(*data.batch(np.arange(i, min(i + 256, len(data))), rng, augment), network.config)
                pred = network(torch.from_numpy(x)).float().numpy()
                errors.append(np.linalg.norm(pred - y, axis=-1).mean(axis=(1, 2)))
        out[name] = 1000.0 * float(np.concatenate(errors).mean())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "h36m_3d_17j_mm.npz"))
    p.add_argument("--detections", default=str(ROOT.parent / "shared" / "data" / "h36m_2d_sh_mpii16_px10.npz"))
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", help="also write the section to this Markdown file")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--subjects", nargs="+", default=list(TEST_SUBJECTS),
                   help="whose detections to compare with (the training subjects give the in-sample fit)")
    p.add_argument("--weights", nargs="*", default=[str(DEFAULT_WEIGHTS)],
                   help="networks to lift each kind of 2D with (none: skip that table)")
    args = p.parse_args(argv)
    model = DetectorErrors.load(args.model)
    clips = [c for c in load_clips(args.data, tuple(args.subjects), args.detections) if c.det2d is not None]
    rng = np.random.default_rng(args.seed)
    kinds = ("real", "model", "old")
    dist = {k: [] for k in kinds}
    swaps = {k: np.zeros(3) for k in kinds}
    lags = {k: {lag: np.zeros((2, 17)) for lag in (1, 10)} for k in kinds}
    # Outliers (a joint over OUTLIER_M off after the bias, not swapped): windows holding one, and those
    # lying on another joint, as (count, of how many) each.
    bad_windows = {k: np.zeros(2) for k in kinds}
    landed = {k: np.zeros(2) for k in kinds}
    frames = 0
    for clip in clips:
        n = len(clip.pose2d) // WINDOW * WINDOW
        if n == 0:
            continue
        frames += n
        px = clip.width / 2.0  # screen units -> pixels
        cut = Clip(clip.subject, clip.action, clip.camera, clip.pose3d[:n], clip.pose2d[:n], clip.det2d[:n],
                   clip.focal, clip.width, clip.height)
        for kind in kinds:
            det = cut.det2d if kind == "real" else simulate(cut, model if kind == "model" else None, rng)
            error = (det - cut.pose2d) * px
            dist[kind].append(np.linalg.norm(error, axis=-1))
            m = measure(replace(cut, det2d=det))
            swaps[kind] += [m["body"].sum(), m["legs"].sum(), m["arms"].sum()]
            outlier = (np.linalg.norm(m["error"] - project_bias(model.bias, cut.pose3d), axis=-1) > OUTLIER_M) & ~swap_mask(m)
            bad_windows[kind] += [outlier.reshape(-1, WINDOW * 17).any(1).sum(), n // WINDOW]
            onto = outlier_targets(cut.pose2d / m["scale"][:, None, None], m["error"], outlier)
            landed[kind] += [(onto[outlier] < 17).sum(), outlier.sum()]
            for lag in (1, 10):
                lags[kind][lag] += autocorrelation(error, lag)
    dist = {k: np.concatenate(v) for k, v in dist.items()}

    held_out = "Held-out subjects" if set(args.subjects) <= set(TEST_SUBJECTS) else "Subjects"
    name = Path(args.model).relative_to(ROOT) if Path(args.model).is_relative_to(ROOT) else args.model
    lines = [f"{held_out} {', '.join(args.subjects)}: {len(clips)} sequence x camera clips, {frames:,} frames in 27-frame "
             f"windows; model `{name}` ({model.fitted_on}); seed {args.seed}. Real: the Stacked Hourglass detections; "
             "model: the ground-truth 2D corrupted by the model; old: by the independent noise training used before. "
             f"Distances in pixels on Human3.6M's 1000-pixel-wide pictures. Machine: {describe_machine()}. {MISSING_NOTE}", "",
             "| joint | median real / model / old | mean real / model / old | 90th percentile real / model / old | "
             "lag-1 autocorr. real / model | lag-10 real / model |", "|---|---|---|---|---|---|"]
    figures = {"machine": describe_machine(), "subjects": args.subjects, "clips": len(clips), "frames": frames, "joints": {}}
    for j, joint in list(enumerate(JOINT_NAMES)) + [(None, "all joints")]:
        pick = {k: dist[k] if j is None else dist[k][:, j] for k in kinds}
        stats = {stat: {k: float(f(pick[k])) for k in kinds}
                 for stat, f in (("median", np.median), ("mean", np.mean), ("p90", lambda d: np.percentile(d, 90)))}
        for lag in (1, 10):
            stats[f"lag{lag}"] = {k: float((lambda c: c[0] / c[1])(lags[k][lag].sum(1) if j is None else lags[k][lag][:, j]))
                                  for k in kinds}
        figures["joints"][joint] = stats
        cell = lambda stat: " / ".join(f"{stats[stat][k]:.1f}" for k in kinds)  # noqa: E731
        lines.append(f"| {joint} | {cell('median')} | {cell('mean')} | {cell('p90')} | {stats['lag1']['real']:.2f} / "
                     f"{stats['lag1']['model']:.2f} | {stats['lag10']['real']:.2f} / {stats['lag10']['model']:.2f} |")
    lines += ["", "| share of frames (%) | real | model | old |", "|---|---|---|---|"]
    figures["swapped_percent"] = {}
    for j, kind in enumerate(("whole body left/right swapped", "legs only swapped", "arms only swapped")):
        figures["swapped_percent"][kind] = {k: 100 * float(swaps[k][j]) / frames for k in kinds}
        lines.append(f"| {kind} | " + " | ".join(f"{100 * swaps[k][j] / frames:.2f}" for k in kinds) + " |")
    for threshold in (50, 100):
        lines.append(f"| joints > {threshold} px off | " + " | ".join(f"{100 * (dist[k] > threshold).mean():.2f}" for k in kinds) + " |")
    share = lambda pair: 100 * pair[0] / max(pair[1], 1)  # noqa: E731
    lines.append("| 27-frame windows with an outlier | " + " | ".join(f"{share(bad_windows[k]):.1f}" for k in kinds) + " |")
    lines.append("| outliers lying on another joint (of all outliers) | " + " | ".join(f"{share(landed[k]):.1f}" for k in kinds) + " |")
    figures["outlier_windows_percent"] = {k: share(bad_windows[k]) for k in kinds}
    figures["outliers_on_a_joint_percent"] = {k: share(landed[k]) for k in kinds}
    lines += ["", "The fitted bias, mm at the person (towards the body's left hip, up the body, forward, along the joint's own bone):",
              "", "| joint | left | up | forward | along bone |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {joint} | " + " | ".join(f"{round(1000 * v) + 0:d}" for v in model.bias[j]) + " |" for j, joint in enumerate(JOINT_NAMES)]
    figures["bias_mm"] = (1000 * model.bias).round(1).tolist()
    if args.weights:
        lines += ["", "What the errors cost a lifter: MPJPE (mm) of the network on every 40th 27-frame window of the same "
                  "clips, as training validates it (the camera's own lens, no mirror; not the product path):", "",
                  "| network | ground-truth 2D | real detections | model | model without its bias |", "|---|---:|---:|---:|---:|"]
        figures["lifter_mm"] = {}
        for weights in args.weights:
            costs = lifter_errors(weights, clips, model, args.seed)
            shown = Path(weights).resolve()
            shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else weights
            figures["lifter_mm"][str(shown)] = costs
            lines.append(f"| `{shown}` | " + " | ".join(f"{v:.1f}" for v in costs.values()) + " |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(f"# Detector error model\n\nGenerated by `python benchmarks/detector_errors.py`.\n\n{DESCRIPTION}\n\n{text}\n")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
