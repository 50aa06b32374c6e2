"""Training losses, in metres, on root-relative poses (B, T, J, 3)."""

from __future__ import annotations

import torch


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error. pred, target: (B, T, J, 3) metres. Returns a scalar in metres."""
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def velocity_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint velocity error, the temporal term: it penalises jitter that MPJPE averages away.

    pred, target: (B, T, J, 3) metres with T >= 2. Returns a scalar in metres per frame.
    """
    return mpjpe_loss(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1])


def training_loss(pred: torch.Tensor, target: torch.Tensor, velocity_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``MPJPE + velocity_weight * MPJVE``. Returns (loss, MPJPE) as scalars in metres."""
    err = mpjpe_loss(pred, target)
    return err + velocity_weight * velocity_loss(pred, target), err.detach()


def expert_loss(experts: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """The experts' own targets (PoseMoE's "specialists" reading): the 2D expert's (x, y) against the
    pose's, the depth expert's z against its depth, both root-relative.

    experts: {"xy": (B, T, J, 2), "z": (B, T, J, 1)} metres; target: (B, T, J, 3) metres. Returns the
    sum of the mean 2D distance and the mean absolute depth error, a scalar in metres.
    """
    xy = torch.linalg.vector_norm(experts["xy"].float() - target[..., :2], dim=-1).mean()
    return xy + (experts["z"].float() - target[..., 2:]).abs().mean()
