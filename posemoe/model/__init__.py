"""Lifting networks: PoseMoE and the entangled baseline, their named configs, and weight files."""

from __future__ import annotations

from torch import nn

from .baseline import EntangledTransformer
from .config import CONFIGS, ModelConfig, get_config
from .posemoe import PoseMoE

__all__ = ["CONFIGS", "ModelConfig", "PoseMoE", "EntangledTransformer", "build_model", "get_config", "count_parameters"]


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised network for ``config``."""
    if config.arch == "posemoe":
        return PoseMoE(config)
    if config.arch == "baseline":
        return EntangledTransformer(config)
    raise ValueError(f"unknown architecture {config.arch!r}; expected 'posemoe' or 'baseline'")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
