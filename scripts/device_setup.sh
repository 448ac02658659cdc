# Sourced by the prepared device scripts (device_es.sh, device_transitions.sh) after they set OUT: strict shell
# options, START (for their time budget), PY ($PYTHON or python3), $OUT made, the wheels the device machine lacks
# (.whl/, see their headers) installed beside the repo, CORES, and what the machine holds.
set -uo pipefail
export PYTHONUNBUFFERED=1
START=$SECONDS
PY=${PYTHON:-python3}
mkdir -p "$OUT"
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
