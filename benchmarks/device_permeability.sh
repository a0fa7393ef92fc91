#!/usr/bin/env bash
# Permeability on a CUDA GPU in one call: the GPU tests, the fast path against the τ = 1 references
# (benchmarks.permeability_convergence), the whole `swnn evaluate` command on two Berea reconstructions, and
# the generation blocks whose per-block time sizes blockwise generation on several GPUs.
#
#   bash benchmarks/device_permeability.sh     # on the GPU machine, DATA holding the files that
#                                              # benchmarks/permeability_convergence.py names; results under $OUT
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/swnn-device}
DATA=${DATA:-.devdata}
PY=${PY:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
echo "== $(date -u +%FT%TZ) commit ${SWNN_COMMIT:-unknown}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cpus', __import__('os').cpu_count())"
step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2 begin=$SECONDS
    shift 2
    echo "== $name (limit $limit s)"
    timeout -s INT -k 10 "$limit" "$@"
    echo "== $name: rc=$?, $((SECONDS - begin)) s"
}
step "GPU tests" 150 "$PY" -m pytest -p no:cacheprovider -q -rfEs tests -k "cuda or gpu or triton" --timeout=100
step "fast path against references" 210 "$PY" -m benchmarks.permeability_convergence --device cuda --data "$DATA" \
    --out "$OUT/permeability-convergence.jsonl" --budget 170 --reference-cap 40 --plain
for s in 6 19; do
    step "swnn evaluate sample $s" 40 bash -c "time $PY -m swnn evaluate $DATA/berea_sample_$s.npy -o $OUT/ev$s.json \
        --metrics permeability --axes 0 --phase 0 --boundary mirror --device cuda --quiet"
done
step "generation blocks" 90 "$PY" -m pytest -p no:cacheprovider -q --benchmark -W default \
    --benchmark-columns=mean,median,min,max,rounds --benchmark-json="$OUT/generation-blocks.json" \
    benchmarks/device_cuda.py -k "generation_block and fp32"
"$PY" - "$OUT/permeability-convergence.jsonl" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] == "mlups":
        print(f"mlups {r['size']} {r['variant']:14s} {r['mlups']}")
    elif r["kind"] in ("fast", "plain", "fast_tau1", "reference"):
        print(f"{r['kind']:9s} {r['case']:28s} steps {r['steps']:>8} wall {r['wall_s']:>7} k {r['k']:.6g} "
              f"conv {r['converged']} err {r.get('fast_error', '')}")
PYEOF
