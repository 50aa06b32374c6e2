"""Average two fine-tunes of the same network, weight by weight (a "model soup"), into a weights folder.

    python training/soup.py posemoe/weights/posemoe-t27 runs/t27-det40 --share 0.7 --out runs/soup70
    python benchmarks/product.py --weights runs/soup70 --every 9 --rates 30

Two runs fine-tuned from the same weights usually stay in one basin of the loss, so the straight line
between them is a path of working networks whose trade between what each run was tuned for can beat
both ends (Wortsman et al., "Model soups", 2022). The output holds ``share`` x the first folder's
``model.safetensors`` + (1 - share) x the second's, and the first folder's ``config.json`` (both must be
the same architecture); the product path measures it like any other weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.numpy import load_file, save_file

from posemoe.files import atomic_output
from posemoe.model.config import load_config

WEIGHTS = "model.safetensors"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="weights folder (config.json, model.safetensors)")
    parser.add_argument("second", type=Path, help="weights folder of the same architecture")
    parser.add_argument("--share", type=float, required=True, help="the first folder's share, 0 to 1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not 0.0 <= args.share <= 1.0:
        parser.error(f"--share {args.share} is outside 0 to 1")
    if load_config(args.first) != load_config(args.second):
        parser.error(f"{args.first} and {args.second} are different networks (their config.json's model differ)")
    first, second = load_file(args.first / WEIGHTS), load_file(args.second / WEIGHTS)
    if first.keys() != second.keys() or any(first[k].shape != second[k].shape for k in first):
        parser.error(f"{args.first} and {args.second} do not hold the same weights")
    soup = {k: (args.share * first[k] + (1.0 - args.share) * second[k]).astype(first[k].dtype) for k in first}
    with atomic_output(args.out / WEIGHTS) as tmp:
        save_file(soup, str(tmp))
    config = json.loads((args.first / "config.json").read_text())
    config["soup"] = {"first": str(args.first), "second": str(args.second), "share": args.share}
    with atomic_output(args.out / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {args.out}: {args.share:g} x {args.first} + {1 - args.share:g} x {args.second}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
