"""The Lifter: pixels and confidences in, metres out, on both backends."""

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import synthetic_camera, synthetic_motion
from posemoe import PoseMoEError
from posemoe.camera import Camera
from posemoe.lift import Lifter
from posemoe.model import build_model
from posemoe.model.checkpoint import save_checkpoint
from posemoe.model.config import ModelConfig
from posemoe.model.onnx_export import export_onnx


#: How far apart the shipped lifter's poses of one motion, filmed twice, may be (metres, mean per joint).
TOLERANCE = 0.025


@functools.cache
def shipped_lifter():
    return Lifter()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    net = build_model(ModelConfig("posemoe", frames=9, width=16, heads=2, encoder_depth=1, decoder_depth=1))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_checkpoint(net.eval(), folder)
    export_onnx(folder)
    return folder


def walking_keypoints(n=40, width=1280, height=720):
    rng = np.random.default_rng(0)
    base = np.array([width / 2, height / 2]) + rng.normal(scale=80, size=(17, 2))
    t = np.arange(n)[:, None, None]
    return base + 20 * np.sin(t / 5 + rng.uniform(0, 6, (1, 17, 1)))


def test_torch_and_onnx_backends_agree(weights):
    kp = walking_keypoints()
    a = Lifter(weights, backend="torch", device="cpu").lift(kp, 1280, 720)
    b = Lifter(weights, backend="onnx", device="cpu").lift(kp, 1280, 720)
    assert a.shape == (40, 17, 3)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_missing_and_low_confidence_joints_are_inputs_not_crashes(weights):
    lifter = Lifter(weights, backend="torch", device="cpu")
    kp = walking_keypoints()
    conf = np.ones(kp.shape[:2])
    kp[5:8, 13] = np.nan
    conf[10:20, 3] = 0.005  # under the default threshold (0.01)
    out = lifter.lift(kp, 1280, 720, conf)
    assert np.isfinite(out).all()
    # A joint under the threshold is the same input as a missing one, wherever it was drawn.
    moved = kp.copy()
    moved[10:20, 3] += 300
    np.testing.assert_allclose(lifter.lift(moved, 1280, 720, conf), out, atol=1e-6)
    everything_missing = lifter.lift(np.full((12, 17, 2), np.nan), 1280, 720)
    assert np.isfinite(everything_missing).all()


def test_bad_input_gets_a_sentence(weights):
    lifter = Lifter(weights, backend="torch", device="cpu")
    with pytest.raises(PoseMoEError, match="shaped"):
        lifter.lift(np.zeros((10, 16, 2)), 100, 100)
    with pytest.raises(PoseMoEError, match="empty"):
        lifter.lift(np.zeros((0, 17, 2)), 100, 100)
    with pytest.raises(PoseMoEError, match="frame size"):
        lifter.lift(np.zeros((3, 17, 2)), 0, 100)
    with pytest.raises(PoseMoEError, match="backend"):
        Lifter(weights, backend="tensorflow")


def test_onnx_backend_needs_the_exported_file(weights, tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((weights / name).read_bytes())
    with pytest.raises(PoseMoEError, match="export-onnx"):
        Lifter(tmp_path, backend="onnx")
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(PoseMoEError, match="not a usable ONNX model"):
        Lifter(tmp_path, backend="onnx")


def test_shipped_weights_load_offline_and_onnx_matches_them():
    from posemoe.lift import DEFAULT_WEIGHTS
    from posemoe.model.onnx_export import parity

    lifter = Lifter()
    assert lifter.weights == DEFAULT_WEIGHTS and lifter.config.arch == "posemoe"
    # A person 1.65 m tall swinging arms and legs, seen from two sides: the trained lifter recovers a
    # human-sized body close to the truth (about 0.1 m off per joint for this unusual arms-out pose;
    # untrained or mis-wired weights are off by far more).
    for angle in (0.3, 2.0):
        camera = Camera.from_h36m(synthetic_camera(angle, "cam"))
        seen = camera.world_to_camera(synthetic_motion(60, seed=3) / 1000.0)  # metres, camera space
        out = lifter.lift(camera.project(seen), 1000, 1000)
        truth = seen - seen[:, :1]  # the lifter's output is relative to the pelvis
        assert out.shape == (60, 17, 3) and np.isfinite(out).all()
        assert 0.55 < np.median(np.linalg.norm(out[:, 10], axis=-1)) < 0.85  # pelvis to head top: truly 0.70 m
        assert np.linalg.norm(out - truth, axis=-1).mean() < 0.15
    onnx_error, torch_error = parity(DEFAULT_WEIGHTS, DEFAULT_WEIGHTS / "model.onnx")
    print(f"shipped weights, off float64: ONNX Runtime {onnx_error:.2e} m, PyTorch float32 {torch_error:.2e} m")
    # The export adds nothing beyond float32 rounding (the previous weights' model.onnx is 0.9 m off these).
    assert onnx_error < 2 * torch_error + 1e-5 and onnx_error < 1e-3


def film(world, fps, yaw, elevation, distance, fov, portrait, aim):
    """A still camera filming world motion (N, 17, 3) metres at 50 frames/s, at ``fps``: the pelvis
    ``distance`` m away in direction (yaw, elevation) and at ``aim`` (fractions of the half picture)
    from the picture's centre. Returns pixels (M, 17, 2), width, height, focal in px, R world->camera."""
    from posemoe.normalize import resample_track
    from posemoe.rotations import look_at
    from training.views import WORLD_UP

    seen = resample_track(world, 50.0, fps, int((len(world) - 1) / 50 * fps + 1e-9) + 1)
    pelvis = seen[:, 0].mean(0)
    centre = pelvis + distance * np.array([np.cos(yaw) * np.cos(elevation), np.sin(yaw) * np.cos(elevation), np.sin(elevation)])
    width, height = (1080, 1920) if portrait else (1920, 1080)
    focal = 0.5 * max(width, height) / np.tan(np.radians(fov) / 2)
    ahead = pelvis - centre
    look_yaw = np.arctan2(ahead[1], ahead[0]) + np.arctan(aim[0] * width / 2 / focal)
    look_pitch = np.arctan2(ahead[2], np.linalg.norm(ahead[:2])) + np.arctan(aim[1] * height / 2 / focal)
    forward = np.array([[np.cos(look_pitch) * np.cos(look_yaw), np.cos(look_pitch) * np.sin(look_yaw), np.sin(look_pitch)]])
    rotation = look_at(forward, WORLD_UP)[0]
    local = (seen - centre) @ rotation.T
    return local[..., :2] / local[..., 2:] * focal + [width / 2, height / 2], width, height, focal, rotation


@settings(max_examples=12, deadline=None, derandomize=True)  # the same 12 draws every run: no flaky CI
@given(seed=st.integers(0, 1000), fps=st.sampled_from([24.0, 30.0, 60.0]), distance=st.floats(2.5, 9.0),
       fov=st.floats(55.0, 85.0), portrait=st.booleans(), aim_x=st.floats(-0.6, 0.6), aim_y=st.floats(-0.6, 0.6))
@pytest.mark.slow
def test_frame_rate_and_framing_change_the_shipped_lifters_pose_little(seed, fps, distance, fov, portrait, aim_x, aim_y):
    """The same motion filmed from the same side, once at 50 frames/s with the person centred 4 m
    away, once at another rate, distance, lens, orientation and place in the picture: the shipped
    lifter's two poses (turned into the world) agree within TOLERANCE on average.

    The invariance is the normalisation's (``posemoe/normalize.py``) more than the weights': this
    test guards the Lifter's path (the session note of 2026-11-30 has the figures of a one-off check).
    """
    from posemoe.normalize import resample_track

    rng = np.random.default_rng(seed)
    world = synthetic_motion(150, seed=seed).astype(np.float64) / 1000.0
    yaw, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(-0.05, 0.3)
    lifter = shipped_lifter()
    poses = []
    for rate, camera in ((50.0, dict(distance=4.0, fov=60.0, portrait=False, aim=(0.0, 0.0))),
                         (fps, dict(distance=distance, fov=fov, portrait=portrait, aim=(aim_x, aim_y)))):
        pixels, width, height, focal, rotation = film(world, rate, yaw, elevation, **camera)
        out = lifter.lift(pixels, width, height, focal_px=focal, fps=rate)
        poses.append(resample_track(out @ rotation, rate, 50.0, 148))  # 50 frames/s, both within the clip
    gap = np.linalg.norm(poses[0] - poses[1], axis=-1).mean()
    assert gap < TOLERANCE, f"{1000 * gap:.1f} mm"


def test_a_lens_network_is_told_whether_the_lens_was_given(tmp_path):
    """With ``focal_px`` equal to the default lens the crop is the same as without it: only the lens
    channel differs, on both backends. A network without the channel gives the same pose for both."""
    from posemoe.camera import focal_from_fov

    torch.manual_seed(3)
    for lens in (True, False):
        net = build_model(ModelConfig("posemoe", frames=9, width=16, heads=2, encoder_depth=1, decoder_depth=1, lens_input=lens))
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        folder = tmp_path / str(lens)
        save_checkpoint(net.eval(), folder)
        export_onnx(folder)
        kp, focal = walking_keypoints(), focal_from_fov(1280, 720)
        for backend in ("torch", "onnx"):
            lifter = Lifter(folder, backend=backend, device="cpu")
            guessed, given = lifter.lift(kp, 1280, 720), lifter.lift(kp, 1280, 720, focal_px=focal)
            assert (np.abs(given - guessed).max() > 1e-3) == lens, backend
