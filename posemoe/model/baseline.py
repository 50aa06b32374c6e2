"""The entangled baseline: a MixSTE-style spatio-temporal transformer.

2D inputs are embedded into one feature space that has to carry both the reliable 2D evidence and
the unknown depth; this is exactly the design PoseMoE argues against, built from the same layers
(``layers.py``) and sized to the same parameter count, so the benchmark compares ideas, not budgets.
"""

from __future__ import annotations

import torch
from torch import nn

from ..skeleton import ROOT
from .config import ModelConfig
from .layers import PoseEmbedding, SpatioTemporalBlock, zero_start


class EntangledTransformer(nn.Module):
    """x: (B, T, J, input_channels) screen coordinates, visibility (and the lens channel) -> (B, T, J, 3)
    root-relative metres."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.config = config
        self.embed = PoseEmbedding(c.in_channels, c.width, c.frames, c.joints, c.joint_std, c.frame_std, c.lens_input)
        self.blocks = nn.ModuleList(SpatioTemporalBlock(c.width, c.heads, c.mlp_ratio) for _ in range(c.encoder_depth))
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, 3)
        if c.zero_init:
            zero_start(self, self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, lens = (x[..., :-1], x[..., -1:]) if self.config.lens_input else (x, None)
        h = self.embed(x, lens)
        for block in self.blocks:
            h = block(h)
        out = self.head(self.norm(h))
        return out - out[:, :, ROOT:ROOT + 1]
