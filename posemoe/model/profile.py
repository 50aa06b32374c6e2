"""Size and cost of a network: parameters and multiply-accumulates, counted by PyTorch."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import build_model, count_parameters
from .config import ModelConfig


def macs_per_window(config: ModelConfig) -> int:
    """Multiply-accumulates of one forward pass over one window of ``config.frames`` frames.

    Counted with ``torch.utils.flop_counter`` (matrix products, attention included; element-wise
    operations such as norms and activations are not counted, as is usual for MACs).
    """
    model = build_model(config).eval()
    x = torch.zeros(1, config.frames, config.joints, config.input_channels)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def describe(config: ModelConfig) -> dict:
    """Parameters and MACs (per window and per output frame) of ``config``."""
    macs = macs_per_window(config)
    return {
        "parameters": count_parameters(build_model(config)),
        "macs_per_window": macs,
        "macs_per_frame": macs // config.frames,
    }
