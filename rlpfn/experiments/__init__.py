"""Experiment runners: the evaluation harness (online regret, offline scores, held-out prior regret), the
benchmark suite, baseline tuning, held-out validation, the reference check, latency, and the report with its
plots. They use the core (mdp, planning, stats, agents, prior, model); the core never imports them."""
