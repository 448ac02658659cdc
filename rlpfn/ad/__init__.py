"""Algorithm Distillation (Laskin et al. 2022) on the same prior and harness as the rlpfn model: a causal
transformer over a learning history's raw transitions, trained to predict its source agent's next action
(`model`: the network, `data`: windows of the prior's learning traces, `train`: the Lightning module that
`rlpfn pretrain --config ad` runs). The agent that acts with it is `agents.ad.ADAgent` (registry name `ad`)."""
