"""A copy of an rlpfn checkpoint whose exploration bonus is scaled: the same trunk and heads, with the bias of the head's
α row (the log-multiplier of UCB-VI's bonus, rlpfn/model.py) raised by log(scale), so the planner's bonus is
multiplied by `scale` on every pair and the trunk's input features stay as they were. Used to choose a model's
bonus scale on its training prior (`rlpfn validate --prior wide --agents 'rlpfn[checkpoint=OUT]' ...`), never on a
held-out split or the suite. `--h-term-scale X` also sets the planner's h_term multiplier
(ModelConfig.planner_h_term_scale, the 1/N part of the bonus) to X, and `--novelty NU` how much the planner
believes a tried pair may lead to a never-visited state (ModelConfig.planner_novelty; `--pooled`: estimated from the
run's other pairs, ModelConfig.planner_novelty_pooled), and `--tried-strength K`
the weight of the transition head's rows at tried pairs (ModelConfig.planner_tried_strength; `--tried-known-only`: those
rows kept on the states where some action was tried, ModelConfig.planner_tried_known_only), `--guess-temperature
TAU` how optimistically a guessed pair is valued (ModelConfig.planner_guess_temperature; `--guess-until N1`: guessed
only while its state has fewer than N1 visits, ModelConfig.planner_guess_until), `--reward-quantile Q` the
reward head's level a guessed pair's reward is planned with (ModelConfig.planner_reward_quantile), `--uniform-rows` the
ablation of the transition head's prediction (its query and graph weights zeroed, so every guessed row is uniform
over the states), `--state-log` a bonus that grows with its state's visits (ModelConfig.planner_state_log;
`--state-log-from N0`: only past N0 visits, ModelConfig.planner_state_log_from), `--noise-h-term K` the 1/N part
scaled by the run's reward noise (ModelConfig.planner_noise_h_term), `--variance C` a term in the spread of a tried
pair's successors' values (ModelConfig.planner_variance), and
`--offline-narrow BELOW MULTIPLIER` the offline penalty's multiplier on datasets of behaviour
entropy below BELOW (ModelConfig.offline_narrow_below, offline_narrow_multiplier), and `--offline-tried-strength K`
the weight of the transition head's rows at every tried pair offline (ModelConfig.offline_tried_strength); the
features stay as they were. The
copy's JSON records the variant, and the variant it was made from, if any.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt


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
    parser.add_argument("--novelty", type=NonNegativeFloat, default=None,
                        help="set how much the planner believes a tried pair may lead to a never-visited state "
                             "(ModelConfig.planner_novelty)")
    parser.add_argument("--pooled", action="store_true",
                        help="estimate that belief from the run's other pairs instead of the pair alone: how often a "
                             "repeat visit found a new successor (ModelConfig.planner_novelty_pooled; needs a novelty)")
    parser.add_argument("--tried-strength", type=NonNegativeFloat, default=None,
                        help="set the weight κ of the transition head's rows at tried pairs of few visits "
                             "(ModelConfig.planner_tried_strength; the model needs tried_below > 0)")
    parser.add_argument("--tried-known-only", action="store_true",
                        help="keep the head's rows at tried pairs on the states where some action was tried, "
                             "renormalized (ModelConfig.planner_tried_known_only; needs a tried strength)")
    parser.add_argument("--guess-until", type=PositiveInt, default=None, metavar="N1",
                        help="value an untried pair by the head's prediction only while its state has fewer than N1 "
                             "visits, then at H-h (ModelConfig.planner_guess_until; needs a transition head)")
    parser.add_argument("--guess-temperature", type=NonNegativeFloat, default=None,
                        help="value a guessed pair by the soft maximum of its predicted successors' values at this "
                             "temperature, a fraction of the remaining steps: the smaller, the more optimistic "
                             "(ModelConfig.planner_guess_temperature; 0: the predicted mean)")
    parser.add_argument("--reward-quantile", type=float, default=None,
                        help="plan a guessed pair's one step of reward with the reward head's prediction at this level "
                             "(ModelConfig.planner_reward_quantile: one of the head's levels, or 1 for the bound; the "
                             "model needs reward_head)")
    parser.add_argument("--uniform-rows", action="store_true",
                        help="zero the transition head's query, so that a guessed pair's predicted successors are "
                             "uniform over the states: the planner's rule without the learned prediction (an ablation; "
                             "with --tried-strength or --offline-tried-strength, the tried pairs' rows are uniform too)")
    parser.add_argument("--state-log", action="store_true",
                        help="let the bonus at (s, a) grow with the visits N_s of its state, by UCB1's log: flat part "
                             "× sqrt(1 + ln N_s), 1/N part × (1 + ln N_s) (ModelConfig.planner_state_log)")
    parser.add_argument("--state-log-from", type=PositiveFloat, default=None, metavar="N0",
                        help="with --state-log (implied), L = 1 + ln max(1, N_s / N0): the bonus is the plain one until "
                             "a state has N0 visits (ModelConfig.planner_state_log_from)")
    parser.add_argument("--noise-h-term", type=NonNegativeFloat, default=None,
                        help="multiply the 1/N part of a tried pair's bonus by 1 + K·σ̂, σ̂ the run's pooled "
                             "within-pair reward standard deviation (ModelConfig.planner_noise_h_term)")
    parser.add_argument("--variance", type=NonNegativeFloat, default=None,
                        help="add C·sqrt(Var_P̂(V_{h+1}) / N) to a tried pair's planned value at each step, UCBVI-BF's "
                             "leading Bernstein term (ModelConfig.planner_variance)")
    parser.add_argument("--offline-narrow", type=float, nargs=2, metavar=("BELOW", "MULTIPLIER"), default=None,
                        help="offline, multiply the penalty by MULTIPLIER (> 0) on datasets whose behaviour entropy "
                             "is below BELOW (in [0, 1]; ModelConfig.offline_narrow_below and _multiplier)")
    parser.add_argument("--offline-tried-strength", type=NonNegativeFloat, default=None, metavar="KAPPA",
                        help="offline, plan every tried pair with the transition head's row as a Dirichlet prior of "
                             "strength KAPPA (ModelConfig.offline_tried_strength)")
    args = parser.parse_args()
    for key in ("scale", "h_term_scale", "novelty", "tried_strength", "guess_temperature", "reward_quantile",
                "noise_h_term", "variance", "state_log_from", "offline_tried_strength"):
        value = getattr(args, key)
        if value is not None and not math.isfinite(value):
            name = key if key == "scale" else "--" + key.replace("_", "-")  # as the user typed it
            parser.error(f"argument {name}: must be finite, got {value}")
    if args.offline_narrow is not None:
        below, multiplier = args.offline_narrow
        if not (0.0 <= below <= 1.0 and math.isfinite(multiplier) and multiplier > 0):
            parser.error(f"argument --offline-narrow: BELOW must lie in [0, 1] and MULTIPLIER be finite and > 0, got "
                         f"{below:g} {multiplier:g}")
    try:
        check_output_file(Path(f"{args.out}.json"), "out")  # before any work; save writes OUT.json beside the weights
        model = load(args.checkpoint, "rlpfn")
    except UserError as e:
        parser.error(str(e))
    narrow = args.offline_narrow or (None, None)
    args.state_log = args.state_log or args.state_log_from is not None  # --state-log-from implies the log term
    planner = {key: value for key, value in (("planner_h_term_scale", args.h_term_scale),
                                             ("planner_novelty", args.novelty),
                                             ("planner_novelty_pooled", args.pooled or None),
                                             ("planner_tried_strength", args.tried_strength),
                                             ("planner_tried_known_only", args.tried_known_only or None),
                                             ("planner_guess_temperature", args.guess_temperature),
                                             ("planner_guess_until", args.guess_until),
                                             ("planner_reward_quantile", args.reward_quantile),
                                             ("planner_state_log", args.state_log or None),
                                             ("planner_state_log_from", args.state_log_from),
                                             ("planner_noise_h_term", args.noise_h_term),
                                             ("planner_variance", args.variance),
                                             ("offline_tried_strength", args.offline_tried_strength),
                                             ("offline_narrow_below", narrow[0]),
                                             ("offline_narrow_multiplier", narrow[1])) if value is not None}
    if args.tried_strength and not (model.cfg.tried_below > 0 and model.cfg.transition_head):
        parser.error(f"--tried-strength {args.tried_strength}: {args.checkpoint} has no transition head trained at "
                     "tried pairs (model.tried_below is 0)")
    for flag, value in (("--guess-temperature", args.guess_temperature), ("--uniform-rows", args.uniform_rows)):
        if value and not model.cfg.transition_head:
            parser.error(f"{flag}{'' if value is True else f' {value}'}: {args.checkpoint} has no transition head "
                         "(nothing is guessed)")
    if planner:
        from rlpfn.model import RLPFN

        try:  # the model's own checks: a level the head lacks, a head the model lacks
            cfg = dataclasses.replace(model.cfg, **planner)
        except ValueError as e:
            parser.error(str(e))
        copy = RLPFN(cfg)
        copy.load_state_dict(model.state_dict())
        copy.meta, model = model.meta, copy
    with torch.no_grad():
        model.head.bias[0] += math.log(args.scale)
        if args.uniform_rows:
            model.transition.query.weight.zero_()
            model.transition.query.bias.zero_()
            if hasattr(model.transition, "edge"):  # the graph's terms (model.transition_edges) too
                model.transition.edge.weight.zero_()
                model.transition.edge.bias.zero_()
    variant = {"of": args.checkpoint, "scale": args.scale}
    for key in ("h_term_scale", "novelty", "tried_strength", "guess_temperature", "reward_quantile", "offline_narrow",
                "noise_h_term", "variance", "state_log_from", "guess_until", "offline_tried_strength"):
        if getattr(args, key) is not None:
            variant[key] = getattr(args, key)
    for flag in ("pooled", "uniform_rows", "state_log", "tried_known_only"):
        if getattr(args, flag):
            variant[flag] = True
    training = model.meta.get("training", {})
    if "bonus_variant" in training:  # a variant of a variant: keep how its base was made
        variant["base_variant"] = training["bonus_variant"]
    training = {**training, "bonus_variant": variant}
    print(f"wrote {save(model, args.out, model.meta.get('prior', {}), training)}")


if __name__ == "__main__":
    main()
