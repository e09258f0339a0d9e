#!/usr/bin/env bash
# Builds what scripts/gpu-e2e.sh needs on the GPU machine, here: the runtime
# tools (no LLVM/MLIR in them) and a plan for each end-to-end case, into
# .gpu-carry/ (git-ignored; name it in the device tool's `carry`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}
carry=$root/.gpu-carry
"$root/scripts/build.sh" dsv3c dsv3-run dsv3-ckpt dsv3-plan >/dev/null
rm -rf "$carry" && mkdir -p "$carry/bin" "$carry/plans"
cp "$build/bin/dsv3-run" "$build/bin/dsv3-ckpt" "$build/bin/dsv3-plan" "$carry/bin/"
"$root/scripts/carry-libs.sh" "$carry/lib" "$carry"/bin/*
for name in tiny-groups-qlora tiny-no-qlora-one-group tiny-softmax deepseek-v3-2layer; do
  # fp8: FP8 weights, bf16 activations (the default); fp8act: FP8 weights
  # and FP8 activations (--activation-dtype=fp8); bf16: BF16 weights;
  # fp8act-cublaslt (DeepSeek-V3 width only: the tiny models' projections are
  # too short for cuBLASLt): fp8act with every dense FP8 product of 5 rows
  # or more on cuBLASLt (plan Gemm steps), which the tuning table otherwise
  # leaves to prompts of hundreds of tokens.
  variants=(fp8:fp8:bf16: fp8act:fp8:fp8: bf16:bf16:bf16:)
  [[ $name == deepseek-v3* ]] && variants+=(fp8act-cublaslt:fp8:fp8:--cublaslt-min-rows=5)
  for variant in "${variants[@]}"; do
    IFS=: read -r label weights activations extra <<< "$variant"
    "$build/bin/dsv3c" "$root/configs/$name.json" --weight-dtype=$weights \
        --activation-dtype=$activations --max-tokens=1024 --max-sequences=16 $extra \
        --emit=plan -o "$carry/plans/$name-$label.plan" 2>/dev/null
  done
done
du -sh "$carry"
