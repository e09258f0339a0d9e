#!/usr/bin/env bash
# Builds what scripts/gpu-bench.sh needs on the GPU machine, here: dsv3-bench
# (runtime side: no LLVM/MLIR, no CUDA library linked) and issue 5's two plans,
# into .gpu-bench-carry/ (git-ignored; name it in the device tool's `carry`):
#   w1.plan      DeepSeek-V3 at full width cut to 4 layers (1 dense + 3 MoE), FP8
#                weights and FP8 activations (DeepSeek's scheme, issue 5's W1)
#   w1-a16.plan  the same with bf16 activations (w8a16 GEMMs, dsv3c's default)
#   w2.plan      the same width cut to 2 layers (1 dense + 1 MoE), BF16 weights
# both for sm_90a with arenas for 8192 tokens and 128 sequences per step.
#   DSV3_BUILD_DIR  the build folder (default build/)
#   DSV3C           the dsv3c that compiles the plans (default: the build's own;
#                   set it to compile with another checkout's compiler)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}
carry=$root/.gpu-bench-carry
targets=(dsv3-bench)
[ -n "${DSV3C:-}" ] || targets+=(dsv3c)
DSV3_BUILD_DIR=$build "$root/scripts/build.sh" "${targets[@]}" >/dev/null
dsv3c=${DSV3C:-$build/bin/dsv3c}
rm -rf "$carry" && mkdir -p "$carry/bin" "$carry/plans"
cp "$build/bin/dsv3-bench" "$carry/bin/"
limits=(--target=sm_90a --max-tokens=8192 --max-sequences=128)
"$dsv3c" "$root/configs/deepseek-v3-4layer.json" --weight-dtype=fp8 "${limits[@]}" \
    --activation-dtype=fp8 --emit=plan -o "$carry/plans/w1.plan" 2>/dev/null
"$dsv3c" "$root/configs/deepseek-v3-4layer.json" --weight-dtype=fp8 "${limits[@]}" \
    --activation-dtype=bf16 --emit=plan -o "$carry/plans/w1-a16.plan" 2>/dev/null
"$dsv3c" "$root/configs/deepseek-v3-2layer.json" --weight-dtype=bf16 "${limits[@]}" \
    --emit=plan -o "$carry/plans/w2.plan" 2>/dev/null
du -sh "$carry"
