#!/usr/bin/env bash
# The GPU tests and the benchmark suite on CUDA, in one call on a lent GPU machine.
#
#   bash benchmarks/run_device.sh            # on the GPU machine: results under $OUT
#   DRY=1 PY=.venv/bin/python OUT=/tmp/dry bash benchmarks/run_device.sh   # CPU dry run, tiny sizes
#
# The GPU image has torch, numba, scipy, pandas, tifffile, tqdm, pytest-benchmark and pytest-timeout, but not
# zarr (nor porespy, taufactor, POT: their cases skip). Put zarr's cp312 wheels in .whl/ (git-ignored) first:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0
# To time one commit while the checkout is being edited (as for results/*-h200.json): a git-ignored export
#   git archive HEAD | tar -x -C .devsrc; cp -r .whl .devsrc/   (plus any uncommitted benchmarks/ files)
# carried to the device machine, and there: cd .devsrc && SWNN_COMMIT=<sha> bash benchmarks/run_device.sh
#
# Steps (each under `timeout`, and all within BUDGET_S seconds, so that one hung case cannot take the rest):
#   1. environment: nvidia-smi, versions; wheels from .whl/ (zarr and its needs) installed to /tmp/site;
#   2. the tests that need a GPU: pytest tests -k "cuda or gpu";
#   3. the benchmarks at full sizes on CUDA, one pytest run per group (an interrupted pytest-benchmark run
#      writes no JSON, so a group that runs out of time loses only itself): benchmarks/device_cuda.py
#      (training iteration, 128³/256³/512³ blocks, swnn generate 128³/512³, LBM 256³, conductivity 512³),
#      bench_conductivity.py and bench_descriptors.py (their cuda cases), bench_permeability.py (CUDA
#      when present);
#   4. the results regrouped into $OUT/{reconstruction,generation,conductivity,permeability,descriptors}-TAG.json,
#      $OUT/TABLE-TAG.md (benchmarks.device_summary: the CPU figures of the same cases beside, then
#      benchmarks.table's summary), $OUT/run-TAG.log; a short table printed last.
# TAG is the GPU's model in lower case (h200, h100), or DEVICE_TAG. SWNN_COMMIT, where set, is recorded as the
# commit of every case (the copy on the device machine may have no git history, or another commit's).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/swnn-device}
PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-450}
RESERVE_S=20  # for the summary at the end
START=$SECONDS
mkdir -p "$OUT"
PARTS=$(mktemp -d /tmp/swnn-parts.XXXX)

if [ "${DRY:-0}" = 1 ]; then
    export SWNN_BENCH_DEVICE=cpu
    SIZES=--benchmark-enable  # tiny sizes, timed: the pipeline without the work
    TAG=${DEVICE_TAG:-dry}
else
    export SWNN_BENCH_DEVICE=cuda
    SIZES=--benchmark
    NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
    TAG=${DEVICE_TAG:-$(echo "$NAME" | grep -oiE 'h100|h200|a100|l40s|b200' | head -1 | tr 'A-Z' 'a-z')}
    TAG=${TAG:-gpu}
fi
LOG=$OUT/run-$TAG.log
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1

echo "== swnn device run, tag $TAG, commit ${SWNN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}, $(date -u +%FT%TZ)"
nvidia-smi 2>&1 | head -20 || true
if ls .whl/*.whl >/dev/null 2>&1 && [ "${DRY:-0}" != 1 ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || echo "!! wheel install failed"
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
"$PY" - <<'EOF'
import importlib, os, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| cudnn", torch.backends.cudnn.version(), "| threads", torch.get_num_threads(), "| cpus", os.cpu_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", p.multi_processor_count, "SMs",
          "bf16", torch.cuda.is_bf16_supported())
for name in ("numpy", "scipy", "numba", "pandas", "zarr", "numcodecs", "tifffile", "tqdm", "pytest",
             "pytest_benchmark", "porespy", "taufactor", "ot"):
    try:
        module = importlib.import_module(name)
        print(f"  {name} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001
        print(f"  {name}: not importable ({type(exc).__name__}: {exc})")
EOF

STATUS=()
step() {  # step NAME CAP_S COMMAND...: run COMMAND under the smaller of CAP_S and the time left
    local name=$1 cap=$2
    shift 2
    local left=$((BUDGET_S - (SECONDS - START) - RESERVE_S))
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 15 ]; then
        echo "== $name: skipped ($left s left)"
        STATUS+=("$name: skipped, out of time")
        return
    fi
    echo
    echo "== $name (limit ${limit} s, at $((SECONDS - START)) s)"
    local begin=$SECONDS
    timeout -s INT -k 10 "$limit" "$@"
    local rc=$?
    local what="rc=$rc"
    [ $rc = 124 ] || [ $rc = 137 ] && what="TIMED OUT after $limit s"
    [ $rc = 5 ] && what="nothing selected"
    echo "== $name: $what, $((SECONDS - begin)) s"
    STATUS+=("$name: $what, $((SECONDS - begin)) s")
}

PYTEST=("$PY" -m pytest -p no:cacheprovider -q -rfEs)
# Benchmarks: warnings shown, not made errors as the ini makes them (a newer library's warning must not cost
# a timing); one --benchmark-json per group, under $PARTS.
BENCH=("${PYTEST[@]}" "$SIZES" -W default --benchmark-columns=mean,median,min,max,rounds --benchmark-sort=name)
TESTS=("${PYTEST[@]}" tests -k "cuda or gpu")
"$PY" -c "import pytest_timeout" 2>/dev/null && TESTS+=(--timeout=100)

step "GPU tests" 110 "${TESTS[@]}"
step "training iteration" 80 "${BENCH[@]}" --benchmark-json="$PARTS/p1.json" benchmarks/device_cuda.py \
    -k training_iteration
step "generation blocks 128-256" 70 "${BENCH[@]}" --benchmark-json="$PARTS/p2.json" benchmarks/device_cuda.py \
    -k "generation_block and not 512"
step "conductivity (bench_conductivity, cuda)" 60 "${BENCH[@]}" --benchmark-json="$PARTS/p3.json" \
    benchmarks/bench_conductivity.py -k "test_ours and cuda"
step "permeability (bench_permeability)" 60 "${BENCH[@]}" --benchmark-json="$PARTS/p4.json" \
    benchmarks/bench_permeability.py
step "generate volume 128, 512" 80 "${BENCH[@]}" --benchmark-json="$PARTS/p5.json" benchmarks/device_cuda.py \
    -k generate_volume
step "generation block 512" 70 "${BENCH[@]}" --benchmark-json="$PARTS/p6.json" benchmarks/device_cuda.py \
    -k "generation_block and 512"
step "LBM 256, conductivity 512" 70 "${BENCH[@]}" --benchmark-json="$PARTS/p7.json" benchmarks/device_cuda.py \
    -k "lbm or test_ours"
step "descriptors (cuda, to 512)" 60 "${BENCH[@]}" --benchmark-json="$PARTS/p8.json" \
    benchmarks/bench_descriptors.py -k "cuda and not 1024"

echo
echo "== summary (at $((SECONDS - START)) s)"
COMMIT=${SWNN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" 2>/dev/null)
timeout 60 "$PY" -m benchmarks.device_summary "$PARTS"/p*.json --split "$OUT" --tag "$TAG" ${SWNN_COMMIT:+--commit "$SWNN_COMMIT"} \
    --title "Benchmarks on $GPU" \
    --header "date: $(date -u +%F)" \
    --header "commit: $COMMIT${SWNN_COMMIT_NOTE:+ ($SWNN_COMMIT_NOTE)}" \
    --header "machine: $GPU, $(nproc) CPU cores; torch $("$PY" -c 'import torch; print(torch.__version__)')" \
    --header "command: bash benchmarks/run_device.sh (pytest … --benchmark per group, SWNN_BENCH_DEVICE=$SWNN_BENCH_DEVICE)" \
    -o "$OUT/TABLE-$TAG.md" || echo "!! device_summary failed"
sed -n '/^## Against the CPU/,/^## Table 1/p' "$OUT/TABLE-$TAG.md" 2>/dev/null | grep '^|' | cut -c1-220
echo
"$PY" - "$OUT" "$TAG" <<'EOF'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob(f"*-{sys.argv[2]}.json")):
    for b in json.loads(path.read_text())["benchmarks"]:
        info = b.get("extra_info", {})
        extra = {k: info[k] for k in ("mlups_fluid_nodes", "iterations", "noise_s", "network_s",
                                      "fraction_of_bandwidth_limit", "gpu_peak_allocated_mib") if k in info}
        print(f"{path.stem:24s} {b['name']:45s} mean {b['stats']['mean']:9.4f} s  n={b['stats']['rounds']}  {extra}")
EOF
echo
printf '%s\n' "${STATUS[@]}"
echo "== done in $((SECONDS - START)) s"
