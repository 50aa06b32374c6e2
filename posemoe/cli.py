"""Command line: ``posemoe info`` (configs with parameters and MACs), ``posemoe export-onnx``."""

from __future__ import annotations

import argparse
import sys

from . import PoseMoEError


def cmd_info(args: argparse.Namespace) -> int:
    from .model import CONFIGS
    from .model.profile import describe

    print(f"{'config':<15} {'arch':<9} {'T':>4} {'width':>5} {'depth':>8} {'params':>11} {'MMACs/window':>13} {'MMACs/frame':>12}")
    for name, config in CONFIGS.items():
        info = describe(config)
        depth = f"{config.encoder_depth}+{config.decoder_depth}" if config.arch == "posemoe" else str(config.encoder_depth)
        print(f"{name:<15} {config.arch:<9} {config.frames:>4} {config.width:>5} {depth:>8} {info['parameters']:>11,} "
              f"{info['macs_per_window'] / 1e6:>13.1f} {info['macs_per_frame'] / 1e6:>12.2f}")
    print("depth: blocks per expert + cross-expert decoder layers (PoseMoE), spatio-temporal blocks (baseline)")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .lift import DEFAULT_WEIGHTS
    from .model.onnx_export import export_onnx, parity

    weights = args.weights or DEFAULT_WEIGHTS
    path = export_onnx(weights, args.out)
    print(f"wrote {path}; max |ONNX Runtime - PyTorch| on random inputs: {parity(weights, path):.2e} m")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="posemoe", description="PoseMoE markerless motion capture")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="list the model configs with their parameters and MACs").set_defaults(func=cmd_info)
    export = sub.add_parser("export-onnx", help="export lifting weights to ONNX (dynamic batch size)")
    export.add_argument("--weights", help="weights folder (default: the shipped weights)")
    export.add_argument("--out", help="output file (default: model.onnx in the weights folder)")
    export.set_defaults(func=cmd_export_onnx)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PoseMoEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
