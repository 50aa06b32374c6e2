"""The temporal convolution reference: a VideoPose3D-style dilated 1D convolution lifter.

Not PoseMoE: the benchmark's reference row, because the paper's claim is that PoseMoE beats lifters
like this one. Unlike VideoPose3D, which predicts the centre frame of its receptive field, this net is
sequence to sequence like the transformers (replicate padding keeps the length), so the three share the
data pipeline, the loss and the lifting engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class TemporalBlock(nn.Module):
    """Dilated kernel-3 convolution, then a 1x1 convolution, each with BatchNorm and ReLU; residual.

    x: (B, C, T). Returns (B, C, T).
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(channels)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn_pointwise = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.pad(x, (self.dilation, self.dilation), mode="replicate")
        h = F.relu(self.bn(self.conv(h)))
        return x + F.relu(self.bn_pointwise(self.pointwise(h)))


class TemporalConvNet(nn.Module):
    """x: (B, T, J, in_channels) -> (B, T, J, 3) root-relative metres.

    ``encoder_depth`` blocks with dilations 3, 9, 27, ... after a kernel-3 input layer: receptive field
    ``3 ** (encoder_depth + 1)`` frames (27 for two blocks). ``width`` is the channel count.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.config = config
        self.expand = nn.Conv1d(c.joints * c.in_channels, c.width, 3, bias=False)
        self.bn = nn.BatchNorm1d(c.width)
        self.blocks = nn.ModuleList(TemporalBlock(c.width, 3 ** (i + 1)) for i in range(c.encoder_depth))
        self.shrink = nn.Conv1d(c.width, c.joints * 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = x.shape
        h = F.pad(x.reshape(b, t, -1).transpose(1, 2), (1, 1), mode="replicate")
        h = F.relu(self.bn(self.expand(h)))
        for block in self.blocks:
            h = block(h)
        out = self.shrink(h).transpose(1, 2).reshape(b, t, j, 3)
        return out - out[:, :, :1]
