#!/usr/bin/env bash
# Issue 9's prepared device run for the transition head at pairs tried a few times, for a session lent a GPU machine:
# one call of the device tool. docs/model/v2.md ("What an exact transition head would buy") says why: true rows
# there would take v2 below the held-out bar on every split, and even a head a twentieth of the way from today's
# to perfect gains; the small model on 2 cores does not get there. This trains a larger one with the machine's cores
# drawing prior batches.
#
# On that machine python3 holds torch and lightning but not jsonargparse (nor docstring-parser). Before the call,
# in the repo's root (.whl/ is git-ignored):
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl "jsonargparse>=4.40,<5" "docstring-parser>=0.16"
# Then: run(command="bash scripts/device_transitions.sh", carry=[".whl"], timeout_s=540); give_back unless rerunning.
#
# It trains `transitions-tried` (the wide prior; cross-entropy at untried pairs and at tried pairs of < 6 visits),
# larger (d_model 128, 4 layers: 1.2M parameters), on 64 contexts (16 MDPs) per step, with data.num_workers =
# cores - 2, the head taught the rows' support (TARGET=p for the true rows) and planned at κ = 1, until TOTAL_SECONDS
# (default 480) are up; checkpointed every 50 steps into $OUT/run, its options in $OUT/run/options. The learning
# rate's cosine schedule is for MAX_STEPS (default 20000) whatever a session reaches, so that sessions continue one
# run: a model brought back after one session is still near the peak rate, not annealed. A run brought back is
# continued by the next call: copy OUT/run's files into resume/transitions-gpu/ (last.ckpt, about 14 MB, is what
# resumes it: without it the call refuses the folder). Then, on the CPU:
#   .venv/bin/python scripts/bonus_variant.py resume/transitions-gpu/model 0.3 runs/gpu-x0.3
#   .venv/bin/rlpfn validate --prior wide --batches 16 --episodes 100 --json F --agents rlpfn \
#       'rlpfn[checkpoint=runs/blend/control-x0.3]' 'rlpfn[checkpoint=runs/gpu-x0.3]'
# and the tried-pairs head's quality: .venv/bin/python scripts/tried_pair_prior.py --checkpoint resume/transitions-gpu/model
# Measured on the CPU since (docs/model/v2.md, "A wider, deeper transition head"): neither d128 x 4 nor 64 contexts
# a step helps alone; D_MODEL=64 N_LAYERS=3 with a larger MAX_STEPS puts the device's minutes into steps instead.
# Measured on the device (2026-11-29, docs/model/gpu.md): v2's size (D_MODEL=64 N_LAYERS=3 N_HEADS=4 BATCH=16
# TARGET=p) trains about 6 steps a second there, launch-bound, against 1.2-1.8 on 2 cores: a call buys about 2000
# steps. Set MAX_STEPS to what the calls will reach (a schedule left at its peak rate is not a finished run).
# Environment overrides, for a smoke run on CPU: TOTAL_SECONDS, MAX_STEPS, D_MODEL, N_LAYERS, N_HEADS, BATCH,
# TARGET, PRIOR, CHECKPOINT_EVERY (these for a new run only: a resumed run keeps its options), PYTHON, RESUME_DIR,
# OUT, STOP_GRACE (seconds between SIGINT and SIGKILL at the time limit, default 30).
# Exit status 0 when a model came back that trained in this call.
OUT=${OUT:-/tmp/device-transitions-out}
TOTAL=${TOTAL_SECONDS:-480}
. scripts/device_setup.sh  # shell options, START, PY, $OUT made, the wheels, CORES, what the machine holds

RESUME=${RESUME_DIR:-resume/transitions-gpu}
if [ -d "$RESUME" ] && [ ! -f "$RESUME/last.ckpt" ]; then
  echo "$RESUME holds no last.ckpt: nothing to resume (remove the folder to start a new run)" >&2; exit 1
fi
BEFORE=0
if [ -f "$RESUME/last.ckpt" ]; then  # a run that an earlier session brought back: continue it, same options
  BEFORE=$(sed -n 's/.*"global_step": *\([0-9]*\).*/\1/p' "$RESUME/progress.json")
  mkdir -p "$OUT/run" && cp "$RESUME"/* "$OUT/run/" || exit 1
  O=$(cat "$RESUME/options") RESUMING=--resume
  echo "resuming $RESUME at $(cat "$RESUME/progress.json")"
else
  DEVICE=$($PY -c "import torch; print('gpu' if torch.cuda.is_available() else 'cpu')")
  WORKERS=$(( CORES > 3 ? CORES - 2 : 1 ))
  D=${D_MODEL:-128}
  O="--config transitions-tried --model.d_model $D --model.n_layers ${N_LAYERS:-4}"
  O="$O --model.n_heads ${N_HEADS:-$(( D % 8 ? 4 : 8 ))}"
  O="$O --model.planner_tried_strength 1 --loss.transition_target ${TARGET:-support}"
  O="$O --data.prior ${PRIOR:-wide} --data.batch_size ${BATCH:-64} --data.num_workers $WORKERS --trainer.accelerator $DEVICE --trainer.threads 2"
  O="$O --trainer.max_steps ${MAX_STEPS:-20000} --trainer.val_every 100000 --trainer.log_every 10"
  O="$O --trainer.checkpoint_every ${CHECKPOINT_EVERY:-50} --trainer.progress false"
  RESUMING=
  mkdir -p "$OUT/run" && echo "$O" >"$OUT/run/options"
fi
LEFT=$(( TOTAL - (SECONDS - START) ))
echo "main run for $LEFT s, options: $O"
if [ "$LEFT" -gt $(( 2 * GRACE )) ]; then
  # (--trainer.out after $O: the --config in $O sets every key it names where it stands)
  stop_after "$LEFT" $PY -m rlpfn.cli pretrain $RESUMING $O --trainer.out "$OUT/run" >"$OUT/main.log" 2>&1
  echo "pretrain exit status $? (124: stopped at the time limit)"
  # a resumed run stopped early keeps its earlier rows in metrics.previous.csv: join them (one file less to bring back)
  $PY -c "import sys, pathlib; from rlpfn.train import _join_log; _join_log(pathlib.Path(sys.argv[1]))" "$OUT/run"
fi
# what the device tool brings back: at most 8 files; a kill mid-write leaves temporary files
rm -f "$OUT/run/hparams.yaml" "$OUT/run/last.ckpt.tmp" "$OUT"/run/.*.tmp* "$OUT/run/training.png"
echo "main run ended: last checkpoint $(cat "$OUT/run/progress.json" 2>/dev/null)"
tail -3 "$OUT/run/metrics.csv" 2>/dev/null
ls -la "$OUT/run" 2>/dev/null
AFTER=$(sed -n 's/.*"global_step": *\([0-9]*\).*/\1/p' "$OUT/run/progress.json" 2>/dev/null)
test -f "$OUT/run/model.safetensors" && [ "${AFTER:-0}" -gt "$BEFORE" ]  # a model, and one that trained this call
