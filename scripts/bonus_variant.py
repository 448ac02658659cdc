"""A copy of an rlpfn checkpoint whose exploration bonus is scaled: the same trunk and heads, with the bias of the head's
α row (the log-multiplier of UCB-VI's bonus, rlpfn/model.py) raised by log(scale), so the planner's bonus is
multiplied by `scale` on every pair and the trunk's input features stay as they were. Used to choose a model's
bonus scale on its training prior (`rlpfn validate --prior wide --agents 'rlpfn[checkpoint=OUT]' ...`), never on a
held-out split or the suite. `--h-term-scale X` also sets the planner's h_term multiplier
(ModelConfig.planner_h_term_scale, the 1/N part of the bonus) to X, leaving the features as they were.
"""
from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument("--h-term-scale", type=PositiveFloat, default=None,
                        help="set the planner's h_term multiplier (ModelConfig.planner_h_term_scale) to this")
    args = parser.parse_args()
    for key in ("scale", "h_term_scale"):
        value = getattr(args, key)
        if value is not None and not math.isfinite(value):
            parser.error(f"argument {key}: must be finite, got {value}")
    try:
        check_output_file(Path(f"{args.out}.json"), "out")  # before any work; save writes OUT.json beside the weights
        model = load(args.checkpoint, "rlpfn")
    except UserError as e:
        parser.error(str(e))
    if args.h_term_scale is not None:
        from rlpfn.model import RLPFN

        copy = RLPFN(dataclasses.replace(model.cfg, planner_h_term_scale=args.h_term_scale))
        copy.load_state_dict(model.state_dict())
        copy.meta, model = model.meta, copy
    with torch.no_grad():
        model.head.bias[0] += math.log(args.scale)
    variant = {"of": args.checkpoint, "scale": args.scale}
    if args.h_term_scale is not None:
        variant["h_term_scale"] = args.h_term_scale
    training = {**model.meta.get("training", {}), "bonus_variant": variant}
    print(f"wrote {save(model, args.out, model.meta.get('prior', {}), training)}")


if __name__ == "__main__":
    main()
