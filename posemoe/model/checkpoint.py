"""Weight files: ``model.safetensors`` plus ``config.json`` in one folder. Never pickle.

``config.json`` holds ``{"model": ModelConfig fields, ...}``; other keys (training settings, notes)
are kept for the record and ignored when loading.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .. import PoseMoEError
from . import build_model
from .config import CONFIG_FILE, WEIGHTS_FILE, load_config


def save_checkpoint(model: nn.Module, folder: str | Path, extra: dict | None = None) -> None:
    """Write ``model``'s weights and config into ``folder`` atomically (temp file, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(folder / WEIGHTS_FILE)
    config = {"model": model.config.to_dict(), **(extra or {})}
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(folder / CONFIG_FILE)


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu", overrides: list[str] = ()) -> nn.Module:
    """Build the network described by ``folder/config.json`` and load ``folder/model.safetensors``.

    overrides: ``["key=value", ...]`` changes to the saved config, for fine-tuning the weights into a
    network with more parts (``lens_input=true``, ``expert_heads=true``): every saved weight must fit
    the new network, and the parts it adds keep their fresh initialisation.
    Raises PoseMoEError with a sentence saying what to do when a file is missing, corrupted or does
    not match the config. The network is returned in eval mode.
    """
    folder = Path(folder)
    config = load_config(folder)
    try:
        config = config.with_overrides(list(overrides))
    except ValueError as exc:
        raise PoseMoEError(f"Cannot change the config of {folder}: {exc}.") from None
    model = build_model(config)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise PoseMoEError(f"No {WEIGHTS_FILE} in {folder}: copy the weights next to {CONFIG_FILE}.")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise PoseMoEError(f"{path} is not a readable safetensors file ({exc}); download or copy it again.") from None
    try:
        unexpected = model.load_state_dict(state, strict=not overrides).unexpected_keys
        if unexpected:
            raise RuntimeError(f"weights the changed config has no place for: {', '.join(unexpected)}")
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise PoseMoEError(f"{path} does not match {CONFIG_FILE} ({first}); use the config saved with these weights.") from None
    return model.to(device).eval()
