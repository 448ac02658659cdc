#!/usr/bin/env bash
# Issue 9's prepared device check, for a session that is lent a GPU machine: one call of the device tool.
#
# On that machine python3 holds torch and lightning but not jsonargparse (nor docstring-parser, which pretrain's
# --help needs). Before the call, in the repo's root (.whl/ is git-ignored):
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl "jsonargparse>=4.40,<5" "docstring-parser>=0.16"
# Then: run(command="bash scripts/device_es.sh", carry=[".whl"], timeout_s=540), and give_back unless rerunning.
#
# What it does, within TOTAL_SECONDS (default 420, leaving device time for a rerun):
# 1. scripts/es_timing.py: checks that ES's rollouts on the GPU agree with the CPU's (same seeds), then times one
#    ES estimate at the judged horizon (100 episodes per run) on the CPU with one process per core (64 pairs) and
#    on the GPU at 64, 256, 1024, 4096 pairs (while the next fits in 2/5 of the time), and picks the device and
#    pairs count with the most pairs per second among estimates of at most 10 s ($OUT/timing.json);
# 2. trains with that choice until the time is up: ES from the untrained model (linear u), 16 MDPs x 100
#    episodes, checkpointed every 5 steps into $OUT/run, with its options in $OUT/run/options.
# A run brought back is continued by the next session's call: copy the files of OUT/run into resume/es-gpu/ and
# commit them (2 MB). With resume/es-gpu/last.ckpt present, the script skips step 1 and resumes that run with its
# options, for the whole time (`rlpfn pretrain --resume --trainer.out DIR $(cat DIR/options)` resumes it anywhere).
# Validate what comes back on CPU: rlpfn validate --agents ucbvi rlpfn --checkpoint OUT/run/model --json F, and
# compare with docs/model/es/heldout-untrained-linear.json (python -m rlpfn.experiments.compare).
# ES_PRIOR=wide trains on v2's prior instead of `default` (a new run only; the timing always uses `default`'s
# sizes, and a wide-prior step with H up to 200 is slower: see docs/baselines/ucbvi_wide.md for its own baseline).
# Environment overrides, for a smoke run on CPU: ES_EPISODES, ES_PAIRS (the CPU timing's pairs), TOTAL_SECONDS,
# CHECKPOINT_EVERY, PYTHON, RESUME_DIR, STOP_GRACE (seconds between SIGINT and SIGKILL at the time limit, default
# 30). Exit status 0 when a model came back.
OUT=${OUT:-/tmp/device-es-out}
TOTAL=${TOTAL_SECONDS:-420}
. scripts/device_setup.sh  # shell options, START, PY, $OUT made, the wheels, CORES, what the machine holds

RESUME=${RESUME_DIR:-resume/es-gpu}
if [ -f "$RESUME/last.ckpt" ]; then  # a run that an earlier session brought back: continue it, same options
  mkdir -p "$OUT/run" && cp "$RESUME"/* "$OUT/run/" || exit 1
  O=$(cat "$RESUME/options") RESUMING=--resume
  echo "resuming $RESUME at $(cat "$RESUME/progress.json")"
else
  DEADLINE=$(( TOTAL * 2 / 5 ))  # the timing's share of the time; the rest trains
  timeout $(( DEADLINE + 60 )) $PY scripts/es_timing.py --episodes "${ES_EPISODES:-100}" --cpu-pairs "${ES_PAIRS:-64}" \
    --deadline "$DEADLINE" --json "$OUT/timing.json" 2>&1 | tee /tmp/es-timing.log
  read -r DEVICE PAIRS < <(sed -n 's/^best: //p' /tmp/es-timing.log | tail -1)
  if [ -z "${PAIRS:-}" ]; then echo "the timing failed: see above" >&2; DEVICE=cpu PAIRS=${ES_PAIRS:-64}; fi
  WORKERS=$([ "$DEVICE" = gpu ] && echo 1 || echo "$CORES")
  O="--loss.policy_weight 0 --loss.q_weight 0 --loss.quantile_weight 0 --loss.anchor_weight 0 --es.weight 1"
  O="$O --es.pairs $PAIRS --es.mdps 16 --es.episodes ${ES_EPISODES:-100} --data.num_workers 0"
  O="$O --data.prior ${ES_PRIOR:-default}"
  O="$O --model.unvisited_linear true --optim.lr 5e-3 --optim.warmup_steps 5 --optim.weight_decay 0"
  O="$O --trainer.val_every 100000 --trainer.log_every 1 --trainer.checkpoint_every ${CHECKPOINT_EVERY:-5}"
  O="$O --trainer.accelerator $DEVICE --es.workers $WORKERS"
  RESUMING=
  mkdir -p "$OUT/run" && echo "$O" >"$OUT/run/options"
fi
LEFT=$(( TOTAL - (SECONDS - START) ))
echo "main run for $LEFT s, options: $O"
if [ "$LEFT" -gt $(( 2 * GRACE )) ]; then
  stop_after "$LEFT" $PY -m rlpfn.cli pretrain $RESUMING --trainer.out "$OUT/run" $O --trainer.max_steps 100000 \
    >"$OUT/main.log" 2>&1
fi
# what the device tool brings back: at most 8 files; a kill mid-write leaves temporary files
rm -f "$OUT/run/hparams.yaml" "$OUT/run/last.ckpt.tmp" "$OUT"/run/.*.tmp*
echo "main run ended (stopped at the time limit): last checkpoint $(cat "$OUT/run/progress.json" 2>/dev/null)"
tail -3 "$OUT/run/metrics.csv" 2>/dev/null
ls -la "$OUT/run" 2>/dev/null
test -f "$OUT/run/model.safetensors"
