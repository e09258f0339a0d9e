#!/usr/bin/env bash
# Builds everything and runs every test that runs without a GPU: the unit tests
# (GoogleTest) and the lit suites (dialect, frontend, tools).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DSV3_BUILD_DIR:-$root/build}

"$root/scripts/build.sh"
echo "== unit tests"
"$build/bin/dsv3-unit-tests" --gtest_brief=1
"$build/bin/dsv3-runtime-tests" --gtest_brief=1
"$build/bin/dsv3-exec-tests" --gtest_brief=1
echo "== lit tests"
python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv "$build/test"
