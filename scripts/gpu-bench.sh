#!/usr/bin/env bash
# Issue 5's benchmark on the GPU machine, one command: dsv3-bench on the plans
# scripts/gpu-bench-prepare.sh built here and carried in .gpu-bench-carry/.
#   W1  DeepSeek-V3 full width, 4 layers, FP8 weights and activations: decode
#       at batch 1, 32 and 128 with 1024 tokens of context; prefill 1x1024 and
#       8x1024; W1-a16 the same plan with bf16 activations (dsv3c's default)
#   W2  the same width, 2 layers, BF16: decode at batch 1 and 32 (1024
#       context); prefill 1x1024
# Each run measures the ceilings (copy bandwidth, cuBLASLt GEMM peaks) first,
# on the same GPU. Arguments go to both dsv3-bench runs (e.g. --seconds 5).
# Results (tables and JSON) land in $OUT (or /tmp/dsv3-bench); the tables are
# printed last. Exit 1 if a run fails.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
carry=$root/.gpu-bench-carry
out=${OUT:-/tmp/dsv3-bench}
mkdir -p "$out"
bench=$carry/bin/dsv3-bench
if [ ! -x "$bench" ]; then
  echo "gpu-bench: $bench missing: run scripts/gpu-bench-prepare.sh first and carry .gpu-bench-carry" >&2
  exit 1
fi

status=0
"$bench" "$carry/plans/w1.plan" --label W1 \
    --workload decode:1:1024 --workload decode:32:1024 --workload decode:128:1024 \
    --workload prefill:1:1024 --workload prefill:8:1024 \
    --json "$out/w1.json" "$@" > "$out/w1.txt" || status=1
"$bench" "$carry/plans/w1-a16.plan" --label W1-a16 \
    --workload decode:1:1024 --workload decode:32:1024 --workload decode:128:1024 \
    --workload prefill:1:1024 --workload prefill:8:1024 \
    --json "$out/w1-a16.json" "$@" > "$out/w1-a16.txt" || status=1
"$bench" "$carry/plans/w2.plan" --label W2 \
    --workload decode:1:1024 --workload decode:32:1024 --workload prefill:1:1024 \
    --json "$out/w2.json" "$@" > "$out/w2.txt" || status=1

echo
echo "== issue 5 benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$nvcc" ] && "$nvcc" --version | grep release
for run in w1 w1-a16 w2; do
  echo
  cat "$out/$run.txt"
done
exit $status
