"""The temporal convolution reference: a VideoPose3D-style dilated 1D convolution lifter.

Not PoseMoE: the benchmark's reference row, because the paper's claim is that PoseMoE beats lifters
like this one. As in VideoPose3D (Pavllo et al. 2019), the convolutions are unpadded ("valid") and
every output frame sees exactly ``receptive_field`` input frames. Unlike VideoPose3D, which predicts
the centre frame of its receptive field, this net is sequence to sequence like the transformers: the
input is padded once, by repeating its first and last frame ``(receptive_field - 1) / 2`` times, so the
output has the input's length and the three nets share the data pipeline, the loss and the lifting
engine. The first version of this file padded every layer instead (edge frames of deep layers then
convolve padding) and used default output initialisation (predictions about 2 m from the truth): it
reached 405, 303, 211 mm validation MPJPE at steps 100-300, against 214, 165, 143 mm now.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..skeleton import ROOT
from .config import ModelConfig

#: VideoPose3D's dropout after every ReLU and its BatchNorm momentum (PyTorch's convention).
DROPOUT = 0.25
BN_MOMENTUM = 0.1


class TemporalBlock(nn.Module):
    """Valid dilated kernel-3 convolution, then a 1x1 convolution, each with BatchNorm, ReLU and
    dropout; the residual is the input's centre crop.

    x: (B, C, T). Returns (B, C, T - 2 * dilation).
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(channels, momentum=BN_MOMENTUM)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn_pointwise = nn.BatchNorm1d(channels, momentum=BN_MOMENTUM)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation
        h = self.drop(F.relu(self.bn(self.conv(x))))
        return x[:, :, d:-d] + self.drop(F.relu(self.bn_pointwise(self.pointwise(h))))


class TemporalConvNet(nn.Module):
    """x: (B, T, J, in_channels) -> (B, T, J, 3) root-relative metres, any T >= 1.

    A kernel-3 input layer, then ``encoder_depth`` blocks with dilations 3, 9, ...: receptive field
    ``3 ** (encoder_depth + 1)`` frames (27 for two blocks). ``width`` is the channel count.
    ``zero_init`` starts the output layer at zero (the zero pose; default initialisation predicts
    poses about 2 m from the truth, and the first steps are unstable).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.config = config
        self.receptive_field = 3 ** (c.encoder_depth + 1)
        self.expand = nn.Conv1d(c.joints * c.in_channels, c.width, 3, bias=False)
        self.bn = nn.BatchNorm1d(c.width, momentum=BN_MOMENTUM)
        self.drop = nn.Dropout(DROPOUT)
        self.blocks = nn.ModuleList(TemporalBlock(c.width, 3 ** (i + 1)) for i in range(c.encoder_depth))
        self.shrink = nn.Conv1d(c.width, c.joints * 3, 1)
        if c.zero_init:
            nn.init.zeros_(self.shrink.weight)
            nn.init.zeros_(self.shrink.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = x.shape
        pad = (self.receptive_field - 1) // 2
        h = F.pad(x.reshape(b, t, -1).transpose(1, 2), (pad, pad), mode="replicate")
        h = self.drop(F.relu(self.bn(self.expand(h))))
        for block in self.blocks:
            h = block(h)
        out = self.shrink(h).transpose(1, 2).reshape(b, t, j, 3)
        return out - out[:, :, ROOT:ROOT + 1]
