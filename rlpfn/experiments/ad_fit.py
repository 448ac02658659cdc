"""How well AD models imitate their target on training-prior windows: `python -m rlpfn.experiments.ad_fit [CKPT ...]`.

Prints, for an untrained model of the shipped config and each checkpoint (default: the shipped ad-v1), the
cross-entropy to the target actions relative to a uniform guess's (log A; 1 = no better than uniform), the
accuracy of its argmax, and the relative cross-entropy at the first and the last 32 positions of the window:
lower at the end means the model uses its context (in-context learning of the source's behaviour). The
windows are 6 fixed batches of the training prior (seeds 10^6..10^6+5, after any seed the training stream
reaches in 10^6 steps), built with each checkpoint's own data config.
"""
from __future__ import annotations

import argparse
import math
import sys

import torch

from ..ad.data import ADDataConfig, ad_batch
from ..ad.model import ADModel
from ..errors import UserError


def fit(model: ADModel, data: ADDataConfig, batches: int = 6) -> dict:
    rows = []
    with torch.no_grad():
        for i in range(batches):
            b = ad_batch(data, model.cfg.window, model.cfg.label_dim, 10**6 + i)
            logits = model(b.tokens)
            ce = -(b.target * torch.log_softmax(logits, -1)).sum(-1) / math.log(logits.shape[-1])
            rows.append((ce.mean(), (logits.argmax(-1) == b.target.argmax(-1)).float().mean(), ce[:, :32].mean(),
                         ce[:, -32:].mean()))
    keys = ("relative_ce", "accuracy", "relative_ce_first_32", "relative_ce_last_32")
    return {k: float(sum(r[j] for r in rows) / len(rows)) for j, k in enumerate(keys)}


def main(argv: list[str] | None = None) -> int:
    from ..checkpoint import load, shipped_path

    p = argparse.ArgumentParser(prog="python -m rlpfn.experiments.ad_fit",
                                description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("checkpoints", nargs="*", metavar="CKPT",
                   help="AD checkpoints (a path without .json / .safetensors, or a shipped name); default: ad-v1")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        models = {}
        for path in args.checkpoints or [str(shipped_path("ad"))]:
            m = load(path, "ad").eval()
            models[path] = (m, ADDataConfig(**m.meta["training"]["config"]["data"]))
    except UserError as e:
        print(f"ad_fit: error: {e}", file=sys.stderr)
        return 2
    first_model, first_data = next(iter(models.values()))
    torch.manual_seed(0)
    models = {"untrained": (ADModel(first_model.cfg).eval(), first_data), **models}
    print(f"{'model':<40} {'rel. CE':>8} {'accuracy':>9} {'first 32':>9} {'last 32':>8}")
    for name, (m, data) in models.items():
        r = fit(m, data)
        print(f"{name[-40:]:<40} {r['relative_ce']:>8.3f} {r['accuracy']:>9.3f} {r['relative_ce_first_32']:>9.3f} "
              f"{r['relative_ce_last_32']:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
