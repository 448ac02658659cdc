# Sourced by the prepared device scripts (device_es.sh, device_transitions.sh) after they set OUT: strict shell
# options, START (for their time budget), PY ($PYTHON or python3), $OUT made, the wheels the device machine lacks
# (.whl/, see their headers) installed beside the repo, CORES, what the machine holds, GRACE and stop_after.
set -uo pipefail
export PYTHONUNBUFFERED=1
START=$SECONDS
PY=${PYTHON:-python3}
mkdir -p "$OUT"
# stop_after LEFT CMD...: CMD until LEFT - GRACE seconds, then SIGINT (a run saves the steps it finished), then
# SIGKILL GRACE seconds later if it has not ended. On the device (2026-11-29) a run stopped with 14 data workers had
# not saved 10 s after SIGINT (docs/model/gpu.md); the callers run CMD only when LEFT > 2 GRACE.
GRACE=${STOP_GRACE:-30}
case $GRACE in
  ''|*[!0-9]*|0) echo "STOP_GRACE must be a positive whole number of seconds, got '$GRACE'" >&2; exit 1 ;;
esac
stop_after() { local left=$1; shift; timeout --signal=INT --kill-after="$GRACE" $(( left - GRACE )) "$@"; }
command -v timeout >/dev/null || { echo "no 'timeout' command on this machine" >&2; exit 1; }
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
CORES=$($PY -c "import os; print(len(os.sched_getaffinity(0)))")
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, lightning, rlpfn.train, rlpfn.es; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'lightning', lightning.__version__, 'cores', $CORES)" || exit 1
