#!/usr/bin/env bash
# Train several rock-profile models of the Berea slice at once on a lent GPU, and bring them back in one tar.
#
#   bash benchmarks/device_rock.sh SLICE.png                     # on the GPU machine: $OUT/rock-models.tar
#   DRY=1 PY=.venv/bin/python OUT=/tmp/dry bash benchmarks/device_rock.sh SLICE.png   # CPU, 2 iterations at 32²
#
# SETTINGS (a file of lines "NAME ARGS…", default benchmarks/device_rock.txt) names each run and the options it
# adds to `swnn train SLICE --profile rock --phase 0 --retries 0`; every run shares the GPU with the others, so
# the seconds in their models are not timings of one run. Each run is stopped after LIMIT_S seconds (default
# 420); the models that finished, every run's log and summary.jsonl (final loss, σ, seconds, attempts) are packed
# into $OUT/rock-models.tar. A stalled run is kept and marked, not trained again (--retries 0), so that the
# stalls are counted. Measure the models on any machine with benchmarks.rock_smoothing, or here: with TRUTH=SCAN
# every finished model's SAMPLES (default 8) samples are measured at once, the LBM on the GPU, each stopped after
# MEASURE_LIMIT_S seconds (default 300), into $OUT/measures.jsonl.
set -u
cd "$(dirname "$0")/.."
SLICE=${1:?usage: device_rock.sh SLICE.png}
OUT=${OUT:-/tmp/swnn-rock}
PY=${PY:-python3}
LIMIT_S=${LIMIT_S:-420}
SETTINGS=${SETTINGS:-benchmarks/device_rock.txt}
WORK=$OUT/rock
mkdir -p "$WORK"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if [ "${DRY:-0}" = 1 ]; then
    DEVICE=cpu EXTRA="--device cpu --iterations 2 --section 32"
else
    DEVICE=cuda EXTRA="--device cuda"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
echo "== rock runs, commit ${SWNN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}, $(date -u +%FT%TZ)"
while read -r NAME ARGS; do
    case "$NAME" in '' | '#'*) continue ;; esac
    # shellcheck disable=SC2086  # ARGS and EXTRA are lists of options
    timeout "$LIMIT_S" "$PY" -m swnn train "$SLICE" --profile rock --phase 0 --retries 0 $EXTRA $ARGS \
        -o "$WORK/$NAME.pt" --force >"$WORK/$NAME.log" 2>&1 &
    echo "started $NAME: $ARGS"
done <"$SETTINGS"
wait
if [ -n "${TRUTH:-}" ]; then  # measure every finished model at once, the LBM on the GPU
    for MODEL in "$WORK"/*.pt; do
        [ -e "$MODEL" ] || continue
        NAME=$(basename "$MODEL" .pt)
        timeout "${MEASURE_LIMIT_S:-300}" "$PY" -m benchmarks.rock_smoothing "$WORK/$NAME.jsonl" --truth "$TRUTH" \
            --model "$NAME=$MODEL" --sigma own --samples "${SAMPLES:-8}" \
            --device "$DEVICE" >/dev/null 2>"$WORK/$NAME.measure.log" &
    done
    wait
    cat "$WORK"/*.jsonl >"$OUT/measures.jsonl" 2>/dev/null
fi
"$PY" - "$WORK" >"$WORK/summary.jsonl" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.pt.json")):
    meta = json.loads(path.read_text())
    training = meta.get("training") or {}
    print(json.dumps({"model": path.name[:-8], "final_loss": training.get("final_loss"),
                      "smoothing": meta.get("smoothing"), "seconds": training.get("seconds"),
                      "attempts": training.get("attempts")}))
EOF
cat "$WORK/summary.jsonl"
tail -n 3 "$WORK"/*.log
tar -C "$OUT" --exclude="*.ckpt" -cf "$OUT/rock-models.tar" rock && rm -r "$WORK"
echo "== done $(date -u +%FT%TZ)"
