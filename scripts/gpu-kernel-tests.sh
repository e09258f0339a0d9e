#!/usr/bin/env bash
# GPU kernel tests (device machine): builds every test/gpu/*_test.cu with nvcc
# for sm_90a and runs each, comparing every kernel with a float64 reference on
# fresh random inputs. Pass test names (e.g. gemm_test) to run only those.
# Exit status 1 if any check failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${DSV3_GPU_BUILD_DIR:-$root/build-gpu}
mkdir -p "$out"
arch=${DSV3_GPU_ARCH:-"-gencode=arch=compute_90a,code=sm_90a"}

tests=()
if [ $# -gt 0 ]; then
  for name in "$@"; do tests+=("$root/test/gpu/${name%.cu}.cu"); done
else
  tests=("$root"/test/gpu/*_test.cu)
fi

status=0
summary=()
for src in "${tests[@]}"; do
  name=$(basename "$src" .cu)
  echo "== building $name"
  if ! nvcc -std=c++17 -O2 $arch -I"$root" -I"$root/test/gpu" -o "$out/$name" "$src"; then
    summary+=("$name: BUILD FAILED"); status=1; continue
  fi
  echo "== running $name"
  if "$out/$name"; then summary+=("$name: passed"); else summary+=("$name: FAILED"); status=1; fi
done
echo
printf '%s\n' "${summary[@]}"
exit $status
