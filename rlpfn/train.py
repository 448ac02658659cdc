"""Pretraining with Lightning: batches drawn on the fly from the prior engine, DAgger rollouts of the model
itself, held-out validation regret against UCB-VI, resumable checkpoints, and the exported safetensors model.

`rlpfn pretrain [--config pretrain] [--resume] [--section.key value ...]` reads a LightningCLI-style YAML with the sections
`trainer`, `model` (rlpfn.model.ModelConfig), `data`, `optim`, `loss` (the dataclasses below), `regret`
(rlpfn.regret.RegretConfig: training on the model's own regret; off by default), `es` (rlpfn.es.ESConfig: the
same regret, estimated by evolution strategies on the deployed agent; off by default): every hyperparameter is visible
in one place, CleanRL-style. Unknown keys are refused with the key named.

Loss (per context, at its step h): cross-entropy of the policy logits to the target policy (π* or the
Boltzmann policy over Q*) averaged over states, plus `current_state_weight` times the cross-entropy at the
current state; plus `q_weight` times the squared error of the Q head against Q*, on the (H-h) scale;
plus `anchor_weight` times the squared corrections (the model starts as UCB-VI and pays to leave it).

Data: each step trains on one batch of the prior stream (`PriorDataset`, background DataLoader workers:
contexts from the histories of UCB-VI, PSRL, Q-learning, ε-optimal and random behaviours over up to hundreds
of episodes); every `dagger_every` steps also on a batch of contexts from the model's *own* rollouts on
fresh prior MDPs, relabelled with Q* and π* (DAgger-style), so it learns on the histories it creates.

Resuming: every `checkpoint_every` steps the Lightning state (weights, optimiser, step) is written to
OUT/last.ckpt atomically (temp file + rename: a SIGKILL mid-write leaves the previous one intact), with
the exported safetensors model beside it. `--resume` continues from it; the data stream continues where
it stopped (batch i of the stream is seeded by seed + i).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch

from jsonargparse.typing import (ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, OpenUnitInterval,
                                  PositiveFloat, PositiveInt)

from .config import ConfigError, one_line, to_dict
from .errors import UserError
from .files import atomic, check_output_dir, write_text
from .model import REWARD_QUANTILES, RLPFN, ModelConfig, guessed_pairs
from .es import ESConfig, es_loss
from .regret import Critic, RegretConfig, regret_loss
from .resources import builtin_names, named_or_path

@dataclass
class TrainerConfig:
    """How long and where the run trains (section trainer)."""

    max_steps: PositiveInt = 3000
    """training steps in all (a resumed run counts the steps it has done)"""
    out: str = "runs/pretrain"
    """folder of the resume state, the CSV logs and the exported model (OUT/model.*)"""
    export: Optional[str] = None
    """also write the final model here (NAME.safetensors + NAME.json); null: only OUT/model"""
    checkpoint_every: PositiveInt = 100
    """steps between resume checkpoints (OUT/last.ckpt, written atomically)"""
    val_every: PositiveInt = 250
    """steps between validations (regret on held-out prior MDPs, beside UCB-VI's)"""
    log_every: PositiveInt = 10
    """steps between rows of OUT/metrics.csv"""
    accelerator: Literal["cpu", "gpu", "auto"] = "auto"
    """where to train (auto: a GPU when there is one)"""
    devices: PositiveInt = 1
    """processes; > 1: data-parallel (DDP; gloo on CPU)"""
    threads: PositiveInt = 1
    """torch intra-op threads per process (1 is fastest on small tensors, rlpfn/threads.py)"""
    progress: bool = True
    """show a progress bar"""
    init_from: Optional[str] = None
    """a checkpoint (built-in name or path) whose weights start the run; parameters it lacks (a head this config
    adds) keep their initialisation; null: a random start"""

    def __post_init__(self):
        if self.init_from is not None:  # fail now, not after the model is built
            from .checkpoint import check

            try:
                check(self.init_from, "rlpfn")
            except UserError as e:
                raise ConfigError(f"trainer.init_from: {e}") from None


@dataclass
class DataConfig:
    """The training contexts (section data)."""

    prior: str = "default"
    """prior spec the training MDPs are drawn from: a built-in name or a YAML path"""
    batch_size: PositiveInt = 64
    """contexts per step"""
    num_workers: NonNegativeInt = 1
    """background processes that generate batches (0: in the training process)"""
    seed: NonNegativeInt = 0
    """seed of the batch stream (the same seed, the same batches)"""
    dagger_every: NonNegativeInt = 4
    """every this many steps, also a batch of the model's own rollouts relabelled with Q*; 0: never"""
    val_prior: str = "heldout"
    """prior spec of the validation MDPs (the held-out split)"""
    val_batches: PositiveInt = 4
    """held-out MDP batches (8 MDPs each) for validation regret"""
    val_episodes: PositiveInt = 50
    """episodes per validation run"""

    def __post_init__(self):
        from .prior import load_spec

        for key in ("prior", "val_prior"):  # fail now, not after the first step
            try:
                load_spec(getattr(self, key))
            except UserError as e:
                raise ConfigError(f"data.{key}: {e}") from None


@dataclass
class OptimConfig:
    """The optimiser, AdamW (section optim)."""

    lr: PositiveFloat = 3e-4
    """learning rate after warm-up"""
    weight_decay: NonNegativeFloat = 0.01
    """AdamW's weight decay"""
    warmup_steps: NonNegativeInt = 100
    """steps of linear learning-rate warm-up"""
    grad_clip: PositiveFloat = 1.0
    """gradients are clipped to this norm"""
    new_only: bool = False
    """train only the parameters that trainer.init_from lacks; the loaded ones stay as they are"""


@dataclass
class LossConfig:
    """The supervised losses on prior contexts (section loss; v1's objective)."""

    policy_target: Literal["optimal", "boltzmann"] = "optimal"
    """the policy's target: π* (uniform over ties) or softmax(Q*/T)"""
    policy_weight: NonNegativeFloat = 1.0
    """weight of the cross-entropy to the policy target"""
    # Measured (README): imitating π* through the planner teaches the model to stop exploring.
    policy_detach: bool = True
    """the cross-entropy reaches only the temperature (the logits' scale), not the planner's corrections"""
    current_state_weight: NonNegativeFloat = 1.0
    """weight of the extra cross-entropy at the context's current state (the policy loss averages over states)"""
    q_weight: NonNegativeFloat = 1.0
    """weight of the Q head's squared error to Q*"""
    anchor_weight: NonNegativeFloat = 0.01
    """weight of the squared corrections (keeps the planner near UCB-VI)"""
    # Learned optimism: Q_plan becomes an upper posterior quantile of Q* given the data (Bayes-UCB, Kaufmann,
    # Cappé, Garivier 2012), calibrated to the prior; imitating π* alone values no exploration (docs/design.md).
    quantile_weight: NonNegativeFloat = 1.0
    """weight of the pinball loss of the planner's Q_plan against Q*"""
    quantile: OpenUnitInterval = 0.97
    """the pinball loss's quantile level"""
    drop_state_prob: ClosedUnitInterval = 0.1
    """how often the current state is hidden (offline datasets have none)"""
    transition_weight: NonNegativeFloat = 0.0
    """weight of the transition head's cross-entropy to the true P, at untried pairs of tried states and tried pairs
    of fewer than model.tried_below visits (needs model.transition_head)"""
    # The planner reads P̃ only through P̃·V: this term spends the head's capacity where the value depends on it
    # (docs/model/transition_head.md, "A loss closer to the use").
    transition_value_weight: NonNegativeFloat = 0.0
    """weight of the pinball loss of the head's P̃·V* against the true P·V* per remaining step, at the same pairs
    (V* = max_a Q* at the context's step; needs model.transition_head)"""
    transition_value_quantile: OpenUnitInterval = 0.5
    """that pinball loss's quantile level (above 0.5: undervaluing a pair costs more than overvaluing it)"""
    # Told only where each pair can lead (its true row made uniform over its successors), v2's planner gains on the
    # training prior about as much as told the whole row (docs/model/v2.md, "What an exact transition head would buy").
    transition_target: Literal["p", "support"] = "p"
    """what the head's cross-entropy is to: the true row P(·|s, a), or the uniform distribution over its support"""
    # Trained on P alone, the head must rebuild from its features the P̂ that the planner blends it with anyway.
    transition_blend: bool = False
    """at tried pairs, the cross-entropy is that of the planner's blend (N·P̂ + κ·P̃)/(N + κ), κ =
    model.planner_tried_strength, so the head learns what the counts lack rather than all of P (the logged
    transition_ce is then the blend's)"""

    reward_weight: NonNegativeFloat = 0.0
    """weight of the reward head's pinball losses (one per level of model.REWARD_QUANTILES) against the prior's true
    mean reward, at the pairs the planner guesses (needs model.reward_head)"""

    def __post_init__(self):
        for f in fields(self):  # the config types let inf (and NaN) through
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"loss.{f.name} must be finite, got {value}")
        if self.transition_target not in ("p", "support"):  # the Literal is checked on the command line only
            raise ValueError(f"loss.transition_target must be p or support, got {self.transition_target!r}")

    @property
    def active(self) -> bool:
        """Whether any supervised term is on (all weights 0: no prior batches are drawn for it at all)."""
        return any(w > 0 for w in (self.policy_weight, self.q_weight, self.anchor_weight, self.quantile_weight,
                                   self.transition_weight, self.transition_value_weight, self.reward_weight))


@dataclass
class PretrainConfig:
    kind = "rlpfn"  # the YAML's top-level `kind`: which model a config trains (rlpfn.ad.train: "ad")
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    regret: RegretConfig = field(default_factory=RegretConfig)  # training on in-context regret (rlpfn/regret.py)
    es: ESConfig = field(default_factory=ESConfig)  # the deployed agent's regret, by evolution strategies (rlpfn/es.py)

    def __post_init__(self):
        if self.optim.new_only and self.trainer.init_from is None:
            raise ValueError("optim.new_only trains only the parameters trainer.init_from lacks, but "
                             "trainer.init_from is null")
        if self.optim.new_only and (self.regret.weight > 0 or self.es.weight > 0):
            raise ValueError(f"optim.new_only freezes every loaded parameter, and regret.weight = {self.regret.weight}, "
                             f"es.weight = {self.es.weight} train only those: set them to 0")
        if not self.loss.active and self.regret.weight == 0 and self.es.weight == 0:
            raise ValueError("loss: every weight is 0, and regret.weight and es.weight are 0: nothing to train")
        for key in ("transition_weight", "transition_value_weight"):
            if getattr(self.loss, key) > 0 and not self.model.transition_head:
                raise ValueError(f"loss.{key} = {getattr(self.loss, key)} trains the transition head, but "
                                 "model.transition_head is false")
        if self.loss.reward_weight > 0 and not self.model.reward_head:
            raise ValueError(f"loss.reward_weight = {self.loss.reward_weight} trains the reward head, but "
                             "model.reward_head is false")
        changed = [k for k, on in (("transition_blend", self.loss.transition_blend),
                                   ("transition_target", self.loss.transition_target != "p")) if on]
        if changed and self.loss.transition_weight == 0:
            raise ValueError(f"loss.{changed[0]} changes the transition head's cross-entropy, but loss.transition_weight "
                             "is 0")
        if self.loss.transition_blend and self.model.planner_tried_strength == 0:
            raise ValueError("loss.transition_blend trains the head through the planner's blend at tried pairs, but "
                             "model.planner_tried_strength is 0 (no blend)")
        gpu = self.trainer.accelerator == "gpu" or (self.trainer.accelerator == "auto" and torch.cuda.is_available())
        if self.es.workers > 1 and gpu:
            raise ValueError(f"es.workers = {self.es.workers} runs the perturbed agents in CPU processes, but the model "
                             f"would train on a GPU (trainer.accelerator {self.trainer.accelerator}): set "
                             "trainer.accelerator cpu, or es.workers 1")

    def to_dict(self) -> dict:
        return {"kind": self.kind, **to_dict(self)}

    def dataset(self, seed: int):
        """The training loop's batches: the prior stream, or step numbers when only the regret terms train
        (they draw their own MDPs)."""
        from .prior import PriorDataset

        return PriorDataset(self.data.prior, self.data.batch_size, seed=seed) if self.loss.active else StepCounter()


def config_classes() -> dict:
    """`kind` -> its config class: the rlpfn model's, and Algorithm Distillation's (rlpfn/ad)."""
    from .ad.train import ADPretrainConfig

    return {"rlpfn": PretrainConfig, "ad": ADPretrainConfig}


PRETRAIN_HELP = ("Pretrain the rlpfn model with the settings of a YAML config (sections trainer, model, data, optim, "
                 "loss, regret; the built-in `pretrain` is the shipped model's run, `tiny` a seconds-long one), any option "
                 "overridden on the command line (--trainer.max_steps 100). A config with `kind: ad` trains an "
                 "Algorithm Distillation model instead (sections trainer, model, data, optim; built-in `ad`, and "
                 "`ad-tiny`; `--config ad --help` lists its keys). Writes CSV logs, an atomic resume "
                 "checkpoint and the model (OUT/model.safetensors + .json) under trainer.out; the model also to "
                 "trainer.export when that is set.")


def pretrain_parser(kind: str = "rlpfn"):
    """`rlpfn pretrain`'s options for a config `kind`, generated from its config dataclasses (each option
    declared once, there)."""
    from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

    cls = config_classes()[kind]
    p = ArgumentParser(prog="rlpfn pretrain", description=PRETRAIN_HELP, exit_on_error=False, default_env=False)
    p.add_argument("--config", action=ActionConfigFile,
                   help=f"YAML config: a path or a built-in name ({', '.join(builtin_names('configs'))}); "
                        "default: pretrain")
    p.add_argument("--resume", action="store_true", help="continue the run in trainer.out from its last checkpoint")
    p.add_argument("--kind", choices=[kind], default=kind,
                   help=f"which model the config trains ({', '.join(config_classes())}): set by the YAML's top-level "
                        "`kind`, rlpfn when absent")
    # Each field's docstring is its --help. A bare GPU machine without docstring-parser still trains, with no help.
    docs = importlib.util.find_spec("docstring_parser") is not None
    if docs:
        set_parsing_settings(docstring_parse_attribute_docstrings=True)
    try:
        for name, section in typing.get_type_hints(cls).items():
            p.add_class_arguments(section, name)
    finally:  # slower parsing: only here, not in every config.build
        if docs:
            set_parsing_settings(docstring_parse_attribute_docstrings=False)
    p.set_defaults({"trainer.out": cls().trainer.out})  # each kind its own default folder (runs/pretrain, runs/ad)
    return p


def parse_pretrain_args(argv: list[str]) -> tuple[PretrainConfig, bool]:
    """(config, resume) from `rlpfn pretrain` arguments. `--config NAME` may name a built-in config; without
    --config the built-in `pretrain` is read. Every error is a ConfigError naming the file or option and key."""
    import yaml

    argv = list(argv)
    for i, a in enumerate(argv):  # built-in names -> their files; "--config=x" too
        key, eq, val = a.partition("=")
        if key == "--config" and (eq or i + 1 < len(argv)):
            name = val if eq else argv[i + 1]
            path = named_or_path("configs", name)
            if not path.is_file():
                raise ConfigError(f"--config {name}: no such config file (built-in configs: "
                                  f"{', '.join(builtin_names('configs'))})")
            try:
                yaml.safe_load(path.read_text())
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                raise ConfigError(f"{path}: not valid YAML ({one_line(e)})") from None
            argv[i:i + (1 if eq else 2)] = [f"--config={path}"]
    if not any(a == "--config" or a.startswith("--config=") for a in argv):
        argv = [f"--config={named_or_path('configs', 'pretrain')}", *argv]
    kind = _kind(argv)
    cls = config_classes()[kind]
    parser = pretrain_parser(kind)
    try:
        ns = parser.instantiate(parser.parse_args(argv))
        # plain int and float, not jsonargparse's PositiveFloat and the like: they reach the optimiser's state,
        # which a resume must unpickle with weights_only
        cfg = cls(**{f.name: type(ns[f.name])(**to_dict(ns[f.name])) for f in fields(cls)})
    except SystemExit:
        raise
    except Exception as e:  # jsonargparse's ArgumentError; a __post_init__ check's ValueError
        raise ConfigError(_config_message(one_line(e), argv)) from None
    return cfg, bool(ns.resume)


def _kind(argv: list[str]) -> str:
    """Which model the arguments train: a --kind on the command line, else the last config file that sets a
    top-level `kind`, else rlpfn."""
    import yaml

    kind, source = "rlpfn", "--kind"
    for a in argv:
        if a.startswith("--config="):
            doc = yaml.safe_load(Path(a.split("=", 1)[1]).read_text())
            if isinstance(doc, dict) and "kind" in doc:
                kind, source = doc["kind"], a.split("=", 1)[1]
    for i, a in enumerate(argv):
        if a == "--kind" and i + 1 < len(argv) or a.startswith("--kind="):
            kind, source = (a.split("=", 1)[1] if "=" in a else argv[i + 1]), "--kind"
    if kind not in config_classes():
        raise ConfigError(f"{source}: kind {kind!r} is not a model kind (choose from: {', '.join(config_classes())})")
    return kind


def _config_message(msg: str, argv: list[str]) -> str:
    configs = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    msg = re.sub(r'[Pp]arser key "([^"]+)":?', r"\1:", msg)
    msg = re.sub(r"Group '([^']*)' does not accept option '([^']+)'.*", r"\1.\2: unknown key", msg)
    msg = re.sub(r"Option '([^'.]+)\.[^']*' is not accepted", r"\1: unknown section", msg)
    msg = re.sub(r"Problem in config file '[^']*': ", "", msg)
    return f"{configs[-1]}: {msg}" if configs else msg


def load_config(config: str | Path = "pretrain", *overrides: str):
    """A PretrainConfig from YAML (a path or a built-in name) and command-line style overrides
    ("--trainer.max_steps=5"), every key and value checked against the dataclasses' declared types."""
    return parse_pretrain_args(["--config", str(config), *overrides])[0]


# ---- loss ------------------------------------------------------------------------------------------------
def pretrain_loss(model: RLPFN, batch, cfg: LossConfig, gen: torch.Generator | None = None) -> dict:
    """The training objective on one PriorBatch; returns the total and its parts (for logging)."""
    ctx = batch.context
    if cfg.drop_state_prob > 0:
        drop = torch.rand(ctx.state.shape, generator=gen) < cfg.drop_state_prob
        ctx = replace(ctx, state=torch.where(drop.to(ctx.state.device), torch.full_like(ctx.state, -1), ctx.state))
    out = model(ctx)
    logits = out.logits
    if cfg.policy_detach:  # logits = Q_plan / ((H-h)·T): keep the gradient to T only
        logits = logits.detach() * out.temperature.detach() / out.temperature
    target = batch.pi_star if cfg.policy_target == "optimal" else batch.pi_boltzmann
    ce = -(target * torch.log_softmax(logits, -1)).sum(-1)  # [B,S]
    rows = torch.arange(ce.shape[0], device=ce.device)
    ce_current = torch.where(ctx.state >= 0, ce[rows, ctx.state.clamp_min(0)], torch.zeros_like(ce[:, 0]))
    policy = ce.mean() + cfg.current_state_weight * ce_current.mean()
    rem = (ctx.horizon - ctx.step).to(out.q.dtype).view(-1, 1, 1)
    q = ((out.q - batch.q_star) / rem).pow(2).mean()
    anchor = out.corrections.pow(2).mean()
    diff = (batch.q_star.to(out.q_plan.dtype) - out.q_plan[rows, ctx.step]) / rem  # > 0: Q_plan below Q*
    pinball = pinball_loss(diff, cfg.quantile).mean().float()
    total = cfg.policy_weight * policy + cfg.q_weight * q + cfg.anchor_weight * anchor + cfg.quantile_weight * pinball
    parts = {}
    if out.log_p_next is not None:
        P = batch.P[batch.mdp]
        rows_to = support_rows(P) if cfg.transition_target == "support" else P
        kappa = model.cfg.planner_tried_strength if cfg.transition_blend else 0.0
        parts["transition_ce"] = transition_loss(out.log_p_next, ctx.stats.counts, rows_to, model.cfg.tried_below,
                                                 kappa)
        total = total + cfg.transition_weight * parts["transition_ce"].float()
        parts["transition_relative_ce"] = parts["transition_ce"] / math.log(batch.P.shape[-1])  # uniform's: 1
        if cfg.transition_value_weight > 0:  # (a dense float64 [B,S,A,S] product: not built when unweighted)
            # V*_h at the context's step stands in for the V_{h+1} the planner reads: one step off, and at h = H-1
            # a target the planner never uses (docs/model/transition_head.md)
            parts["transition_value"] = transition_value_loss(
                out.log_p_next, ctx.stats.counts, P, batch.q_star.amax(-1), rem, cfg.transition_value_quantile,
                model.cfg.tried_below)
            total = total + cfg.transition_value_weight * parts["transition_value"].float()
    if out.reward_quantiles is not None:
        parts["reward_pinball"] = reward_loss(out.reward_quantiles, ctx.stats.counts.sum(-1), batch.R[batch.mdp])
        total = total + cfg.reward_weight * parts["reward_pinball"].float()
    return {"loss": total, "ce": policy.detach(), "q_mse": q.detach(), "anchor": anchor.detach(),
            "pinball": pinball.detach(), **{k: v.detach() for k, v in parts.items()},
            "accuracy": (out.logits.argmax(-1)[rows, ctx.state.clamp_min(0)] ==
                         target.argmax(-1)[rows, ctx.state.clamp_min(0)]).float().mean()}


def pinball_loss(diff: torch.Tensor, level) -> torch.Tensor:
    """Elementwise pinball (quantile) loss at `level` (a float or a tensor broadcast against diff) of
    diff = truth − prediction: positive diff (prediction too low) costs `level` per unit, negative 1 − level."""
    return torch.maximum(level * diff, (level - 1) * diff)


def support_rows(P: torch.Tensor) -> torch.Tensor:
    """Each row of P [..., S] made uniform over the states it can lead to."""
    reach = (P > 0).to(P.dtype)
    return reach / reach.sum(-1, keepdim=True)


def transition_loss(log_p_next: torch.Tensor, counts: torch.Tensor, P: torch.Tensor,
                    tried_below: int = 0, kappa: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy (nats) of the predicted log P̃ [B,S,A,S] to the true P at the pairs the planner guesses:
    untried pairs of states where some action was tried, and tried pairs with fewer than `tried_below` visits (0
    when a batch has none). `kappa` > 0: of the blend (N·P̂ + κ·P̃)/(N + κ) the planner plans with, which is P̃ at
    untried pairs."""
    where = head_pairs(counts, tried_below)
    if kappa > 0:
        counts = counts.to(log_p_next.dtype)
        n = counts.sum(-1, keepdim=True)
        log_p_next = torch.logaddexp(counts.log(), math.log(kappa) + log_p_next) - (n + kappa).log()
    ce = -(P.to(log_p_next.dtype) * log_p_next).sum(-1)
    return (ce * where).sum() / where.sum().clamp_min(1)


def transition_value_loss(log_p_next: torch.Tensor, counts: torch.Tensor, P: torch.Tensor, v: torch.Tensor,
                          rem: torch.Tensor, quantile: float, tried_below: int = 0) -> torch.Tensor:
    """Mean pinball loss (level `quantile`) of P̃·v against P·v divided by the remaining steps `rem` [B,1,1], at
    the pairs transition_loss trains (values v [B,S]; 0 when a batch has none)."""
    where = head_pairs(counts, tried_below)
    v = v.to(log_p_next.dtype)[:, None, None, :]
    diff = ((P.to(v.dtype) - log_p_next.exp()) * v).sum(-1) / rem
    pinball = pinball_loss(diff, quantile)  # diff > 0: P̃ undervalues the pair
    return (pinball * where).sum() / where.sum().clamp_min(1)


def reward_loss(quantiles: torch.Tensor, n: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss of the reward head's quantiles [B,S,A,Q] (levels REWARD_QUANTILES) against the true mean
    rewards R [B,S,A], summed over the levels, at the pairs the planner guesses (visits n [B,S,A]; 0 when a batch
    has none)."""
    where = guessed_pairs(n)
    levels = torch.tensor(REWARD_QUANTILES, dtype=quantiles.dtype, device=quantiles.device)
    diff = R.to(quantiles.dtype)[..., None] - quantiles  # > 0: the prediction is below the truth
    pinball = pinball_loss(diff, levels).sum(-1)
    return (pinball * where).sum() / where.sum().clamp_min(1)


def head_pairs(counts: torch.Tensor, tried_below: int) -> torch.Tensor:
    """[B,S,A] the pairs the transition head is trained at: those the planner guesses and tried pairs of fewer than
    `tried_below` visits."""
    n = counts.sum(-1)
    return guessed_pairs(n) | ((n > 0) & (n < tried_below))


# ---- Lightning ---------------------------------------------------------------------------------------------
def _lightning_module(cfg: PretrainConfig):
    import lightning as L

    from .agents import RlpfnAgent
    from .prior import get_batch, load_spec, sample_sized_batch

    class PretrainModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters({"config": cfg.to_dict()})
            self.model = RLPFN(cfg.model)
            if cfg.trainer.init_from is not None:
                warm_start(self.model, cfg.trainer.init_from, cfg.optim.new_only)
            self.critic = Critic(cfg.model.d_model) if cfg.regret.critic else None  # trained here, never shipped
            self.spec = load_spec(cfg.data.prior)
            self.val_split = (cfg.data.val_prior, cfg.data.val_batches)  # drawn at the first validation (log_validation)

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            return batch if isinstance(batch, int) else batch.to(device)

        def training_step(self, batch, batch_idx):
            parts, loss = {}, torch.zeros((), device=self.device)
            if cfg.loss.active:
                gen = torch.Generator().manual_seed(cfg.data.seed * 7919 + self.global_step)
                parts = pretrain_loss(self.model, batch, cfg.loss, gen)
                loss = parts["loss"]
            if cfg.regret.weight > 0 and self.global_step % cfg.regret.every == 0:
                parts_r = self.regret_loss()
                loss = loss + cfg.regret.weight * parts_r["loss"]
                self.log("train/regret", parts_r["regret"], prog_bar=True, batch_size=1)
                if "critic_mse" in parts_r:
                    self.log("train/critic_mse", parts_r["critic_mse"], batch_size=1)
            if cfg.es.weight > 0 and self.global_step % cfg.es.every == 0:
                seed = self.rollout_seed(3 * 10**9)
                mdps = sample_sized_batch(self.spec, cfg.es.mdps, np.random.default_rng(seed))
                parts_e = es_loss(self.model, mdps, cfg.es, seed)
                loss = loss + cfg.es.weight * parts_e["loss"]
                self.log("train/es_regret", parts_e["regret"], prog_bar=True, batch_size=1)
            if cfg.loss.active and cfg.data.dagger_every and self.global_step % cfg.data.dagger_every == 0:
                parts_d = self.dagger_loss()
                loss = loss + parts_d["loss"]
                self.log("train/dagger_loss", parts_d["loss"].detach(), batch_size=1)
            for k, v in {**parts, "loss": loss}.items():  # the total, with the regret and DAgger terms
                self.log(f"train/{k}", v.detach() if torch.is_tensor(v) else v, prog_bar=k == "loss", batch_size=1)
            self.log("train/temperature", self.model.log_temperature.exp().detach(), batch_size=1)
            return loss

        def rollout_seed(self, stream: int) -> int:
            """A seed for this step's and this process's rollouts, distinct per `stream` (DAgger, regret, ES)."""
            return stream + cfg.data.seed * 100003 + self.global_step * max(1, self.trainer.world_size) \
                + self.trainer.global_rank

        def regret_loss(self) -> dict:
            """The model's own regret over many episodes in fresh prior MDPs (rlpfn/regret.py)."""
            seed = self.rollout_seed(2 * 10**9)
            mdps = sample_sized_batch(self.spec, cfg.regret.mdps, np.random.default_rng(seed))
            return regret_loss(self.model, mdps, cfg.regret, seed, self.critic)

        def dagger_loss(self) -> dict:
            """Contexts from the model's own rollouts on fresh prior MDPs, labelled with Q* and π*."""
            seed = self.rollout_seed(10**9)
            was_training = self.model.training
            self.model.eval()
            agent = RlpfnAgent.with_model(self.model, refresh="episode")
            batch = get_batch(self.spec, cfg.data.batch_size, seed, behaviour=agent).to(self.device)
            self.model.train(was_training)
            gen = torch.Generator().manual_seed(seed)
            return pretrain_loss(self.model, batch, cfg.loss, gen)

        def validation_step(self, idx, batch_idx):  # as deployed: the agent's default refresh rule
            log_validation(self, RlpfnAgent.with_model(self.model), int(idx), cfg.data.val_episodes)

        def configure_optimizers(self):
            return optimizers([p for p in self.parameters() if p.requires_grad], cfg.optim, cfg.trainer.max_steps)

    return PretrainModule


def warm_start(model: RLPFN, init_from: str, new_only: bool) -> list[str]:
    """Load the checkpoint `init_from`'s weights into `model`; returns the names of the parameters it lacked. With
    `new_only`, every other parameter is frozen. A checkpoint with weights the model has no place for, or of other
    shapes, is refused (a different architecture: not a warm start)."""
    from .checkpoint import load

    loaded = load(init_from, "rlpfn")
    state, own = loaded.state_dict(), model.state_dict()
    extra = sorted(set(state) - set(own))
    if extra:
        raise ConfigError(f"trainer.init_from {init_from}: weights this model has no place for ({', '.join(extra[:4])}"
                          f"{', ...' if len(extra) > 4 else ''}): set the model section as the checkpoint's")
    shapes = [k for k in state if state[k].shape != own[k].shape]
    if shapes:
        k = shapes[0]
        raise ConfigError(f"trainer.init_from {init_from}: {k} has shape {tuple(state[k].shape)} there and "
                          f"{tuple(own[k].shape)} here: set the model section as the checkpoint's")
    model.load_state_dict(state, strict=False)
    # Settings may differ (a new head's switches; or a planner setting changed on purpose): said, not refused
    changed = [f"{f.name} {getattr(loaded.cfg, f.name)!r} -> {getattr(model.cfg, f.name)!r}"
               for f in fields(ModelConfig) if getattr(loaded.cfg, f.name) != getattr(model.cfg, f.name)]
    if changed:
        import warnings

        warnings.warn(f"trainer.init_from {init_from}: model settings differ from the checkpoint's: "
                      + ", ".join(changed), stacklevel=2)
    new = sorted(set(own) - set(state))
    if new_only:
        if not new:
            raise ConfigError(f"optim.new_only: the model has no parameter that trainer.init_from {init_from} lacks: "
                              "nothing would train")
        for name, p in model.named_parameters():
            p.requires_grad_(name not in state)
    return new


VAL_SEED = 12345  # the held-out MDPs that pretraining validates on, the same in every run of a split


def log_validation(module, agent, idx: int, episodes: int) -> None:
    """Validation of either model: `agent` (acting with the module's model) on held-out batch `idx` of the split
    module.val_split = (prior, batches), its mean normalized regret logged beside UCB-VI's on the same MDPs and seeds.
    The split is drawn here, at the first validation, not when training starts (seconds that a run which never
    validates, or a short one, need not spend); validation_mdps keeps it for the process."""
    from .agents import make_agent
    from .experiments.evaluate import prior_regret, validation_mdps

    mdps = validation_mdps(*module.val_split, seed=VAL_SEED)[idx]
    reg = prior_regret(mdps, agent, episodes, seed=idx)
    ref = prior_regret(mdps, make_agent("ucbvi"), episodes, seed=idx)
    module.log("val/regret", float(reg.mean()), sync_dist=True, batch_size=len(reg))
    module.log("val/regret_ucbvi", float(ref.mean()), sync_dist=True, batch_size=len(reg))


def optimizers(params, optim: OptimConfig, max_steps: int) -> dict:
    """AdamW with linear warmup and cosine decay to 10%, stepped per training step (Lightning's form)."""
    opt = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    warm, total = optim.warmup_steps, max_steps

    def schedule(step):
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def spec_record(name: str) -> dict:
    """What a checkpoint records of its prior: the spec's name, its file and the file's text."""
    from .prior import load_spec
    from .prior.spec import spec_path

    spec = load_spec(name)
    return {"name": spec.name, "source": spec.source, "yaml": spec_path(name).read_text()}


def _callbacks(cfg: PretrainConfig, out: Path):
    import lightning as L

    from .checkpoint import save

    class ResumeCheckpoint(L.Callback):
        """Atomic last.ckpt every `checkpoint_every` steps, the exported model beside it."""

        def write(self, trainer, module):
            tmp = out / "last.ckpt.tmp"
            trainer.save_checkpoint(tmp)
            if trainer.is_global_zero:
                os.replace(tmp, out / "last.ckpt")
                save(module.model, out / "model", spec_record(cfg.data.prior),
                     {"steps": trainer.global_step, "config": cfg.to_dict()})
                write_text(out / "progress.json", json.dumps({"global_step": trainer.global_step, "kind": cfg.kind}) + "\n")

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step % cfg.trainer.checkpoint_every == 0:
                self.write(trainer, module)

        def on_train_end(self, trainer, module):
            self.write(trainer, module)

        def on_exception(self, trainer, module, exception):
            if isinstance(exception, KeyboardInterrupt) and trainer.global_step > 0:  # a stop: keep what is done
                self.write(trainer, module)

    return [ResumeCheckpoint()]


PREVIOUS_LOG = "metrics.previous.csv"


def _read_rows(path: Path) -> list[dict]:
    import csv

    return list(csv.DictReader(path.open())) if path.is_file() else []


def _write_rows(path: Path, rows: list[dict]) -> None:
    import csv

    keys = list(dict.fromkeys(k for r in rows for k in r))
    with atomic(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _set_aside_log(out: Path, start: int) -> None:
    """Before a resume: Lightning's CSV logger starts metrics.csv afresh, so the rows logged so far (before the
    step the run resumes at; later ones are redone) are kept in metrics.previous.csv, joined back by _join_log.
    A run killed again before that join keeps them there for the next resume."""
    rows = [r for r in _read_rows(out / PREVIOUS_LOG) + _read_rows(out / "metrics.csv") if int(r["step"]) < start]
    _write_rows(out / PREVIOUS_LOG, rows)
    (out / "metrics.csv").unlink(missing_ok=True)


def _join_log(out: Path) -> None:
    previous = out / PREVIOUS_LOG
    if previous.is_file():
        _write_rows(out / "metrics.csv", _read_rows(previous) + _read_rows(out / "metrics.csv"))
        previous.unlink()


def resume_step(out: Path, kind: str = "rlpfn") -> int:
    p = out / "progress.json"
    if not p.exists():
        return 0
    try:
        progress = json.loads(p.read_text())
        step = progress["global_step"]
        if not isinstance(step, int) or step < 0:
            raise ValueError(f"global_step {step!r} is not a step count")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: unreadable resume state ({one_line(e)}); rerun without --resume into a new "
                          "trainer.out") from None
    if progress.get("kind", "rlpfn") != kind:  # runs from before AD have no kind: they trained rlpfn
        raise ConfigError(f"--resume: {out} holds a run of an {progress.get('kind', 'rlpfn')!r} model and this config "
                          f"trains {kind!r}; choose another trainer.out")
    return step


# Options that do not change what a resumed run trains: how long and where it runs, how many processes feed it,
# and its validation. A change of any other option is said when the run resumes, not refused: continuing a run with
# its optimiser state under another loss or prior is how docs/model/ fine-tunes (e.g. v2.md's blend arms).
QUIET_CHANGES = ("trainer.", "data.num_workers", "data.val_", "es.workers")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_same_run(out: Path, config: dict, module) -> list[str]:
    """Before a resume: refuses (ConfigError) a command whose model cannot take the run's saved weights (other
    parameter names or shapes: a traceback inside Lightning before) or freezes other parameters (optim.new_only,
    and trainer.init_from with it). Returns the other options that differ from those the run began with (its
    model.json, written with every checkpoint), as 'key: before -> now', for the caller to say, QUIET_CHANGES left
    out; a field added since the run began counts at its default there."""
    try:
        saved = json.loads((out / "model.json").read_text())["training"]["config"]
        before = _flat(saved) if isinstance(saved, dict) else {}
    except (OSError, json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        before = {}
    if before:  # a field added since the run began has its default there: the behaviour it kept
        before = {**_flat(config_classes()[config["kind"]]().to_dict()), **before}
    now = _flat(config)
    differ = [k for k in before if k in now and before[k] != now[k]]
    frozen = [k for k in differ if k == "optim.new_only" or (k == "trainer.init_from" and now.get("optim.new_only"))]
    try:
        weights = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    except Exception as e:  # a truncated or foreign file: pickle, zip and key errors alike
        raise ConfigError(f"{out / 'last.ckpt'}: unreadable resume state ({one_line(e)}); rerun without --resume into "
                          "a new trainer.out") from None
    mine = module.state_dict()
    misfit = sorted(set(weights) ^ set(mine)) + [k for k in weights if k in mine and weights[k].shape != mine[k].shape]
    if misfit or frozen:
        keys = frozen + [k for k in differ if not k.startswith(QUIET_CHANGES) and k not in frozen]
        said = ", ".join(f"{k} {before[k]!r} (this command: {now[k]!r})" for k in keys[:4])
        said += f" and {len(keys) - 4} more" if len(keys) > 4 else ""
        more = f" and {len(misfit) - 3} more" if len(misfit) > 3 else ""
        what = (f"its saved weights do not fit this command's model ({', '.join(misfit[:3])}{more})" if misfit
                else "it froze other parameters")
        fresh = ""
        if now.get("kind") == "rlpfn":  # AD runs take no warm start
            fresh = f", or start a new trainer.out with --trainer.init_from {out / 'model'}"
        raise ConfigError(f"--resume: {out} cannot continue under these options: {what}"
                          f"{f'; it began with {said}' if said else ''}. Resume it with the options it began with "
                          f"({out / 'model.json'}, training.config){fresh}")
    return [f"{k}: {before[k]!r} -> {now[k]!r}" for k in differ if not k.startswith(QUIET_CHANGES)]


class StepCounter(torch.utils.data.IterableDataset):
    """0, 1, 2, ...: the training loop's batches when no supervised loss needs prior batches."""

    def __iter__(self):
        import itertools

        return itertools.count()


def pretrain(cfg, resume: bool = False, command: str = "") -> Path:
    """Train; returns the path of the exported checkpoint config: OUT/model.json, or EXPORT.json when
    trainer.export is set (the model is written there too). Nothing is written outside those two."""
    import logging
    import warnings

    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from .checkpoint import save

    torch.set_num_threads(cfg.trainer.threads)
    out = check_output_dir(cfg.trainer.out, "trainer.out")  # before any work
    if cfg.trainer.export is not None:
        check_output_dir(Path(cfg.trainer.export).parent, "trainer.export")
    ckpt = out / "last.ckpt"
    if resume and not ckpt.exists():
        raise ConfigError(f"--resume: nothing to resume in {out} (no last.ckpt); run without --resume first")
    if not resume and ckpt.exists():
        raise ConfigError(f"{out} holds a previous run (last.ckpt): pass --resume to continue it, "
                          "or choose another trainer.out")
    out.mkdir(parents=True, exist_ok=True)
    start = resume_step(out, cfg.kind) if resume else 0
    L.seed_everything(cfg.data.seed, workers=True, verbose=False)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*IterableDataset.*__len__.*")
    warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Previous log files in this directory will be deleted.*")  # kept

    if cfg.kind == "ad":
        from .ad.train import ad_module

        module_cls = ad_module(cfg)
    else:
        module_cls = _lightning_module(cfg)
    module = module_cls()
    cfg_dict = cfg.to_dict()
    if resume:  # nothing is written before these checks
        changed = check_same_run(out, cfg_dict, module)
        if changed:
            print(f"rlpfn pretrain: resuming {out} under other options than it began with (its optimiser state "
                  f"goes on): {'; '.join(changed)}", file=sys.stderr)
        _set_aside_log(out, start)

    class Data(L.LightningDataModule):
        def train_dataloader(self):
            rank = module.trainer.global_rank if module._trainer is not None else 0
            ds = cfg.dataset(seed=cfg.data.seed + start + rank * 10**7)
            return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=cfg.data.num_workers,
                                               persistent_workers=cfg.data.num_workers > 0)

        def val_dataloader(self):
            return torch.utils.data.DataLoader(list(range(cfg.data.val_batches)), batch_size=None)

    devices = cfg.trainer.devices
    trainer = L.Trainer(
        max_steps=cfg.trainer.max_steps, accelerator=cfg.trainer.accelerator, devices=devices,
        strategy="ddp" if devices > 1 else "auto", logger=CSVLogger(str(out), name="", version=""),
        callbacks=_callbacks(cfg, out), enable_checkpointing=False, val_check_interval=cfg.trainer.val_every,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, log_every_n_steps=cfg.trainer.log_every,
        gradient_clip_val=cfg.optim.grad_clip, enable_progress_bar=cfg.trainer.progress,
        enable_model_summary=False, use_distributed_sampler=True,
    )
    trainer.fit(module, datamodule=Data(), ckpt_path=str(ckpt) if resume else None)
    if trainer.is_global_zero:
        _join_log(out)
        from .experiments.report import plot_training

        loss = getattr(cfg, "loss", None)  # an AD config has none
        off = {} if loss is None else {"train/pinball": loss.quantile_weight, "train/q_mse": loss.q_weight}
        plot_training(out / "metrics.csv", out / "training.png", tuple(k for k, w in off.items() if w == 0))
        training = {"steps": trainer.global_step, "config": cfg_dict, "command": command}
        path = save(module.model, out / "model", spec_record(cfg.data.prior), training)
        if cfg.trainer.export is not None:
            path = save(module.model, cfg.trainer.export, spec_record(cfg.data.prior), training)
        return path
    return Path(cfg.trainer.export or out / "model").with_suffix(".json")


__all__ = ["warm_start", "PretrainConfig", "TrainerConfig", "DataConfig", "OptimConfig", "LossConfig", "ConfigError",
           "load_config", "pretrain", "pretrain_loss"]
