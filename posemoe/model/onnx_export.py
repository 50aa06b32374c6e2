"""Export a weights folder to ONNX (``model.onnx`` beside the safetensors) with a dynamic batch size."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .config import ONNX_FILE

OPSET = 17


def export_onnx(weights: str | Path, out: str | Path | None = None) -> Path:
    """Write ``weights``' network as ONNX; input "keypoints" (B, T, 17, C: ``ModelConfig.input_channels``), output "joints" (B, T, 17, 3).

    Uses the TorchScript exporter (``dynamo=False``): it needs no extra packages and the graph of these
    networks has no data-dependent control flow. Returns the written path.
    """
    model = load_checkpoint(weights, "cpu")
    c = model.config
    out = Path(out) if out else Path(weights) / ONNX_FILE
    example = torch.zeros(2, c.frames, c.joints, c.input_channels)
    tmp = out.with_name(out.name + ".tmp")
    with warnings.catch_warnings():
        # The tracer warns about every Python-level shape computation and about its own deprecation
        # (torch is pinned; the dynamo exporter would need onnxscript); the parity test checks the graph.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(
            model, (example,), str(tmp), input_names=["keypoints"], output_names=["joints"],
            dynamic_axes={"keypoints": {0: "batch"}, "joints": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )
    tmp.replace(out)
    return out


def parity(weights: str | Path, onnx_path: str | Path, batch: int = 7, seed: int = 0) -> tuple[float, float]:
    """How far ONNX Runtime and PyTorch, both in float32, are from PyTorch in float64 on random inputs
    (batch, frames, 17, 3): the largest absolute differences in metres, (ONNX Runtime, PyTorch).

    Judged against float64 rather than against each other because a trained network's own float32
    rounding can reach 1e-4 m (attention and the router's softmax amplify it); an export that adds
    nothing to that rounding is as good as PyTorch.
    """
    import onnxruntime as ort

    model = load_checkpoint(weights, "cpu")
    c = model.config
    x = np.random.default_rng(seed).normal(size=(batch, c.frames, c.joints, c.input_channels)).astype(np.float32)
    with torch.no_grad():
        single = model(torch.from_numpy(x)).numpy()
        exact = model.double()(torch.from_numpy(x).double()).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"keypoints": x})[0]
    return float(np.abs(got - exact).max()), float(np.abs(single - exact).max())
