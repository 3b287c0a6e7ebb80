#!/usr/bin/env bash
# One prepared run for a GPU machine: the gpu tests, the bare forward of an untrained RN50
# (fp32, bf16, channels-last, compiled bf16), the extraction of shapes + Stroop at
# --samples-per-combo 50 (93,500 images, bf16, --compile, batch 250) with its ratio to the bare
# compiled forward, then daf and tcac on the offline corpus; the last line is one JSON object of
# every figure. Each stage runs under `timeout` within an overall budget (GPU_BUDGET_S, default
# 290 s), so one hang cannot eat the device time and the JSON still comes with what finished.
#
#   on the GPU machine:  bash bench/gpu.sh   (in a copy of the checkout with .whl/, made where
#                        PyPI is reachable by `make gpu-wheels`; allow 7 minutes)
#   anywhere, on CPU:    bash bench/gpu.sh --cpu-dry-run   (the tiny CLIP, .venv; about 1 min)
#
# The device's python3 (3.12) has torch but not open_clip, zarr, numcodecs or captum: those come
# as wheels in .whl/, installed into a temporary folder put on PYTHONPATH with the repository.
# Where $OUT names a folder, the log and the JSON line are also written to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
case "${1:-}" in
    --cpu-dry-run) DRY=1 ;;
    "") ;;
    *) echo "usage: bash bench/gpu.sh [--cpu-dry-run]" >&2; exit 2 ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bench.XXXXXX")
START_NS=$(date +%s%N)
export PYTHONUNBUFFERED=1
if [ "$DRY" = 1 ]; then
    PY=${PYTHON:-.venv/bin/python}
    [ -x "$PY" ] || PY=python3
    BUDGET=${GPU_BUDGET_S:-600}
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
    DEVICE=cpu
    TINY=interp.models:tiny_clip  # the same steps on the tiny CLIP (64 px) and a planted reference
    BARE=(--model $TINY --batch-size 16 --batches 2 --warmup 1 --device cpu
          --modes fp32,bf16,bf16_channels_last)
    EXTRACT=(--model $TINY --sets shapes,stroop --samples-per-combo 1 --limit 32 --batch-size 16
             --device cpu --dtype float32)
    PROBE=(--model $TINY --pretrained none --device cpu --corpus-size 40 --permutations 100
           --bootstrap 100 --batch-size 20)
    DAF=(--reference tests.planted_probes:rgb_pixels --reference-weights none)
    TCAC=(--tcac-images 8 --transforms grayscale)
    CAPS=(tests=120 bare=120 extract=180 daf=120 tcac=120)
else
    PY=python3
    BUDGET=${GPU_BUDGET_S:-290}
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "gpu.sh: no wheels in .whl/; run 'make gpu-wheels' here and carry .whl" >&2
        exit 1
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" .whl/*.whl || { echo "gpu.sh: installing .whl/ failed" >&2; exit 1; }
    export PYTHONPATH=$WORK/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    DEVICE=cuda
    BARE=(--model RN50 --batch-size 250 --batches 20 --warmup 3 --device cuda)
    # batch 250 divides both sets (44,000 and 49,500): no partial batch, so no recompilation
    EXTRACT=(--model RN50 --sets shapes,stroop --samples-per-combo 50 --batch-size 250
             --device cuda --dtype bfloat16 --compile)
    PROBE=(--model RN50 --pretrained none --device cuda --dtype bfloat16 --corpus-size 1000
           --batch-size 250)
    DAF=(--reference-weights none)  # dinov2-vits14, untrained (timm)
    TCAC=(--tcac-images 200 --transforms grayscale,hflip,inversion)
    CAPS=(tests=80 bare=75 extract=130 daf=35 tcac=35)
fi

cap() {  # cap NAME: the stage's own limit in seconds
    local kv
    for kv in "${CAPS[@]}"; do [ "${kv%%=*}" = "$1" ] && echo "${kv#*=}"; done
}

elapsed() { echo $(( ($(date +%s%N) - START_NS) / 1000000000 )); }

stage() {  # stage NAME COMMAND...: run under timeout, output to $WORK/NAME.out, rc and time noted
    local name=$1; shift
    local limit left t0 rc
    limit=$(cap "$name")
    left=$(( BUDGET - $(elapsed) - 10 ))  # 10 s kept for the report
    (( left < limit )) && limit=$left
    if (( limit < 5 )); then
        echo "{\"stage\": \"$name\", \"skipped\": \"no time left in the budget\"}" >>"$WORK/stages.jsonl"
        echo "== $name: skipped, no time left"
        return
    fi
    echo "== $name (limit ${limit} s): $*"
    t0=$(date +%s%N)
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$WORK/$name.out"
    rc=${PIPESTATUS[0]}
    local seconds
    seconds=$(awk "BEGIN {printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9}")
    echo "{\"stage\": \"$name\", \"rc\": $rc, \"seconds\": $seconds, \"limit_s\": $limit}" >>"$WORK/stages.jsonl"
    echo "== $name: rc $rc in $seconds s"
}

{
echo "== work folder $WORK, python $PY, budget $BUDGET s"
if [ "$DRY" = 0 ]; then
    nvidia-smi -L
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$WORK/smi.out"
fi

stage tests "$PY" -m pytest -v -p no:cacheprovider -m gpu tests/test_gpu.py
stage bare "$PY" bench/gpu.py bare "${BARE[@]}"

UTIL_PID=
if [ "$DRY" = 0 ]; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 1000 \
        >"$WORK/util.csv" 2>/dev/null &
    UTIL_PID=$!
fi
stage extract "$PY" bench/gpu.py extract --run-dir "$WORK/extract" "${EXTRACT[@]}"
[ -n "$UTIL_PID" ] && kill "$UTIL_PID" 2>/dev/null

stage daf "$PY" -m interp.cli daf --run-dir "$WORK/daf" --no-progress "${PROBE[@]}" "${DAF[@]}"
stage tcac "$PY" -m interp.cli tcac --run-dir "$WORK/tcac" --no-progress "${PROBE[@]}" "${TCAC[@]}"

echo "== done in $(elapsed) s (device $DEVICE)"
} 2>&1 | tee "$WORK/gpu.log"

DRY_FLAG=()
[ "$DRY" = 1 ] && DRY_FLAG=(--dry-run)
"$PY" bench/gpu.py report --work "$WORK" --total-s "$(elapsed)" --budget-s "$BUDGET" \
    "${DRY_FLAG[@]}" | tee "$WORK/gpu.json"
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    cp "$WORK/gpu.log" "$WORK/gpu.json" "$OUT/" 2>/dev/null
fi
