"""AD's pretraining config and Lightning module: `rlpfn pretrain --config ad` (a YAML with `kind: ad`).

The trainer, optimiser, resume checkpoints, CSV logs and exported safetensors model are rlpfn.train's, shared
with the rlpfn model; what differs is the model section (rlpfn.ad.model.ADConfig), the data section (ADDataConfig:
the prior, the source algorithm, the target) and the loss: cross-entropy of every window position's action
logits against its target. Validation is the same as the rlpfn model's: the `ad` agent's regret on held-out
prior MDPs beside UCB-VI's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..train import OptimConfig, TrainerConfig, log_validation, optimizers
from .data import ADBatch, ADDataConfig, ad_stream
from .model import ADConfig, ADModel


@dataclass
class ADPretrainConfig:
    kind = "ad"
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(out="runs/ad"))
    model: ADConfig = field(default_factory=ADConfig)
    data: ADDataConfig = field(default_factory=ADDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self):
        if self.trainer.init_from is not None or self.optim.new_only:  # warm starts load rlpfn checkpoints only
            raise ValueError("trainer.init_from and optim.new_only warm-start an rlpfn model; an AD run starts at random")

    def to_dict(self) -> dict:
        from ..config import to_dict

        return {"kind": self.kind, **to_dict(self)}

    def dataset(self, seed: int):
        return ad_stream(self.data, self.model.window, self.model.label_dim, seed)


def ad_loss(model: ADModel, batch: ADBatch) -> dict:
    logits = model(batch.tokens)
    ce = -(batch.target * torch.log_softmax(logits, -1)).sum(-1).mean()
    accuracy = (logits.argmax(-1) == batch.target.argmax(-1)).float().mean()
    # the cross-entropy over a uniform guess's, log A: batches differ in A, so the loss alone jumps between them
    return {"loss": ce, "accuracy": accuracy.detach(), "relative_ce": ce.detach() / math.log(logits.shape[-1])}


def ad_module(cfg: ADPretrainConfig):
    import lightning as L

    from ..agents import ADAgent

    class ADModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters({"config": cfg.to_dict()})
            self.model = ADModel(cfg.model)
            self.val_split = (cfg.data.val_prior, cfg.data.val_batches)  # drawn at the first validation

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            return batch if isinstance(batch, int) else batch.to(device)

        def training_step(self, batch, batch_idx):
            parts = ad_loss(self.model, batch)
            for k, v in parts.items():
                self.log(f"train/{k}", v.detach(), prog_bar=k == "loss", batch_size=1)
            return parts["loss"]

        def validation_step(self, idx, batch_idx):  # Lightning has put the model in eval mode
            log_validation(self, ADAgent.with_model(self.model), int(idx), cfg.data.val_episodes)

        def configure_optimizers(self):
            return optimizers(self.parameters(), cfg.optim, cfg.trainer.max_steps)

    return ADModule
