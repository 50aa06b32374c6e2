"""Lifting networks: PoseMoE, the entangled baseline and the convolution reference, with named configs.

Importing this package does not import PyTorch (the ONNX Runtime path must work without it); the
networks are imported when one is built.
"""

from __future__ import annotations

from .config import ARCHS, CONFIGS, ModelConfig, get_config

__all__ = ["CONFIGS", "ModelConfig", "build_model", "get_config", "count_parameters"]


def build_model(config: ModelConfig):
    """A freshly initialised ``torch.nn.Module`` for ``config``."""
    if config.arch == "posemoe":
        from .posemoe import PoseMoE

        return PoseMoE(config)
    if config.arch == "baseline":
        from .baseline import EntangledTransformer

        return EntangledTransformer(config)
    if config.arch == "tcn":
        from .tcn import TemporalConvNet

        return TemporalConvNet(config)
    raise ValueError(f"unknown architecture {config.arch!r}; expected one of {ARCHS}")


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
