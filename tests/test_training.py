"""The training and benchmark scripts, end to end on a tiny synthetic dataset in the shared format."""

import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from training import benchmark, soup, train
from training.data import TRAIN_SUBJECTS, Augment, WindowDataset, load_clips, mpii16_to_h36m17


def run_train(tmp_path, dataset, name, *extra):
    path3d, path2d = dataset
    out = tmp_path / name
    args = ["--data", str(path3d), "--detections", str(path2d), "--out", str(out), "--batch", "4",
            "--eval-every", "3", "--save-every", "2", "--val-stride", "1", "--threads", "1", "--quiet", *extra]
    assert train.main(args) == 0
    return out


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_windows_are_indices_not_copies(tiny_dataset):
    clips = load_clips(tiny_dataset[0], TRAIN_SUBJECTS, tiny_dataset[1])
    data = WindowDataset(clips, frames=9, stride=1)
    total = sum(len(c.pose3d) for c in clips)
    assert data.pose3d.shape == (total, 17, 3)  # one copy of the frames, whatever the stride
    assert len(data) == sum(len(c.pose3d) - 8 for c in clips)
    x, y, focal, known = data.batch(np.arange(5), np.random.default_rng(0))
    assert x.shape == (5, 9, 17, 3) and y.shape == (5, 9, 17, 3) and focal.shape == (5,) and known.all()
    assert np.all((2.0 < focal) & (focal < 2.6))  # the tiny data's cameras: Human3.6M-like lenses
    np.testing.assert_allclose(x[..., 2], 1.0)
    np.testing.assert_allclose(y[:, :, 0], 0.0)


def test_augmentation_flips_drops_and_uses_detections(tiny_dataset):
    clips = load_clips(tiny_dataset[0], TRAIN_SUBJECTS, tiny_dataset[1])
    data = WindowDataset(clips, frames=9, stride=4)
    idx = np.arange(len(data))
    clean_x, clean_y, _, _ = data.batch(idx, np.random.default_rng(0))
    x, y, _, _ = data.batch(idx, np.random.default_rng(0), Augment(noise_max=0, outlier_prob=0, drop_max=0.5, flip_prob=1.0))
    np.testing.assert_allclose(y[:, :, 4], clean_y[:, :, 1] * [-1, 1, 1], atol=1e-6)  # LHip <- mirrored RHip
    np.testing.assert_allclose(y[:, :, 0], 0.0)
    dropped = x[..., 2] == 0
    assert 0.05 < dropped.mean() < 0.5
    assert np.all(x[dropped][:, :2] == 0)
    det_x, _, _, _ = data.batch(idx, np.random.default_rng(0), Augment(0, 0, 0, 0, 0, detection_prob=1.0))
    assert 0 < np.abs(det_x - clean_x).mean() < 0.02  # the synthetic detections carry ~3 px of noise


def test_mpii_to_17_joints_interpolates_the_nose():
    mpii = np.random.default_rng(0).normal(size=(2, 16, 2))
    ours = mpii16_to_h36m17(mpii)
    np.testing.assert_allclose(ours[:, 0], mpii[:, 6])
    np.testing.assert_allclose(ours[:, 16], mpii[:, 10])
    np.testing.assert_allclose(ours[:, 9], mpii[:, 8] + 0.45 * (mpii[:, 9] - mpii[:, 8]))


def test_training_run_logs_saves_and_learns(tmp_path, tiny_dataset, tiny_config):
    out = run_train(tmp_path, tiny_dataset, "run", "--config", tiny_config, "--steps", "6", "--lr", "3e-3", "--warmup", "1")
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["arch"] == "posemoe" and config["step"] == 6
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [r["step"] for r in rows] == ["2", "3", "4", "6"]
    vals = [float(r["val_mpjpe_mm"]) for r in rows if r["val_mpjpe_mm"]]
    assert len(vals) == 2 and all(np.isfinite(vals))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


@pytest.mark.parametrize("average", [[], ["--ema", "0.5"]], ids=["trained", "moving-average"])
def test_resume_gives_the_same_weights_as_not_stopping(tmp_path, tiny_dataset, tiny_config, average):
    straight = run_train(tmp_path, tiny_dataset, "straight", "--config", tiny_config, "--steps", "6", *average)
    split = run_train(tmp_path, tiny_dataset, "split", "--config", tiny_config, "--steps", "6", "--until", "3", *average)
    assert json.loads((split / "config.json").read_text())["step"] == 3
    # Resume reads the run's own settings back (data, batch, schedule); only --until is overridden.
    assert train.main(["--out", str(split), "--resume", "--until", "0", "--quiet"]) == 0
    assert json.loads((split / "config.json").read_text())["step"] == 6
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(split / "model.safetensors"))
    for key in a:
        assert (a[key] == b[key]).all(), key
    if average:  # what is saved is the average, not the trained weights
        trained = torch.load(straight / "train_state.pt", weights_only=True)["model"]
        assert any(not torch.equal(trained[key], a[key]) for key in a)


def test_a_resume_keeps_the_fault_rates_the_run_started_with(tmp_path, tiny_dataset, tiny_config, monkeypatch):
    run = run_train(tmp_path, tiny_dataset, "faults", "--config", tiny_config, "--steps", "4", "--until", "2", "--faults")
    saved = json.loads((run / "config.json").read_text())["train"]["faults"]
    assert saved == train.FAULTS
    changed = {**train.FAULTS, "hide_prob": 0.9}
    monkeypatch.setattr(train, "FAULTS", changed)
    assert train.parse_args(["--out", str(run), "--resume"]).faults == saved
    # Given again, --faults takes today's recipe; so does a run saved before the rates were kept.
    assert train.parse_args(["--out", str(run), "--resume", "--faults"]).faults == changed
    config = json.loads((run / "config.json").read_text())
    config["train"]["faults"] = True
    (run / "config.json").write_text(json.dumps(config))
    assert train.parse_args(["--out", str(run), "--resume"]).faults == changed
    config["train"]["faults"] = {"hide_prob": 0.2, "shuffle_prob": 0.1}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit):
        train.parse_args(["--out", str(run), "--resume"])


@pytest.mark.slow
def test_benchmark_writes_a_side_by_side_table(tmp_path, tiny_dataset, tiny_config):
    moe = run_train(tmp_path, tiny_dataset, "moe", "--config", tiny_config, "--steps", "3")
    base = run_train(tmp_path, tiny_dataset, "base", "--config", "tinybase-t9", "--steps", "3")
    md = tmp_path / "bench.md"
    args = [str(moe), str(base), "--data", str(tiny_dataset[0]), "--detections", str(tiny_dataset[1]), "--flip", "--markdown", str(md), "--jobs", "2", "--ablation", str(moe), str(base)]
    assert benchmark.main(args) == 0
    text = md.read_text()
    assert "Discussion 1" in text  # the missing test sequence is always mentioned
    for needle in ("| moe |", "| base |", "Walking", "Posing", "batch 64 windows", "Learning curves", "Recipe ablation"):
        assert needle in text
    results = json.loads(md.with_suffix(".json").read_text())["results"]
    assert [r["name"] for r in results] == ["moe", "base"]
    for r in results:
        assert 0 < r["gt"]["p2"] <= r["gt"]["p1"] < 2000
        assert r["detected"]["p1"] > 0
        assert r["throughput"]["PyTorch"]["64"] > 0 and r["throughput"]["ONNX Runtime"]["64"] > 0


@pytest.mark.slow
def test_distributed_data_parallel_on_cpu(tmp_path, tiny_dataset):
    """torchrun with two CPU processes (gloo) trains and saves once, so the DDP path cannot rot."""
    import os
    import subprocess
    import sys

    path3d, path2d = tiny_dataset
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           str(train.ROOT / "training" / "train.py"), "--config", "tcn-t27", "--data", str(path3d), "--out", str(out),
           "--steps", "2", "--batch", "4", "--eval-every", "2", "--val-stride", "4", "--threads", "1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es)" in done.stdout
    assert json.loads((out / "config.json").read_text())["step"] == 2


def test_per_frame_warm_start_draws_unrelated_frames(tiny_dataset, tmp_path, tiny_config):
    data = WindowDataset(load_clips(tiny_dataset[0], TRAIN_SUBJECTS), frames=9, stride=1)
    _, consecutive, _, _ = data.batch(np.arange(8), np.random.default_rng(0))
    _, unrelated, _, _ = data.batch(np.arange(8), np.random.default_rng(0), independent=True)
    step = lambda y: np.linalg.norm(np.diff(y, axis=1), axis=-1).mean()  # noqa: E731
    assert step(unrelated) > 3 * step(consecutive)
    out = run_train(tmp_path, tiny_dataset, "warm", "--config", tiny_config, "--steps", "4", "--independent-frames", "2")
    assert json.loads((out / "config.json").read_text())["train"]["independent_frames"] == 2


def test_a_fine_tune_grows_the_lens_channel_and_trains_it(tmp_path, tiny_dataset, tiny_config):
    """``--init`` with ``--set lens_input=true``: the run starts from the weights it is given, with the
    lens channel added, and windows with and without the true lens train it."""
    base = run_train(tmp_path, tiny_dataset, "base", "--config", tiny_config, "--steps", "2")
    grown = run_train(tmp_path, tiny_dataset, "grown", "--init", str(base), "--set", "lens_input=true", "--steps", "3",
                      "--lr", "3e-3", "--warmup", "1", "--lens-known-prob", "0.5", "--views-prob", "0.5", "--out-of-frame-prob", "1")
    config = json.loads((grown / "config.json").read_text())
    assert config["model"]["lens_input"] and config["train"]["out_of_frame_prob"] == 1.0
    before, after = load_file(str(base / "model.safetensors")), load_file(str(grown / "model.safetensors"))
    assert set(after) - set(before) == {"pose_embed.lens", "depth_embed.lens"}
    assert after["pose_embed.lens"].abs().sum() > 0


def test_a_soup_is_the_weighted_mean_of_two_runs_and_loads(tmp_path):
    from safetensors.numpy import load_file as load_numpy, save_file

    from posemoe.lift import DEFAULT_WEIGHTS, Lifter

    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text((DEFAULT_WEIGHTS / "config.json").read_text())
    shipped = load_numpy(str(DEFAULT_WEIGHTS / "model.safetensors"))
    save_file({k: v + 1.0 for k, v in shipped.items()}, str(other / "model.safetensors"))
    assert soup.main([str(DEFAULT_WEIGHTS), str(other), "--share", "0.75", "--out", str(tmp_path / "soup")]) == 0
    mixed = load_numpy(str(tmp_path / "soup" / "model.safetensors"))
    for name, value in shipped.items():
        np.testing.assert_allclose(mixed[name], value + 0.25, atol=1e-6)
    assert json.loads((tmp_path / "soup" / "config.json").read_text())["soup"]["share"] == 0.75
    Lifter(tmp_path / "soup", backend="torch")  # the product loads it like any weights


def test_a_soup_of_different_networks_is_refused(tmp_path):
    from posemoe.lift import DEFAULT_WEIGHTS

    wider = tmp_path / "wider"
    wider.mkdir()
    config = json.loads((DEFAULT_WEIGHTS / "config.json").read_text())
    config["model"]["width"] *= 2
    (wider / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        soup.main([str(DEFAULT_WEIGHTS), str(wider), "--share", "0.5", "--out", str(tmp_path / "soup")])
    assert exit_info.value.code == 2
    assert not (tmp_path / "soup").exists()
