"""A copy of an rlpfn checkpoint whose exploration bonus is scaled: the same trunk and heads, with the bias of the head's
α row (the log-multiplier of UCB-VI's bonus, rlpfn/model.py) raised by log(scale), so the planner's bonus is
multiplied by `scale` on every pair and the trunk's input features stay as they were. Used to choose a model's
bonus scale on its training prior (`rlpfn validate --prior wide --agents 'rlpfn[checkpoint=OUT]' ...`), never on a
held-out split or the suite.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from jsonargparse.typing import PositiveFloat


def main() -> None:
    from rlpfn.checkpoint import load, save
    from rlpfn.errors import UserError
    from rlpfn.files import check_output_file

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="an rlpfn checkpoint (path without or with .json)")
    parser.add_argument("scale", type=PositiveFloat, help="multiply the bonus by this")
    parser.add_argument("out", help="where to write the copy (OUT.json + OUT.safetensors)")
    args = parser.parse_args()
    if not math.isfinite(args.scale):
        parser.error(f"argument scale: must be finite, got {args.scale}")
    try:
        check_output_file(Path(f"{args.out}.json"), "out")  # before any work; save writes OUT.json beside the weights
        model = load(args.checkpoint, "rlpfn")
    except UserError as e:
        parser.error(str(e))
    with torch.no_grad():
        model.head.bias[0] += math.log(args.scale)
    training = {**model.meta.get("training", {}), "bonus_variant": {"of": args.checkpoint, "scale": args.scale}}
    print(f"wrote {save(model, args.out, model.meta.get('prior', {}), training)}")


if __name__ == "__main__":
    main()
