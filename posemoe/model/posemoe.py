"""PoseMoE: decoupled 2D-pose and depth experts, a pose router, and cross-expert aggregation.

After arXiv 2512.16494 ("decouple, then aggregate"). The paper does not publish its exact layers;
this is our reading, each choice named in :class:`~posemoe.model.config.ModelConfig`:

1. **2D-pose expert**: the 2D sequence ``(x, y, visibility)`` is linearly embedded with joint and frame
   position embeddings and refined by ``encoder_depth`` spatio-temporal blocks. It never sees depth
   features, so depth uncertainty cannot erode the 2D evidence.
2. **Depth expert**: its own tokens, built from a **learned Gaussian depth prior**: every joint has a
   learned mean and standard deviation of its depth relative to the pelvis; during training a depth
   hypothesis is sampled from it (reparameterised), at inference the mean is used. The hypothesis is
   embedded with its own weights together with the 2D it has to explain, then refined by its own
   ``encoder_depth`` spatio-temporal blocks. No weights are shared with the 2D expert.
3. **Cross-expert aggregation** (decoder): ``decoder_depth`` layers of bidirectional cross-attention,
   spatial then temporal: depth queries read 2D features while 2D queries read depth features, both
   updated from the same previous state.
4. **Pose router**: per joint and frame, a softmax gate over the two experts' final features weighs
   how much each contributes to the fused feature that the head turns into 3D (after the decoder; the
   routed reading below moves it before).

Readings of what the paper leaves open, each a flag of :class:`ModelConfig` and a named
config, measured against the entangled twin by ``training/ablation.py``:

- **parallel** (``posemoe-t27``, the shipped one): the above; both experts serve one shared target.
- **specialists** (``expert_heads``): each expert gets its own head and its own target at the end of
  the encoder. The abstract splits the pose the same way: "the 2D component of the final 3D human pose
  benefits from the detected 2D poses, whereas its depth counterpart must be estimated from scratch",
  and has experts that "refine the well-detected 2D pose features and learn the depth features". So the
  2D expert's head gives the (x, y) of the root-relative 3D pose (in the perspective crop, where the
  person sits on the optical axis, the true projection up to the person's depth) and the depth
  expert's head gives each joint's depth z relative to the pelvis; both are supervised
  (``training/losses.py``, ``expert_loss``) besides the final head after aggregation.
- **staged** (``staged_depth``, with expert heads): "when depth is initially refined to a more
  dependable state via network-based estimation, encoding it together with 2D pose information is
  beneficial". The depth expert's first block estimates depth (its supervised head moves there);
  that estimate, not the prior's guess, is then embedded together with the 2D and added to its
  features before its remaining blocks.
- **deep aggregation** (``posemoe-t27-aggregate``): specialists with one encoder block per expert and
  two cross-expert layers, the same weights spent on "bidirectional mapping between 2D pose and depth"
  rather than on the experts.
- **routed** (``router_first``): the pose router fuses the experts' encoder features and the
  cross-expert decoder works on what it fused: each expert's stream enters the decoder weighed by its
  gate, and the head reads the sum of the two streams (at the decoder's zero start, exactly the
  router's mixture). This is the order a reader's note on the paper's Sections IV-A to IV-C gives
  (``docs/decisions.md``, "PoseMoE's readings"); the parallel reading routes after the decoder instead.

The paper's layer counts, router inputs and losses are not known to us; what it does say is quoted
above. Its closest relative is MixSTE (spatial then temporal attention per block), the
entangled twin (``baseline.py``).

Input ``(B, T, J, 3)``; output ``(B, T, J, 3)`` root-relative camera-space metres for every frame.
"""

from __future__ import annotations

import torch
from torch import nn

from ..skeleton import ROOT
from .config import ModelConfig
from .layers import Block, PoseEmbedding, SpatioTemporalBlock, zero_start


class GaussianDepthPrior(nn.Module):
    """Per-joint Gaussian over depth relative to the pelvis, in metres, with learned mean and log-std.

    Returns depth hypotheses (B, T, J, 1): samples while training, the mean otherwise.
    """

    def __init__(self, joints: int, init_std: float):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(joints))
        self.log_std = nn.Parameter(torch.full((joints,), float(torch.log(torch.tensor(init_std)))))

    def forward(self, batch: int, frames: int) -> torch.Tensor:
        mean = self.mean.expand(batch, frames, -1)
        if self.training:
            mean = mean + self.log_std.exp() * torch.randn_like(mean)
        return mean.unsqueeze(-1)


class CrossExpertLayer(nn.Module):
    """One layer of bidirectional spatio-temporal cross-attention between the two experts.

    pose, depth: (B, T, J, C). Returns the updated (pose, depth).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.pose_reads_depth = nn.ModuleDict(
            {axis: Block(dim, heads, mlp_ratio, axis, cross=True) for axis in ("joints", "frames")}
        )
        self.depth_reads_pose = nn.ModuleDict(
            {axis: Block(dim, heads, mlp_ratio, axis, cross=True) for axis in ("joints", "frames")}
        )

    def forward(self, pose: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for axis in ("joints", "frames"):
            pose, depth = (
                self.pose_reads_depth[axis](pose, depth),
                self.depth_reads_pose[axis](depth, pose),
            )
        return pose, depth


class PoseMoE(nn.Module):
    """x: (B, T, J, input_channels) screen coordinates, visibility (and the lens channel) -> (B, T, J, 3)
    root-relative metres."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.config = config
        self.pose_embed = PoseEmbedding(c.in_channels, c.width, c.frames, c.joints, c.joint_std, c.frame_std, c.lens_input)
        self.depth_prior = GaussianDepthPrior(c.joints, c.depth_prior_std)
        self.depth_embed = PoseEmbedding(c.in_channels + 1, c.width, c.frames, c.joints, c.joint_std, c.frame_std, c.lens_input)
        self.pose_expert = nn.ModuleList(SpatioTemporalBlock(c.width, c.heads, c.mlp_ratio) for _ in range(c.encoder_depth))
        self.depth_expert = nn.ModuleList(SpatioTemporalBlock(c.width, c.heads, c.mlp_ratio) for _ in range(c.encoder_depth))
        self.decoder = nn.ModuleList(CrossExpertLayer(c.width, c.heads, c.mlp_ratio) for _ in range(c.decoder_depth))
        self.router = nn.Linear(2 * c.width, 2)
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, 3)
        if c.specialists:
            self.pose_head = nn.Sequential(nn.LayerNorm(c.width), nn.Linear(c.width, 2))
            self.depth_head = nn.Sequential(nn.LayerNorm(c.width), nn.Linear(c.width, 1))
        if c.staged_depth:
            # The estimate re-embedded with the 2D it came from: (x, y, visibility, depth).
            self.restage_embed = nn.Linear(c.in_channels + 1, c.width)
        if c.zero_init:
            zero_start(self, self.head)

    def route(self, pose: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """The pose router's per-token softmax weights of the two experts: (B, T, J, C) twice -> (B, T, J, 2)."""
        return torch.softmax(self.router(torch.cat([pose, depth], dim=-1)), dim=-1)

    def forward(self, x: torch.Tensor, return_gates: bool = False, return_experts: bool = False):
        """x: (B, T, J, input_channels). Returns the pose (B, T, J, 3); with ``return_gates`` also the
        router's gates (B, T, J, 2); with ``return_experts`` also the experts' own answers
        ``{"xy": (B, T, J, 2), "z": (B, T, J, 1)}``, root-relative metres (models with expert heads)."""
        b, t = x.shape[:2]
        x, lens = (x[..., :-1], x[..., -1:]) if self.config.lens_input else (x, None)
        pose = self.pose_embed(x, lens)
        depth = self.depth_embed(torch.cat([x, self.depth_prior(b, t).to(x.dtype)], dim=-1), lens)
        z = None
        for i, (pose_block, depth_block) in enumerate(zip(self.pose_expert, self.depth_expert)):
            pose, depth = pose_block(pose), depth_block(depth)
            if self.config.staged_depth and i == 0:
                z = self.depth_head(depth)
                depth = depth + self.restage_embed(torch.cat([x, z - z[:, :, ROOT:ROOT + 1]], dim=-1))
        experts = {}
        if self.config.specialists:
            xy = self.pose_head(pose)
            z = self.depth_head(depth) if z is None else z
            experts = {"xy": xy - xy[:, :, ROOT:ROOT + 1], "z": z - z[:, :, ROOT:ROOT + 1]}
        if self.config.router_first:
            gates = self.route(pose, depth)
            pose, depth = gates[..., :1] * pose, gates[..., 1:] * depth
        for layer in self.decoder:
            pose, depth = layer(pose, depth)
        if self.config.router_first:
            fused = pose + depth
        else:
            gates = self.route(pose, depth)
            fused = gates[..., :1] * pose + gates[..., 1:] * depth
        out = self.head(self.norm(fused))
        out = out - out[:, :, ROOT:ROOT + 1]
        extra = ((gates,) if return_gates else ()) + ((experts,) if return_experts else ())
        return (out, *extra) if extra else out
