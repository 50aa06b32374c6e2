"""The lifting engine: 2D keypoints of a whole clip, in pixels, to root-relative 3D joints in metres.

The clip is cut into overlapping windows of the network's length; every frame's prediction is the
weighted mean of all windows that cover it, with weights that fall towards each window's ends, so
predictions fade from one window to the next instead of jumping at window borders. Clips shorter than
a window are padded by repeating their edge frames. Many windows go through the network per call.

The network never sees raw screen coordinates: each window (mirrored or not) goes through
:func:`posemoe.normalize.normalize_windows`, the same function training uses, and its answer is turned
back into the real camera. A video at another frame rate than the network's is resampled to it first.

Two backends run the network: PyTorch (CPU or CUDA, bf16 on GPU) and ONNX Runtime, for Pythons
without torch such as Blender's own. This module imports neither until a backend is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from . import PoseMoEError
from .camera import normalize_screen, screen_focal
from .normalize import NETWORK_FPS, normalize_windows, resample_inputs, resample_track, restore_poses
from .model.config import ONNX_FILE, load_config
from .skeleton import NUM_JOINTS, flip_horizontal

#: The weights that ship with the package (see ``weights/MODEL_CARD.md``).
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "posemoe-t27"

#: (W, T, 17, 3) float32 windows of (x, y, visibility) -> (W, T, 17, 3) float32 root-relative metres.
WindowFunction = Callable[[np.ndarray], np.ndarray]


def window_starts(length: int, frames: int, stride: int) -> np.ndarray:
    """Start frames of windows of ``frames`` that cover ``length`` frames every ``stride`` frames.

    The last window is moved back to end on the last frame. A stride longer than a window is taken as
    one window, so that no frame falls between windows. Returns (W,) ints; for a clip shorter than a
    window, a single start 0 (the clip is padded to a full window).
    """
    if stride < 1:
        raise PoseMoEError(f"A window step of {stride} frames is not possible: give at least 1 (or none for the default).")
    stride = min(stride, frames)
    if length <= frames:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - frames + 1, stride)
    if starts[-1] != length - frames:
        starts = np.append(starts, length - frames)
    return starts.astype(np.int64)


def blend_weights(frames: int) -> np.ndarray:
    """Per-frame weight of a window's prediction when overlapping windows are averaged, (frames,).

    A raised triangle: 1 in the centre, small but non-zero at the ends, so every frame keeps a weight.
    """
    centre = (frames - 1) / 2
    return 1.0 - np.abs(np.arange(frames) - centre) / (centre + 1.0)


def lift_windows(
    predict: WindowFunction,
    inputs: np.ndarray,
    focal: float,
    frames: int,
    stride: int | None = None,
    flip: bool = False,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
    normalize: bool = True,
    lens_known: bool | None = None,
) -> np.ndarray:
    """Lift a screen-space sequence to root-relative 3D with a window function.

    inputs: (N, 17, 3) screen x, y and visibility. focal: the camera's focal length in screen units
    (``2 * f_px / width``). stride: window step in frames (default: a whole window, no overlap). flip:
    also run the mirrored input and average with the un-mirrored result. normalize: give the network
    :func:`~posemoe.normalize.normalize_windows` of each window and turn its answer back (networks whose
    ``ModelConfig.input`` is "person"); False gives raw screen windows ("screen"). lens_known: whether
    ``focal`` is the camera's own, for networks with the lens channel (``ModelConfig.lens_input``);
    None for the others.
    batch_size: windows per ``predict`` call, mirrored ones included. progress: called with (windows
    done, windows in all) after every call; it may raise to cancel. Returns (N, 17, 3) camera-space
    metres, root at 0.
    """
    n = len(inputs)
    if n == 0:
        raise PoseMoEError("There are no frames to lift: the keypoint sequence is empty.")
    stride = stride or frames
    padded = inputs if n >= frames else np.concatenate([inputs, np.repeat(inputs[-1:], frames - n, axis=0)])
    starts = window_starts(len(padded), frames, stride)

    def predict_normalized(screen_windows: np.ndarray) -> np.ndarray:
        if not normalize:
            return predict(screen_windows)
        normalized, rotation = normalize_windows(screen_windows, focal, lens_known)
        return restore_poses(predict(normalized), rotation)

    # Windows are cut and blended a batch at a time: memory stays that of one batch however long the
    # video (an hour at the default step is 20,000 windows, 110 MB each way if cut all at once).
    weights = blend_weights(frames)
    total = np.zeros((len(padded), inputs.shape[1], 3), dtype=np.float64)
    weight_sum = np.zeros(len(padded), dtype=np.float64)
    per_call = max(1, batch_size // 2) if flip else batch_size
    for i in range(0, len(starts), per_call):
        chunk_starts = starts[i : i + per_call]
        chunk = padded[chunk_starts[:, None] + np.arange(frames)].astype(np.float32)  # (W, T, 17, 3)
        if flip:
            both = predict_normalized(np.concatenate([chunk, flip_horizontal(chunk)]))
            out = (both[: len(chunk)] + flip_horizontal(both[len(chunk) :])) / 2
        else:
            out = predict_normalized(chunk)
        for start, pred in zip(chunk_starts, out):
            total[start : start + frames] += weights[:, None, None] * pred
            weight_sum[start : start + frames] += weights
        if progress is not None:
            progress(min(i + per_call, len(starts)), len(starts))
    return (total / weight_sum[:, None, None])[:n].astype(np.float32)


def torch_window_function(model, precision: str = "auto") -> WindowFunction:
    """Wrap a torch network as a :data:`WindowFunction` on the network's device.

    precision: "fp32", "bf16", "fp16" or "auto" (bf16 on CUDA, fp32 on CPU).
    """
    import torch

    device = next(model.parameters()).device
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    model.eval()

    @torch.no_grad()
    def predict(windows: np.ndarray) -> np.ndarray:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(torch.from_numpy(windows).to(device))
        return out.float().cpu().numpy()

    return predict


def onnx_window_function(path: str | Path, device: str = "cpu") -> WindowFunction:
    """Wrap an exported ``model.onnx`` as a :data:`WindowFunction` on ONNX Runtime."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    elif device == "cuda":
        raise PoseMoEError("CUDA was asked for, but this ONNX Runtime has no CUDA provider: install onnxruntime-gpu or use device 'cpu'.")
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable models
        raise PoseMoEError(f"{path} is not a usable ONNX model ({exc}); export it again with `python -m posemoe export-onnx`.") from None
    name = session.get_inputs()[0].name

    def predict(windows: np.ndarray) -> np.ndarray:
        return session.run(None, {name: windows})[0]

    return predict


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when PyTorch sees a GPU, else "cpu"; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class Lifter:
    """Loads lifting weights once and lifts clips of any length.

    weights: a folder with ``config.json`` and ``model.safetensors`` (PyTorch) or ``model.onnx``
    (ONNX Runtime); default: the shipped weights. backend: "torch", "onnx" or "auto" (torch when it
    is importable). device: "cpu", "cuda" or "auto". precision: see :func:`torch_window_function`.
    batch_size: windows per network call, mirrored ones included (default 128 on CPU, 2048 on CUDA).
    On CPU, PyTorch slows down past ~256 windows per call (2,753 frames/s at 256, 1,258 at 512, T=27 on
    the 2-core dev machine).
    """

    def __init__(self, weights: str | Path | None = None, backend: str = "auto", device: str = "auto",
                 precision: str = "auto", batch_size: int | None = None):
        self.weights = Path(weights or DEFAULT_WEIGHTS)
        self.config = load_config(self.weights)
        if backend == "auto":
            backend = "torch" if _torch_available() else "onnx"
        if backend == "torch":
            from .model.checkpoint import load_checkpoint

            self.device = resolve_device(device)
            self._predict = torch_window_function(load_checkpoint(self.weights, self.device), precision)
        elif backend == "onnx":
            path = self.weights / ONNX_FILE
            if not path.is_file():
                raise PoseMoEError(f"No {ONNX_FILE} in {self.weights}: run `python -m posemoe export-onnx --weights {self.weights}`.")
            self.device = device
            self._predict = onnx_window_function(path, device)
        else:
            raise PoseMoEError(f"Unknown lifting backend {backend!r}: choose 'torch', 'onnx' or 'auto'.")
        self.backend = backend
        self.batch_size = batch_size or (2048 if self.device == "cuda" else 128)

    @property
    def frames(self) -> int:
        """The network's window length T."""
        return self.config.frames

    def lift(self, keypoints: np.ndarray, width: int, height: int, confidence: np.ndarray | None = None,
             stride: int | None = None, flip: bool = True, min_confidence: float = 0.01,
             focal_px: float | None = None, fps: float | None = None,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Lift one person's 2D keypoints to 3D.

        keypoints: (N, 17, 2) pixels in our joint order, NaN where unknown. width, height: frame size
        in pixels. confidence: (N, 17) in [0, 1] (default: all 1). Joints below ``min_confidence`` or
        not finite are given to the network as missing, the way training dropped joints. The default
        drops only what a detector says it did not find: BlazePose places every joint, occluded ones
        too, and its low "visibility" marks a guess, not an absence. Dropping such guesses leaves runs
        of a missing wrist or ankle, which training (scattered single-frame drops) never showed the
        network: on the sample, a threshold of 0.3 let a hidden forearm swell to twice its length.
        stride: window step in frames at the network's rate (default: a third of a window, so windows
        overlap and blend). flip: average with the mirrored input (slower, steadier).
        focal_px: the camera's focal length in pixels (default: a phone's main camera,
        :data:`~posemoe.camera.DEFAULT_FOV_DEGREES` across the longer side); the person is
        seen through it (:func:`~posemoe.normalize.normalize_windows`). fps: the video's frame rate;
        the keypoints are resampled to the network's :data:`~posemoe.normalize.NETWORK_FPS` for
        lifting and the result back (default: taken as already at that rate).
        progress: see :func:`lift_windows`.
        Returns (N, 17, 3) root-relative camera-space metres (x right, y down, z forward).
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 2):
            raise PoseMoEError(f"Keypoints must be shaped (frames, {NUM_JOINTS}, 2), not {keypoints.shape}.")
        if width <= 0 or height <= 0:
            raise PoseMoEError(f"The frame size {width}x{height} is not a valid image size.")
        if fps is not None and not (np.isfinite(fps) and fps > 0):
            raise PoseMoEError(f"A frame rate of {fps} frames/s is not possible: give the video's frame rate.")
        if focal_px is not None and not (np.isfinite(focal_px) and focal_px > 0):
            raise PoseMoEError(f"A focal length of {focal_px} px is not possible: give a positive number of pixels.")
        conf = np.ones(keypoints.shape[:2]) if confidence is None else np.asarray(confidence, dtype=np.float64)
        if conf.shape != keypoints.shape[:2]:
            raise PoseMoEError(f"Confidence must be shaped {keypoints.shape[:2]}, not {conf.shape}.")
        visible = np.isfinite(keypoints).all(-1) & np.isfinite(conf) & (conf >= min_confidence)
        screen = normalize_screen(np.nan_to_num(keypoints), width, height)
        screen = np.where(visible[..., None], screen, 0.0)
        inputs = np.concatenate([screen, visible[..., None]], axis=-1)
        n = len(inputs)
        if fps is not None and n > 1:
            inputs = resample_inputs(inputs, fps, NETWORK_FPS)
        focal = screen_focal(width, height, focal_px)
        stride = stride or max(1, self.frames // 3)
        out = lift_windows(self._predict, inputs.astype(np.float32), focal, self.frames, stride, flip, self.batch_size,
                           progress, self.config.input == "person", (focal_px is not None) if self.config.lens_input else None)
        if fps is not None and n > 1:
            out = resample_track(out, NETWORK_FPS, fps, n)
        return out.astype(np.float32)
