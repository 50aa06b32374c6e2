"""Model configurations: one dataclass, and the named configs that training and the product use.

The paper does not publish sizes, so every size here is our choice; ``docs/benchmarks.md`` holds the
measurements that back them. Baseline configs match their PoseMoE twin's width and parameter count
(within a few percent) so the comparison isolates PoseMoE's decoupling, not capacity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .. import PoseMoEError
from ..skeleton import NUM_JOINTS

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
ONNX_FILE = "model.onnx"
#: The architectures ``build_model`` knows.
ARCHS = ("posemoe", "baseline", "tcn")
#: The inputs a network can be trained on (``ModelConfig.input``).
INPUTS = ("person", "screen")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters.

    arch: "posemoe" (decoupled experts + cross-expert decoder), "baseline" (entangled MixSTE-style) or
    "tcn" (VideoPose3D-style temporal convolutions, the reference row; width = channels, encoder_depth = blocks).
    frames: window length T. width: channels C. heads: attention heads. mlp_ratio: MLP hidden / C.
    encoder_depth: spatio-temporal blocks per expert (PoseMoE) or in total (baseline).
    decoder_depth: cross-expert aggregation layers (PoseMoE only).
    in_channels: per-joint keypoint input (x, y, visibility).
    lens_input: the input carries one more channel, 1 where the window was normalised with the
    camera's own lens and 0 where with the product's default guess (:func:`posemoe.camera.screen_focal`):
    the two crops of one person differ, and a network not told which it got learns a compromise
    between them. Not for "tcn". joint_std / frame_std: init scale of the
    position embeddings (a large joint embedding lets spatial attention tell joints apart from step 1).
    depth_prior_std: initial standard deviation, metres, of the learned Gaussian depth prior.
    zero_init: start every residual branch and the output head at zero (see ``layers.zero_start``).
    input: what the network was trained to read: "person", the product's normalisation
    (:func:`posemoe.normalize.normalize_windows`: each window's person perspective-cropped, scaled and
    placed), or "screen", raw screen coordinates (the checkpoints trained before it, kept to compare).
    expert_heads: PoseMoE only; each expert gets its own supervised head (the 2D expert the pose's
    (x, y), the depth expert its z) at the end of the encoder, the "specialists" reading.
    staged_depth: PoseMoE only; the depth expert estimates depth after its first block and embeds that
    estimate with the 2D before the rest (implies expert heads), the "staged" reading.
    router_first: PoseMoE only; the pose router weighs the experts' encoder features before the
    cross-expert decoder instead of after it, the "routed" reading.
    See ``posemoe/model/posemoe.py`` for what each reading follows.
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
    zero_init: bool = True
    input: str = "person"
    expert_heads: bool = False
    staged_depth: bool = False
    router_first: bool = False
    lens_input: bool = False

    @property
    def input_channels(self) -> int:
        """Channels per joint of the network's input: the keypoint's, plus the lens channel."""
        return self.in_channels + self.lens_input

    @property
    def specialists(self) -> bool:
        """Whether each expert has its own supervised head (``expert_heads``, implied by ``staged_depth``)."""
        return self.expert_heads or self.staged_depth

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, assignments: list[str]) -> "ModelConfig":
        """A copy with ``["key=value", ...]`` applied, values parsed by the field's type (for ablations)."""
        types = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        changes = {}
        for item in assignments:
            key, _, value = item.partition("=")
            if key not in types:
                raise ValueError(f"unknown model config key {key!r}; known: {', '.join(types)}")
            kind = types[key]
            changes[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        # Weights saved before ``input`` existed were all trained on raw screen coordinates; every
        # config saved since names its input.
        data = {"input": "screen", **data}
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


def _readings(frames: int, width: int, heads: int) -> dict[str, ModelConfig]:
    """PoseMoE's other readings (posemoe.py's docstring) at the CPU-trainable size, for the ablation:
    the same blocks as ``posemoe-t27`` (the heads add under 0.2 % of its weights)."""
    moe = ModelConfig("posemoe", frames, width, heads, 2.0, 2, 1)
    return {
        f"posemoe-t{frames}-specialists": replace(moe, expert_heads=True),
        f"posemoe-t{frames}-staged": replace(moe, expert_heads=True, staged_depth=True),
        # A decoder layer weighs as much as one encoder block in each expert.
        f"posemoe-t{frames}-aggregate": replace(moe, encoder_depth=1, decoder_depth=2, expert_heads=True),
        f"posemoe-t{frames}-routed": replace(moe, router_first=True),
    }


CONFIGS: dict[str, ModelConfig] = {
    **_pair(27, 64, 4, 2, 1),  # CPU-trainable
    **_readings(27, 64, 4),
    **_pair(81, 128, 8, 4, 2),  # GPU
    **_pair(243, 192, 8, 4, 2),  # GPU, the paper's window
    # The temporal convolution reference: receptive field 27, about VideoPose3D's 27-frame size (valid
    # convolutions on an edge-padded input; zero_init starts only its output layer at zero).
    "tcn-t27": ModelConfig("tcn", 27, 512, 1, 1.0, 2, 0, zero_init=True),
}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}") from None


def read_config(folder: str | Path) -> dict:
    """The JSON record of a weights folder: ``{"model": ModelConfig fields, ...training record}``."""
    path = Path(folder) / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PoseMoEError(f"No {CONFIG_FILE} in {folder}: point to a folder written by training/train.py.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseMoEError(f"{path} is not valid JSON ({exc}); restore it from the original weights.") from None


def load_config(folder: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` of a weights folder; PoseMoEError if it describes no known model."""
    try:
        config = ModelConfig.from_dict(read_config(folder)["model"])
        if config.arch not in ARCHS:
            raise ValueError(f"unknown architecture {config.arch!r}")
        if config.input not in INPUTS:
            raise ValueError(f"unknown input {config.input!r}")
        if config.lens_input and (config.arch == "tcn" or config.input != "person"):
            raise ValueError("only person-normalised transformers take the lens channel")
        return config
    except (KeyError, TypeError, ValueError) as exc:
        raise PoseMoEError(f"{Path(folder) / CONFIG_FILE} does not describe a known model ({exc}).") from None
