"""Lifting a whole 2D sequence of any length to 3D with a fixed-window network.

The sequence is cut into overlapping windows; every frame's prediction is the weighted mean of all
windows that cover it, with weights that fall towards each window's ends, so predictions fade from
one window to the next instead of jumping at window borders. Clips shorter than a window are padded
by repeating their edge frames.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .skeleton import flip_horizontal


def window_starts(length: int, frames: int, stride: int) -> np.ndarray:
    """Start frames of windows of ``frames`` that cover ``length`` frames every ``stride`` frames.

    The last window is moved back to end on the last frame. Returns (W,) ints; for a clip shorter
    than a window, a single start 0 (the clip is padded to a full window).
    """
    if stride < 1:
        raise ValueError("the window stride must be at least 1 frame")
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


@torch.no_grad()
def lift_sequence(
    model: nn.Module,
    inputs: np.ndarray,
    frames: int,
    stride: int | None = None,
    flip: bool = False,
    batch_size: int = 256,
) -> np.ndarray:
    """Lift a screen-space sequence to root-relative 3D.

    model: maps (B, frames, 17, 3) -> (B, frames, 17, 3). inputs: (N, 17, 3) screen x, y and visibility.
    stride: window step in frames (default: a whole window, no overlap). flip: also run the mirrored
    input and average with the un-mirrored result. Returns (N, 17, 3) camera-space metres, root at 0.
    """
    n = len(inputs)
    if n == 0:
        raise ValueError("cannot lift an empty sequence")
    stride = stride or frames
    padded = inputs if n >= frames else np.concatenate([inputs, np.repeat(inputs[-1:], frames - n, axis=0)])
    starts = window_starts(len(padded), frames, stride)
    windows = padded[starts[:, None] + np.arange(frames)].astype(np.float32)  # (W, T, 17, 3)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outputs = []
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            out = model(torch.from_numpy(chunk).to(device)).float().cpu().numpy()
            if flip:
                mirrored = model(torch.from_numpy(flip_horizontal(chunk)).to(device)).float().cpu().numpy()
                out = (out + flip_horizontal(mirrored)) / 2
            outputs.append(out)
    finally:
        model.train(was_training)
    predictions = np.concatenate(outputs)
    weights = blend_weights(frames)
    total = np.zeros((len(padded), *predictions.shape[2:]), dtype=np.float64)
    weight_sum = np.zeros(len(padded), dtype=np.float64)
    for start, pred in zip(starts, predictions):
        total[start : start + frames] += weights[:, None, None] * pred
        weight_sum[start : start + frames] += weights
    return (total / weight_sum[:, None, None])[:n].astype(np.float32)
