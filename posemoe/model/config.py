"""Model configurations: one dataclass, and the named configs that training and the product use.

The paper does not publish sizes, so every size here is our choice; ``docs/benchmarks.md`` holds the
measurements that back them. Baseline configs match their PoseMoE twin's width and parameter count
(within a few percent) so the comparison isolates PoseMoE's decoupling, not capacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..skeleton import NUM_JOINTS


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters.

    arch: "posemoe" (decoupled experts + cross-expert decoder) or "baseline" (entangled MixSTE-style).
    frames: window length T. width: channels C. heads: attention heads. mlp_ratio: MLP hidden / C.
    encoder_depth: spatio-temporal blocks per expert (PoseMoE) or in total (baseline).
    decoder_depth: cross-expert aggregation layers (PoseMoE only).
    in_channels: per-joint input (x, y, visibility). joint_std / frame_std: init scale of the
    position embeddings (a large joint embedding lets spatial attention tell joints apart from step 1).
    depth_prior_std: initial standard deviation, metres, of the learned Gaussian depth prior.
    """

    arch: str = "posemoe"
    frames: int = 27
    width: int = 64
    heads: int = 4
    mlp_ratio: float = 2.0
    encoder_depth: int = 2
    decoder_depth: int = 1
    joints: int = NUM_JOINTS
    in_channels: int = 3
    joint_std: float = 1.0
    frame_std: float = 0.1
    depth_prior_std: float = 0.2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**data)


def _pair(frames: int, width: int, heads: int, encoder_depth: int, decoder_depth: int) -> dict[str, ModelConfig]:
    """A PoseMoE config and its entangled twin with the same width and about the same parameters.

    A PoseMoE decoder layer holds four cross blocks, as many weights as two spatio-temporal blocks, so
    the twin has ``2 * encoder_depth + 2 * decoder_depth`` blocks.
    """
    moe = ModelConfig("posemoe", frames, width, heads, 2.0, encoder_depth, decoder_depth)
    base = ModelConfig("baseline", frames, width, heads, 2.0, 2 * encoder_depth + 2 * decoder_depth, 0)
    return {f"posemoe-t{frames}": moe, f"baseline-t{frames}": base}


CONFIGS: dict[str, ModelConfig] = {
    **_pair(27, 64, 4, 2, 1),  # CPU-trainable
    **_pair(81, 128, 8, 4, 2),  # GPU
    **_pair(243, 192, 8, 4, 2),  # GPU, the paper's window
}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}") from None
