#!/usr/bin/env bash
# Builds, here, what scripts/gpu-serve.sh needs on the GPU machine, into
# .gpu-carry-serve/ (git-ignored; name it in the device tool's `carry`):
# dsv3-run and dsv3-ckpt (runtime only, no LLVM), a plan for tiny-vocab-v3
# (DeepSeek-V3's vocabulary, so the real tokenizer's ids fit; FP8 weights;
# 32 sequences and 512 tokens per step), DeepSeek-V3's tokenizer files, and
# the shared libraries the binaries need besides glibc and the C++ runtime
# (cpp-httplib and what it links, PCRE2), which the device image lacks.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}
carry=$root/.gpu-carry-serve
DSV3_BUILD_DIR=$build "$root/scripts/build.sh" dsv3c dsv3-run dsv3-ckpt >/dev/null
tokenizer=$("$root/scripts/fetch-tokenizer.sh")
rm -rf "$carry" && mkdir -p "$carry/bin" "$carry/plans" "$carry/lib" "$carry/deepseek-tokenizer"
cp "$build/bin/dsv3-run" "$build/bin/dsv3-ckpt" "$carry/bin/"
cp "$tokenizer/tokenizer.json" "$tokenizer/tokenizer_config.json" "$carry/deepseek-tokenizer/"
"$root/scripts/carry-libs.sh" "$carry/lib" "$carry/bin/dsv3-run" "$carry/bin/dsv3-ckpt"
"$build/bin/dsv3c" "$root/configs/tiny-vocab-v3.json" --max-tokens=512 --max-sequences=32 \
  --emit=plan -o "$carry/plans/tiny-vocab-v3.plan" 2> "$carry/dsv3c.log" ||
  { cat "$carry/dsv3c.log" >&2; exit 1; }
ls "$carry/lib"
du -sh "$carry"
