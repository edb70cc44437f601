#!/usr/bin/env bash
# The GPU evidence run on the device machine, as one command (run from the repo root):
#   here, once:   python -m tests.gpu.wheels .whl   (and `echo /.whl/ >> .git/info/exclude`)
#   device tool:  run(command="bash tests/gpu/device.sh", carry=[".whl"], timeout_s=540)
# Installs the carried wheels beside the machine's own torch, runs tests/gpu/evidence.py
# within its budget and leaves the summary and the log in $OUT (results/bench/gpu/ when
# run elsewhere), the form the device tool brings back (at most 8 files).
set -uo pipefail
out=${OUT:-results/bench/gpu}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -m tests.gpu.evidence --out /tmp/evidence --budget "${BUDGET:-420}" 2>&1 | tee "$out/log.txt"
status=${PIPESTATUS[0]}
cp /tmp/evidence/evidence.json "$out/"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" 2>&1
exit "$status"
