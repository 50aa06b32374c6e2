import json

import numpy as np
import pytest
import torch

from posemoe import PoseMoEError
from posemoe.lift import blend_weights, lift_windows, torch_window_function, window_starts
from posemoe.model import build_model
from posemoe.model.checkpoint import load_checkpoint, save_checkpoint
from posemoe.model.config import ModelConfig
from posemoe.skeleton import flip_horizontal

CONFIG = ModelConfig("posemoe", frames=9, width=16, heads=2, encoder_depth=1, decoder_depth=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_model(CONFIG)
    with torch.no_grad():  # untrained weights are zero in places; make every path matter
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return net.eval()


def lift_sequence(model, inputs, frames, **kwargs):
    if isinstance(model, WindowBiasedModel):  # echoes its input: give it the raw screen windows
        return lift_windows(model, inputs, 2.0, frames, normalize=False, **kwargs)
    return lift_windows(torch_window_function(model), inputs, 2.0, frames, **kwargs)


def smooth_inputs(n, seed=0):
    t = np.linspace(0, 4 * np.pi, n)[:, None, None]
    rng = np.random.default_rng(seed)
    xy = 0.3 * np.sin(t + rng.uniform(0, 6, (1, 17, 2))) + rng.normal(scale=0.2, size=(1, 17, 2))
    return np.concatenate([xy, np.ones((n, 17, 1))], axis=-1).astype(np.float32)


@pytest.mark.parametrize("n", [1, 5, 9, 10, 100])
def test_window_starts_cover_every_frame(n):
    for stride in (1, 4, 9):
        starts = window_starts(n, 9, stride)
        covered = np.zeros(max(n, 9), bool)
        for s in starts:
            covered[s : s + 9] = True
        assert covered.all() and starts[-1] + 9 == max(n, 9)


@pytest.mark.parametrize("n", [4, 9, 50])
def test_lift_returns_one_pose_per_frame(model, n):
    out = lift_sequence(model, smooth_inputs(n), 9, stride=3)
    assert out.shape == (n, 17, 3) and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], 0, atol=1e-6)


class WindowBiasedModel:
    """Echoes the 2D as 3D plus an error that drifts across each window, like a real lifter's
    worse predictions at window ends: without blending it shows up as a jump at every border."""

    def __call__(self, windows):
        t = np.linspace(-1, 1, windows.shape[1])[None, :, None, None]
        return np.concatenate([windows[..., :2], np.zeros_like(windows[..., :1])], -1) + 0.05 * t


def test_overlap_blending_removes_jumps_at_window_borders():
    x = smooth_inputs(200)
    model = WindowBiasedModel()

    def border_jump(pred):
        """Largest frame-to-frame velocity change at window borders / its median elsewhere."""
        accel = np.linalg.norm(np.diff(pred, n=2, axis=0), axis=-1).mean(-1)
        at_borders = [accel[b - 2 : b].max() for b in range(9, 190, 9)]
        return np.mean(at_borders) / np.median(accel)

    hard, blended = lift_sequence(model, x, 9, stride=9), lift_sequence(model, x, 9, stride=3)
    print(f"velocity jump at window borders / median: no overlap {border_jump(hard):.1f}, blended {border_jump(blended):.1f}")
    assert border_jump(hard) > 5
    assert border_jump(blended) < 2
    assert blend_weights(9).min() > 0


def test_flip_averaging_is_symmetric(model):
    x = smooth_inputs(30)
    direct = lift_sequence(model, x, 9, flip=True)
    mirrored = lift_sequence(model, flip_horizontal(x), 9, flip=True)
    np.testing.assert_allclose(flip_horizontal(mirrored), direct, atol=1e-5)


def test_cpu_results_are_deterministic(model):
    x = smooth_inputs(40)
    np.testing.assert_array_equal(lift_sequence(model, x, 9, stride=4), lift_sequence(model, x, 9, stride=4))


def test_checkpoint_round_trip(model, tmp_path):
    save_checkpoint(model, tmp_path, {"note": "test"})
    loaded = load_checkpoint(tmp_path)
    x = torch.from_numpy(smooth_inputs(9)[None])
    torch.testing.assert_close(loaded(x), model(x))
    assert json.loads((tmp_path / "config.json").read_text())["note"] == "test"


def test_corrupted_weights_are_refused_with_a_sentence(model, tmp_path):
    save_checkpoint(model, tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(PoseMoEError, match="not a readable safetensors file"):
        load_checkpoint(tmp_path)
    # A pickle is never unpickled: it is simply not safetensors.
    torch.save(model.state_dict(), tmp_path / "model.safetensors")
    with pytest.raises(PoseMoEError, match="not a readable safetensors file"):
        load_checkpoint(tmp_path)


def test_mismatched_weights_and_missing_files(model, tmp_path):
    save_checkpoint(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["width"] = 32
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PoseMoEError, match="does not match"):
        load_checkpoint(tmp_path)
    config["model"]["arch"] = "nonsense"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PoseMoEError, match="known model"):
        load_checkpoint(tmp_path)
    with pytest.raises(PoseMoEError, match="No config.json"):
        load_checkpoint(tmp_path / "elsewhere")


@pytest.mark.parametrize("arch", ["posemoe", "baseline", "tcn"])
def test_onnx_runtime_matches_pytorch(tmp_path, arch):
    from posemoe.model.onnx_export import export_onnx, parity

    torch.manual_seed(1)
    config = ModelConfig(arch, frames=9, width=16, heads=2, encoder_depth=2, decoder_depth=1 if arch == "posemoe" else 0)
    net = build_model(config)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_checkpoint(net.eval(), tmp_path)
    path = export_onnx(tmp_path)
    onnx_error, torch_error = parity(tmp_path, path, batch=5)  # a batch size the export never saw
    print(f"{arch}, off float64: ONNX Runtime {onnx_error:.2e} m, PyTorch float32 {torch_error:.2e} m")
    assert onnx_error < 2 * torch_error + 1e-5


@pytest.mark.parametrize("arch", ["posemoe", "baseline"])
def test_weights_grow_into_a_network_with_the_lens_channel(tmp_path, arch):
    """Fine-tuning starts where the weights were: the grown network answers exactly as before for
    either lens until its lens embedding is trained, and then tells the two apart."""
    torch.manual_seed(2)
    net = build_model(ModelConfig(arch, frames=9, width=16, heads=2, encoder_depth=2, decoder_depth=1 if arch == "posemoe" else 0,
                                  zero_init=False)).eval()
    save_checkpoint(net, tmp_path)
    grown = load_checkpoint(tmp_path, overrides=["lens_input=true"])
    assert grown.config.input_channels == 4
    x = torch.from_numpy(smooth_inputs(9)[None])
    given, guessed = (torch.cat([x, torch.full(x.shape[:-1] + (1,), v)], dim=-1) for v in (1.0, 0.0))
    torch.testing.assert_close(grown(given), net(x))
    torch.testing.assert_close(grown(guessed), net(x))
    grown.train()
    torch.nn.functional.mse_loss(grown(given), torch.zeros(1, 9, 17, 3)).backward()
    with torch.no_grad():
        for p in grown.parameters():
            p -= 0.5 * p.grad
    grown.eval()
    assert (grown(given) - grown(guessed)).abs().max() > 1e-4
    # Growing may only add: a change that leaves saved weights without a place is refused.
    save_checkpoint(grown, tmp_path / "grown")
    with pytest.raises(PoseMoEError, match="does not match"):
        load_checkpoint(tmp_path / "grown", overrides=["lens_input=false"])
